"""``imagebot check-config`` as a newcomer meets it (issue 18, defect 8): a bad value is one
line of the report, named once; obvious placeholder keys are refused; what `run` would do
is said truthfully."""

from __future__ import annotations

import pytest

from bot.cli import _run_summary
from core.errors import ConfigurationError
from core.settings import describe, load_settings, load_settings_for_report

TELEGRAM = "123456:" + "AbCdEfGhIj" * 4


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    import os

    for name in list(os.environ):
        if name.startswith("IMAGEBOT_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("key", ["sk-xxx", "sk-xxxxxxxxxxxxxxxxxxxxxxxx", "sk-***", "sk-abc123"])
def test_placeholder_or_short_openai_keys_are_refused(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("OPENAI_API_KEY: ")
    assert message.count("OPENAI_API_KEY") == 1  # named once
    assert key not in message


def test_a_real_looking_key_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "a1B2c3D4" * 6)
    assert load_settings().openai_api_key is not None


def test_a_bad_value_is_one_line_of_the_whole_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "your-key-here")
    monkeypatch.setenv("IMAGEBOT_DISCORD_TOKEN", "abc")
    monkeypatch.setenv("IMAGEBOT_FREE_CREDITS", "7")
    settings, invalid = load_settings_for_report()
    assert settings.free_credits == 7  # the rest is read as usual
    assert set(invalid) == {"OPENAI_API_KEY", "IMAGEBOT_DISCORD_TOKEN"}
    lines = describe(settings, invalid).lines
    by_var = {var: (status, words) for status, var, words in lines}
    assert [var for _, var, _ in lines].count("OPENAI_API_KEY") == 1
    assert by_var["OPENAI_API_KEY"][0] == "invalid"
    assert "placeholder" in by_var["OPENAI_API_KEY"][1]
    assert "OPENAI_API_KEY" not in by_var["OPENAI_API_KEY"][1]
    assert by_var["IMAGEBOT_DISCORD_TOKEN"][0] == "invalid"
    assert by_var["IMAGEBOT_TELEGRAM_TOKEN"][0] == "missing"
    assert "your-key-here" not in repr(lines)


def test_invalid_plain_settings_are_reported_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBOT_HTTP_PORT", "99999")
    monkeypatch.setenv("IMAGEBOT_ENCRYPTION_KEY", "short")
    settings, invalid = load_settings_for_report()
    assert settings.http_port == 8080
    lines = describe(settings, invalid).lines
    statuses = {var: status for status, var, _ in lines}
    assert statuses["IMAGEBOT_HTTP_PORT"] == "invalid"
    assert statuses["IMAGEBOT_ENCRYPTION_KEY"] == "invalid"
    assert [var for _, var, _ in lines].count("IMAGEBOT_ENCRYPTION_KEY") == 1


def test_what_run_would_do_is_said_truthfully(monkeypatch: pytest.MonkeyPatch) -> None:
    settings, _ = load_settings_for_report()
    by_var = {var: words for _, var, words in describe(settings).lines}
    assert "opens the console" in by_var["OPENAI_API_KEY"]
    assert "opens the console" in _run_summary(settings)

    monkeypatch.setenv("IMAGEBOT_STRIPE_SECRET_KEY", "sk_test_abcdefgh12345678")
    assert "Stripe webhooks" in _run_summary(load_settings())

    monkeypatch.setenv("IMAGEBOT_TELEGRAM_TOKEN", TELEGRAM)
    assert "refuses to start" in _run_summary(load_settings())
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "a1B2c3D4" * 6)
    assert "starts the Telegram bot" in _run_summary(load_settings())
