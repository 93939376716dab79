"""Guards of the message catalog (core/locales/<lang>/LC_MESSAGES/imagebot.po).

- every catalog parses (a syntax error fails here, not in a chat);
- every message of the English catalog is in every other one, translated (no empty or
  fuzzy entry), with the same placeholders, and with every plural form of its language;
- no code holds a user-facing sentence: string literals passed to the reply, send, edit
  and answer calls, to buttons and to the reply types are scanned (an AST walk);
- languages are negotiated from platform tags and plurals follow CLDR.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from core.i18n import (
    LANGUAGES,
    SOURCE_LANGUAGE,
    Msg,
    catalog_path,
    msg,
    negotiate,
    placeholders,
    po_syntax_errors,
    read_catalog,
    render,
    t,
)

ROOT = Path(__file__).resolve().parents[2]


def _entries(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple | list) else message.id
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        out[key] = tuple(strings) if not message.fuzzy else ("",)
    return out


ENGLISH = _entries(read_catalog(SOURCE_LANGUAGE))
OTHERS = [lang for lang in LANGUAGES if lang != SOURCE_LANGUAGE]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalog_exists_and_parses(lang: str) -> None:
    assert catalog_path(lang).exists(), f"no catalog for {lang}"
    catalog = read_catalog(lang)
    assert catalog.locale is not None and str(catalog.locale) == lang.replace("-", "_")


@pytest.mark.parametrize("lang", OTHERS)
def test_every_english_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    catalog = read_catalog(lang)
    entries = _entries(catalog)
    missing = sorted(set(ENGLISH) - set(entries))
    assert not missing, f"{lang} lacks {missing[:10]}"
    untranslated = sorted(k for k, forms in entries.items() if k in ENGLISH and not all(forms))
    assert not untranslated, f"{lang} leaves untranslated {untranslated[:10]}"
    stale = sorted(set(entries) - set(ENGLISH))
    assert not stale, f"{lang} has messages English no longer has: {stale[:10]}"
    for key, english in ENGLISH.items():
        wanted = placeholders(english[-1])
        for form in entries[key]:
            assert placeholders(form) - {"count"} == wanted - {"count"}, (lang, key, form)
        if len(english) > 1:
            assert len(entries[key]) == catalog.num_plurals, (lang, key)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_markup_in_translations_is_balanced(lang: str) -> None:
    for key, forms in _entries(read_catalog(lang)).items():
        for form in forms:
            for tag in ("b", "i", "code"):
                assert form.count(f"<{tag}>") == form.count(f"</{tag}>"), (lang, key, form)
            assert form.count("<a href=") == form.count("</a>"), (lang, key, form)


def test_a_broken_catalog_is_refused() -> None:
    good = 'msgid "credits"\nmsgstr "a \\"quoted\\" word"\n\n# comment\nmsgstr[1] "x"\n'
    assert po_syntax_errors(good) == []
    assert po_syntax_errors('msgid "credits"\nmsgstr "unterminated\n') == [
        'line 2: msgstr "unterminated'
    ]
    assert po_syntax_errors('msgid "a"\nmsgtsr "typo"\n')
    assert po_syntax_errors('msgid "a"\nmsgstr "x" "y\n')


def test_plurals_follow_cldr() -> None:
    assert [t("credits", "en", count=n) for n in (1, 2)] == ["1 credit", "2 credits"]
    uk = [t("credits", "uk", count=n) for n in (1, 3, 5, 21, 11)]
    ru = [t("credits", "ru", count=n) for n in (1, 3, 5)]
    # one, few, many: three different words in Slavic languages
    assert len({u.split()[1] for u in uk[:3]}) == 3 and uk[3].split()[1] == uk[0].split()[1]
    assert uk[4].split()[1] == uk[2].split()[1]
    assert len({r.split()[1] for r in ru}) == 3
    ar = {t("credits", "ar", count=n) for n in (0, 1, 2, 3, 11, 100)}
    assert len(ar) == 6  # zero, one, two, few, many, other


def test_languages_are_negotiated_from_platform_tags() -> None:
    assert negotiate("es") == "es" and negotiate("es-419") == "es" and negotiate("es_ES") == "es"
    assert negotiate("pt-br") == "pt-BR" and negotiate("pt") == "pt-BR"
    assert negotiate("uk") == "uk" and negotiate("ar-EG") == "ar"
    assert negotiate("zz") == "en" and negotiate("") == "en" and negotiate(None) == "en"
    assert negotiate("zz", "de") == "de" and negotiate("xx", "nonsense") == "en"
    assert negotiate("en-GB") == "en"


def test_arguments_are_escaped_by_the_markup_and_formatted_for_the_locale() -> None:
    from bot.telegram.render import HTML

    text = render(msg("balance.title", credits=msg("credits", count=12345)), "de", HTML)
    assert "12.345" in text and "<b>" in text
    hostile = render(msg("offers.pack_line", name="<b>x</b>", credits=1, price="&"), "en", HTML)
    assert "&lt;b&gt;x&lt;/b&gt;" in hostile and "&amp;" in hostile
    assert render(Msg("no.such.key")) == "no.such.key"


# --- no sentence outside the catalog ---------------------------------------------------------

SINKS = {
    "reply",
    "send_message",
    "edit_text",
    "edit_message_text",
    "edit_message_caption",
    "answer",
    "Answer",
    "_button",
    "link",
    "InlineKeyboardButton",
    "BotCommand",
    "send",
    "followup",
    "respond",
    "update",
    "edit_original_response",
    "InvalidRequest",
    "InvalidImage",
    "UserFacingError",
    "NotFound",
    "ChatDisabled",
    "PaymentLinkReply",
    "TextReply",
    "ConfirmationRequest",
    "Button",
    "SelectOption",
    "Choice",
    "TextInput",
    "CheckRefused",
    "ErrorView",
    "_UserPathError",
}
"""Calls whose string arguments a person reads."""

SENTENCE = re.compile(r"[A-Za-z]{2,}[,.:;!?]? +[A-Za-z]{2,}")
WORD = re.compile(r"^\W*[A-Z][a-z]{2,}")
LABELS = {"Answer", "_button", "InlineKeyboardButton", "Button", "TextInput", "SelectOption"}
"""Calls where even one capitalised word ("Deleted.", "Keep") is words a person reads."""

SCANNED = ["bot/telegram", "bot/discord", "bot/console", "core"]
NOT_YET = {}
"""Files still allowed to hold sentences, each a known follow-up."""


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _strings(node: ast.AST) -> list[ast.Constant]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node]
    if isinstance(node, ast.JoinedStr):
        return [c for v in node.values for c in _strings(v)]
    if isinstance(node, ast.BinOp):
        return _strings(node.left) + _strings(node.right)
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def sentences_outside_the_catalog(path: Path) -> list[str]:
    """``file:line: text`` for each sentence literal handed to a reply-like call."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node.func) in SINKS:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                for const in _strings(arg):
                    single = _call_name(node.func) in LABELS and WORD.search(const.value)
                    if SENTENCE.search(const.value) or single:
                        found.append(f"{path.relative_to(ROOT)}:{const.lineno}: {const.value!r}")
    return found


