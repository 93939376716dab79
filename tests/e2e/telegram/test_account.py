"""/history (P23), /settings, /balance and the billing commands through Telegram."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from bot.telegram.sheet import Tile, draw_sheet
from core.billing.offers import Offer
from tests.e2e.telegram.conftest import TelegramHarness


async def test_P23_history_pages_and_full_resolution_download(telegram: TelegramHarness) -> None:
    fake, core = telegram.fake, telegram.core
    core.history.page_size = 3  # (8 in production) three pages from seven results
    ada = await telegram.person()
    mark = telegram.mark()
    for i in range(7):
        ada.say(f"/imagine picture number {i} --quality low")
    await fake.wait_for(
        lambda: len([c for c in fake.calls[mark:] if c.method == "sendPhoto" and c.ok]) == 7,
        what="seven results",
        timeout=20,
    )

    mark = telegram.mark()
    ada.say("/history 2")
    sheet = await fake.wait_call("sendPhoto", chat_id=ada.chat.id, after=mark)
    assert "page 2 of 3 (7 in all)" in sheet.text
    shown = await core.history.page(ada.actor, 2)
    assert all(f"{n}. " in sheet.text for n in (1, 2, 3))
    assert all(job.prompt in sheet.text for job in shown.items)
    with Image.open(io.BytesIO(sheet.files["photo"].data or b"")) as drawn:
        assert drawn.size == (3 * 256 + 4 * 12, 256 + 2 * 12)  # three numbered tiles
    labels = [text for text, _ in sheet.buttons()]
    assert labels[:3] == ["1 · open", "1 · file", "1 · delete"]
    assert "◀ Newer" in labels and "Older ▶" in labels

    # Older: the same message becomes page 3 (the oldest result alone).
    older = next(data for text, data in sheet.buttons() if text == "Older ▶")
    await fake.wait_answer(ada.press(sheet.result, older))
    page2 = await fake.wait_call("editMessageMedia", chat_id=ada.chat.id, after=mark)
    oldest = (await core.history.page(ada.actor, 3)).items[0]
    assert "page 3 of 3" in page2.text and oldest.prompt in page2.text
    current = fake.message(ada.chat.id, sheet.result["message_id"])
    assert current is not None
    buttons = [b for row in current["reply_markup"]["inline_keyboard"] for b in row]

    # Open and download item 1 of page 3 (the oldest job).
    mark = telegram.mark()
    await fake.wait_answer(ada.press(current, buttons[0]["callback_data"]))
    opened = await telegram.result(ada.chat.id, after=mark)
    assert opened.method == "sendPhoto" and oldest.prompt in opened.text

    mark = telegram.mark()
    await fake.wait_answer(ada.press(current, buttons[1]["callback_data"]))
    document = await fake.wait_call("sendDocument", chat_id=ada.chat.id, after=mark)
    stored = Path(core.files.absolute(oldest.outputs[0].path)).read_bytes()
    assert document.files["document"].data == stored  # full resolution, unchanged
    with Image.open(io.BytesIO(stored)) as full:
        assert full.size == (1024, 1024)

    # Delete item 1 (asked first), then the sheet is redrawn: page 3 is gone, page 2 shows.
    mark = telegram.mark()
    await fake.wait_answer(ada.press(current, buttons[2]["callback_data"]))
    current = fake.message(ada.chat.id, sheet.result["message_id"])
    assert current is not None
    confirm = current["reply_markup"]["inline_keyboard"][0][0]
    assert confirm["text"] == "🗑 Delete 1 for good"
    answer = await fake.wait_answer(ada.press(current, confirm["callback_data"]))
    assert answer["text"] == "Deleted."
    assert (await core.history.page(ada.actor)).total == 6
    assert not Path(core.files.absolute(oldest.outputs[0].path)).exists()
    redrawn = fake.message(ada.chat.id, sheet.result["message_id"])
    assert redrawn is not None and "page 2 of 2 (6 in all)" in redrawn["caption"]


async def test_settings_keyboards_change_the_defaults(telegram_sqlite: TelegramHarness) -> None:
    telegram = telegram_sqlite
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    mark = telegram.mark()
    ada.say("/settings")
    shown = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "Size: <b>default</b>" in shown.text
    message = shown.result

    async def choose(field_button: str, value: str) -> dict[str, Any]:
        current = fake.message(ada.chat.id, message["message_id"])
        assert current is not None
        data = next(
            b["callback_data"]
            for row in current["reply_markup"]["inline_keyboard"]
            for b in row
            if b["text"] == field_button
        )
        await fake.wait_answer(ada.press(current, data))
        current = fake.message(ada.chat.id, message["message_id"])
        assert current is not None
        data = next(
            b["callback_data"]
            for row in current["reply_markup"]["inline_keyboard"]
            for b in row
            if b["text"] == value
        )
        return await fake.wait_answer(ada.press(current, data))

    answer = await choose("Change size", "1536x1024")
    assert answer["text"] == "Size: 1536x1024"
    assert (await core.users.settings(ada.actor)).size == "1536x1024"
    await choose("Change format", "jpeg")
    await choose("Change images per request", "2")
    refused = await choose("Change background", "transparent")
    assert refused["show_alert"] is True and "png or webp" in refused["text"]
    view = await core.users.settings(ada.actor)
    assert (view.output_format, view.n, view.background) == ("jpeg", 2, None)
    # The refused choice leaves the choices open; Back shows the overview.
    current = fake.message(ada.chat.id, message["message_id"])
    assert current is not None and "background" in current["text"]
    back = current["reply_markup"]["inline_keyboard"][-1][0]
    assert back["text"] == "◀ Back"
    await fake.wait_answer(ada.press(current, back["callback_data"]))
    current = fake.message(ada.chat.id, message["message_id"])
    assert current is not None and "Size: 1536x1024" in current["text"]

    mark = telegram.mark()
    ada.say("/settings quality low")
    await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert (await core.users.settings(ada.actor)).quality == "low"

    mark = telegram.mark()
    ada.say("/imagine a fox with my defaults")
    await telegram.result(ada.chat.id, after=mark)
    job = (await core.history.page(ada.actor)).items[0]
    assert (job.options["size"], job.options["output_format"], job.options["n"]) == (
        "1536x1024",
        "jpeg",
        2,
    )


class _Gateway:
    """A checkout gateway that makes one link per request key."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def checkout_url(self, user_id: int, offer: Offer, *, request_key: str) -> str:
        self.keys.append(request_key)
        return f"https://checkout.example/{offer.id}/{abs(hash(request_key)) % 10_000}"

    async def portal_url(self, user_id: int) -> str | None:
        return "https://billing.example/portal"


