"""``/admin`` through the real discord.py against the loopback Discord (P19): every action by
an operator, audited; for anyone else the command does not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy import text

from storage.database import Database
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import actor, answered, audit_log, buttons, job_of, result
from tests.fakes.discord_server import ADMINISTRATOR, EPHEMERAL, FakeDiscord, FakeInteraction

OPERATOR = FakeDiscord.user(1111, "Olga")
ADA = FakeDiscord.user(4242, "Ada")
EVE = FakeDiscord.user(6666, "Eve")


@pytest_asyncio.fixture
async def admin_bot(
    fake: FakeDiscord, database: Database, tmp_path: Path
) -> AsyncIterator[DiscordHarness]:
    """The adapter with one operator (Olga), on SQLite and PostgreSQL."""
    harness = DiscordHarness(fake, database, tmp_path, {"admins": f"discord:{OPERATOR['id']}"})
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def admin(
    fake: FakeDiscord, sub: str, options: dict[str, Any] | None = None, *, user: dict = OPERATOR
) -> dict[str, Any]:
    """``/admin <sub>`` in the user's DM with the bot; its (ephemeral) answer."""
    ix = await fake.slash(f"admin {sub}", options, user=user)
    message = await answered(ix)
    assert ix.ephemeral, sub
    return message


async def balance(bot: DiscordHarness, user: dict[str, Any]) -> int:
    assert bot.core is not None
    user_id = await bot.core.credits.user_for(actor(user))
    assert user_id is not None
    return (await bot.core.credits.balance(user_id)).available


def visible(ix: FakeInteraction) -> tuple[Any, ...]:
    """Everything about an answer a user can observe."""
    message = ix.original
    assert message is not None
    return (
        ix.ack_type,
        ix.ack_flags,
        message["content"],
        message["components"],
        message["attachments"],
        message["embeds"],
        len(ix.followups),
    )


async def test_P19_admin_is_hidden_by_default_permissions_and_dm_only(
    admin_bot: DiscordHarness, fake: FakeDiscord
) -> None:
    [sync] = fake.requests_to("PUT", r"^/applications/\d+/commands$")
    [group] = [c for c in sync.json if c["name"] == "admin"]
    # "0": in servers only members with Administrator see it (Discord cannot hide a
    # command in DMs; there the operator check answers).
    assert str(group["default_member_permissions"]) == "0"
    assert group["contexts"] == [0, 1]
    assert {o["name"] for o in group["options"]} == {
        "user",
        "grant",
        "revoke",
        "ban",
        "unban",
        "refund",
        "stats",
        "retention",
        "reviews",
        "appeals",
        "appeal",
    }
    assert all(o["type"] == 1 for o in group["options"])
    # The operator in a server is pointed to the DM; nothing is done there.
    ix = await fake.slash("admin stats", user=OPERATOR, guild_id=GUILD, permissions=ADMINISTRATOR)
    message = await answered(ix)
    assert ix.ephemeral and "only in a direct message" in message["content"]