def test_the_scan_finds_a_sentence_handed_to_a_reply(tmp_path: Path) -> None:
    sample = ROOT / "tests" / "unit" / "_catalog_scan_sample.py"
    sample.write_text(
        'async def f(rt, m):\n    await reply(rt, m, "Your image is ready")\n'
        '    raise InvalidRequest(f"Use {x} please now")\n'
        '    await reply(rt, m, render.tr("job.generating"))\n',
        encoding="utf-8",
    )
    try:
        found = sentences_outside_the_catalog(sample)
    finally:
        sample.unlink()
    assert len(found) == 2


def test_no_user_facing_sentence_outside_the_catalog() -> None:
    offenders = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if rel in NOT_YET:
                continue
            offenders += sentences_outside_the_catalog(path)
    assert not offenders, "\n".join(offenders)


def test_the_i18n_tool_adds_a_new_message_everywhere_and_reports_it(tmp_path: Path) -> None:
    import shutil

    from babel.messages.pofile import read_po, write_po

    from bot import i18n_tool
    from core.i18n import LOCALES_DIR

    root = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, root)
    assert i18n_tool.check(root) == []
    english = root / "en" / "LC_MESSAGES" / "imagebot.po"
    with english.open("rb") as fp:
        catalog = read_po(fp, locale="en")
    catalog.add("gallery.title", "Your gallery has {count} pictures")
    with english.open("wb") as fp:
        write_po(fp, catalog, width=0)
    added = i18n_tool.sync(root)
    assert set(added) == set(LANGUAGES) - {"en"} and all(n == 1 for n in added.values())
    problems = i18n_tool.check(root)
    assert "es: gallery.title is not translated" in problems and len(problems) == 9
    spanish = root / "es" / "LC_MESSAGES" / "imagebot.po"
    text = spanish.read_text(encoding="utf-8")
    assert "#. Your gallery has {count} pictures" in text  # the English, for the translator
    spanish.write_text(
        text.replace(
            'msgid "gallery.title"\nmsgstr ""', 'msgid "gallery.title"\nmsgstr "Tu galería {n}"'
        ),
        encoding="utf-8",
    )
    assert "es: gallery.title has placeholders ['n']" in i18n_tool.check(root)
    # The translations already written survive a sync untouched.
    i18n_tool.sync(root)
    assert 'msgstr "Tu galería {n}"' in spanish.read_text(encoding="utf-8")
    assert 'msgstr "Gracias, ya está todo listo."' in spanish.read_text(encoding="utf-8")
