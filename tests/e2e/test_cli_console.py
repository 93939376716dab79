"""The `imagebot` command as a newcomer and an operator use it, in real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import png

IMAGEBOT = str(Path(sys.executable).parent / "imagebot")
pytestmark = pytest.mark.slow


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEBOT_", "OPENAI_"))}
    env.update(extra)
    return env


def imagebot(
    *args: str,
    cwd: Path,
    stdin: str = "",
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [IMAGEBOT, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env or clean_env(),
        timeout=timeout,
        check=False,
    )


def test_console_on_a_fresh_folder_uses_the_demo_model(tmp_path: Path) -> None:
    ref = tmp_path / "cat.png"
    ref.write_bytes(png(320, 240, (20, 200, 20)))
    script = (
        "\n".join(
            [
                "/imagine a red fox in snow --quality low",
                f"/imagine make it watercolor --ref {ref}",
                "/imagine nothing --size 5x5",
                "/history",
                "/balance",
                "/settings quality high",
                "/nonsense",
            ]
        )
        + "\n"
    )
    result = imagebot("console", cwd=tmp_path, stdin=script)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "demo model" in out
    assert out.count("done: 1 image,") == 2
    assert "Sorry: Size '5x5' is not available" in out
    assert "History, page 1 of 1 (2 jobs)" in out
    assert "Balance: 18 credits" in out
    assert "quality=high" in out
    assert "Unknown command /nonsense" in out
    assert "Traceback" not in out + result.stderr
    saved = [line.split()[0] for line in out.splitlines() if line.startswith("  /")]
    assert saved and all(Path(p).is_file() for p in saved)
    assert all(str(tmp_path / "data") in p for p in saved)


def test_readme_start_command_bare_imagebot_opens_the_console(tmp_path: Path) -> None:
    """The README's first command ends in a bare ``imagebot``: no subcommand at all."""
    result = imagebot(cwd=tmp_path, stdin="/imagine a red fox in snow\n/balance\n")
    assert result.returncode == 0, result.stderr
    assert "done: 1 image," in result.stdout and "Balance: 19 credits" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_finished_console_session_leaves_nothing_to_redeliver(tmp_path: Path) -> None:
    first = imagebot("console", cwd=tmp_path, stdin="/imagine a quiet harbour\n")
    assert "done: 1 image," in first.stdout
    assert "handed back" not in first.stderr
    second = imagebot("console", cwd=tmp_path, stdin="/history\n")
    assert "done:" not in second.stdout  # the first job was not left half-delivered
    assert "succeeded" in second.stdout


def test_run_without_tokens_opens_the_console(tmp_path: Path) -> None:
    result = imagebot("run", cwd=tmp_path, stdin="/balance\n")
    assert result.returncode == 0, result.stderr
    assert "opening the console" in result.stderr
    assert "Balance: 20 credits" in result.stdout


def test_run_with_a_platform_token_and_no_key_refuses(tmp_path: Path) -> None:
    env = clean_env(IMAGEBOT_TELEGRAM_TOKEN="123456:" + "AbCdEfGhIj" * 4)
    result = imagebot("run", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "OPENAI_API_KEY is not set" in result.stderr or "adapter" in result.stderr


def test_check_config_and_malformed_secret(tmp_path: Path) -> None:
    result = imagebot("check-config", cwd=tmp_path)
    assert result.returncode == 0
    assert "missing" in result.stdout and "IMAGEBOT_TELEGRAM_TOKEN" in result.stdout
    bad = imagebot("check-config", cwd=tmp_path, env=clean_env(OPENAI_API_KEY="your-key-here"))
    assert bad.returncode == 2
    # One line of the full report, not the end of it; the value is never printed.
    assert "placeholder" in bad.stdout and "IMAGEBOT_TELEGRAM_TOKEN" in bad.stdout
    assert "your-key-here" not in bad.stdout + bad.stderr


def test_operator_grants_and_shows_credits(tmp_path: Path) -> None:
    assert imagebot("migrate", cwd=tmp_path).returncode == 0
    imagebot("console", cwd=tmp_path, stdin="/balance\n")
    user = f"console:{os.environ.get('USER') or __import__('getpass').getuser()}"
    grant = imagebot(
        "credits",
        "grant",
        user,
        "50",
        "--reason",
        "welcome back",
        "--action-id",
        "a1",
        cwd=tmp_path,
    )
    assert grant.returncode == 0, grant.stderr
    assert "balance now 70" in grant.stdout
    again = imagebot("credits", "grant", user, "50", "--action-id", "a1", cwd=tmp_path)
    assert "already applied; balance 70" in again.stdout
    show = imagebot("credits", "show", user, cwd=tmp_path)
    assert "Balance: 70 credits" in show.stdout and "welcome back" in show.stdout
    missing = imagebot("credits", "show", "telegram:999", cwd=tmp_path)
    assert missing.returncode == 1 and "No user" in missing.stderr


async def test_console_with_a_real_key_talks_to_the_provider(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    import asyncio

    env = clean_env(OPENAI_API_KEY="sk-test-console-key-123", OPENAI_BASE_URL=openai_fake.base_url)
    result = await asyncio.to_thread(
        imagebot, "console", cwd=tmp_path, stdin="/imagine a lighthouse at dusk\n", env=env
    )
    assert result.returncode == 0, result.stderr
    assert "model gpt-image-2" in result.stdout
    assert "done: 1 image," in result.stdout
    assert any(r.path.endswith("/images/generations") for r in openai_fake.requests)
