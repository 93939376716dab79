"""Privacy promises kept through Discord where the flow is Discord's own (issue 6): the DM
rule, buttons that take effect at once, the export in a DM or as a signed link, erasure
with a receipt, the age gate, policy notices, appeals, support. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web
from sqlalchemy import select, text

from bot.web.server import build_http_app
from core.i18n import format_when
from core.types import Conversation
from storage.database import Database
from storage.schema import Base
from tests.e2e.discord.conftest import CHANNEL, GUILD, DiscordHarness
from tests.e2e.discord.support import (
    actor,
    answered,
    buttons,
    ephemeral_followups,
    result,
)
from tests.fakes.discord_server import FakeDiscord, FakeInteraction

ZELDA = FakeDiscord.user(987654321098765432, "Zelda Quokka")
"""Distinctive id and name, so a scan of every table can look for them."""
OPERATOR = FakeDiscord.user(1111, "Olga")
OPERATORS_CHANNEL = "900000000000000777"
DM = Conversation("discord", "dm", is_private=True)
"""A private chat, for reading consents through core."""


async def harness(
    fake: FakeDiscord, database: Database, tmp_path: Path, **settings: Any
) -> DiscordHarness:
    bot = DiscordHarness(fake, database, tmp_path, settings)
    await bot.start()
    return bot


@pytest_asyncio.fixture
async def gated(
    fake: FakeDiscord, database: Database, tmp_path: Path
) -> AsyncIterator[DiscordHarness]:
    """Terms and the age question required (as in production), an operator, an operators'
    channel; SQLite and PostgreSQL."""
    bot = await harness(
        fake,
        database,
        tmp_path,
        require_terms=True,
        admins=f"discord:{OPERATOR['id']}",
        support_chat=f"discord:{OPERATORS_CHANNEL}",
        policy_url="https://bot.example.net/privacy",
    )
    try:
        yield bot
    finally:
        await bot.stop()


async def accept_terms(fake: FakeDiscord, user: dict[str, Any] = ZELDA) -> None:
    """First use in a DM: the terms, then "I am 13 or older and accept"."""
    ix = await fake.slash("imagine", {"prompt": "hello"}, user=user)
    terms = await answered(ix)
    assert "version" in terms["content"]
    press = await fake.press(terms, buttons(terms)["I am 13 or older and accept"], user=user)
    await press.wait(lambda i: "you are all set" in (i.original or {}).get("content", ""))


async def scan(db: Database, *needles: str) -> list[str]:
    """Every table and column whose stored value contains one of ``needles``."""
    found = []
    async with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                for column, value in row.items():
                    shown = value if isinstance(value, str) else json.dumps(value, default=str)
                    found += [f"{table.name}.{column}" for n in needles if n in shown]
    return found


async def erase(fake: FakeDiscord, user: dict[str, Any] = ZELDA) -> FakeInteraction:
    """``/delete_my_data`` in the DM and "Erase everything"."""
    ix = await fake.slash("delete_my_data", user=user)
    question = await answered(ix)
    assert "Continue?" in question["content"]
    return await fake.press(question, buttons(question)["Erase everything"], user=user)


# --- P07 ----------------------------------------------------------------------------------------


async def test_P07_export_arrives_in_the_dm_as_json_and_every_image(
    gated: DiscordHarness, fake: FakeDiscord
) -> None:
    await accept_terms(fake)
    made = await result(await fake.slash("imagine", {"prompt": "a zebracorn"}, user=ZELDA))
    await answered(await fake.slash("support", {"text": "how do I export?"}, user=ZELDA))
    ix = await fake.slash("export", user=ZELDA)
    message = await answered(ix)
    assert message["channel_id"] == fake.dm_channels[ZELDA["id"]]
    [attachment] = message["attachments"]
    with zipfile.ZipFile(io.BytesIO(fake.file_bytes(attachment))) as archive:
        names = set(archive.namelist())
        profile = json.loads(archive.read("profile.json"))
        jobs = json.loads(archive.read("jobs.json"))
        support = json.loads(archive.read("feedback_and_support.json"))
        images = {n: archive.read(n) for n in names if n.startswith("images/")}
    assert {"README.txt", "settings.json", "consents.json", "ledger.json"} <= names
    assert profile[0]["display_name"] == "Zelda Quokka"
    assert [j["prompt"] for j in jobs] == ["a zebracorn"]
    assert support[0]["text"] == "how do I export?"
    sent = fake.file_bytes(made["attachments"][0])
    assert sent in images.values()  # the stored result itself


async def test_P07_an_export_comes_as_a_signed_private_link_when_one_can_be_given(
    fake: FakeDiscord, database: Database, tmp_path: Path
) -> None:
    bot = await harness(fake, database, tmp_path, public_url="https://bot.example.net")
    assert bot.core is not None
    runner = web.AppRunner(build_http_app(bot.core), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await result(await fake.slash("imagine", {"prompt": "a big picture"}, user=ZELDA))
        ix = await fake.slash("export", user=ZELDA, attachment_size_limit=2048)
        message = await answered(ix)
        assert not message["attachments"] and "24 hours" in message["content"]
        url = buttons(message)["⬇️ Download my data"]
        assert url.startswith("https://bot.example.net/files/")
        path = url.removeprefix("https://bot.example.net")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                assert response.status == 200
                assert response.headers["Cache-Control"] == "private, no-store"
                data = await response.read()
            async with http.get(f"http://127.0.0.1:{port}{path[:-3]}xyz") as forged:
                assert forged.status == 403
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert "README.txt" in archive.namelist()
    finally:
        await runner.cleanup()
        await bot.stop()


# --- P08, P25 ----------------------------------------------------------------------------------


async def test_P08_erasure_asks_gives_a_receipt_and_the_account_starts_as_new(
    gated: DiscordHarness, fake: FakeDiscord, database: Database
) -> None:
    core = gated.core
    assert core is not None
    await accept_terms(fake)
    await result(await fake.slash("imagine", {"prompt": "a zebracorn"}, user=ZELDA))
    user_id = await core.credits.user_for(actor(ZELDA))
    assert user_id is not None and core.files.user_files(user_id)

    press = await erase(fake)
    await press.wait(lambda i: (i.original or {}).get("content", "").startswith("Done."))
    receipt = press.original["content"]
    today = format_when(core.clock.now().date(), "en")
    assert f"On {today} at" in receipt and "Request number" in receipt
    assert "start as a new user" in receipt and not press.original["components"]
    assert await core.credits.user_for(actor(ZELDA)) is None
    assert not core.files.user_files(user_id)
    assert await scan(database, ZELDA["id"], "Zelda Quokka", "zebracorn") == []

    # The same Discord account is a stranger now: the terms again, an empty history and
    # an account with none of the old movements.
    ix = await fake.slash("imagine", {"prompt": "a fresh start"}, user=ZELDA)
    assert "Welcome to imagebot!" in (await answered(ix))["content"]
    await accept_terms(fake)
    assert await core.credits.user_for(actor(ZELDA)) is not None
    assert (await core.history.page(actor(ZELDA))).total == 0
    balance = await answered(await fake.slash("balance", user=ZELDA))
    assert "capture" not in balance["content"] and "hold" not in balance["content"]


async def test_P25_a_banned_user_can_still_delete_their_data(
    gated: DiscordHarness, fake: FakeDiscord
) -> None:
    core = gated.core
    assert core is not None
    await accept_terms(fake)
    ban = await fake.slash("admin ban", {"user": ZELDA["id"], "reason": "abuse"}, user=OPERATOR)
    assert "banned permanently" in (await answered(ban))["content"]
    refused = await fake.slash("imagine", {"prompt": "still here?"}, user=ZELDA)
    assert "permanently" in (await answered(refused))["content"]

    press = await erase(fake)
    await press.wait(lambda i: (i.original or {}).get("content", "").startswith("Done."))
    assert await core.credits.user_for(actor(ZELDA)) is None


# --- P09, P10, P11, P13 ---------------------------------------------------------------------


async def test_P10_P11_switches_take_effect_at_once_and_broadcasts_follow_them(
    gated: DiscordHarness, fake: FakeDiscord
) -> None:
    core = gated.core
    assert core is not None
    await accept_terms(fake)
    ix = await fake.slash("privacy", user=ZELDA)
    message = await answered(ix)
    assert "Product-update messages: **off**" in message["content"]

    async def flip(message: dict[str, Any], label: str, state: str) -> dict[str, Any]:
        press = await fake.press(message, buttons(message)[label], user=ZELDA)
        name = label.split(": ", 1)[1]
        await press.wait(lambda i: f"{name}: **{state}**" in (i.original or {}).get("content", ""))
        return press.original

    async def consents() -> Any:
        return (await core.privacy.overview(actor(ZELDA), DM)).consents

    message = await flip(message, "Turn on: Product-update messages", "on")
    assert (await consents()).product_updates is True  # at once, nothing to wait for
    assert await core.messages.broadcast("New styles are here!") == 1
    [update] = fake.dm_messages(ZELDA["id"])
    assert "New styles are here!" in update["content"] and "/privacy" in update["content"]

    message = await flip(message, "Turn off: Product-update messages", "off")
    assert await core.messages.broadcast("More news") == 0
    assert len(fake.dm_messages(ZELDA["id"])) == 1

    message = await flip(message, "Turn on: Usage analytics", "on")
    message = await flip(message, "Turn on: Use my images and prompts to improve models", "on")
    now = await consents()
    assert now.usage_analytics is True and now.training_opt_in is True
    message = await flip(message, "Turn off: Use my images and prompts to improve models", "off")
    assert (await consents()).training_opt_in is False


async def test_P09_the_stored_name_can_be_cleared_or_refreshed_from_discord(
    gated: DiscordHarness, fake: FakeDiscord
) -> None:
    core = gated.core
    assert core is not None
    await accept_terms(fake)
    message = await answered(await fake.slash("privacy", user=ZELDA))
    assert "name Zelda Quokka" in message["content"]

    clear = await fake.press(message, buttons(message)["Clear my stored name"], user=ZELDA)
    await clear.wait(lambda i: "name none stored" in (i.original or {}).get("content", ""))
    assert "Your stored name was cleared." in clear.original["content"]
    assert (await core.privacy.overview(actor(ZELDA), DM)).display_name == ""

    renamed = FakeDiscord.user(ZELDA["id"], "Zelda Q.")
    refresh = await fake.press(
        clear.original, buttons(clear.original)["Refresh my name from Discord"], user=renamed
    )
    await refresh.wait(lambda i: "name Zelda Q." in (i.original or {}).get("content", ""))
    assert (await core.privacy.overview(actor(ZELDA), DM)).display_name == "Zelda Q."


async def test_P13_privacy_shows_the_periods_of_the_active_retention_policy(
    fake: FakeDiscord, database: Database, tmp_path: Path
) -> None:
    bot = await harness(
        fake,
        database,
        tmp_path,
        retention='{"images_and_prompts": 180, "reference_uploads": 14, "exports": null}',
    )
    try:
        message = await answered(await fake.slash("privacy", user=ZELDA))
        assert "Generated images and their prompts: 6 months" in message["content"]
        assert "Reference images you send for edits: 14 days" in message["content"]
        assert "Data exports you asked for: until you delete them" in message["content"]
    finally:
        await bot.stop()


# --- P12 ----------------------------------------------------------------------------------------


async def test_P12_privacy_commands_in_a_server_only_point_to_the_dm(
    gated: DiscordHarness, fake: FakeDiscord
) -> None:
    for command, options in (
        ("privacy", {}),
        ("export", {}),
        ("delete_my_data", {}),
        ("appeal", {"request": 1, "reason": "please"}),
    ):
        ix = await fake.slash(command, options, user=ZELDA, guild_id=GUILD)
        await ix.wait(lambda i: i.acked)
        assert ix.ack_type == 4 and ix.ephemeral, command
        assert "only in a direct message" in ix.original["content"]
    assert not fake.dm_channels and not fake.channel_messages(CHANNEL)
    assert gated.core is not None
    assert await gated.core.credits.user_for(actor(ZELDA)) is None  # nothing was stored


async def test_P12_a_refused_erasure_during_a_dispute_can_be_appealed(
    gated: DiscordHarness, fake: FakeDiscord, database: Database
) -> None:
    core = gated.core
    assert core is not None
    await accept_terms(fake)
    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE credit_accounts SET frozen = TRUE"))  # a dispute

    press = await erase(fake)
    await press.wait(lambda i: bool(ephemeral_followups(i)))
    [refusal] = ephemeral_followups(press)
    assert "payment dispute is open" in refusal["content"] and "/appeal" in refusal["content"]
    number = int(refusal["content"].split("(number ")[1].split(")")[0])
    assert await core.credits.user_for(actor(ZELDA)) is not None  # nothing erased

    filed = await fake.slash(
        "appeal", {"request": number, "reason": "the dispute was settled"}, user=ZELDA
    )
    assert f"appeal of request #{number}" in (await answered(filed))["content"]
    wrong = await fake.slash("appeal", {"request": number + 99, "reason": "x"}, user=ZELDA)
    assert "no refused request of yours" in (await answered(wrong))["content"]

    overview = await answered(await fake.slash("privacy", user=ZELDA))
    log = await fake.press(overview, buttons(overview)["My requests"], user=ZELDA)
    shown = (await answered(log))["content"]
    assert f"`#{number}`" in shown and "erase · refused" in shown and "appeal open" in shown

    appeals = await answered(await fake.slash("admin appeals", user=OPERATOR))
    assert f"`#{number}` erase refused" in appeals["content"]
    assert "the dispute was settled" in appeals["content"]


# --- P15, P22 -----------------------------------------------------------------------------------


async def test_P15_an_under_13_answer_is_refused_and_nothing_is_kept(
    gated: DiscordHarness, fake: FakeDiscord, database: Database
) -> None:
    ix = await fake.slash("imagine", {"prompt": "a zebracorn"}, user=ZELDA, guild_id=GUILD)
    await ix.wait(lambda i: bool(ephemeral_followups(i)))
    # In a server the channel sees only that nothing started; the question is private.
    assert "did not start" in ix.original["content"]
    [question] = ephemeral_followups(ix)
    assert "13 or older" in question["content"]
    press = await fake.press(question, buttons(question)["I am under 13"], user=ZELDA)
    await press.wait(
        lambda i: "Nothing about you was kept" in (i.original or {}).get("content", "")
    )
    assert not press.original["components"]

    assert await scan(database, ZELDA["id"], "Zelda Quokka", "zebracorn") == []
    async with database.engine.connect() as conn:
        markers = (await conn.execute(text("SELECT COUNT(*) FROM age_refusals"))).scalar()
    assert markers == 1  # only the keyed hash that stops the question coming back

    again = await fake.slash("imagine", {"prompt": "please"}, user=ZELDA)
    refused = await answered(again)
    assert "only for people aged 13 or older" in refused["content"]
    assert not refused["components"]  # not asked again


async def test_P22_a_new_policy_version_is_shown_before_the_next_generation(
    gated: DiscordHarness, fake: FakeDiscord
) -> None:
    core = gated.core
    assert core is not None
    await accept_terms(fake)
    await result(await fake.slash("imagine", {"prompt": "under version one"}, user=ZELDA))

    gated.settings.update(policy_version="2", policy_effective_date="2026-12-01")
    await gated.restart()
    ix = await fake.slash("imagine", {"prompt": "under version two"}, user=ZELDA)
    notice = await answered(ix)
    assert notice["content"].startswith("Our privacy policy has changed.")
    assert "version 2, effective 2026-12-01" in notice["content"]
    assert "I am 13 or older and accept" in buttons(notice)
    assert buttons(notice)["Read the policy"] == "https://bot.example.net/privacy"
    core = gated.core
    assert core is not None
    assert (await core.history.page(actor(ZELDA))).total == 1  # nothing made before it

    press = await fake.press(notice, buttons(notice)["I am 13 or older and accept"], user=ZELDA)
    await press.wait(lambda i: "you are all set" in (i.original or {}).get("content", ""))
    made = await result(await fake.slash("imagine", {"prompt": "under version two"}, user=ZELDA))
    assert made["attachments"]


# --- P26 ----------------------------------------------------------------------------------------


async def test_P26_support_reaches_the_operators_and_their_answer_comes_as_a_dm(
    gated: DiscordHarness, fake: FakeDiscord
) -> None:
    core = gated.core
    assert core is not None
    await accept_terms(fake)
    ix = await fake.slash(
        "support", {"text": "My zebracorn came out blue @everyone"}, user=ZELDA, guild_id=GUILD
    )
    thanks = await answered(ix)
    assert ix.ephemeral and "support message #1 is with the operators" in thanks["content"]
    [forwarded] = fake.channel_messages(OPERATORS_CHANNEL)
    assert "My zebracorn came out blue @everyone" in forwarded["content"]
    assert forwarded["allowed_mentions"] == {"parse": []}

    await core.messages.reply(1, "Blue is the new black.")
    [answer] = fake.dm_messages(ZELDA["id"])
    assert "Answer to your support #1" in answer["content"]
    assert "Blue is the new black." in answer["content"]

    press = await erase(fake)
    await press.wait(lambda i: (i.original or {}).get("content", "").startswith("Done."))
    assert "support messages" in press.original["content"]
    assert await scan(gated.database, "zebracorn", "Blue is the new black") == []
