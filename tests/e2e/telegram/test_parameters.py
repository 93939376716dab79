"""The adapter sends each Bot API method only the parameters it takes.

Telegram silently ignores a parameter a method does not take, so a misplaced one (a
``parse_mode`` on ``editMessageMedia``, where the caption's parse mode belongs inside the
``media`` object) would never show in production; the strict fake refuses it instead.
"""

from __future__ import annotations

import aiohttp
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto

from tests.e2e.telegram.conftest import TelegramHarness
from tests.helpers import png


async def test_edits_carry_no_parse_mode_where_the_method_takes_none(
    telegram_sqlite: TelegramHarness,
) -> None:
    harness = telegram_sqlite
    fake = harness.fake
    person = await harness.person()
    bot = harness.adapter.application.bot
    sent = await bot.send_message(person.chat.id, "<b>status</b>")
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="x")]])

    await bot.edit_message_reply_markup(
        chat_id=person.chat.id, message_id=sent.message_id, reply_markup=buttons
    )
    await bot.edit_message_media(
        InputMediaPhoto(png(), caption="<i>preview</i>"),
        chat_id=person.chat.id,
        message_id=sent.message_id,
    )

    [send] = fake.calls_of("sendMessage", person.chat.id)[-1:]
    assert send.params["parse_mode"] == "HTML"  # the HTML default still applies
    [markup] = fake.calls_of("editMessageReplyMarkup", person.chat.id)
    [media] = fake.calls_of("editMessageMedia", person.chat.id)
    assert (markup.status, media.status) == (200, 200), (markup.description, media.description)
    assert "parse_mode" not in markup.params
    assert "parse_mode" not in media.params
    assert media.params["media"]["parse_mode"] == "HTML"  # where editMessageMedia reads it
    assert fake.message(person.chat.id, sent.message_id)["caption"] == "preview"


async def test_strict_fake_refuses_a_parameter_the_method_does_not_take(
    telegram_sqlite: TelegramHarness,
) -> None:
    harness = telegram_sqlite
    person = await harness.person()
    async with aiohttp.ClientSession() as session:
        url = f"{harness.fake.base_url}/bot{harness.fake.token}/deleteMessage"
        async with session.post(
            url, data={"chat_id": person.chat.id, "message_id": 1, "parse_mode": "HTML"}
        ) as response:
            body = await response.json()
    assert response.status == 400
    assert body == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: method deleteMessage has no parameter 'parse_mode'",
    }
