"""First use, the command menu, /help and the privacy commands' entry point, through the
real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

from bot.telegram.app import menu
from tests.e2e.telegram.conftest import TelegramHarness


async def test_onboarding_terms_before_anything_is_generated(telegram: TelegramHarness) -> None:
    fake = telegram.fake
    ada = await telegram.person(accepted=False)

    # A first /imagine: the terms with the policy version and the age buttons, no job.
    mark = telegram.mark()
    ada.say("/imagine a red fox in snow")
    terms = await fake.wait_call(
        "editMessageText",
        chat_id=ada.chat.id,
        after=mark,
        where=lambda c: "version 1" in c.text and bool(c.buttons()),
    )
    labels = [text for text, _ in terms.buttons()]
    assert labels == ["✅ I am 13 or older and accept", "I am under 13"]
    assert await telegram.core.credits.user_for(ada.actor) is None  # nothing stored yet
    assert not fake.calls_of("sendPhoto", ada.chat.id)

    # /start shows the same terms; accepting creates the account with the free credits.
    mark = telegram.mark()
    ada.say("/start")
    start = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "version 1" in start.text and "effective 2026-01-01" in start.text
    accept = telegram.button(start, "ta:")
    query = ada.press(start.result, accept)
    assert (await fake.wait_answer(query)).get("text") == "Welcome!"
    assert await ada.balance() == 20

    mark = telegram.mark()
    ada.say("/imagine a red fox in snow")
    result = await telegram.result(ada.chat.id, after=mark)
    assert result.method == "sendPhoto"
    assert await ada.balance() == 19


async def test_P15_under_13_is_refused_and_nothing_is_kept(
    telegram_sqlite: TelegramHarness,
) -> None:
    telegram = telegram_sqlite
    fake = telegram.fake
    kid = await telegram.person("Kid", accepted=False)
    mark = telegram.mark()
    kid.say("/start")
    start = await fake.wait_call("sendMessage", chat_id=kid.chat.id, after=mark)
    query = kid.press(start.result, telegram.button(start, "tr:"))
    await fake.wait_answer(query)
    edited = await fake.wait_call("editMessageText", chat_id=kid.chat.id, after=mark)
    assert "13 or older" in edited.text
    assert await telegram.core.credits.user_for(kid.actor) is None

    mark = telegram.mark()
    kid.say("/imagine a cat")
    refused = await fake.wait_call(
        "editMessageText", chat_id=kid.chat.id, after=mark, where=lambda c: "13" in c.text
    )
    assert not refused.buttons()
    assert not fake.calls_of("sendPhoto", kid.chat.id)


async def test_menu_help_and_privacy_pointer(telegram_sqlite: TelegramHarness) -> None:
    telegram = telegram_sqlite
    fake = telegram.fake
    everywhere = [c["command"] for c in fake.commands["default"]]
    private = [c["command"] for c in fake.commands["all_private_chats"]]
    assert "imagine" in everywhere and "start" in private and "buy" in private
    # The privacy commands answer only in private chats, so they are listed only there.
    assert {"privacy", "export", "delete_my_data", "feedback", "support"} <= set(private)
    assert not {"privacy", "export", "delete_my_data"} & set(everywhere)
    assert "admin" not in everywhere + private

    ada = await telegram.person()
    mark = telegram.mark()
    ada.say("/help")
    answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "/imagine" in answer.text and "--quality low|medium|high" in answer.text

    group = fake.group()
    mark = telegram.mark()
    sent = ada.say("/delete_my_data@imagebot_test_bot", chat=group)
    pointer = await fake.wait_call("sendMessage", chat_id=group.id, after=mark)
    assert "private chat" in pointer.text
    assert pointer.params["reply_parameters"]["message_id"] == sent["message_id"]
    assert pointer.buttons() == [("Open a private chat", "https://t.me/imagebot_test_bot")]

    mark = telegram.mark()
    ada.say("/privacy")
    private_answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "version 1" in private_answer.text

    mark = telegram.mark()
    ada.say("/frobnicate")
    unknown = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "/help" in unknown.text


def test_privacy_commands_are_scoped_to_private_chats() -> None:
    """The privacy commands answer through core.privacy (PRIVACY_COMMANDS_READY)."""
    everywhere, private = menu(privacy=True)
    assert {"privacy", "export", "delete_my_data"} <= {c.command for c in private}
    assert not {"privacy", "export", "delete_my_data"} & {c.command for c in everywhere}
