"""Operators and safety through Telegram (P16, P17, P19): every /admin action by an
operator and by anyone else, the review queue's buttons, moderation refusals, and group
admins switching the bot off. On both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bot.telegram import render
from core.types import Actor
from storage.database import Database
from tests.e2e.telegram.conftest import Person, TelegramHarness, launch
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import BotCall, FakeTelegram

KEY = "sk-test-telegram-admin-0123456789"


async def with_operator(
    database: Database, tmp_path: Path, fake: FakeTelegram, **settings: Any
) -> tuple[TelegramHarness, Person]:
    """A bot whose operators are a new Telegram user (and someone on Discord)."""
    olga = fake.user("Olga")
    telegram = await launch(
        database, tmp_path, fake, admins=f"telegram:{olga.id},discord:42", **settings
    )
    await telegram.core.onboarding.accept(Actor("telegram", str(olga.id), "Olga"))
    return telegram, Person(telegram, olga, fake.private_chat(olga))


async def audit_rows(db: Database) -> list[tuple[str, str]]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT actor, action FROM audit_log ORDER BY id"))).all()
    return [(a, b) for a, b in rows]


def _withheld_notice(fake: FakeTelegram, chat_id: int, after: int) -> Callable[[], BotCall | None]:
    def find() -> BotCall | None:
        return next(
            (c for c in fake.calls[after:] if c.chat_id == chat_id and "withheld" in c.text), None
        )

    return find


async def ask(telegram: TelegramHarness, person: Person, command: str) -> BotCall:
    """``person`` sends ``command`` in their private chat; the bot's answer."""
    mark = telegram.mark()
    person.say(command)
    return await telegram.fake.wait_call("sendMessage", chat_id=person.chat.id, after=mark)


