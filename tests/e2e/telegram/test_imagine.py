"""/imagine through Telegram: inline options, precise errors, hostile text, groups."""

from __future__ import annotations

from pathlib import Path

from core.types import GenerateOptions
from storage.database import Database
from tests.e2e.telegram.conftest import TelegramHarness, launch
from tests.fakes.telegram_server import FakeTelegram


async def _job(telegram: TelegramHarness, person_actor: object) -> object:
    page = await telegram.core.history.page(person_actor)  # type: ignore[arg-type]
    assert page.items
    return page.items[0]


async def test_imagine_with_options_gives_an_album_with_buttons(telegram: TelegramHarness) -> None:
    fake = telegram.fake
    ada = await telegram.person()
    mark = telegram.mark()
    command = ada.say("/imagine a lighthouse at dusk --ar 3:2 --quality low --n 2 --format webp")
    result = await telegram.result(ada.chat.id, after=mark)

    album = await fake.wait_call("sendMediaGroup", chat_id=ada.chat.id, after=mark)
    assert len(album.params["media"]) == 2 and len(album.files) == 2
    assert album.params["reply_parameters"]["message_id"] == command["message_id"]
    assert result.method == "sendMessage"  # albums take no buttons: a message follows
    labels = [text for text, _ in result.buttons()]
    assert "🎲 Reroll" in labels and "🗑 Delete" in labels
    assert {"✏️ 1", "✏️ 2", "🔀 1", "🔀 2", "📄 1", "📄 2"} <= set(labels)
    assert all(len(data.encode()) <= 64 for _, data in result.buttons())

    job = await _job(telegram, ada.actor)
    assert job.options["size"] == "1536x1024"  # type: ignore[attr-defined]
    assert job.options["quality"] == "low"  # type: ignore[attr-defined]
    assert job.options["output_format"] == "webp"  # type: ignore[attr-defined]
    assert job.options["n"] == 2  # type: ignore[attr-defined]
    assert await ada.balance() == 20 - job.cost  # type: ignore[attr-defined]
    # The status message went away once the result was there.
    status_id = fake.calls_of("sendMessage", ada.chat.id)[0].result["message_id"]
    assert fake.message(ada.chat.id, status_id) is None


async def test_transparent_flag(telegram_sqlite: TelegramHarness) -> None:
    telegram = telegram_sqlite
    ada = await telegram.person()
    mark = telegram.mark()
    ada.say("/imagine a logo of a fox --transparent --quality low")
    await telegram.result(ada.chat.id, after=mark)
    job = await _job(telegram, ada.actor)
    assert job.options["background"] == "transparent"  # type: ignore[attr-defined]
    assert job.options["output_format"] == "png"  # type: ignore[attr-defined]


async def test_unknown_options_and_bad_values_say_what_is_accepted(
    telegram_sqlite: TelegramHarness,
) -> None:
    telegram = telegram_sqlite
    fake = telegram.fake
    ada = await telegram.person()

    mark = telegram.mark()
    ada.say("/imagine a fox --style anime")
    answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "Unknown option --style" in answer.text
    assert "--quality low|medium|high" in answer.text and "--n 1..4" in answer.text

    mark = telegram.mark()
    ada.say("/imagine a fox --n lots")
    answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "--n takes a whole number from 1 to 4" in answer.text

    # A value checked against the model's table: the status message becomes the error.
    mark = telegram.mark()
    ada.say("/imagine a fox --quality <ultra&>")
    error = await fake.wait_call(
        "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "⚠️" in c.text
    )
    shown = fake.messages[(ada.chat.id, error.params["message_id"])]["text"]
    assert "Quality '<ultra&>' is not available" in shown
    assert "low, medium, high" in shown

    mark = telegram.mark()
    ada.say("/imagine")
    error = await fake.wait_call(
        "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "⚠️" in c.text
    )
    assert "describe the image" in error.text
    assert await ada.balance() == 20


async def test_not_enough_credits_gives_the_price_and_points_to_buy(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram = await launch(sqlite_only, tmp_path, fake_telegram, free_credits=3)
    try:
        fake = telegram.fake
        ada = await telegram.person()
        mark = telegram.mark()
        ada.say("/imagine a fox --quality high --n 4 --size 1536x1024")
        error = await fake.wait_call(
            "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "⚠️" in c.text
        )
        price = telegram.core.generation.quote(
            GenerateOptions(size="1536x1024", quality="high", n=4)
        )
        assert f"This costs {price} credits and your balance is 3" in error.text
        assert "/buy" in error.text
        assert await ada.balance() == 3
    finally:
        await telegram.stop()


async def test_hostile_prompt_is_escaped_everywhere(telegram_sqlite: TelegramHarness) -> None:
    telegram = telegram_sqlite
    fake = telegram.fake
    ada = await telegram.person()
    prompt = "<b>bold</b> & <i>x</i> <a href='javascript:1'>y</a> &amp; 狐狸 🦊 ‮ < > &"
    mark = telegram.mark()
    ada.say(f"/imagine {prompt}")
    result = await telegram.result(ada.chat.id, after=mark)
    shown = fake.messages[(ada.chat.id, result.result["message_id"])]["caption"]
    assert "<b>bold</b> & <i>x</i> <a href='javascript:1'>y</a> &amp; 狐狸 🦊" in shown
    assert "&lt;b&gt;" in result.text  # escaped on the wire

    # A prompt longer than a caption: clipped to Telegram's 1024 characters, still delivered.
    mark = telegram.mark()
    ada.say("/imagine " + "a very long & <detailed> prompt 🦊 " * 200)
    result = await telegram.result(ada.chat.id, after=mark)
    caption = fake.messages[(ada.chat.id, result.result["message_id"])]["caption"]
    assert len(caption.encode("utf-16-le")) // 2 <= 1024 and "…" in caption


async def test_group_commands_reply_to_the_command(telegram_sqlite: TelegramHarness) -> None:
    telegram = telegram_sqlite
    fake = telegram.fake
    ada = await telegram.person()
    group = fake.group()

    mark = telegram.mark()
    ada.say("/imagine@other_bot a fox", chat=group)
    command = ada.say("/imagine@imagebot_test_bot a fox in a group --quality low", chat=group)
    result = await telegram.result(group.id, after=mark)
    assert result.method == "sendPhoto"
    assert result.params["reply_parameters"]["message_id"] == command["message_id"]
    status = fake.calls_of("sendMessage", group.id)[0]
    assert status.params["reply_parameters"]["message_id"] == command["message_id"]
    # The command addressed to another bot was not taken.
    assert len(fake.calls_of("sendMessage", group.id)) == 1
    page = await telegram.core.history.page(ada.actor)
    assert page.total == 1

    # Billing in a group points to the private chat.
    mark = telegram.mark()
    ada.say("/buy@imagebot_test_bot", chat=group)
    pointer = await fake.wait_call("sendMessage", chat_id=group.id, after=mark)
    assert "private chat" in pointer.text
