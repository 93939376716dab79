"""The gallery in a real browser: the distribution's headless Chromium driven through
Playwright's Python API (no browser is ever downloaded). A sign-in link asked for through
the loopback Telegram fake; the grid, the detail view, the download of the original, a
delete (gone from /history too), a forwarded link refused, another user's image not found,
and the Mini App with valid and forged initData.

Screenshots go to ``tests/output/screenshots/`` (git-ignored; the path is printed with
``-s``). ``IMAGEBOT_SCREENSHOTS_DIR=docs/screenshots pytest -m browser`` also writes the
README's pictures there, from the SQLite run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from bot.web.server import build_http_app
from core.types import Actor, Conversation, GenerateOptions, GenerateRequest, ReplyTarget
from storage.database import Database
from tests.e2e.gallery.conftest import free_port, init_data
from tests.e2e.telegram.conftest import Person, TelegramHarness, launch
from tests.fakes.telegram_server import TOKEN, FakeTelegram

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[3]
LOADED = "images => images.every(i => i.complete && i.naturalWidth > 0)"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs the distribution's chromium (apt-get install chromium); runs always in CI",
    ),
]


OUTPUT = ROOT / "tests" / "output" / "screenshots"
README_SHOTS = ("gallery", "detail", "mini-app")


def readme_dir() -> Path | None:
    """Where the README's screenshots go, when ``IMAGEBOT_SCREENSHOTS_DIR`` asks for them."""
    chosen = os.environ.get("IMAGEBOT_SCREENSHOTS_DIR")
    if not chosen:
        return None
    folder = Path(chosen) if Path(chosen).is_absolute() else ROOT / chosen
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def shot(page: Any, name: str, database: Database, **options: Any) -> None:
    """A screenshot into the test run's output folder (and the README's, on SQLite)."""
    kind = database.url.split(":", 1)[0].split("+", 1)[0]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(OUTPUT / f"{name}-{kind}.png"), **options)
    folder = readme_dir()
    if folder is not None and kind == "sqlite" and name in README_SHOTS:
        shutil.copy(OUTPUT / f"{name}-{kind}.png", folder / f"{name}.png")


@dataclass
class Site:
    """imagebot with the Telegram adapter against the fake and its HTTP server."""

    telegram: TelegramHarness
    base: str

    @property
    def fake(self) -> FakeTelegram:
        return self.telegram.fake

    async def gallery_link(self, person: Person) -> str:
        """/gallery in the chat; the URL of the link button the bot answered with."""
        mark = self.telegram.mark()
        person.say("/gallery")
        answer = await self.fake.wait_call(
            "sendMessage",
            chat_id=person.chat.id,
            after=mark,
            where=lambda c: any("/gallery/signin/" in url for _, url in c.buttons()),
        )
        return next(url for _, url in answer.buttons() if "/gallery/signin/" in url)

    async def make(self, person: Person, prompts: list[str]) -> None:
        """Results made through the chat, one /imagine each."""
        for prompt in prompts:
            mark = self.telegram.mark()
            person.say(f"/imagine {prompt} --quality low")
            await self.telegram.result(person.chat.id, after=mark)


@pytest_asyncio.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
        assert fake.errors == [], fake.errors
    finally:
        await fake.stop()


