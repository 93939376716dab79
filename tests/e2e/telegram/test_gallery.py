"""/gallery through Telegram: the one-time sign-in link, the Mini App button (https and
private chats only, as Telegram requires), Gallery buttons under /history and results, the
private-chat rule, and the answer when the operator has set no public URL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import ClientSession, CookieJar, web

from bot.web.server import build_http_app
from storage.database import Database
from tests.e2e.telegram.conftest import TelegramHarness, free_port, launch
from tests.fakes.telegram_server import FakeTelegram


def has_link(call: object) -> bool:
    return any("/gallery/signin/" in url for _, url in call.buttons())  # type: ignore[attr-defined]


def link_button(call: object) -> str:
    buttons = call.buttons()  # type: ignore[attr-defined]
    return next(url for text, url in buttons if "gallery" in text.lower() and "/signin/" in url)


async def test_gallery_link_signs_in_once(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    harness = await launch(database, tmp_path, fake_telegram, public_url=base)
    runner = web.AppRunner(build_http_app(harness.core), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        fake = fake_telegram
        ada = await harness.person()
        mark = harness.mark()
        ada.say("/imagine a lighthouse at dusk")
        result = await harness.result(ada.chat.id, after=mark)
        assert any(data.startswith("gl:") for _, data in result.buttons())

        mark = harness.mark()
        ada.say("/gallery")
        answer = await fake.wait_call(
            "sendMessage", chat_id=ada.chat.id, after=mark, where=has_link
        )
        assert "private gallery" in answer.text and "do not forward" in answer.text
        url = link_button(answer)
        assert url.startswith(f"{base}/gallery/signin/")
        # Over http no Mini App button is offered (Telegram takes only https ones).
        assert not any(
            "web_app" in b for row in answer.params["reply_markup"]["inline_keyboard"] for b in row
        )
        token = url.rsplit("/", 1)[1]
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as browser:
            async with browser.post(
                f"{base}/gallery/signin", data={"token": token}, allow_redirects=False
            ) as r:
                assert r.status == 303
            # The result is on screen a moment before its job is marked done (and listed).
            tiles = 0
            for _ in range(100):
                async with browser.get(f"{base}/gallery/") as r:
                    tiles = (await r.text()).count('class="tile"')
                if tiles:
                    break
                await asyncio.sleep(0.05)
            assert tiles == 1
        async with (
            ClientSession() as other,
            other.post(f"{base}/gallery/signin", data={"token": token}, allow_redirects=False) as r,
        ):
            assert r.status == 403

        # The Gallery button under a result answers with a fresh link.
        mark = harness.mark()
        query = ada.press(result.result, harness.button(result, "gl:"))
        await fake.wait_answer(query)
        fresh = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark, where=has_link)
        assert link_button(fresh) != url

        # And so does the one under /history.
        mark = harness.mark()
        ada.say("/history")
        sheet = await fake.wait_call("sendPhoto", chat_id=ada.chat.id, after=mark)
        mark = harness.mark()
        await fake.wait_answer(ada.press(sheet.result, harness.button(sheet, "gl:")))
        assert link_button(
            await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark, where=has_link)
        )

        # Someone else pressing Ada's button gets nothing.
        eve = await harness.person("Eve")
        mark = harness.mark()
        query = eve.press(sheet.result, harness.button(sheet, "gl:"), check=False)
        await fake.wait_answer(query)
        assert not [c for c in fake.calls[mark:] if c.method == "sendMessage" and has_link(c)]
    finally:
        await runner.cleanup()
        await harness.stop()


async def test_gallery_in_a_group_points_to_the_private_chat(telegram: TelegramHarness) -> None:
    fake = telegram.fake
    group = fake.group()
    ada = await telegram.person()
    mark = telegram.mark()
    ada.say("/gallery", chat=group)
    answer = await fake.wait_call("sendMessage", chat_id=group.id, after=mark)
    assert "private chat" in answer.text
    assert not any("/signin/" in url for _, url in answer.buttons())


async def test_mini_app_button_when_the_public_url_is_https(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    harness = await launch(database, tmp_path, fake_telegram, public_url="https://bot.example.net/")
    try:
        ada = await harness.person()
        mark = harness.mark()
        ada.say("/gallery")
        answer = await fake_telegram.wait_call(
            "sendMessage", chat_id=ada.chat.id, after=mark, where=has_link
        )
        buttons = [b for row in answer.params["reply_markup"]["inline_keyboard"] for b in row]
        assert buttons[0]["url"].startswith("https://bot.example.net/gallery/signin/")
        assert buttons[1]["web_app"] == {"url": "https://bot.example.net/gallery/app"}
    finally:
        await harness.stop()


async def test_without_a_public_url_gallery_says_what_to_set(telegram: TelegramHarness) -> None:
    fake = telegram.fake
    ada = await telegram.person()
    mark = telegram.mark()
    ada.say("/imagine a fox")
    result = await telegram.result(ada.chat.id, after=mark)
    assert not any(data.startswith("gl:") for _, data in result.buttons())
    mark = telegram.mark()
    ada.say("/gallery")
    answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "IMAGEBOT_PUBLIC_URL" in answer.text and "/history" in answer.text
    mark = telegram.mark()
    ada.say("/history")
    sheet = await fake.wait_call("sendPhoto", chat_id=ada.chat.id, after=mark)
    assert "1 · open" in [t for t, _ in sheet.buttons()]
    assert not any(data.startswith("gl:") for _, data in sheet.buttons())


async def test_fake_refuses_mini_app_buttons_where_telegram_does(
    fake_telegram: FakeTelegram,
) -> None:
    from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
    from telegram.error import BadRequest

    from tests.fakes.telegram_server import TOKEN

    user = fake_telegram.user("Ada")
    group = fake_telegram.group()
    bot = Bot(TOKEN, base_url=f"{fake_telegram.base_url}/bot")
    async with bot:
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton("app", web_app=WebAppInfo("https://bot.example.net/app"))]]
        )
        await bot.send_message(user.id, "ok", reply_markup=markup)
        for chat, url, error in [
            (group.id, "https://bot.example.net/app", "BUTTON_TYPE_INVALID"),
            (user.id, "http://bot.example.net/app", "BUTTON_URL_INVALID"),
        ]:
            bad = InlineKeyboardMarkup([[InlineKeyboardButton("app", web_app=WebAppInfo(url))]])
            try:
                await bot.send_message(chat, "no", reply_markup=bad)
            except BadRequest as exc:
                assert error.lower() in exc.message.lower()
            else:
                raise AssertionError("accepted")
