"""The Telegram texts folded into the catalog after issue 13, in other languages, through
the real python-telegram-bot and the fake: Telegram Stars offers, invoices and
/paysupport, the /billing plan, the gallery link and its buttons, the command menus of
/gallery and /paysupport, and the model named in the queue line and the price table."""

from __future__ import annotations

from pathlib import Path

from bot.telegram import render
from core.i18n import use_language
from storage.database import Database
from tests.e2e.telegram.conftest import Person, TelegramHarness, launch
from tests.fakes.telegram_server import BotCall, FakeTelegram

PRICED = {
    "free_credits": 20,
    "max_queued_per_user": 100,
    "prices": '{"demo": {"low": 10, "medium": 10, "high": 10, "auto": 10}}',
}


async def _ask(harness: TelegramHarness, person: Person, text: str) -> BotCall:
    mark = harness.mark()
    person.say(text)
    return await harness.fake.wait_call("sendMessage", chat_id=person.chat.id, after=mark)


async def test_stars_offers_invoice_and_paysupport_in_ukrainian(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    harness = await launch(database, tmp_path, fake_telegram, worker=False, **PRICED)
    try:
        olena = await harness.person("Olena")
        olena.user.language_code = "uk"
        listing = await _ask(harness, olena, "/buy")
        assert "<b>Пакети кредитів</b>, оплата в Telegram Stars" in listing.text
        assert "Creator pack: 150 кредитів за ⭐ 900" in listing.text
        labels = [text for text, data in listing.buttons() if data.startswith("bs:")]
        assert "Creator pack · 150 кредитів · ⭐ 900" in labels

        data = next(d for _, d in listing.buttons() if d.startswith("bs:") and d.endswith("pack_m"))
        await harness.fake.wait_answer(olena.press(listing.result, data))
        await harness.fake.wait_for(lambda: bool(harness.fake.invoices), what="an invoice")
        invoice = harness.fake.invoices[-1]
        assert invoice.title == "Creator pack"
        assert invoice.description == (
            "150 кредитів на зображення, зараховуються на баланс одразу після оплати."
        )

        mark = harness.mark()
        paid = await harness.fake.pay(olena.user, invoice)
        assert paid.charge is not None
        receipt = await harness.fake.wait_call(
            "sendMessage",
            chat_id=olena.chat.id,
            after=mark,
            where=lambda c: "Creator pack" in c.text,
        )
        assert receipt.text == (
            "Платіж отримано (Creator pack): нараховано 150 кредитів. Ваш баланс: 170."
        )

        plans = await _ask(harness, olena, "/subscribe")
        assert "Monthly 200: 200 кредитів за ⭐ 700 на місяць" in plans.text

        support = await _ask(harness, olena, "/paysupport")
        assert support.text.startswith("💬 <b>Допомога з оплатою</b>")
        assert "<code>/support я оплатив, але кредити не надійшли</code>" in support.text

        billing = await _ask(harness, olena, "/billing")
        assert (
            billing.text
            == "У вас немає щомісячного плану. /subscribe показує плани, /balance — ваші кредити."
        )
    finally:
        await harness.stop()


async def test_gallery_link_and_buttons_in_german(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    harness = await launch(database, tmp_path, fake_telegram, public_url="https://bot.example.net")
    try:
        greta = await harness.person("Greta")
        greta.user.language_code = "de"
        mark = harness.mark()
        greta.say("/imagine ein Leuchtturm")
        result = await harness.result(greta.chat.id, after=mark)
        assert ("🖼 Galerie", next(d for _, d in result.buttons() if d.startswith("gl:"))) in (
            result.buttons()
        )

        answer = await _ask(harness, greta, "/gallery")
        assert answer.text.startswith("🖼 <b>Deine private Galerie</b>")
        assert "leite ihn nicht weiter" in answer.text
        texts = [text for text, _ in answer.buttons()]
        assert "🖼 Meine Galerie öffnen" in texts and "📱 In Telegram öffnen" in texts
    finally:
        await harness.stop()


async def test_gallery_and_paysupport_menus_are_translated(
    telegram_sqlite: TelegramHarness,
) -> None:
    fake = telegram_sqlite.fake
    await fake.wait_for(lambda: ("all_private_chats", "fr") in fake.localized_commands)
    french = {
        c["command"]: c["description"] for c in fake.localized_commands[("all_private_chats", "fr")]
    }
    assert french["gallery"] == "Votre galerie privée d'images"
    assert french["paysupport"] == "Aide pour un paiement ou un remboursement"
    english = {c["command"]: c["description"] for c in fake.commands["all_private_chats"]}
    assert english["gallery"] == "Your private gallery of pictures"


def test_the_model_is_a_placeholder_of_the_queue_line_and_the_price_table() -> None:
    models = [("gpt-image-1", "GPT Image 1", {"low": 1, "high": 5}), ("x", "x", {"low": 2})]
    with use_language("ru"):
        line = render.queued_line(False, 2, 3, "gpt-image-<1>")
        prices = render.prices_text(models)
        stars_refusal = render.stars_refusal("expired")
    assert line == "⏳ Изображение в очереди (позиция 2, стоимость 3 кредита, gpt-image-&lt;1&gt;)"
    assert prices.startswith("<b>Модели и цены</b>")
    assert "Выберите через <code>--model ИМЯ</code> или в /settings." in prices
    assert stars_refusal.startswith("Срок действия этого счёта истёк.")
    with use_language("en"):
        assert render.stars_refusal("forged") == render.stars_refusal("unknown")
        assert render.queued_line(True, 1, 1) == "⏳ Edit queued (position 1, cost 1 credit)"


async def test_operator_tools_in_spanish(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    from core.types import Actor

    olga = fake_telegram.user("Olga")
    olga.language_code = "es"
    harness = await launch(database, tmp_path, fake_telegram, admins=f"telegram:{olga.id}")
    try:
        await harness.core.onboarding.accept(Actor("telegram", str(olga.id), "Olga"))
        operator = Person(harness, olga, fake_telegram.private_chat(olga))
        ada = await harness.person("Ada")
        before = await ada.balance()

        shown = await _ask(harness, operator, "/admin")
        assert shown.text.startswith("🛠 <b>Herramientas de operador</b>")
        assert "<code>/admin grant ID AMOUNT REASON</code>" in shown.text  # commands stay
        granted = await _ask(harness, operator, f"/admin grant {ada.id} 3 regalo")
        assert granted.text == f"Concedidos 3 créditos. Saldo actual: {before + 3}."
        user = await _ask(harness, operator, f"/admin user {ada.id}")
        assert f"Créditos: {before + 3} disponibles, 0 reservados" in user.text
        assert "sin veto" in user.text
        wrong = await _ask(harness, operator, "/admin grant nobody 3 x")
        assert "id de Telegram (123456)" in wrong.text
        assert (await _ask(harness, operator, "/admin reviews")).text == (
            "La cola de revisión está vacía."
        )
        assert (await _ask(harness, operator, "/admin appeals")).text == (
            "No hay recursos abiertos."
        )
    finally:
        await harness.stop()


async def test_option_refusals_from_core_in_turkish(telegram_sqlite: TelegramHarness) -> None:
    harness = telegram_sqlite
    ayse = await harness.person("Ayşe")
    ayse.user.language_code = "tr"
    answer = await _ask(harness, ayse, "/imagine bir tilki --style anime")
    assert "Bilinmeyen seçenek --style. Seçenekler:" in answer.text
    assert "--quality low|medium|high" in answer.text  # option words stay as typed
    answer = await _ask(harness, ayse, "/imagine bir tilki --n çok")
    assert "--n 1 ile 4 arasında bir tam sayı alır." in answer.text
    answer = await _ask(harness, ayse, "/imagine bir tilki --ar 3:2 --size 1024x1024")
    assert "--size ya da --ar verin, ikisini birden değil." in answer.text


async def test_model_table_refusals_in_portuguese(telegram_sqlite: TelegramHarness) -> None:
    harness = telegram_sqlite
    bia = await harness.person("Bia")
    bia.user.language_code = "pt-br"
    mark = harness.mark()
    bia.say("/imagine uma raposa --quality ultra")
    refused = await harness.fake.wait_call(
        "editMessageText",
        chat_id=bia.chat.id,
        after=mark,
        where=lambda c: "ultra" in c.text,
    )
    assert "A qualidade 'ultra' não está disponível para" in refused.text
    mark = harness.mark()
    bia.say("/imagine uma raposa --transparent --format jpeg")
    refused = await harness.fake.wait_call(
        "editMessageText", chat_id=bia.chat.id, after=mark, where=lambda c: "jpeg" in c.text
    )
    assert "Um fundo transparente precisa do formato png ou webp, não jpeg." in refused.text