async def test_P19_every_admin_action_by_an_operator_and_by_anyone_else(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram, olga = await with_operator(database, tmp_path, fake_telegram)
    try:
        fake, core = telegram.fake, telegram.core
        ada = await telegram.person("Ada")
        mark = telegram.mark()
        ada.say("/imagine a kite --quality low")
        await telegram.result(ada.chat.id, after=mark)
        job = (await core.history.page(ada.actor)).items[0]

        # The menu: /admin only in the operator's own chat.
        assert "admin" in [c["command"] for c in fake.commands[f"chat:{olga.id}"]]
        assert "privacy" in [c["command"] for c in fake.commands[f"chat:{olga.id}"]]
        for scope in ("default", "all_private_chats"):
            assert "admin" not in [c["command"] for c in fake.commands[scope]]

        actions = [
            "",
            f" user {ada.id}",
            f" grant {ada.id} 50 goodwill",
            f" revoke {ada.id} 5 correction",
            f" ban {ada.id} 2h spam",
            f" unban {ada.id} appeal accepted",
            f" refund {job.id} bad result",
            " stats",
            " retention dry",
            " retention",
            " reviews",
            " appeals",
            " nonsense",
        ]

        # Anyone else: exactly the unknown-command answer, and nothing changes.
        unknown = await ask(telegram, ada, "/frobnicate")
        before = await ada.balance()
        for action in actions:
            answer = await ask(telegram, ada, f"/admin{action}")
            assert answer.params == unknown.params, action
        answer = await ask(telegram, ada, "/admin@imagebot_test_bot stats")
        assert answer.params == unknown.params
        group = fake.group()
        mark = telegram.mark()
        ada.say("/admin stats", chat=group)
        olga.say("/admin stats", chat=group)  # not in a group, not even for an operator
        await asyncio.sleep(0.4)
        assert not [c for c in fake.calls[mark:] if c.chat_id == group.id]
        assert await ada.balance() == before
        assert await audit_rows(database) == []

        # The operator: each action, each audited with who did it.
        answers = {}
        for action in actions:
            answers[action] = (await ask(telegram, olga, f"/admin{action}")).text
        assert "Operator tools" in answers[""] and "Operator tools" in answers[" nonsense"]
        assert f"telegram:{ada.id}" in answers[f" user {ada.id}"]
        assert f"Credits: {before} available" in answers[f" user {ada.id}"]
        assert (
            answers[f" grant {ada.id} 50 goodwill"]
            == f"Granted 50 credits. Balance now {before + 50}."
        )
        assert answers[f" revoke {ada.id} 5 correction"].startswith("Revoked 5 credits.")
        assert answers[f" ban {ada.id} 2h spam"].startswith("Banned until")
        assert answers[f" unban {ada.id} appeal accepted"] == render.admin_unbanned()
        assert answers[f" refund {job.id} bad result"] == f"Refunded {render.credits(job.cost)}."
        assert "jobs_succeeded: 1" in answers[" stats"]
        assert "dry run" in answers[" retention dry"]
        assert "Retention run" in answers[" retention"]
        assert answers[" reviews"] == "The review queue is empty."
        assert answers[" appeals"] == "No open appeals."
        assert await ada.balance() == before + 45 + job.cost

        # Mistakes are explained; a refund is given once.
        again = await ask(telegram, olga, f"/admin refund {job.id} bad result")
        assert again.text == "That job was refunded before."
        wrong = await ask(telegram, olga, "/admin grant someone 5 x")
        assert "Telegram id" in wrong.text
        missing = await ask(telegram, olga, "/admin user 99999")
        assert "No user telegram:99999" in missing.text
        short = await ask(telegram, olga, f"/admin grant {ada.id} 5")
        assert "/admin grant ID AMOUNT REASON" in short.text

        op = f"telegram:{olga.id}"
        assert [a for who, a in await audit_rows(database) if who == op] == [
            "lookup",
            "grant",
            "revoke",
            "ban_temporary",
            "unban",
            "refund_job",
            "retention_run",
            "retention_run",
        ]
    finally:
        await telegram.stop()


async def test_P17_a_ban_through_admin_refuses_imagine_until_lifted(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram, olga = await with_operator(database, tmp_path, fake_telegram)
    try:
        fake = telegram.fake
        ada = await telegram.person("Ada")
        banned = await ask(telegram, olga, f"/admin ban {ada.id} abusive prompts")
        assert banned.text == "Banned for good."
        mark = telegram.mark()
        ada.say("/imagine a fox --quality low")
        refused = await fake.wait_call(
            "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "may not" in c.text
        )
        assert "permanently" in refused.text
        assert (await telegram.core.history.page(ada.actor)).total == 0

        await ask(telegram, olga, f"/admin unban {ada.id} reviewed")
        mark = telegram.mark()
        ada.say("/imagine a fox --quality low")
        await telegram.result(ada.chat.id, after=mark)
    finally:
        await telegram.stop()


async def test_P16_a_flagged_prompt_costs_nothing_and_names_the_category(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram, openai_fake: FakeOpenAI
) -> None:
    openai_fake.flag_words = {"forbidden-word"}
    openai_fake.flag_category = "violence"
    telegram = await launch(
        database,
        tmp_path,
        fake_telegram,
        image_provider="openai",
        openai_api_key=KEY,
        openai_base_url=openai_fake.base_url,
        moderation=True,
        provider_max_retries=0,
    )
    try:
        fake = telegram.fake
        ada = await telegram.person()
        before = await ada.balance()
        mark = telegram.mark()
        ada.say("/imagine a <b>forbidden-word</b> scene")
        refused = await fake.wait_call(
            "editMessageText",
            chat_id=ada.chat.id,
            after=mark,
            where=lambda c: "safety system" in c.text,
        )
        assert "violence" in refused.text and "Nothing was charged" in refused.text
        assert await ada.balance() == before
        assert openai_fake.image_requests == []
        assert openai_fake.moderation_requests
        page = await telegram.core.history.page(ada.actor)
        assert page.items[0].state.value == "rejected" and page.items[0].cost == 0
    finally:
        await telegram.stop()


async def test_P19_review_queue_buttons_approve_and_dismiss_withheld_outputs(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram, openai_fake: FakeOpenAI
) -> None:
    openai_fake.flag_image_category = "violence"  # every output image is flagged
    telegram, olga = await with_operator(
        database,
        tmp_path,
        fake_telegram,
        image_provider="openai",
        openai_api_key=KEY,
        openai_base_url=openai_fake.base_url,
        moderation=True,
        provider_max_retries=0,
    )
    try:
        fake, core = telegram.fake, telegram.core
        ada = await telegram.person("Ada")
        before = await ada.balance()
        for prompt in ("a stormy sea", "a quiet lake"):
            mark = telegram.mark()
            ada.say(f"/imagine {prompt} --quality low")
            withheld = await fake.wait_for(
                _withheld_notice(fake, ada.chat.id, mark), what="the withheld notice", timeout=15
            )
            assert "credits were returned" in withheld.text
        assert await ada.balance() == before

        queue = await ask(telegram, olga, "/admin reviews")
        assert "Review queue</b> (2 open)" in queue.text
        items = await core.admin.reviews(Actor("cli", "test"))
        first, second = items[0].id, items[1].id

        # Someone else's forged press says nothing; Ada pressing Olga's button neither.
        forged = f"ra:{ada.id}::0:{first}"
        reply = await fake.wait_answer(ada.press(queue.result, forged, check=False))
        assert reply["text"] == render.stale()
        reply = await fake.wait_answer(ada.press(queue.result, f"ra:{olga.id}::0:{first}"))
        assert reply["text"] == render.not_yours()
        assert len(await core.admin.reviews(Actor("cli", "test"))) == 2

        # Approve: the result reaches Ada, free; the queue is redrawn in place.
        mark = telegram.mark()
        reply = await fake.wait_answer(olga.press(queue.result, f"ra:{olga.id}::0:{first}"))
        assert reply["text"] == f"#{first} approved: delivered."
        delivered = await fake.wait_call("sendPhoto", chat_id=ada.chat.id, after=mark)
        assert "An operator reviewed this result" in delivered.text
        redrawn = fake.message(olga.chat.id, queue.result["message_id"])
        assert redrawn is not None and "(1 open)" in redrawn["text"]

        reply = await fake.wait_answer(olga.press(redrawn, f"rd:{olga.id}::0:{second}"))
        assert reply["text"] == f"#{second} dismissed: deleted."
        emptied = fake.message(olga.chat.id, queue.result["message_id"])
        assert emptied is not None and emptied["text"] == "The review queue is empty."
        assert await ada.balance() == before

        op = f"telegram:{olga.id}"
        decisions = [a for who, a in await audit_rows(database) if who == op]
        assert decisions == ["review_approve", "review_dismiss"]
    finally:
        await telegram.stop()


async def test_group_admins_switch_the_bot_off_and_on(telegram: TelegramHarness) -> None:
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person("Ada")  # a group admin
    bob = await telegram.person("Bob")  # a member
    group = fake.group()
    fake.set_member(group, ada.user, "administrator")

    mark = telegram.mark()
    bob.say("/bot_off", chat=group)
    refused = await fake.wait_call("sendMessage", chat_id=group.id, after=mark)
    assert refused.text == render.group_admins_only()
    assert (await core.safety.chat_control("telegram", str(group.id))).enabled

    mark = telegram.mark()
    ada.say("/bot_off@imagebot_test_bot", chat=group)
    done = await fake.wait_call("sendMessage", chat_id=group.id, after=mark)
    assert "off in this group" in done.text
    assert fake.calls_of("getChatMember")[-1].params["user_id"] == ada.id
    assert not (await core.safety.chat_control("telegram", str(group.id))).enabled

    mark = telegram.mark()
    bob.say("/imagine a fox --quality low", chat=group)
    off = await fake.wait_call(
        "editMessageText", chat_id=group.id, after=mark, where=lambda c: "switched" in c.text
    )
    assert "switched imagebot off here" in off.text
    # Private chats are not affected.
    mark = telegram.mark()
    bob.say("/imagine a fox --quality low")
    await telegram.result(bob.chat.id, after=mark)

    fake.set_member(group, bob.user, "creator")
    mark = telegram.mark()
    bob.say("/bot_on", chat=group)
    await fake.wait_call(
        "sendMessage", chat_id=group.id, after=mark, where=lambda c: "on in" in c.text
    )
    mark = telegram.mark()
    bob.say("/imagine a fox --quality low", chat=group)
    await telegram.result(group.id, after=mark)

    mark = telegram.mark()
    ada.say("/bot_off")
    private = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert private.text == render.group_only()