async def test_P19_every_admin_action_by_an_operator_is_done_and_audited(
    admin_bot: DiscordHarness, fake: FakeDiscord, database: Database
) -> None:
    core = admin_bot.core
    assert core is not None
    made = await result(await fake.slash("imagine", {"prompt": "a pear"}, user=ADA))
    job_id = job_of(made)
    assert await balance(admin_bot, ADA) == 19

    looked = await admin(fake, "user", {"user": ADA["id"]})
    text = looked["content"]
    assert "`discord:4242`" in text and "Ada" in text and "Credits: **19**" in text
    assert "Jobs: 1" in text and "0 strikes, not banned" in text

    granted = await admin(
        fake, "grant", {"user": f"<@{ADA['id']}>", "amount": 30, "reason": "goodwill"}
    )
    assert "Granted 30 credits to `discord:4242`; balance now 49" in granted["content"]
    revoked = await admin(fake, "revoke", {"user": "discord:4242", "amount": 5, "reason": "typo"})
    assert "Revoked 5 credits from `discord:4242`; balance now 44" in revoked["content"]

    refunded = await admin(fake, "refund", {"job": job_id, "reason": "bad result"})
    assert f"Returned 1 credit of job `{job_id}`" in refunded["content"]
    again = await admin(fake, "refund", {"job": job_id, "reason": "bad result"})
    assert "already refunded" in again["content"]
    assert await balance(admin_bot, ADA) == 45

    banned = await admin(fake, "ban", {"user": ADA["id"], "reason": "spam", "hours": 2})
    assert "banned until" in banned["content"] and "(spam)" in banned["content"]
    unbanned = await admin(fake, "unban", {"user": ADA["id"], "reason": "appeal accepted"})
    assert "may generate again" in unbanned["content"]
    forever = await admin(fake, "ban", {"user": ADA["id"], "reason": "abuse"})
    assert "banned permanently (abuse)" in forever["content"]
    await admin(fake, "unban", {"user": ADA["id"], "reason": "second chance"})

    stats = await admin(fake, "stats")
    assert "jobs succeeded: 1" in stats["content"] and "open reviews: 0" in stats["content"]
    swept = await admin(fake, "retention", {"dry_run": True})
    assert "dry run" in swept["content"] and "would delete 0" in swept["content"]
    swept = await admin(fake, "retention")
    assert "deleted 0" in swept["content"]
    reviews = await admin(fake, "reviews")
    assert reviews["content"] == "The review queue is empty."
    appeals = await admin(fake, "appeals")
    assert appeals["content"] == "No open appeals."

    missing = await admin(fake, "user", {"user": "telegram:999"})
    assert "No user telegram:999" in missing["content"]
    bad = await admin(fake, "user", {"user": "Ada Lovelace"})
    assert "platform:id" in bad["content"]

    rows = await audit_log(database)
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("discord:1111", action)
        for action in (
            "lookup",
            "grant",
            "revoke",
            "refund_job",
            "ban_temporary",
            "unban",
            "ban_permanent",
            "unban",
            "retention_run",
            "retention_run",
        )
    ]
    ada = await core.credits.user_for(actor(ADA))
    assert all(r["subject_user_id"] == ada for r in rows if r["action"] != "retention_run")
    assert [r["reason"] for r in rows[1:5]] == ["goodwill", "typo", "bad result", "spam"]
    assert all(r["created_at"] is not None for r in rows)


async def test_P19_a_redelivered_grant_grants_once(
    admin_bot: DiscordHarness, fake: FakeDiscord
) -> None:
    await result(await fake.slash("imagine", {"prompt": "a pear"}, user=ADA))
    ix = await fake.slash(
        "admin grant", {"user": ADA["id"], "amount": 10, "reason": "sorry"}, user=OPERATOR
    )
    await answered(ix)
    await fake.dispatch("INTERACTION_CREATE", ix.payload)  # the gateway delivers it again
    await fake.wait_until(lambda: len(fake.requests_to("POST", "/callback")) == 3)
    assert await balance(admin_bot, ADA) == 29


async def test_P19_for_anyone_else_admin_answers_as_an_unknown_command(
    admin_bot: DiscordHarness, fake: FakeDiscord, database: Database
) -> None:
    await result(await fake.slash("imagine", {"prompt": "a pear"}, user=ADA))
    before = await balance(admin_bot, ADA)
    unknown = await fake.slash("frobnicate", user=EVE)
    await answered(unknown)
    assert unknown.ephemeral and unknown.original is not None
    assert unknown.original["content"] == "⚠️ Unknown command. /help lists what I can do."
    expected = visible(unknown)

    attempts: list[tuple[str, dict[str, Any]]] = [
        ("user", {"user": ADA["id"]}),
        ("grant", {"user": EVE["id"], "amount": 1000, "reason": "me"}),
        ("revoke", {"user": ADA["id"], "amount": 19, "reason": "x"}),
        ("ban", {"user": ADA["id"], "reason": "x"}),
        ("unban", {"user": ADA["id"], "reason": "x"}),
        ("refund", {"job": "0" * 16, "reason": "x"}),
        ("stats", {}),
        ("retention", {"dry_run": False}),
        ("reviews", {}),
        ("appeals", {}),
        ("appeal", {"request": 1, "decision": "grant", "reason": "mine"}),
        # What a tampered client could send: options out of range, wrong types, and a
        # subcommand that does not exist. None of it may tell /admin apart.
        ("grant", {"user": "nobody", "amount": -5, "reason": ""}),
        ("ban", {"user": ADA["id"], "reason": "x", "hours": "many"}),
        ("frobnicate", {}),
    ]
    for sub, options in attempts:
        for where in ({}, {"guild_id": GUILD, "permissions": ADMINISTRATOR}):
            ix = await fake.slash(f"admin {sub}", options, user=EVE, **where)
            await answered(ix)
            assert visible(ix) == expected, (sub, where)
            assert ix.ack_flags == EPHEMERAL

    # Nothing changed, nothing was recorded, nothing was stored about Eve.
    assert await balance(admin_bot, ADA) == before
    assert admin_bot.core is not None
    assert await admin_bot.core.credits.user_for(actor(EVE)) is None
    assert await audit_log(database) == []


