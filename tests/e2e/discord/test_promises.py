"""Promises P23 and P24 kept through Discord, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from PIL import Image

from core.types import Conversation, GenerateOptions, GenerateRequest, ReplyTarget
from storage.database import Database
from tests.e2e.discord.conftest import CHANNEL, GUILD, DiscordHarness
from tests.e2e.discord.support import actor, buttons, job_of, result
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import png

ADA = FakeDiscord.user(4242, "Ada")


@pytest_asyncio.fixture
async def openai_bot(
    fake: FakeDiscord, database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> AsyncIterator[DiscordHarness]:
    """The adapter on the real OpenAI provider (pointed at the OpenAI fake), both databases."""
    harness = DiscordHarness(
        fake,
        database,
        tmp_path,
        {
            "image_provider": "openai",
            "openai_api_key": "sk-test-discord-0123456789",
            "openai_base_url": openai_fake.base_url,
            "provider_max_retries": 0,
        },
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def test_P23_history_pages_and_downloads_full_resolution(
    bot_any_db: DiscordHarness, fake: FakeDiscord
) -> None:
    core, notes = bot_any_db.core, bot_any_db.notes
    assert core is not None and notes is not None
    ids = []
    for n in range(10):  # more than one page (8 a page)
        size = "1536x1024" if n == 0 else "1024x1024"
        sub = await core.generation.submit(
            GenerateRequest(
                actor=actor(ADA),
                conversation=Conversation("discord", CHANNEL, is_private=False),
                prompt=f"fox number {n}",
                options=GenerateOptions(size=size),
                idempotency_key=f"p23:{n}",
                reply_target=ReplyTarget("test", CHANNEL),
            )
        )
        ids.append(sub.job.id)
    for job_id in ids:
        await notes.wait_final(job_id)

    ix = await fake.slash("history", user=ADA, guild_id=GUILD)
    await ix.wait(lambda i: i.original and "History" in i.original["content"])
    first = ix.original
    assert ix.ephemeral and "page 1 of 2 (10 in all)" in first["content"]
    assert "fox number 9" in first["content"]  # newest first
    assert {f"⬇ {n}" for n in range(1, 9)} <= set(buttons(first))

    older = await fake.press(first, buttons(first)["Older ▶"], user=ADA)
    await older.wait(lambda i: i.original and "page 2 of 2" in i.original["content"])
    second = older.original
    assert "fox number 0" in second["content"] and "fox number 9" not in second["content"]

    download = await fake.press(second, buttons(second)["⬇ 2"], user=ADA)
    await download.wait(lambda i: i.original and i.original["attachments"])
    assert download.ephemeral
    [attachment] = download.original["attachments"]
    _, stored = await core.history.download(actor(ADA), ids[0], 0)
    assert fake.file_bytes(attachment) == stored  # the stored file itself, not a preview
    with Image.open(io.BytesIO(stored)) as picture:
        assert picture.size == (1536, 1024)


async def test_P24_attached_images_turn_imagine_into_an_edit(
    openai_bot: DiscordHarness, fake: FakeDiscord, openai_fake: FakeOpenAI
) -> None:
    first = fake.attachment(png(300, 200, (200, 40, 40)), "red.png")
    second = fake.attachment(png(120, 120, (40, 40, 200)), "blue.png")
    ix = await fake.slash(
        "imagine",
        {"prompt": "put the red one on the blue one", "image1": first, "image2": second},
        user=ADA,
        guild_id=GUILD,
    )
    message = await result(ix, timeout=20)
    assert message["attachments"] and buttons(message)
    [request] = [r for r in openai_fake.image_requests if r.path.endswith("/images/edits")]
    parts = request.files_named("image", "image[]")
    assert len(parts) == 2
    sizes = sorted(Image.open(io.BytesIO(p[3])).size for p in parts)
    assert sizes == [(120, 120), (300, 200)]
    assert request.get("prompt") == "put the red one on the blue one"
    core = openai_bot.core
    assert core is not None
    assert (await core.generation.job(actor(ADA), job_of(message))).kind == "edit"


async def test_P24_the_images_of_any_message_can_be_edited(
    openai_bot: DiscordHarness, fake: FakeDiscord, openai_fake: FakeOpenAI
) -> None:
    target = {
        "id": "700000000000000300",
        "channel_id": CHANNEL,
        "guild_id": GUILD,
        "type": 0,
        "content": "my drawing",
        "author": FakeDiscord.user(77, "Grace"),
        "attachments": [fake.attachment(png(256, 256, (10, 160, 10)), "drawing.png")],
        "embeds": [],
        "mentions": [],
        "mention_roles": [],
        "pinned": False,
        "mention_everyone": False,
        "tts": False,
        "timestamp": "2026-11-01T10:00:00+00:00",
        "edited_timestamp": None,
        "flags": 0,
    }
    opened = await fake.message_command("Edit with imagebot", target, user=ADA, guild_id=GUILD)
    await opened.wait(lambda i: i.acked)
    submitted = await fake.submit_modal(opened, {"instruction": "add a rainbow"})
    message = await result(submitted, timeout=20)
    assert message["attachments"]
    [request] = [r for r in openai_fake.image_requests if r.path.endswith("/images/edits")]
    [part] = request.files_named("image", "image[]")
    assert Image.open(io.BytesIO(part[3])).size == (256, 256)
    assert request.get("prompt") == "add a rainbow"
