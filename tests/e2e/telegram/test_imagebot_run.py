"""``imagebot run`` with a Telegram token, in a real subprocess against the fake Bot API."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.telegram.conftest import free_port
from tests.fakes.telegram_server import TOKEN, FakeTelegram

IMAGEBOT = str(Path(sys.executable).parent / "imagebot")
pytestmark = pytest.mark.slow


async def test_imagebot_run_starts_the_telegram_bot_and_stops_cleanly(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEBOT_", "OPENAI_"))}
    env.update(
        IMAGEBOT_TELEGRAM_TOKEN=TOKEN,
        IMAGEBOT_TELEGRAM_API_URL=fake_telegram.base_url,
        IMAGEBOT_IMAGE_PROVIDER="demo",
        IMAGEBOT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/imagebot.db",
        IMAGEBOT_DATA_DIR=str(tmp_path / "data"),
        IMAGEBOT_HTTP_PORT=str(free_port()),
        IMAGEBOT_REQUIRE_TERMS="false",
    )
    proc = await asyncio.create_subprocess_exec(
        IMAGEBOT, "run", cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        fake = fake_telegram
        # PTB deletes any webhook, then holds a long poll (recorded once it returns).
        await fake.wait_call("deleteWebhook", timeout=30)
        assert {"default", "all_private_chats"} <= set(fake.commands)
        ada = fake.user("Ada")
        chat = fake.private_chat(ada)
        fake.send_text(ada, chat, "/imagine a red fox in snow --quality low")
        result = await fake.wait_call("sendPhoto", chat_id=chat.id, timeout=30)
        assert "a red fox in snow" in result.text
        assert any(data.startswith("rr:") for _, data in result.buttons())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    logs = stderr.decode()
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs  # no token in the logs
    assert "a red fox in snow" not in logs  # nor prompts
