"""What people see when something is wrong: the same cases and words as on Telegram, from
the same core errors, rendered in one place, never an exception's text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from storage.database import Database
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import actor, buttons, ephemeral_followups, result
from tests.fakes.discord_server import FakeDiscord, FakeInteraction
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import png

ADA = FakeDiscord.user(4242, "Ada")


async def shown(ix: FakeInteraction, timeout: float = 10.0) -> str:
    """Every text the user was shown for an interaction, once an error arrived."""
    await ix.wait(
        lambda i: any(
            "⚠️" in m["content"] for m in [*([i.original] if i.original else []), *i.followups]
        ),
        timeout,
    )
    return "\n".join(m["content"] for m in [*([ix.original] if ix.original else []), *ix.followups])


async def balance_of(bot: DiscordHarness, user: dict[str, Any]) -> int:
    assert bot.core is not None
    user_id = await bot.core.credits.user_for(actor(user))
    assert user_id is not None
    return (await bot.core.credits.balance(user_id)).available


@pytest_asyncio.fixture
async def openai_bot(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> AsyncIterator[DiscordHarness]:
    """The adapter on the real OpenAI provider, pointed at the OpenAI fake."""
    harness = DiscordHarness(
        fake,
        sqlite_db,
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


async def test_an_attachment_that_is_not_an_image(bot: DiscordHarness, fake: FakeDiscord) -> None:
    pdf = fake.attachment(b"%PDF-1.7 not a picture", "invoice.pdf", "application/pdf")
    ix = await fake.slash(
        "imagine", {"prompt": "make it pretty", "image1": pdf}, user=ADA, guild_id=GUILD
    )
    text = await shown(ix)
    assert "“invoice.pdf” is not an image" in text and "PNG, JPEG, WebP or GIF" in text
    assert fake.downloads == []  # refused without downloading it
    assert bot.core is not None
    assert (await bot.core.history.page(actor(ADA))).total == 0


async def test_an_attachment_that_lies_about_being_an_image(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    fake_png = fake.attachment(b"#!/bin/sh\necho not an image\n", "cat.png", "image/png")
    ix = await fake.slash(
        "imagine", {"prompt": "make it pretty", "image1": fake_png}, user=ADA, guild_id=GUILD
    )
    text = await shown(ix)
    assert "not an image we can use" in text
    assert await balance_of(bot, ADA) == 20  # nothing charged


async def test_an_attachment_larger_than_the_limit(bot: DiscordHarness, fake: FakeDiscord) -> None:
    huge = fake.attachment(png(), "huge.png", size=30_000_000)  # what Discord says it is
    ix = await fake.slash("edit", {"prompt": "brighter", "image1": huge}, user=ADA, guild_id=GUILD)
    text = await shown(ix)
    assert "“huge.png” is 28.7 MB; the limit is 20 MB" in text
    assert fake.downloads == []


async def test_five_attachments_are_too_many(bot: DiscordHarness, fake: FakeDiscord) -> None:
    target = {
        "id": "700000000000000200",
        "channel_id": "900000000000000001",
        "type": 0,
        "content": "",
        "author": FakeDiscord.user(77),
        "attachments": [fake.attachment(png(), f"p{i}.png") for i in range(5)],
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
    submitted = await fake.submit_modal(opened, {"instruction": "one picture"})
    await result(submitted)
    assert len(fake.downloads) == 4  # the first four images of the message


async def test_not_enough_credits_is_said_privately_with_the_price(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> None:
    harness = DiscordHarness(fake, sqlite_db, tmp_path, {"free_credits": 0})
    await harness.start()
    try:
        ix = await fake.slash("imagine", {"prompt": "a fox"}, user=ADA, guild_id=GUILD)
        await ix.wait(lambda i: ephemeral_followups(i))
        assert ix.original is not None
        assert ix.original["content"] == "⚠️ This did not start. The details were sent only to you."
        [private] = ephemeral_followups(ix)
        assert "This costs 1 credit and your balance is 0" in private["content"]
        assert "/buy" in private["content"]
    finally:
        await harness.stop()


async def test_invalid_options_say_what_is_accepted(bot: DiscordHarness, fake: FakeDiscord) -> None:
    ix = await fake.slash(
        "imagine",
        {"prompt": "a fox", "format": "jpeg", "transparent": True},
        user=ADA,
        guild_id=GUILD,
    )
    assert "transparent background needs the png or webp format" in await shown(ix)


async def test_provider_unavailable_apologises_and_returns_the_credits(
    openai_bot: DiscordHarness, fake: FakeDiscord, openai_fake: FakeOpenAI
) -> None:
    openai_fake.fail_next(500, headers={"retry-after-ms": "10"}, times=5)
    ix = await fake.slash("imagine", {"prompt": "a fox"}, user=ADA, guild_id=GUILD)
    text = await shown(ix, timeout=20)
    assert "not answering right now" in text and "credits were returned" in text
    assert await balance_of(openai_bot, ADA) == 20
    assert not buttons(ix.original or {})


async def test_content_refused_by_the_provider_costs_nothing(
    openai_bot: DiscordHarness, fake: FakeDiscord, openai_fake: FakeOpenAI
) -> None:
    openai_fake.refuse_next(("violence",))
    ix = await fake.slash("imagine", {"prompt": "a fox"}, user=ADA, guild_id=GUILD)
    text = await shown(ix, timeout=20)
    assert "safety system refused this request (violence)" in text
    assert "Nothing was charged" in text
    assert await balance_of(openai_bot, ADA) == 20


async def test_an_unexpected_error_shows_a_generic_apology_only(
    bot: DiscordHarness, fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bot.core is not None

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("connection to db:5432 failed, password=hunter2")

    monkeypatch.setattr(bot.core.history, "page", broken)
    ix = await fake.slash("history", user=ADA, guild_id=GUILD)
    text = await shown(ix)
    assert "something went wrong on our side" in text
    assert "hunter2" not in text and "RuntimeError" not in text


async def test_terms_and_age_are_asked_first_then_remembered(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> None:
    harness = DiscordHarness(
        fake, sqlite_db, tmp_path, {"require_terms": True, "policy_url": "https://example.org/p"}
    )
    await harness.start()
    try:
        ix = await fake.slash("imagine", {"prompt": "a fox"}, user=ADA, guild_id=GUILD)
        await ix.wait(lambda i: ephemeral_followups(i))
        [terms] = ephemeral_followups(ix)
        assert "Before your first image" in terms["content"] and "13 or older" in terms["content"]
        assert buttons(terms)["Read the policy"] == "https://example.org/p"
        accept = await fake.press(terms, buttons(terms)["I am 13 or older and accept"], user=ADA)
        await accept.wait(lambda i: i.original and "all set" in i.original["content"])
        again = await fake.slash("imagine", {"prompt": "a fox"}, user=ADA, guild_id=GUILD)
        assert (await result(again))["attachments"]

        kid = FakeDiscord.user(1212, "Kid")
        ask = await fake.slash("balance", user=kid)  # in a DM: asked right there
        await ask.wait(lambda i: i.original and "13 or older" in i.original["content"])
        refuse = await fake.press(ask.original, buttons(ask.original)["I am under 13"], user=kid)
        await refuse.wait(
            lambda i: i.original and "Nothing about you was kept" in i.original["content"]
        )
        later = await fake.slash("imagine", {"prompt": "a fox"}, user=kid)
        assert "only for people aged 13 or older" in await shown(later)
    finally:
        await harness.stop()