@pytest_asyncio.fixture
async def site(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> AsyncIterator[Site]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    harness = await launch(database, tmp_path, fake_telegram, public_url=base)
    runner = web.AppRunner(build_http_app(harness.core), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"\nscreenshots: {OUTPUT}")
    try:
        yield Site(harness, base)
    finally:
        await runner.cleanup()
        await harness.stop()


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def loaded(page: Any, selector: str) -> None:
    """Wait until every image matching ``selector`` has loaded. (Polled from here: the
    page's CSP forbids the string evaluation that ``wait_for_function`` would inject.)"""
    for _ in range(200):
        if await page.locator(selector).evaluate_all(LOADED):
            return
        await page.wait_for_timeout(50)
    raise AssertionError(f"images {selector} did not load")


async def new_page(browser: Any, problems: list[str], **options: Any) -> tuple[Any, Any]:
    """A fresh context (another browser, its own cookies) and a page in it; every CSP
    violation or script error on our pages lands in ``problems``."""
    context = await browser.new_context(accept_downloads=True, **options)
    # Telegram's script is the one third-party origin a Mini App page names; tests are
    # offline, so it is refused here and the page works without it, as designed.
    await context.route("https://telegram.org/**", lambda route: route.abort())
    page = await context.new_page()

    def on_console(message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            problems.append(text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return context, page


async def test_gallery_in_a_real_browser(site: Site, browser: Any, database: Database) -> None:
    core = site.telegram.core
    ada = await site.telegram.person("Ada")
    await site.make(
        ada,
        [
            "a lighthouse at dusk, oil painting",
            "a red fox in fresh snow",
            "a bowl of ramen, studio photo",
            "a paper boat on a pond",
        ],
    )
    link = await site.gallery_link(ada)
    assert link.startswith(f"{site.base}/gallery/signin/")
    problems: list[str] = []

    # Sign in from the link: the page posts the token and lands on the grid.
    context, page = await new_page(
        browser, problems, viewport={"width": 1280, "height": 860}, color_scheme="light"
    )
    await page.goto(link)
    await page.wait_for_url(f"{site.base}/gallery/")
    tiles = page.locator("li.tile")
    assert await tiles.count() == 4
    await loaded(page, "li.tile img")
    await shot(page, "gallery", database, full_page=True)
    # Cookies: HttpOnly and SameSite=Lax, unreadable by scripts.
    [cookie] = await context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert await page.evaluate("document.cookie") == ""

    # Newest first: the last prompt is the first tile; open it.
    newest = (await core.history.page(ada.actor)).items[0]
    assert "paper boat" in newest.prompt
    await tiles.first.locator("a").click()
    await page.wait_for_url(f"{site.base}/gallery/i/{newest.id}/0")
    assert newest.prompt in await page.locator("#prompt").inner_text()
    assert await page.locator("#model").inner_text() == str(newest.options["model"])
    assert await page.locator("#quality").inner_text() == "low"
    assert "credit" in await page.locator("#cost").inner_text()
    await loaded(page, "#full")
    await shot(page, "detail", database)

    # Download the original: the same bytes as the stored file.
    async with page.expect_download() as info:
        await page.locator("#download").click()
    download = await info.value
    assert download.suggested_filename == f"imagebot-{newest.id}-1.png"
    stored = await core.files.read(newest.outputs[0].path)
    assert Path(await download.path()).read_bytes() == stored

    # Delete with confirmation: gone from the grid and from /history in the chat.
    await page.locator("#delete").click()
    await page.wait_for_url(f"{site.base}/gallery/delete/{newest.id}/0")
    await page.locator("#confirm-delete").click()
    await page.wait_for_url(f"{site.base}/gallery/?deleted=1")
    assert await page.locator("li.tile").count() == 3
    assert newest.id not in await page.content()
    mark = site.telegram.mark()
    ada.say("/history")
    sheet = await site.fake.wait_call("sendPhoto", chat_id=ada.chat.id, after=mark)
    assert "(3 in all)" in sheet.text and "paper boat" not in sheet.text

    # The filter.
    await page.fill("input[name=q]", "FOX")
    await page.press("input[name=q]", "Enter")
    await page.wait_for_url(re.compile(r".*/gallery/\?q=FOX$"))
    assert await page.locator("li.tile").count() == 1

    # The same link again, from a second browser: refused, and no gallery there.
    other_context, other = await new_page(browser, problems)
    await other.goto(link)
    await other.wait_for_selector("#message[data-kind=link_refused]")
    response = await other.goto(f"{site.base}/gallery/")
    assert response is not None and response.status == 401
    assert await other_context.cookies() == []

    # Another user's image: not found, even signed in.
    eve = Actor("telegram", "777000", "Eve")
    await core.onboarding.accept(eve)
    submitted = await core.generation.submit(
        GenerateRequest(
            actor=eve,
            conversation=Conversation("telegram", "777000", is_private=True),
            prompt="eve's secret picture",
            options=GenerateOptions(quality="low"),
            idempotency_key="browser:eve",
            reply_target=ReplyTarget("test", "777000"),
        )
    )
    for _ in range(200):
        job = await core.generation.job(eve, submitted.job.id)
        if job.outputs:
            break
        await page.wait_for_timeout(50)
    for path in (f"/gallery/i/{submitted.job.id}/0", f"/gallery/img/{submitted.job.id}/0"):
        response = await page.goto(site.base + path)
        assert response is not None and response.status == 404
        assert "secret" not in await page.content()
    await shot(page, "not-found", database)

    # The Mini App: valid initData signs in (Telegram's script absent: read from the
    # launch URL's fragment, where Telegram puts it), forged initData does not.
    mini_context, mini = await new_page(
        browser,
        problems,
        viewport={"width": 390, "height": 780},
        color_scheme="dark",
        device_scale_factor=2,
    )
    fragment = "tgWebAppData={}&tgWebAppVersion=8.0&tgWebAppPlatform=android"
    await mini.goto(
        f"{site.base}/gallery/app#" + fragment.format(_quote(init_data(ada.id, token=TOKEN)))
    )
    await mini.wait_for_url(f"{site.base}/gallery/")
    assert await mini.locator("li.tile").count() == 3
    await loaded(mini, "li.tile img")
    await shot(mini, "mini-app", database)

    forged_context, forged = await new_page(browser, problems)
    await forged.goto(
        f"{site.base}/gallery/app#"
        + fragment.format(_quote(init_data(ada.id, token=TOKEN, forge=True)))
    )
    await forged.wait_for_selector("#miniapp-refused:not([hidden])")
    response = await forged.goto(f"{site.base}/gallery/")
    assert response is not None and response.status == 401
    assert await forged_context.cookies() == []

    for ctx in (context, other_context, mini_context, forged_context):
        await ctx.close()
    assert problems == [], problems


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