async def test_balance_and_billing(telegram_sqlite: TelegramHarness) -> None:
    telegram = telegram_sqlite
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    mark = telegram.mark()
    ada.say("/balance")
    balance = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "<b>20 credits</b>" in balance.text and "free credits: +20" in balance.text

    # Telegram Stars (the default) need no payment setup: /buy lists the Stars packs.
    mark = telegram.mark()
    ada.say("/buy")
    stars = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "Telegram Stars" in stars.text

    # Cards only, and Stripe not configured: buying is not set up.
    core.settings.telegram_payments = "stripe"
    mark = telegram.mark()
    ada.say("/buy")
    disabled = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "not set up" in disabled.text

    gateway = _Gateway()
    core.billing.gateway = gateway
    mark = telegram.mark()
    ada.say("/subscribe")
    plans = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "Monthly plans" in plans.text
    first = plans.buttons()[0][1]
    for _ in range(2):  # a double press gives the same checkout
        mark = telegram.mark()
        await fake.wait_answer(ada.press(plans.result, first))
        link = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert link.buttons()[0][1].startswith("https://checkout.example/plan_")
    assert len(set(gateway.keys)) == 1

    mark = telegram.mark()
    ada.say("/billing")
    portal = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert portal.buttons() == [("Manage billing", "https://billing.example/portal")]


def test_contact_sheet_numbers_a_grid_of_thumbnails(tmp_path: Path) -> None:
    paths = []
    for i, color in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200, 128)]):
        path = tmp_path / f"{i}.png"
        Image.new("RGBA" if len(color) == 4 else "RGB", (300, 200), color).save(path)
        paths.append(str(path))
    tiles = [Tile(n + 1, paths[n % 3], count=1 + n % 2) for n in range(7)]
    tiles.append(Tile(8, None, "failed"))
    with Image.open(io.BytesIO(draw_sheet(tiles))) as sheet:
        assert sheet.format == "JPEG" and sheet.size == (4 * 256 + 5 * 12, 2 * 256 + 3 * 12)
        # The first tile shows its red thumbnail; the last one is the grey "failed" tile.
        red = sheet.getpixel((12 + 128, 12 + 128))
        grey = sheet.getpixel((3 * 268 + 12 + 20, 268 + 12 + 220))
        assert isinstance(red, tuple) and isinstance(grey, tuple)
        assert red[0] > 150 and grey[0] < 100
