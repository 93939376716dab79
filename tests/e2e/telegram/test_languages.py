"""Every user in their own language, through the real python-telegram-bot and the fake:
Telegram's ``language_code`` chooses the catalog, ``/settings language`` overrides it at
once, the command menus are set per language, and the promises read the same in
another language (P07 export, P08 erasure receipt, P13 retention table)."""

from __future__ import annotations

from pathlib import Path

from core.i18n import LANGUAGES
from storage.database import Database
from tests.e2e.telegram.conftest import Person, TelegramHarness, launch
from tests.fakes.telegram_server import BotCall, FakeTelegram


async def _speaker(harness: TelegramHarness, name: str, code: str | None) -> Person:
    """A person whose Telegram app is in ``code`` (not yet past the terms)."""
    person = await harness.person(name, accepted=False)
    person.user.language_code = code
    return person


async def _ask(harness: TelegramHarness, person: Person, text: str) -> BotCall:
    mark = harness.mark()
    person.say(text)
    return await harness.fake.wait_call("sendMessage", chat_id=person.chat.id, after=mark)


async def _accept(harness: TelegramHarness, person: Person) -> BotCall:
    terms = await _ask(harness, person, "/start")
    mark = harness.mark()
    await harness.fake.wait_answer(person.press(terms.result, harness.button(terms, "ta")))
    return await harness.fake.wait_call("editMessageText", chat_id=person.chat.id, after=mark)


def _button_text(call: BotCall, prefix: str) -> str:
    return next(text for text, data in call.buttons() if data.startswith(prefix))


