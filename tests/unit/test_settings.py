"""Configuration: the contract's names, defaults, and refusals in plain words."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from core.settings import describe, load_settings

ENV_NAMES = [
    "IMAGEBOT_DATABASE_URL",
    "IMAGEBOT_DATA_DIR",
    "IMAGEBOT_TELEGRAM_TOKEN",
    "IMAGEBOT_TELEGRAM_API_URL",
    "IMAGEBOT_DISCORD_TOKEN",
    "IMAGEBOT_DISCORD_API_URL",
    "IMAGEBOT_DISCORD_GATEWAY_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "IMAGEBOT_IMAGE_MODEL",
    "IMAGEBOT_IMAGE_PROVIDER",
    "IMAGEBOT_STRIPE_SECRET_KEY",
    "IMAGEBOT_STRIPE_WEBHOOK_SECRET",
    "IMAGEBOT_STRIPE_API_URL",
    "IMAGEBOT_HTTP_HOST",
    "IMAGEBOT_HTTP_PORT",
    "IMAGEBOT_ADMINS",
    "IMAGEBOT_FREE_CREDITS",
    "IMAGEBOT_ENCRYPTION_KEY",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout


def test_defaults_work_without_any_variable() -> None:
    s = load_settings()
    assert s.database_url == "sqlite+aiosqlite:///./data/imagebot.db"
    assert s.image_model == "gpt-image-2"
    assert s.http_host == "127.0.0.1" and s.http_port == 8080
    assert s.effective_provider(console=True) == "demo"
    assert s.effective_provider(console=False) == "openai"


def test_every_contract_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "IMAGEBOT_DATABASE_URL": "postgresql://u@h/db",
        "IMAGEBOT_DATA_DIR": "/srv/imagebot",
        "IMAGEBOT_TELEGRAM_TOKEN": "123456:" + "A" * 35,
        "IMAGEBOT_TELEGRAM_API_URL": "http://127.0.0.1:8081",
        "IMAGEBOT_DISCORD_TOKEN": "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.q1W2e3R4t5Y6u7I8o9P0a1S2d3F",
        "IMAGEBOT_DISCORD_API_URL": "http://127.0.0.1:8090/api/v10",
        "IMAGEBOT_DISCORD_GATEWAY_URL": "ws://127.0.0.1:8090/gateway",
        "OPENAI_API_KEY": "sk-proj-abcdef123456",
        "OPENAI_BASE_URL": "http://127.0.0.1:8082/v1",
        "IMAGEBOT_IMAGE_MODEL": "gpt-image-1.5",
        "IMAGEBOT_IMAGE_PROVIDER": "openai",
        "IMAGEBOT_STRIPE_SECRET_KEY": "sk_test_abcdefghijkl",
        "IMAGEBOT_STRIPE_WEBHOOK_SECRET": "whsec_abcdefghijkl",
        "IMAGEBOT_STRIPE_API_URL": "http://127.0.0.1:12111",
        "IMAGEBOT_HTTP_HOST": "0.0.0.0",  # noqa: S104
        "IMAGEBOT_HTTP_PORT": "9000",
        "IMAGEBOT_ADMINS": "telegram:123,discord:456",
        "IMAGEBOT_FREE_CREDITS": "7",
        "IMAGEBOT_ENCRYPTION_KEY": "A" * 43 + "=",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.database_url == "postgresql+asyncpg://u@h/db"
    assert str(s.data_dir) == "/srv/imagebot"
    assert s.telegram_api_url == "http://127.0.0.1:8081"
    assert s.discord_gateway_url == "ws://127.0.0.1:8090/gateway"
    assert s.openai_base_url == "http://127.0.0.1:8082/v1"
    assert s.image_model == "gpt-image-1.5"
    assert s.stripe_api_url == "http://127.0.0.1:12111"
    assert s.http_port == 9000
    assert s.admin_ids == {("telegram", "123"), ("discord", "456")}
    assert s.free_credits == 7
    assert s.encryption_key is not None


def test_env_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text("IMAGEBOT_FREE_CREDITS=33\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().free_credits == 33


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("OPENAI_API_KEY", "your-api-key-here", "placeholder"),
        ("OPENAI_API_KEY", "sk-...", "placeholder"),
        ("IMAGEBOT_TELEGRAM_TOKEN", "not-a-token", "BotFather"),
        ("IMAGEBOT_DISCORD_TOKEN", "abc", "Developer Portal"),
        ("IMAGEBOT_STRIPE_SECRET_KEY", "pk_test_abcdefghijkl", "sk_test_"),
        ("IMAGEBOT_STRIPE_WEBHOOK_SECRET", "secret123456", "whsec_"),
        ("IMAGEBOT_ENCRYPTION_KEY", "short", "32 random bytes"),
        ("IMAGEBOT_DATABASE_URL", "mysql://x", "sqlite+aiosqlite"),
        ("IMAGEBOT_ADMINS", "telegram", "telegram:123"),
        ("IMAGEBOT_ADMINS", "Telegram:1", "telegram:123"),
        ("IMAGEBOT_HTTP_PORT", "99999", "IMAGEBOT_HTTP_PORT"),
        ("IMAGEBOT_DEFAULT_LANGUAGE", "klingon", "pt-BR"),
    ],
)
def test_malformed_or_placeholder_values_are_refused_in_plain_words(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert name in message and words in message
    if "KEY" in name or "TOKEN" in name or "SECRET" in name:
        assert value not in message or len(value) < 6


def test_check_config_says_what_is_missing_and_what_it_disables() -> None:
    report = describe(load_settings())
    by_var = {var: (status, words) for status, var, words in report.lines}
    assert by_var["IMAGEBOT_TELEGRAM_TOKEN"] == ("missing", "the Telegram bot will not start")
    assert by_var["OPENAI_API_KEY"][0] == "missing"
    assert "demo" in by_var["OPENAI_API_KEY"][1]
    assert "/buy" in by_var["IMAGEBOT_STRIPE_SECRET_KEY"][1]
    assert by_var["IMAGEBOT_ENCRYPTION_KEY"][0] == "warning"


def test_check_config_never_prints_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-supersecretvalue1")
    monkeypatch.setenv("IMAGEBOT_DATABASE_URL", "postgresql+asyncpg://u:hunter2pass@h/db")
    text = repr(describe(load_settings()).lines)
    assert "supersecretvalue1" not in text and "hunter2pass" not in text
