"""Every button of a result, pressed through Telegram: Reroll (charged again), Edit,
Variation, Full resolution, Delete (chat and storage), Cancel, someone else's press, and
buttons whose result is gone."""

from __future__ import annotations

from pathlib import Path

from bot.telegram import render
from storage.database import Database
from tests.e2e.telegram.conftest import Person, TelegramHarness, launch
from tests.fakes.telegram_server import BotCall, FakeTelegram


async def _imagine(telegram: TelegramHarness, person: Person, text: str) -> BotCall:
    mark = telegram.mark()
    person.say(text)
    return await telegram.result(person.chat.id, after=mark)


async def test_reroll_variation_edit_and_full_resolution(telegram: TelegramHarness) -> None:
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    first = await _imagine(telegram, ada, "/imagine a red fox --quality low")
    message = first.result
    page = await core.history.page(ada.actor)
    original = page.items[0]
    assert await ada.balance() == 20 - original.cost

    # Reroll: a new job with the same prompt and options, charged again.
    mark = telegram.mark()
    query = ada.press(message, telegram.button(first, "rr:"))
    assert (await fake.wait_answer(query))["text"] == "Rerolling…"
    rerolled = await telegram.result(ada.chat.id, after=mark)
    assert rerolled.params["reply_parameters"]["message_id"] == message["message_id"]
    page = await core.history.page(ada.actor)
    assert page.total == 2 and page.items[0].prompt == original.prompt
    assert page.items[0].options == original.options
    assert await ada.balance() == 20 - 2 * original.cost

    # Variation: an edit of that image.
    mark = telegram.mark()
    query = ada.press(message, telegram.button(first, "va:"))
    await fake.wait_answer(query)
    await telegram.result(ada.chat.id, after=mark)
    variation = await core.generation.job(
        ada.actor, (await core.history.page(ada.actor)).items[0].id
    )
    assert variation.kind == "edit" and len(variation.inputs) == 1

    # Edit: asks for the instruction as a reply, then edits with it.
    mark = telegram.mark()
    query = ada.press(message, telegram.button(first, "ed:"))
    await fake.wait_answer(query)
    question = await fake.wait_call(
        "sendMessage",
        chat_id=ada.chat.id,
        after=mark,
        where=lambda c: "reply to this" in c.text.lower(),
    )
    assert question.params["reply_markup"]["force_reply"] is True
    mark = telegram.mark()
    ada.say("make it <night> & starry", reply_to=question.result)
    await telegram.result(ada.chat.id, after=mark)
    edited = await core.generation.job(ada.actor, (await core.history.page(ada.actor)).items[0].id)
    assert edited.kind == "edit" and edited.prompt == "make it <night> & starry"

    # Full resolution: the stored file itself, as a document.
    mark = telegram.mark()
    query = ada.press(message, telegram.button(first, "fr:"))
    await fake.wait_answer(query)
    document = await fake.wait_call("sendDocument", chat_id=ada.chat.id, after=mark)
    upload = document.files["document"]
    stored = Path(core.files.absolute(original.outputs[0].path)).read_bytes()
    assert upload.data == stored and upload.filename.endswith(".png")
    assert "1024×1024" in document.text


async def test_delete_removes_the_album_and_the_stored_files(telegram: TelegramHarness) -> None:
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    result = await _imagine(telegram, ada, "/imagine two foxes --n 2 --quality low")
    album = [m["message_id"] for m in fake.calls_of("sendMediaGroup", ada.chat.id)[0].result]
    job = (await core.history.page(ada.actor)).items[0]
    files = [Path(core.files.absolute(o.path)) for o in job.outputs]
    assert all(f.exists() for f in files)

    query = ada.press(result.result, telegram.button(result, "dl:"))
    await fake.wait_answer(query)
    current = fake.message(ada.chat.id, result.result["message_id"])
    assert current is not None
    labels = [b["text"] for row in current["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["🗑 Yes, delete it", "Keep"]

    # "Keep" brings the buttons back; then delete for real.
    keep = current["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    await fake.wait_answer(ada.press(current, keep))
    current = fake.message(ada.chat.id, result.result["message_id"])
    assert current is not None and len(current["reply_markup"]["inline_keyboard"]) == 5
    query = ada.press(current, telegram.button(result, "dl:"))
    await fake.wait_answer(query)
    current = fake.message(ada.chat.id, result.result["message_id"])
    assert current is not None
    yes = current["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    answer = await fake.wait_answer(ada.press(current, yes))
    assert answer["text"] == "Deleted."
    for message_id in [*album, result.result["message_id"]]:
        assert fake.message(ada.chat.id, message_id) is None
    assert not any(f.exists() for f in files)
    assert (await core.history.page(ada.actor)).total == 0


async def test_someone_elses_button_and_stale_buttons(telegram_sqlite: TelegramHarness) -> None:
    telegram = telegram_sqlite
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    bob = await telegram.person("Bob")
    group = fake.group()
    mark = telegram.mark()
    ada.say("/imagine a fox --quality low", chat=group)
    result = await telegram.result(group.id, after=mark)
    balance = await ada.balance()

    # Bob presses Ada's Reroll and Delete: an alert, nothing happens.
    for prefix in ("rr:", "dl:", "fr:"):
        mark = telegram.mark()
        answer = await fake.wait_answer(bob.press(result.result, telegram.button(result, prefix)))
        assert answer["show_alert"] is True and answer["text"] == render.not_yours()
        assert [c.method for c in fake.calls[mark:] if c.method != "getUpdates"] == [
            "answerCallbackQuery"
        ]
    assert await ada.balance() == balance and (await core.history.page(bob.actor)).total == 0

    # In a group, Edit's question mentions its owner (so only they get the reply box).
    mark = telegram.mark()
    await fake.wait_answer(ada.press(result.result, telegram.button(result, "ed:")))
    question = await fake.wait_call(
        "sendMessage", chat_id=group.id, after=mark, where=lambda c: "ref " in c.text
    )
    assert f"tg://user?id={ada.id}" in question.text
    assert question.params["reply_markup"]["selective"] is True

    # The result is deleted elsewhere (/history): its old buttons answer kindly.
    job = (await core.history.page(ada.actor)).items[0]
    await core.history.delete(ada.actor, job.id)
    for prefix in ("rr:", "va:", "fr:", "dl:"):
        answer = await fake.wait_answer(ada.press(result.result, telegram.button(result, prefix)))
        assert answer["text"] == render.stale() and not answer.get("show_alert")
    # Buttons from something this bot never made.
    forged = fake.press(ada.user, result.result, "zz:1:2:3", check=False)
    assert (await fake.wait_answer(forged))["text"] == render.stale()
    assert await ada.balance() == balance


async def test_cancel_a_queued_job(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram = await launch(sqlite_only, tmp_path, fake_telegram, worker=False)
    try:
        fake = telegram.fake
        ada = await telegram.person()
        mark = telegram.mark()
        ada.say("/imagine a fox --quality high")
        queued = await fake.wait_call(
            "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "queued" in c.text
        )
        assert "position 1" in queued.text
        assert await ada.balance() < 20
        message = fake.message(ada.chat.id, queued.params["message_id"])
        assert message is not None
        answer = await fake.wait_answer(ada.press(message, telegram.button(queued, "cx:")))
        assert answer["text"] == "Cancelled."
        assert await ada.balance() == 20
        shown = fake.message(ada.chat.id, queued.params["message_id"])
        assert shown is not None and shown["text"].startswith("Cancelled.")
    finally:
        await telegram.stop()
