"""Getting results to people: progress edits, expired tokens, restarts, rate limits, upload
limits, and the safety of what is sent (mentions, length)."""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from PIL import Image

from bot.discord.app import start_delivery
from storage.database import Database
from tests.e2e.discord.conftest import CHANNEL, GUILD, DiscordHarness
from tests.e2e.discord.support import buttons, job_of, message_payloads, result, settled
from tests.fakes.discord_server import EPHEMERAL, TOKEN, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_core

ADA = FakeDiscord.user(4242, "Ada")


@pytest_asyncio.fixture
async def held(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> AsyncIterator[DiscordHarness]:
    """The adapter with the workers held back, so a test can act before delivery."""
    harness = DiscordHarness(fake, sqlite_db, tmp_path, {}, run_worker=False)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def queued(fake: FakeDiscord, **options: object) -> tuple:
    ix = await fake.slash(
        "imagine", {"prompt": "a red fox in snow", **options}, user=ADA, guild_id=GUILD
    )
    await ix.wait(lambda i: i.original and "queued" in i.original["content"])
    return ix


async def test_progress_edits_the_original_at_most_once_a_second(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    openai_fake.stream_interval = 0.45  # previews at about 0.45 s and 0.9 s, result at 1.35 s
    settings = {
        "image_provider": "openai",
        "openai_api_key": "sk-test-discord-0123456789",
        "openai_base_url": openai_fake.base_url,
        "partial_images": 2,
        "moderation": False,
    }
    harness = DiscordHarness(fake, sqlite_db, tmp_path, settings, min_interval=1.0)
    await harness.start()
    try:
        ix = await fake.slash("imagine", {"prompt": "a slow fox"}, user=ADA, guild_id=GUILD)
        await result(ix)
    finally:
        await harness.stop()
    edits = fake.requests_to("PATCH", rf"/webhooks/\d+/{ix.token}/messages/@original$")
    progress, final = edits[:-1], edits[-1]
    assert "queued" in progress[0].json["content"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(progress)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert len(progress) < 4  # queued, generating, two previews: some were left out
    assert final.json["components"]  # the result, with its buttons, is never held back


async def test_previews_are_shown_as_attachments(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> None:
    harness = DiscordHarness(fake, sqlite_db, tmp_path, {"partial_images": 2}, min_interval=0)
    await harness.start()
    try:
        ix = await fake.slash("imagine", {"prompt": "a fox, slowly"}, user=ADA, guild_id=GUILD)
        await result(ix)
    finally:
        await harness.stop()
    previews = [
        r
        for r in fake.requests_to("PATCH", r"/messages/@original$")
        if "preview" in (r.json or {}).get("content", "")
    ]
    assert previews and previews[0].files and previews[0].files[0][1].startswith("preview-")


async def test_result_after_the_token_expired_is_posted_in_the_channel(
    held: DiscordHarness, fake: FakeDiscord
) -> None:
    ix = await queued(fake)
    fake.expire(ix)  # a long queue: 15 minutes went by
    await held.start_worker()
    await fake.wait_until(lambda: fake.channel_messages(CHANNEL))
    [post] = fake.channel_messages(CHANNEL)
    assert post["content"].startswith(f"<@{ADA['id']}>")  # whose result, without a ping
    assert post["allowed_mentions"] == {"parse": []}
    assert post["attachments"] and set(buttons(post)) >= {"Reroll", "Delete"}


async def test_result_for_an_interaction_older_than_15_minutes_skips_the_token(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    ix = await fake.slash(
        "imagine", {"prompt": "from long ago"}, user=ADA, guild_id=GUILD, age=16 * 60
    )
    await fake.wait_until(lambda: fake.channel_messages(CHANNEL))
    assert not fake.requests_to("PATCH", rf"/{ix.token}/")  # no call with a dead token
    assert fake.channel_messages(CHANNEL)[0]["attachments"]


async def test_private_result_after_expiry_goes_to_a_dm(
    held: DiscordHarness, fake: FakeDiscord
) -> None:
    ix = await queued(fake, private=True)
    fake.expire(ix)
    await held.start_worker()
    await fake.wait_until(lambda: fake.dm_messages(ADA["id"]))
    assert not fake.channel_messages(CHANNEL)  # never in the channel
    [dm] = fake.dm_messages(ADA["id"])
    assert dm["attachments"] and not dm["content"].startswith("<@")


async def test_result_goes_to_a_dm_when_the_bot_may_not_post_in_the_channel(
    held: DiscordHarness, fake: FakeDiscord
) -> None:
    fake.forbid_channel(CHANNEL)  # a user-installed app in a server it is not part of
    ix = await queued(fake)
    fake.expire(ix)
    await held.start_worker()
    await fake.wait_until(lambda: fake.dm_messages(ADA["id"]))
    assert fake.dm_messages(ADA["id"])[0]["attachments"]


async def test_queued_job_is_delivered_after_a_restart(
    held: DiscordHarness, fake: FakeDiscord
) -> None:
    ix = await queued(fake)
    await held.restart()  # the job waits in the database; the token is still valid
    await held.start_worker()
    message = await result(ix)
    assert message["attachments"] and buttons(message)


async def test_rate_limited_calls_are_retried(bot: DiscordHarness, fake: FakeDiscord) -> None:
    fake.rate_limit_next("POST", r"/callback$")
    fake.rate_limit_next("PATCH", r"/messages/@original$", times=2)
    ix = await fake.slash("imagine", {"prompt": "patience"}, user=ADA, guild_id=GUILD)
    message = await result(ix)
    statuses = [r.status for r in fake.requests_to("POST", rf"/interactions/{ix.id}/")]
    assert statuses == [429, 200]
    assert 429 in [r.status for r in fake.requests_to("PATCH", r"/messages/@original$")]
    assert message["attachments"]


async def test_prompt_with_everyone_pings_nobody(bot: DiscordHarness, fake: FakeDiscord) -> None:
    prompt = "@everyone @here <@&123> <@999> look at this cat"
    ix = await fake.slash("imagine", {"prompt": prompt}, user=ADA, guild_id=GUILD)
    message = await result(ix)
    assert "@everyone" in message["content"]
    bodies = message_payloads(fake)
    assert bodies
    for body in bodies:
        if body.get("content"):
            assert body.get("allowed_mentions") == {"parse": []}, body


async def test_a_huge_prompt_stays_within_2000_characters(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    prompt = "a very detailed fox " * 299  # 5980 characters
    ix = await fake.slash("imagine", {"prompt": prompt}, user=ADA, guild_id=GUILD)
    message = await result(ix)
    assert message["attachments"]
    assert len(message["content"]) <= 2000 and message["content"].startswith("> a very")
    assert all(len(body.get("content") or "") <= 2000 for body in message_payloads(fake))


async def test_a_file_over_the_upload_limit_is_sent_as_jpeg_with_a_note(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    ix = await fake.slash(
        "imagine",
        {"prompt": "a detailed fox"},
        user=ADA,
        guild_id=GUILD,
        attachment_size_limit=150_000,  # the demo's PNG is about 300 kB
    )
    message = await result(ix)
    [attachment] = message["attachments"]
    assert attachment["filename"].endswith(".jpg") and attachment["size"] <= 150_000
    assert "Sent as JPEG" in message["content"] and "upload limit" in message["content"]
    with Image.open(io.BytesIO(fake.file_bytes(attachment))) as picture:
        assert picture.format == "JPEG"
    # The original stays available at full size in the store.
    assert bot.core is not None
    assert job_of(message)


async def test_ephemeral_answers_keep_their_flag(bot: DiscordHarness, fake: FakeDiscord) -> None:
    ix = await fake.slash("imagine", {"prompt": "just for me", "private": True}, user=ADA)
    await ix.wait(lambda i: settled(i.original))
    assert int(ix.original["flags"]) & EPHEMERAL


async def test_a_worker_only_process_delivers_through_the_token(
    held: DiscordHarness, fake: FakeDiscord, tmp_path: Path
) -> None:
    ix = await queued(fake)  # the bot process deferred and queued it; it runs no worker
    worker_core, _ = await make_core(
        held.database,
        tmp_path,
        discord_token=TOKEN,
        discord_api_url=fake.api_url,
        discord_gateway_url=fake.gateway_url,
    )
    stop = await start_delivery(worker_core)  # REST only: no gateway, no command sync
    try:
        await worker_core.worker.start(exclusive=False)
        message = await result(ix)
        assert message["attachments"] and buttons(message)
        assert len(fake.identifies) == 1  # only the bot process connected to the gateway
    finally:
        await stop()
        await worker_core.aclose()