async def test_P07_P08_P13_a_spanish_user_is_answered_in_spanish(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    harness = await launch(
        database, tmp_path, fake_telegram, free_credits=1, public_url="https://bot.example.net"
    )
    try:
        ana = await _speaker(harness, "Ana", "es")
        terms = await _ask(harness, ana, "/start")
        assert "¡Te damos la bienvenida a imagebot!" in terms.text
        assert "13 años" in _button_text(terms, "ta")
        welcome = await _accept(harness, ana)
        assert welcome.text.startswith("Gracias, Ana, ya está todo listo.")

        help_text = await _ask(harness, ana, "/help")
        assert "crea y edita imágenes con IA" in help_text.text
        assert "--quality high" in help_text.text  # option words stay as people type them

        mark = harness.mark()
        ana.say("/imagine un zorro rojo en la nieve")
        result = await harness.result(ana.chat.id, after=mark)
        assert "1 crédito · saldo 0" in (result.params.get("caption") or result.text)
        assert _button_text(result, "rr:") == "🎲 Otra vez"

        mark = harness.mark()
        ana.say("/imagine otro zorro --n 2")
        refused = await harness.fake.wait_call(
            "editMessageText", chat_id=ana.chat.id, after=mark, where=lambda c: "cuesta" in c.text
        )
        assert "Esto cuesta 2 créditos y tu saldo es 0. Usa /buy para añadir créditos." in (
            refused.text
        )

        balance = await _ask(harness, ana, "/balance")
        assert "Saldo: <b>0 créditos</b>" in balance.text
        assert "créditos gratis: +1" in balance.text and "pagado por una imagen" in balance.text
        assert "hold" not in balance.text and "capture" not in balance.text

        privacy = await _ask(harness, ana, "/privacy")
        assert "<b>Qué guardamos sobre ti</b>" in privacy.text
        assert "Imágenes generadas y sus descripciones: 1 año" in privacy.text  # P13
        assert "Registros de pagos y créditos tras un borrado (ley fiscal): 10 años" in (
            privacy.text
        )
        assert "Usar mis imágenes y descripciones para mejorar modelos: <b>desactivado</b>" in (
            privacy.text
        )

        mark = harness.mark()
        ana.say("/export")  # P07
        # A public address: the export comes as a link, in Spanish.
        link = await harness.fake.wait_call(
            "sendMessage", chat_id=ana.chat.id, after=mark, where=lambda c: "📦" in c.text
        )
        assert link.text.startswith("📦 Tu exportación está lista: ")
        [(label, url)] = link.buttons()
        assert url.startswith("https://bot.example.net/files/") and "Descargar" in label

        question = await _ask(harness, ana, "/delete_my_data")  # P08
        assert "borra para siempre tu perfil" in question.text
        assert _button_text(question, "ey") == "🗑 Borrar todo"
        answer = await harness.fake.wait_answer(
            ana.press(question.result, harness.button(question, "ey"))
        )
        assert answer["text"] == "Borrado."
        receipt = harness.fake.message(ana.chat.id, question.result["message_id"])
        assert receipt is not None
        assert (
            receipt["text"].startswith("🗑 Hecho. El ")
            and "Número de solicitud" in (receipt["text"])
        )
        assert await harness.core.credits.user_for(ana.actor) is None
    finally:
        await harness.stop()


async def test_ukrainian_plural_forms_for_1_3_and_5_credits(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    harness = await launch(database, tmp_path, fake_telegram, free_credits=9)
    try:
        olena = await _speaker(harness, "Olena", "uk")
        await _accept(harness, olena)
        mark = harness.mark()
        olena.say("/imagine кіт --n 3")
        await harness.result(olena.chat.id, after=mark)
        summary = next(
            c
            for c in harness.fake.calls[mark:]
            if "баланс" in c.text and c.chat_id == olena.chat.id
        )
        assert "3 зображення · 3 кредити · баланс 6" in summary.text

        mark = harness.mark()
        olena.say("/imagine пес")
        result = await harness.result(olena.chat.id, after=mark)
        assert "1 кредит · баланс 5" in result.text

        balance = await _ask(harness, olena, "/balance")
        assert "Баланс: <b>5 кредитів</b>" in balance.text
    finally:
        await harness.stop()


async def test_arabic_and_an_unknown_language(telegram_sqlite: TelegramHarness) -> None:
    harness = telegram_sqlite
    amira = await _speaker(harness, "Amira", "ar")
    terms = await _ask(harness, amira, "/start")
    assert "مرحبًا بك في imagebot!" in terms.text
    await _accept(harness, amira)
    help_text = await _ask(harness, amira, "/help")
    assert "ينشئ الصور ويعدّلها بالذكاء الاصطناعي" in help_text.text
    assert "/imagine" in help_text.text and "--quality high" in help_text.text

    zed = await _speaker(harness, "Zed", "zz")
    terms = await _ask(harness, zed, "/start")
    assert "Welcome to imagebot!" in terms.text
    nobody = await _speaker(harness, "Nobody", None)
    assert "Welcome to imagebot!" in (await _ask(harness, nobody, "/start")).text


async def test_settings_language_switches_at_once_and_is_remembered(
    telegram: TelegramHarness,
) -> None:
    harness = telegram
    ada = await _speaker(harness, "Ada", "en")
    await _accept(harness, ada)
    switched = await _ask(harness, ada, "/settings language de")
    assert "Sprache: <b>Deutsch</b>. Ab jetzt antworte ich dir darin." in switched.text
    assert "So benutzt du imagebot" not in switched.text
    assert "erstellt und bearbeitet Bilder" in (await _ask(harness, ada, "/help")).text

    # The buttons: /settings language offers every language in its own words.
    choice = await _ask(harness, ada, "/settings language")
    names = [text for text, data in choice.buttons() if data.startswith("ss")]
    assert "Українська" in names and "العربية" in names and len(names) == len(LANGUAGES)
    mark = harness.mark()
    pressed = ada.press(choice.result, harness.button(choice, "ss"))  # the first: English
    answer = await harness.fake.wait_answer(pressed)
    assert answer["text"].startswith("🌐 Language: English")
    edited = await harness.fake.wait_call("editMessageText", chat_id=ada.chat.id, after=mark)
    assert "Your defaults" in edited.text and "Language: <b>English</b>" in edited.text

    # Remembered over the app's language; "default" gives the app's language back.
    await _ask(harness, ada, "/settings language fr")
    ada.user.language_code = "es"
    assert "crée et modifie des images" in (await _ask(harness, ada, "/help")).text
    await _ask(harness, ada, "/settings language default")
    assert "crea y edita imágenes" in (await _ask(harness, ada, "/help")).text

    unknown = await _ask(harness, ada, "/settings language klingon")
    assert "Ese idioma no está disponible." in unknown.text and "pt-BR" in unknown.text


async def test_a_result_in_a_group_speaks_the_language_of_its_requester(
    telegram_sqlite: TelegramHarness,
) -> None:
    harness = telegram_sqlite
    group = harness.fake.group()
    ivan = await _speaker(harness, "Ivan", "ru")
    await _accept(harness, ivan)
    mark = harness.mark()
    ivan.say("/imagine кот", chat=group)
    result = await harness.result(group.id, after=mark)
    assert "баланс" in (result.params.get("caption") or result.text)
    assert _button_text(result, "rr:") == "🎲 Ещё раз"


async def test_command_menus_are_set_for_every_shipped_language(
    telegram_sqlite: TelegramHarness,
) -> None:
    fake = telegram_sqlite.fake
    codes = {lang.split("-")[0] for lang in LANGUAGES}
    await fake.wait_for(lambda: len(fake.localized_commands) >= 2 * len(codes))
    for scope in ("default", "all_private_chats"):
        for code in codes:
            assert (scope, code) in fake.localized_commands, (scope, code)
    spanish = {c["command"]: c["description"] for c in fake.localized_commands[("default", "es")]}
    assert spanish["imagine"].startswith("Crea una imagen") and spanish["help"] == (
        "Cómo usar imagebot"
    )
    ukrainian = fake.localized_commands[("all_private_chats", "uk")]
    assert {c["command"] for c in ukrainian} >= {"start", "privacy", "delete_my_data"}
    english = {c["command"]: c["description"] for c in fake.commands["default"]}
    assert english["help"] == "How to use imagebot"