async def test_P19_review_buttons_refuse_everyone_but_operators(
    admin_bot: DiscordHarness, fake: FakeDiscord
) -> None:
    unknown = await fake.slash("frobnicate", user=EVE)
    await answered(unknown)
    for choice in ("approve", "dismiss", "view"):
        ix = await fake.press_forged(f"ib:review:1:{choice}", user=EVE)
        await answered(ix)
        assert ix.ephemeral and ix.original is not None
        assert ix.original["content"] == unknown.original["content"]
        assert not ix.original["attachments"] and not ix.original["components"]


async def test_P12_admin_lists_open_appeals_without_pinging_anyone(
    admin_bot: DiscordHarness, fake: FakeDiscord
) -> None:
    """An appeal filed with /appeal reaches /admin appeals (the user's side of the flow is
    in test_privacy.py)."""
    core = admin_bot.core
    assert core is not None
    await result(await fake.slash("imagine", {"prompt": "a pear"}, user=ADA))
    async with admin_bot.database.engine.begin() as conn:
        await conn.execute(text("UPDATE credit_accounts SET frozen = TRUE"))  # a dispute
    ix = await fake.slash("delete_my_data", user=ADA)
    question = await answered(ix)
    press = await fake.press(question, buttons(question)["Erase everything"], user=ADA)
    await press.wait(lambda i: any("appeal" in m["content"] for m in i.followups))
    [refusal] = press.followups
    number = int(refusal["content"].split("(number ")[1].split(")")[0])
    filed = await fake.slash(
        "appeal", {"request": number, "reason": "the dispute is @everyone's mistake"}, user=ADA
    )
    await answered(filed)
    listed = await admin(fake, "appeals")
    assert f"`#{number}` erase refused" in listed["content"]
    assert "a payment dispute is open" in listed["content"]
    assert "the dispute is @everyone's mistake" in listed["content"]
    assert listed["allowed_mentions"] == {"parse": []}

    # The operator decides (issue 18, item 10): audited, and Ada is told in her DM.
    dm = fake.dm_channels[ADA["id"]]
    before = len(fake.channel_messages(dm))
    decided = await admin(
        fake, "appeal", {"request": number, "decision": "deny", "reason": "Still disputed."}
    )
    assert f"Appeal `#{number}` denied" in decided["content"]
    assert "told in a direct message" in decided["content"]
    [told] = fake.channel_messages(dm)[before:]
    assert "upheld the refusal" in told["content"] and "Still disputed." in told["content"]
    again = await admin(
        fake, "appeal", {"request": number, "decision": "grant", "reason": "changed my mind"}
    )
    assert "no open appeal" in again["content"]
    assert "No open appeals." in (await admin(fake, "appeals"))["content"]


async def test_an_operator_reads_the_admin_answers_in_their_language(
    admin_bot: DiscordHarness, fake: FakeDiscord
) -> None:
    fake.locales[OPERATOR["id"]] = "ru"
    await result(await fake.slash("imagine", {"prompt": "груша"}, user=ADA))
    looked = (await admin(fake, "user", {"user": ADA["id"]}))["content"]
    assert "`discord:4242` · пользователь #" in looked and "Кредиты: **19**" in looked
    assert "0 предупреждений, не забанен" in looked and "-# Записано в журнал аудита." in looked
    granted = await admin(fake, "grant", {"user": ADA["id"], "amount": 2, "reason": "x"})
    assert "Начислено 2 кредита для `discord:4242`; баланс теперь 21." in granted["content"]
    forever = await admin(fake, "ban", {"user": ADA["id"], "reason": "abuse"})
    assert "0 предупреждений, забанен навсегда (abuse)" in forever["content"]
    queue = await admin(fake, "reviews")
    assert queue["content"] == "Очередь проверки пуста."
    appeals = await admin(fake, "appeals")
    assert appeals["content"] == "Открытых апелляций нет."
    ix = await fake.slash("admin stats", user=OPERATOR, guild_id=GUILD, permissions=ADMINISTRATOR)
    outside = await answered(ix)
    assert "только в личных сообщениях со мной" in outside["content"]
    [sync] = fake.requests_to("PUT", r"^/applications/\d+/commands$")
    group = next(c for c in sync.json if c["name"] == "admin")
    assert group["description_localizations"]["fr"].startswith("Outils d’opérateur")
