"""The console in the operator's language (IMAGEBOT_DEFAULT_LANGUAGE), in a real
subprocess: the banner, /help (with /models and the model setting), /models, the settings
usage and the queue line naming the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli_console import clean_env, imagebot

pytestmark = pytest.mark.slow


def test_the_console_speaks_ukrainian(tmp_path: Path) -> None:
    script = "/help\n/models\n/settings nonsense\n/imagine лис у снігу --model demo\n"
    env = clean_env(IMAGEBOT_DEFAULT_LANGUAGE="uk")
    result = imagebot("console", cwd=tmp_path, stdin=script, env=env)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "Консоль imagebot, демо-модель (немає OPENAI_API_KEY)" in out
    assert "Введіть /help, щоб побачити команди." in out
    assert "  /models             доступні моделі та їхні ціни" in out
    assert "(size, quality, format, n, background, model)" in out
    assert "[--model NAME]" in out
    assert "Моделі та ціни (кредити за зображення 1024x1024" in out
    assert "Оберіть через --model НАЗВА або /settings model НАЗВА." in out
    assert "Використовуйте /settings НАЗВА ЗНАЧЕННЯ, де НАЗВА — size" in out
    assert "у черзі (позиція 1, вартість 1 кредит, баланс 19, demo)" in out
    assert "Traceback" not in out + result.stderr


def test_the_english_console_help_lists_models(tmp_path: Path) -> None:
    result = imagebot("console", cwd=tmp_path, stdin="/help\n/settings nonsense\n")
    assert result.returncode == 0, result.stderr
    assert "  /models             models on offer and their prices" in result.stdout
    assert "background or model (the value default resets it)" in result.stdout
