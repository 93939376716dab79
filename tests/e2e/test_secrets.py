"""Secrets never appear in logs, exports or answers (P19): a whole session runs with known
fake secrets in the environment at the most verbose log level, and every byte it wrote
is searched for them."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from pathlib import Path

import pytest

from tests.e2e.test_cli_console import clean_env, imagebot
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow

SECRETS = {
    "OPENAI_API_KEY": "sk-test-OPENAIsecretVALUE-5b1e",
    "IMAGEBOT_STRIPE_SECRET_KEY": "sk_test_STRIPEsecretVALUE9a7c",
    "IMAGEBOT_STRIPE_WEBHOOK_SECRET": "whsec_WEBHOOKsecretVALUE33d0",
    "IMAGEBOT_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"K" * 32).decode(),
    "IMAGEBOT_TELEGRAM_WEBHOOK_SECRET": "TGwebhookSECRET-8812",
}


async def test_P19_secrets_are_never_written_to_logs_or_exports(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    env = clean_env(
        OPENAI_BASE_URL=openai_fake.base_url,
        IMAGEBOT_LOG_LEVEL="DEBUG",
        IMAGEBOT_LOG_DIR=str(tmp_path / "logs"),
        **SECRETS,
    )
    script = (
        "\n".join(
            [
                "/imagine a lighthouse in a storm",
                "/imagine nonsense --size 7x7",
                "/feedback the key is not here",
                "/privacy product_updates on",
                "/export",
                "/balance",
                "/history",
            ]
        )
        + "\n"
    )
    result = await asyncio.to_thread(
        imagebot, "console", cwd=tmp_path, stdin=script, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Export ready" in result.stdout
    written = result.stdout + result.stderr
    for path in (tmp_path / "logs").rglob("*"):
        written += path.read_text(errors="replace")
    export = next((tmp_path / "data" / "console").glob("*export*.zip"))
    with zipfile.ZipFile(io.BytesIO(export.read_bytes())) as zf:
        for name in zf.namelist():
            written += zf.read(name).decode(errors="replace")
    assert written.count("lighthouse") >= 1  # the export holds the prompt, the logs do not
    for name, value in SECRETS.items():
        assert value not in written, f"{name} leaked"
    for path in (tmp_path / "logs").rglob("*"):
        assert "lighthouse" not in path.read_text(errors="replace")
    # And the provider got the key only in the Authorization header.
    for request in openai_fake.requests:
        assert SECRETS["OPENAI_API_KEY"] not in request.body.decode(errors="replace")
