"""The buttons under a result: each one, other people's presses, presses after a restart,
and presses on results that are gone."""

from __future__ import annotations

import io

from PIL import Image

from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import (
    actor,
    buttons,
    ephemeral_followups,
    finished,
    job_of,
    result,
)
from tests.fakes.discord_server import FakeDiscord, FakeInteraction

ADA = FakeDiscord.user(4242, "Ada")
EVE = FakeDiscord.user(6666, "Eve")


async def made(
    bot: DiscordHarness, fake: FakeDiscord, prompt: str = "a red fox in snow", **options: object
) -> dict:
    ix = await fake.slash("imagine", {"prompt": prompt, **options}, user=ADA, guild_id=GUILD)
    message = await result(ix)
    await finished(bot.core, ADA, job_of(message))
    return message


async def press(fake: FakeDiscord, message: dict, label: str, user: dict = ADA) -> FakeInteraction:
    ix = await fake.press(message, buttons(message)[label], user=user)
    await ix.wait(lambda i: i.acked)
    return ix


async def test_reroll_makes_a_new_job_charged_again(bot: DiscordHarness, fake: FakeDiscord) -> None:
    message = await made(bot, fake)
    ix = await press(fake, message, "Reroll")
    again = await result(ix)
    assert ix.ack_type == 5 and not ix.ephemeral  # a new public "thinking" message
    first, second = job_of(message), job_of(again)
    assert first != second and "a red fox in snow" in again["content"]
    assert "balance 18" in again["content"]  # 20 free credits, 1 per image, twice


async def test_variation_and_edit_derive_from_the_result(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    message = await made(bot, fake)
    variation = await result(await press(fake, message, "Variation"))
    assert bot.core is not None
    job = await bot.core.generation.job(actor(ADA), job_of(variation))
    assert job.kind == "edit" and job.prompt.startswith("Create a variation of this image")

    opened = await press(fake, message, "Edit")
    assert opened.ack_type == 9 and opened.modal is not None
    assert opened.modal["title"] == "Edit this image"
    submitted = await fake.submit_modal(opened, {"instruction": "add a full moon"})
    edited = await result(submitted)
    job = await bot.core.generation.job(actor(ADA), job_of(edited))
    assert job.kind == "edit" and job.prompt == "add a full moon" and len(job.inputs) == 1


async def test_full_resolution_sends_the_original_file_privately(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    message = await made(bot, fake, size="1536x1024")
    ix = await press(fake, message, "Full resolution")
    await ix.wait(lambda i: i.original and i.original["attachments"])
    assert ix.ephemeral
    [attachment] = ix.original["attachments"]
    assert bot.core is not None
    _, stored = await bot.core.history.download(actor(ADA), job_of(message), 0)
    assert fake.file_bytes(attachment) == stored
    with Image.open(io.BytesIO(stored)) as picture:
        assert picture.size == (1536, 1024)


async def test_delete_removes_the_result_and_its_message(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    message = await made(bot, fake)
    ix = await press(fake, message, "Delete")
    assert ix.ack_type == 6  # answered by editing the result message itself
    await ix.wait(lambda i: i.original and i.original["content"].startswith("🗑"))
    gone = fake.messages[message["id"]]
    assert gone["attachments"] == [] and gone["components"] == []
    assert bot.core is not None
    assert (await bot.core.history.page(actor(ADA))).total == 0


async def test_another_users_press_is_refused(bot: DiscordHarness, fake: FakeDiscord) -> None:
    message = await made(bot, fake)
    for label in ("Reroll", "Edit", "Variation", "Full resolution", "Delete"):
        ix = await press(fake, message, label, user=EVE)
        assert ix.ack_type == 4 and ix.ephemeral, label
        assert "belong to the person who made this request" in ix.original["content"]
    assert bot.core is not None
    assert (await bot.core.history.page(actor(ADA))).total == 1
    assert (await bot.core.history.page(actor(EVE))).total == 0
    assert fake.messages[message["id"]]["attachments"]  # untouched


async def test_buttons_of_a_deleted_result_answer_kindly(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    message = await made(bot, fake)
    assert bot.core is not None
    # Gone elsewhere (another message's Delete, the retention sweep): these buttons remain.
    await bot.core.history.delete(actor(ADA), job_of(message))
    for label in ("Reroll", "Variation", "Full resolution", "Delete"):
        ix = await press(fake, message, label)
        await ix.wait(
            lambda i: ephemeral_followups(i) or (i.original and "⚠️" in i.original["content"])
        )
        shown = (ix.original or {}).get("content", "") + "".join(m["content"] for m in ix.followups)
        assert "no longer available" in shown, label
        assert "Traceback" not in shown


async def test_buttons_work_after_a_restart(bot_any_db: DiscordHarness, fake: FakeDiscord) -> None:
    message = await made(bot_any_db, fake)
    await bot_any_db.restart()  # a new process: no view of the old one is in memory
    ix = await press(fake, message, "Reroll")
    again = await result(ix)
    assert job_of(again) != job_of(message)
    full = await press(fake, message, "Full resolution")
    await full.wait(lambda i: i.original and i.original["attachments"])
