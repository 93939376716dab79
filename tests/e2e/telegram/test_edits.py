"""Editing images through Telegram: replies to photos, documents and albums, captions, and
the files that must be refused (P24)."""

from __future__ import annotations

import asyncio
from typing import Any

from core.types import JobView
from tests.e2e.telegram.conftest import Person, TelegramHarness
from tests.helpers import png


async def _last_job(telegram: TelegramHarness, person: Person) -> JobView:
    page = await telegram.core.history.page(person.actor)
    assert page.items
    return await telegram.core.generation.job(person.actor, page.items[0].id)


def _downloads(telegram: TelegramHarness, after: int) -> list[Any]:
    return telegram.fake.calls_of("getFile")[after:]


async def test_P24_reply_to_a_photo_edits_it(telegram: TelegramHarness) -> None:
    fake = telegram.fake
    ada = await telegram.person()
    photo = fake.send_photo(ada.user, ada.chat, png(320, 200, (10, 120, 200)))
    mark = telegram.mark()
    ada.say("/imagine make the sky pink --quality low", reply_to=photo)
    result = await telegram.result(ada.chat.id, after=mark)
    assert result.params["reply_parameters"]["message_id"] != photo["message_id"]

    job = await _last_job(telegram, ada)
    assert job.kind == "edit" and len(job.inputs) == 1
    assert (job.inputs[0].width, job.inputs[0].height) == (320, 200)
    # The largest size was fetched (the thumbnail is listed first, as Telegram does).
    largest = photo["photo"][-1]["file_id"]
    assert [c.params["file_id"] for c in fake.calls_of("getFile")] == [largest]

    # /edit replying to an image sent as a file works the same way.
    doc = fake.send_document(
        ada.user, ada.chat, png(64, 48), file_name="sketch.png", mime_type="image/png"
    )
    mark = telegram.mark()
    ada.say("/edit add a moon", reply_to=doc)
    await telegram.result(ada.chat.id, after=mark)
    job = await _last_job(telegram, ada)
    assert job.kind == "edit" and (job.inputs[0].width, job.inputs[0].height) == (64, 48)


async def test_P24_reply_to_an_album_member_uses_every_image(telegram: TelegramHarness) -> None:
    fake = telegram.fake
    ada = await telegram.person()
    album = fake.send_album(
        ada.user, ada.chat, [png(40, 40, (200, 0, 0)), png(50, 50, (0, 200, 0)), png(60, 60)]
    )
    await fake.wait_served()
    await asyncio.sleep(0.05)  # a person replies to an album well after it arrived
    mark = telegram.mark()
    ada.say("/imagine combine them into one poster --quality low", reply_to=album[1])
    await telegram.result(ada.chat.id, after=mark)
    job = await _last_job(telegram, ada)
    assert job.kind == "edit"
    assert sorted(i.width for i in job.inputs) == [40, 50, 60]


async def test_P24_captioned_photo_and_album(telegram: TelegramHarness) -> None:
    fake = telegram.fake
    ada = await telegram.person()
    mark = telegram.mark()
    fake.send_photo(ada.user, ada.chat, png(80, 60), caption="/imagine watercolour style --n 1")
    await telegram.result(ada.chat.id, after=mark)
    job = await _last_job(telegram, ada)
    assert job.kind == "edit" and job.prompt == "watercolour style" and len(job.inputs) == 1

    mark = telegram.mark()
    fake.send_album(ada.user, ada.chat, [png(30, 30), png(31, 31)], caption="/edit as a diptych")
    await telegram.result(ada.chat.id, after=mark)
    job = await _last_job(telegram, ada)
    assert job.kind == "edit" and sorted(i.width for i in job.inputs) == [30, 31]

    # A plain photo with no command is not a request.
    mark = telegram.mark()
    fake.send_photo(ada.user, ada.chat, png(20, 20), caption="my cat")
    ada.say("/help")
    await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert (await telegram.core.history.page(ada.actor)).total == 2


async def test_a_25_mb_reference_is_refused_without_downloading(
    telegram_sqlite: TelegramHarness,
) -> None:
    telegram = telegram_sqlite
    fake = telegram.fake
    ada = await telegram.person()
    big = png(16, 16) + bytes(25_000_000)
    doc = fake.send_document(ada.user, ada.chat, big, file_name="huge.png", mime_type="image/png")
    mark = telegram.mark()
    ada.say("/edit make it smaller", reply_to=doc)
    error = await fake.wait_call(
        "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "⚠️" in c.text
    )
    assert "25.0 MB" in error.text and "20 MB" in error.text
    assert not fake.calls_of("getFile")
    assert await ada.balance() == 20

    # A photo whose size Telegram did not declare: getFile says it is too big.
    photo = fake.send_photo(ada.user, ada.chat, png(16, 16), declared_size=25_000_000)
    photo["photo"][-1].pop("file_size")
    mark = telegram.mark()
    ada.say("/edit smaller", reply_to=photo)
    error = await fake.wait_call(
        "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "⚠️" in c.text
    )
    assert "20 MB" in error.text
    assert not [c for c in fake.calls_of("getFile") if c.ok]


async def test_text_files_are_refused_with_what_is_accepted(
    telegram_sqlite: TelegramHarness,
) -> None:
    telegram = telegram_sqlite
    fake = telegram.fake
    ada = await telegram.person()
    mark = telegram.mark()
    fake.send_document(
        ada.user,
        ada.chat,
        b"just some notes\n",
        file_name="notes.txt",
        mime_type="text/plain",
        caption="/imagine make it pretty",
    )
    error = await fake.wait_call(
        "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "⚠️" in c.text
    )
    assert "not an image" in error.text and "PNG, JPEG, WebP or GIF" in error.text
    assert not fake.calls_of("getFile")

    # A file that claims to be a PNG but is not: downloaded, refused by core's checks.
    liar = fake.send_document(
        ada.user, ada.chat, b"<html>not a png</html>", file_name="x.png", mime_type="image/png"
    )
    mark = telegram.mark()
    ada.say("/edit sharpen", reply_to=liar)
    error = await fake.wait_call(
        "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "⚠️" in c.text
    )
    assert "PNG" in error.text
    assert await ada.balance() == 20

    mark = telegram.mark()
    ada.say("/edit with nothing to edit")
    error = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "reply to a photo" in error.text
