"""The newcomer's and the operator's path through `imagebot` (issue 18, defect 8), in real
subprocesses: --version, check-config with a bad value, quiet start-up, and `run` with
only Stripe configured serving its webhooks."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.e2e.test_cli_console import IMAGEBOT, clean_env, imagebot

pytestmark = pytest.mark.slow


def test_version(tmp_path: Path) -> None:
    result = imagebot("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"imagebot {version('imagebot')}"


def test_check_config_reports_a_placeholder_as_one_line(tmp_path: Path) -> None:
    env = clean_env(OPENAI_API_KEY="sk-xxx", IMAGEBOT_DISCORD_TOKEN="abc")
    result = imagebot("check-config", cwd=tmp_path, env=env)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    key_lines = [line for line in lines if "OPENAI_API_KEY" in line]
    assert len(key_lines) == 1 and key_lines[0].startswith("INVALID")
    assert key_lines[0].count("OPENAI_API_KEY") == 1
    assert any(line.startswith("INVALID") and "IMAGEBOT_DISCORD_TOKEN" in line for line in lines)
    assert any("IMAGEBOT_ADMINS" in line for line in lines)  # the rest of the report
    assert "sk-xxx" not in result.stdout + result.stderr


def test_migrate_prints_no_alembic_set_up_lines(tmp_path: Path) -> None:
    result = imagebot("migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "setup plugin" not in result.stderr
    assert "Context impl" not in result.stderr and "Will assume" not in result.stderr
    assert "Running upgrade" in result.stderr  # what an operator wants to see stays


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_with_only_stripe_serves_the_webhooks(tmp_path: Path) -> None:
    port = _free_port()
    env = clean_env(
        IMAGEBOT_STRIPE_SECRET_KEY="sk_test_abcdefgh12345678",
        IMAGEBOT_STRIPE_WEBHOOK_SECRET="whsec_abcdefgh12345678",
        IMAGEBOT_HTTP_PORT=str(port),
    )
    process = subprocess.Popen(  # noqa: S603
        [IMAGEBOT, "run"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    health = r.status
                    break
            except OSError:
                time.sleep(0.2)
        assert health == 200, "the HTTP server did not come up"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/stripe/webhook",
            data=json.dumps({"id": "evt_1"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=5)  # noqa: S310
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 400  # served, and an unsigned event is refused
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "serving the HTTP server only" in err and "/stripe/webhook" in err
    assert "console" not in out  # the console did not open
