"""Forged and stale confirmations (issue 18, defect 1): a button acts only on the message
it is really on, and the erasure question expires.

A tampered client can send any ``callback_data`` with any message of the bot. Telegram
sends the pressed message as it stands (inline keyboard included), so the bot refuses a
press whose data is not on that message: a forged "erase" on a result, in a private chat
or in a group, erases nothing and edits nothing; a forged "delete" cannot name other
messages. An erasure question older than its lifetime erases nothing and says so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.telegram import render
from core.privacy import ERASURE_QUESTION_TTL
from tests.e2e.telegram.conftest import TelegramHarness


def _snapshot(message: dict[str, Any] | None) -> tuple[Any, Any]:
    assert message is not None
    return message.get("text") or message.get("caption"), message.get("reply_markup")


async def test_P08_a_forged_erase_on_another_message_erases_nothing_and_edits_nothing(
    telegram_sqlite: TelegramHarness,
) -> None:
    telegram = telegram_sqlite
    fake, core = telegram.fake, telegram.core
    ada, mallory = await telegram.person(), await telegram.person("Mallory")
    group = fake.group()

    # A result in Ada's private chat, and one in a group both are in.
    mark = telegram.mark()
    mallory.say("/imagine a lighthouse --quality low")
    private_result = await telegram.result(mallory.chat.id, after=mark)
    mark = telegram.mark()
    ada.say("/imagine a harbour --quality low", chat=group)
    group_result = await telegram.result(group.id, after=mark)

    targets = [
        (mallory.chat.id, private_result.result),
        (group.id, group_result.result),
    ]
    for chat_id, message in targets:
        before = _snapshot(fake.message(chat_id, message["message_id"]))
        mark = telegram.mark()
        forged = f"ey:{mallory.id}::0:"
        answer = await fake.wait_answer(fake.press(mallory.user, message, forged, check=False))
        assert answer["text"] == render.stale()
        await asyncio.sleep(0.2)
        assert _snapshot(fake.message(chat_id, message["message_id"])) == before
        assert not [c for c in fake.calls[mark:] if c.method.startswith("editMessage")]
        # Mallory was not erased: she still has her result.
        assert (await core.history.page(mallory.actor)).total == 1

    # A forged "delete" on her own result cannot reach another message of the chat.
    job = (await core.history.page(mallory.actor)).items[0]
    other = group_result.result["message_id"]
    forged = f"dy:{mallory.id}:{job.id}:0:{other}"
    answer = await fake.wait_answer(
        fake.press(mallory.user, private_result.result, forged, check=False)
    )
    assert answer["text"] == render.stale()
    assert fake.message(group.id, other) is not None
    assert (await core.history.page(mallory.actor)).total == 1
    assert (await core.history.page(ada.actor)).total == 1


async def test_P08_an_old_erasure_question_erases_nothing_and_says_so(
    telegram_sqlite: TelegramHarness,
) -> None:
    telegram = telegram_sqlite
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    mark = telegram.mark()
    ada.say("/imagine a fox --quality low")
    await telegram.result(ada.chat.id, after=mark)

    mark = telegram.mark()
    ada.say("/delete_my_data")
    question = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    data = telegram.button(question, "ey:")
    # The question was asked longer ago than it lives (Telegram reports the send time).
    key = (ada.chat.id, question.result["message_id"])
    fake.messages[key]["date"] -= int(ERASURE_QUESTION_TTL.total_seconds()) + 60

    answer = await fake.wait_answer(ada.press(fake.messages[key], data))
    assert answer["text"] == render.erase_expired()
    edited = fake.message(*key)
    assert edited is not None and "expired" in edited["text"]
    assert "/delete_my_data" in edited["text"]
    assert not edited.get("reply_markup")
    assert (await core.history.page(ada.actor)).total == 1
    assert await core.credits.user_for(ada.actor) is not None

    # Asked again, and answered at once: erased.
    mark = telegram.mark()
    ada.say("/delete_my_data")
    question = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    answer = await fake.wait_answer(ada.press(question.result, telegram.button(question, "ey:")))
    assert answer["text"] == "Erased."
    assert await core.credits.user_for(ada.actor) is None
