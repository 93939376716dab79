"""Progress and delivery against Telegram's limits: paced edits with partial previews,
429 with retry_after, a user who blocked the bot, photos over 10 MB, provider failures."""

from __future__ import annotations

import asyncio
import io
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from core.generation.ports import ModelCall, ModelEvent, ModelImage
from core.generation.providers.demo import DemoImageModel
from core.types import JobState
from storage.database import Database
from tests.e2e.telegram.conftest import launch
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import TOKEN, FakeTelegram

KEY = "sk-test-telegram-0123456789"


async def test_progress_edits_are_paced_and_show_partial_previews(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    interval = 0.25
    telegram = await launch(
        sqlite_only,
        tmp_path,
        fake_telegram,
        model=DemoImageModel(latency=0.9),
        partial_images=2,
        adapter_options={"progress_interval": interval},
    )
    try:
        fake = telegram.fake
        ada = await telegram.person()
        mark = telegram.mark()
        ada.say("/imagine a slow fox")
        result = await telegram.result(ada.chat.id, after=mark)
        calls = [c for c in fake.calls[mark:] if c.chat_id == ada.chat.id and c.ok]
        status = calls[0]
        assert status.method == "sendMessage" and "Got it" in status.text
        status_id = status.result["message_id"]
        edits = [c for c in calls if c.params.get("message_id") == status_id]
        methods = [c.method for c in edits]
        assert "editMessageText" in methods and methods.count("editMessageMedia") >= 1
        # The status message shows the progress: no chat action on top (one call less).
        assert not any(c.method == "sendChatAction" for c in calls)
        preview = next(c for c in edits if c.method == "editMessageMedia")
        assert "preview" in preview.text and preview.files  # an uploaded partial image
        # Never two progress changes of the chat closer together than the pace allows.
        progress = [c for c in edits if c.method.startswith("edit") and c is not result]
        gaps = [b.at - a.at for a, b in itertools.pairwise([status, *progress])]
        assert all(gap >= interval - 0.05 for gap in gaps), gaps
        # The status message showing the preview becomes the result (photo, caption,
        # buttons) in one edit: no new photo, no deletion (one call less than before).
        assert result.method == "editMessageMedia"
        assert result.params["message_id"] == status_id and result.files
        await asyncio.sleep(0.2)
        later = [c.method for c in fake.calls[mark:] if c.chat_id == ada.chat.id]
        assert "sendPhoto" not in later and "deleteMessage" not in later
        assert fake.message(ada.chat.id, status_id) is not None
    finally:
        await telegram.stop()


@pytest.mark.parametrize("rate_limit", [False, True], ids=["own-retry", "ptb-limiter"])
async def test_429_retry_after_is_honoured(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram, rate_limit: bool
) -> None:
    telegram = await launch(
        sqlite_only, tmp_path, fake_telegram, adapter_options={"rate_limit": rate_limit}
    )
    try:
        fake = telegram.fake
        ada = await telegram.person()
        fake.fail_next("sendPhoto", code=429, retry_after=1)
        mark = telegram.mark()
        ada.say("/imagine a patient fox")
        result = await telegram.result(ada.chat.id, after=mark)
        refused = [c for c in fake.calls_of("sendPhoto", ada.chat.id) if c.status == 429]
        assert len(refused) == 1
        assert result.at - refused[0].at >= 1.0
        assert len([c for c in fake.calls_of("sendPhoto", ada.chat.id) if c.ok]) == 1
    finally:
        await telegram.stop()


async def test_a_user_who_blocked_the_bot_is_left_alone_and_keeps_their_data(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram = await launch(sqlite_only, tmp_path, fake_telegram, worker=False)
    try:
        fake, core = telegram.fake, telegram.core
        ada = await telegram.person()
        mark = telegram.mark()
        ada.say("/imagine a fox")
        await fake.wait_call(
            "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "queued" in c.text
        )
        job_id = (await core.history.page(ada.actor)).items[0].id
        fake.block(ada.chat.id)
        mark = telegram.mark()
        await core.worker.start(exclusive=core.exclusive_worker)
        telegram.stoppers.append(lambda: core.worker.stop(grace=1))
        async with asyncio.timeout(10):
            while (await core.generation.job(ada.actor, job_id)).state != JobState.SUCCEEDED:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        to_ada = [c for c in fake.calls[mark:] if c.chat_id == ada.chat.id]
        assert [c.status for c in to_ada] == [403]  # one refusal, then nothing more
        job = await core.generation.job(ada.actor, job_id)
        assert job.outputs and Path(core.files.absolute(job.outputs[0].path)).exists()

        # Back again: the next update unblocks the chat.
        fake.unblock(ada.chat.id)
        mark = telegram.mark()
        ada.say("/balance")
        answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert "credits" in answer.text
    finally:
        await telegram.stop()


class _HugeModel:
    """A model whose images are 12.6 MB PNGs (noise does not compress)."""

    name = "huge"
    notice = ""

    def __init__(self) -> None:
        noise = Image.frombytes("RGB", (2048, 2048), os.urandom(2048 * 2048 * 3))
        out = io.BytesIO()
        noise.save(out, "PNG", compress_level=0)
        self.data = out.getvalue()

    async def run(self, call: ModelCall) -> AsyncIterator[ModelEvent]:
        yield ModelImage(self.data, "image/png")

    async def check(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


async def test_photos_over_10_mb_go_as_a_compressed_copy_and_the_original_as_a_file(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    model = _HugeModel()
    assert len(model.data) > 10_000_000
    telegram = await launch(sqlite_only, tmp_path, fake_telegram, model=model)
    try:
        fake = telegram.fake
        ada = await telegram.person()
        mark = telegram.mark()
        ada.say("/imagine static")
        result = await telegram.result(ada.chat.id, after=mark)
        assert result.method == "sendPhoto"
        photo = result.files["photo"]
        assert photo.size <= 10_000_000 and photo.filename.endswith(".jpg")

        mark = telegram.mark()
        await fake.wait_answer(ada.press(result.result, telegram.button(result, "fr:")))
        document = await fake.wait_call("sendDocument", chat_id=ada.chat.id, after=mark)
        assert document.files["document"].data == model.data

        # Telegram refusing a photo anyway: the file goes as a document, with the buttons.
        fake.fail_next("sendPhoto", code=400, description="Bad Request: PHOTO_INVALID_DIMENSIONS")
        mark = telegram.mark()
        ada.say("/imagine static again")
        fallback = await telegram.result(ada.chat.id, after=mark)
        assert fallback.method == "sendDocument" and fallback.files["document"].size == len(
            model.data
        )
    finally:
        await telegram.stop()


async def test_provider_failures_are_explained_and_refunded(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram, openai_fake: FakeOpenAI
) -> None:
    telegram = await launch(
        database,
        tmp_path,
        fake_telegram,
        image_provider="openai",
        openai_api_key=KEY,
        openai_base_url=openai_fake.base_url,
        provider_max_retries=1,
    )
    try:
        fake = telegram.fake
        ada = await telegram.person()

        openai_fake.fail_next(500, times=2, headers={"retry-after-ms": "10"})
        mark = telegram.mark()
        ada.say("/imagine a fox --quality low")
        failed = await fake.wait_call(
            "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "⚠️" in c.text
        )
        assert "not answering" in failed.text and "credits were returned" in failed.text
        assert await ada.balance() == 20

        openai_fake.refuse_next(["violence"])
        mark = telegram.mark()
        ada.say("/imagine something refused --quality low")
        refused = await fake.wait_call(
            "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "⚠️" in c.text
        )
        assert "safety system" in refused.text and "violence" in refused.text
        assert "Nothing was charged" in refused.text
        assert await ada.balance() == 20
    finally:
        await telegram.stop()


async def test_a_worker_process_delivers_results_and_direct_messages(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    """``start_delivery``: the notifier alone (``imagebot run --role worker``)."""
    from bot.telegram.app import start_delivery
    from core.types import (
        Actor,
        Announcement,
        Conversation,
        GenerateOptions,
        GenerateRequest,
        ReplyTarget,
    )
    from tests.helpers import make_core

    core, _ = await make_core(
        sqlite_only,
        tmp_path,
        telegram_token=TOKEN,
        telegram_api_url=fake_telegram.base_url,
        telegram_rate_limit=False,
    )
    stop = await start_delivery(core)
    try:
        fake = fake_telegram
        ada = fake.user("Ada")
        command = fake.send_text(ada, fake.private_chat(ada), "/imagine (sent elsewhere)")
        actor = Actor("telegram", str(ada.id), "Ada")
        submitted = await core.generation.submit(
            GenerateRequest(
                actor=actor,
                conversation=Conversation("telegram", str(ada.id)),
                prompt="a fox from another process",
                options=GenerateOptions(quality="low"),
                idempotency_key="telegram:update:elsewhere",
                reply_target=ReplyTarget(
                    "telegram",
                    str(ada.id),
                    reply_to_message_id=str(command["message_id"]),
                    extra={"owner": str(ada.id)},
                ),
            )
        )
        await core.worker.run_until_idle()
        photo = await fake.wait_call("sendPhoto", chat_id=ada.id)
        assert photo.params["reply_parameters"]["message_id"] == command["message_id"]
        assert any(
            data.startswith(f"rr:{ada.id}:{submitted.job.id}") for _, data in photo.buttons()
        )

        await core.notifier.notify(
            ReplyTarget("telegram", str(ada.id), extra={"dm": "1"}),
            Announcement("Your <credits> & more arrived"),
        )
        dm = await fake.wait_call("sendMessage", chat_id=ada.id)
        assert fake.messages[(ada.id, dm.result["message_id"])]["text"] == (
            "Your <credits> & more arrived"
        )
        assert not fake.calls_of("getUpdates") and not fake.commands
    finally:
        await stop()
        await core.aclose()
