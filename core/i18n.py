"""The message catalog: every sentence a chat user reads, in every shipped language.

Code never holds a user-facing sentence. It names a message and its arguments
(:class:`Msg`), and an adapter renders it with :func:`render` in the reader's language and
in its own markup (:class:`Markup`: HTML for Telegram, Markdown for Discord, plain text for
the console and for logs-free fallbacks).

The catalogs are gettext ``.po`` files, one per language, in
``core/locales/<lang>/LC_MESSAGES/imagebot.po``. They are read with Babel when first used
and compiled in memory (no build step, no ``.mo`` files in the repository): a translator
edits a ``.po`` file and restarts the bot. The ``msgid`` of each entry is a stable key
(``balance.title``); the English catalog holds the English words. A message with a
``msgid_plural`` is chosen by its ``count`` argument with the language's CLDR plural rule
(Russian and Ukrainian have three forms, Arabic six).

Message texts use ``{name}`` placeholders and a tiny neutral markup that each adapter
turns into its own: ``<b>…</b>``, ``<i>…</i>``, ``<code>…</code>`` and
``<a href="{url}">…</a>``. Arguments are formatted for the locale (whole numbers with the
locale's digit grouping unless their name marks an id, dates and times in the locale's
words) and escaped by the adapter's markup; a nested :class:`Msg` is rendered in the same
language first.

The current language of a piece of work (an update, an interaction, a job's delivery) is
held in a context variable: :func:`use_language` sets it, :func:`current_language` reads
it, so renderers need no extra parameter threaded through every call.
"""

from __future__ import annotations

import contextlib
import contextvars
import gettext
import io
import re
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_skeleton, format_timedelta
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "imagebot"

LANGUAGES: tuple[str, ...] = ("en", "es", "pt-BR", "ru", "uk", "de", "fr", "tr", "id", "ar")
"""The shipped languages, as BCP 47 tags (the names of the catalog folders use ``_``)."""

SOURCE_LANGUAGE = "en"
RTL_LANGUAGES = frozenset({"ar"})

LANGUAGE_NAMES: Mapping[str, str] = {
    "en": "English",
    "es": "Español",
    "pt-BR": "Português (Brasil)",
    "ru": "Русский",
    "uk": "Українська",
    "de": "Deutsch",
    "fr": "Français",
    "tr": "Türkçe",
    "id": "Bahasa Indonesia",
    "ar": "العربية",
}
"""Each language in its own words (what the language buttons show)."""

_ALIASES = {"pt": "pt-BR", "pt-pt": "pt-BR", "in": "id", "iw": "he"}
"""Platform tags that name a shipped language another way (``in`` is Java's Indonesian)."""

_ID_NAMES = re.compile(r"(^|_)(id|number|ref|width|height|year)$")
"""Whole-number arguments named like an id are printed as they are (no digit grouping)."""


# --- choosing the language -----------------------------------------------------------------


def negotiate(tag: str | None, default: str = SOURCE_LANGUAGE) -> str:
    """The shipped language for a platform's language tag (Telegram ``language_code``,
    Discord ``locale``): ``pt-br``, ``pt_BR`` and ``pt`` give ``pt-BR``, ``es-ES`` and
    ``es-419`` give ``es``; a language the bot lacks gives ``default``."""
    if not tag:
        return default if default in LANGUAGES else SOURCE_LANGUAGE
    clean = tag.strip().replace("_", "-").lower()
    by_lower = {lang.lower(): lang for lang in LANGUAGES}
    if clean in by_lower:
        return by_lower[clean]
    if clean in _ALIASES and _ALIASES[clean] in LANGUAGES:
        return _ALIASES[clean]
    base = clean.split("-", 1)[0]
    if base in by_lower:
        return by_lower[base]
    if base in _ALIASES and _ALIASES[base] in LANGUAGES:
        return _ALIASES[base]
    return default if default in LANGUAGES else SOURCE_LANGUAGE


def is_language(tag: str) -> bool:
    """True when ``tag`` names a shipped language exactly (any case, ``-`` or ``_``)."""
    clean = tag.strip().replace("_", "-").lower()
    return clean in {lang.lower() for lang in LANGUAGES}


_current: contextvars.ContextVar[str] = contextvars.ContextVar(
    "imagebot_language", default=SOURCE_LANGUAGE
)


def current_language() -> str:
    """The language of the work in progress (English unless :func:`use_language` set one)."""
    return _current.get()


@contextlib.contextmanager
def use_language(lang: str) -> Iterator[str]:
    """Render in ``lang`` inside the block (tasks started inside inherit it)."""
    token = _current.set(negotiate(lang))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def set_language(lang: str) -> None:
    """Set the language for the rest of the current task (an update's handler)."""
    _current.set(negotiate(lang))


# --- messages and markup --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Msg:
    """A message named by its catalog key, with its arguments (not yet in any language)."""

    key: str
    args: Mapping[str, Any] = field(default_factory=dict)


def msg(key: str, **args: Any) -> Msg:
    """``msg("balance.title", count=5)``: a message to render later, in the reader's language."""
    return Msg(key, args)


@dataclass(frozen=True, slots=True)
class Raw:
    """An argument already in the target markup (a quote block, a mention): not escaped."""

    text: str


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money, formatted as the locale writes currencies."""

    amount: float
    currency: str


@dataclass(frozen=True, slots=True)
class Markup:
    """How an adapter writes the neutral markup: escaping of arguments and of the
    catalog's own text, and the four tags (whose contents arrive already escaped)."""

    escape: Callable[[str], str]
    """An argument's text (a name, a prompt) made harmless in this markup."""
    bold: Callable[[str], str]
    italic: Callable[[str], str]
    code: Callable[[str], str]
    link: Callable[[str, str], str]
    literal: Callable[[str], str] | None = None
    """The catalog's own words (default: :attr:`escape`; Markdown leaves them as written)."""
    code_escape: Callable[[str], str] | None = None
    """Text inside ``<code>`` (default: :attr:`escape`; Markdown code spans need none)."""


def _same(text: str) -> str:
    return text


PLAIN = Markup(
    escape=_same,
    bold=_same,
    italic=_same,
    code=_same,
    link=lambda text, url: f"{text} ({url})",
)
"""Plain text (the console, callback answers, button labels, English for logs-free
fallbacks such as ``UserFacingError.user_message``)."""


# --- the catalogs ---------------------------------------------------------------------------


def catalog_path(lang: str) -> Path:
    """Where the ``.po`` file of ``lang`` lives."""
    return LOCALES_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


_PO_LINE = re.compile(
    r'^(?:(?:msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?)\s+)?"(?:[^"\\]|\\.)*"\s*$'
)


class CatalogSyntaxError(ValueError):
    """A ``.po`` file that gettext tools would refuse (Babel alone is lenient)."""


def po_syntax_errors(text: str) -> list[str]:
    """``line N: …`` for each line that is neither a comment, blank, nor a well-formed
    keyword with a quoted string (an unterminated quote, a stray word)."""
    errors = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not _PO_LINE.match(stripped):
            errors.append(f"line {number}: {stripped[:60]}")
    return errors


def read_catalog(lang: str) -> Catalog:
    """The parsed ``.po`` file of ``lang``; raises :class:`CatalogSyntaxError` on a
    syntax error."""
    path = catalog_path(lang)
    errors = po_syntax_errors(path.read_text(encoding="utf-8"))
    if errors:
        raise CatalogSyntaxError(f"{path}: " + "; ".join(errors[:5]))
    with path.open("rb") as fp:
        return read_po(fp, locale=lang.replace("-", "_"), abort_invalid=True)


@cache
def _catalogs() -> tuple[dict[str, gettext.GNUTranslations], frozenset[str]]:
    """Every shipped catalog compiled in memory, each falling back to English; and the
    keys that are plural messages."""
    source = read_catalog(SOURCE_LANGUAGE)
    plural_keys = frozenset(
        m.id[0] for m in source if m.id and isinstance(m.id, tuple | list) and m.pluralizable
    )
    compiled: dict[str, gettext.GNUTranslations] = {}
    for lang in LANGUAGES:
        if lang != SOURCE_LANGUAGE and not catalog_path(lang).exists():
            continue  # a language being added: English until its catalog exists
        catalog = source if lang == SOURCE_LANGUAGE else read_catalog(lang)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        compiled[lang] = gettext.GNUTranslations(buffer)
    for lang, translations in compiled.items():
        if lang != SOURCE_LANGUAGE:
            translations.add_fallback(compiled[SOURCE_LANGUAGE])
    return compiled, plural_keys


def reload_catalogs() -> None:
    """Forget the compiled catalogs (after editing a ``.po`` file in a running process)."""
    _catalogs.cache_clear()


def template(lang: str, key: str, count: int | None = None) -> str:
    """The raw text of ``key`` in ``lang`` (placeholders and markup not yet filled)."""
    compiled, plural_keys = _catalogs()
    translations = compiled.get(negotiate(lang), compiled[SOURCE_LANGUAGE])
    if key in plural_keys:
        return translations.ngettext(key, key, count if count is not None else 1)
    return translations.gettext(key)


def has_message(key: str) -> bool:
    """True when the English catalog has ``key``."""
    compiled, _ = _catalogs()
    return compiled[SOURCE_LANGUAGE].gettext(key) != key


# --- rendering ------------------------------------------------------------------------------

_TAG = re.compile(r'<(b|i|code)>(.*?)</\1>|<a href="\{(\w+)\}">(.*?)</a>', re.DOTALL)


def _babel_locale(lang: str) -> Locale:
    return Locale.parse(negotiate(lang).replace("-", "_"))


def format_number(value: float, lang: str | None = None) -> str:
    """A number as the locale writes it (digit grouping, decimal sign)."""
    locale = _babel_locale(lang or current_language())
    if isinstance(value, float) and not value.is_integer():
        return format_decimal(value, format="#,##0.0", locale=locale)
    return format_decimal(value, locale=locale)


def format_when(value: datetime | date, lang: str | None = None) -> str:
    """A date or a time (UTC) as the locale writes it, short."""
    locale = _babel_locale(lang or current_language())
    day = format_skeleton("yMMMd", value, locale=locale)
    if isinstance(value, datetime):
        return f"{day} {format_skeleton('Hm', value, locale=locale)}"
    return day


def format_value(name: str, value: Any, lang: str) -> str:
    """One plain argument as text in ``lang`` (not yet escaped)."""
    locale = _babel_locale(lang)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) and not _ID_NAMES.search(name):
        return format_decimal(value, locale=locale)
    if isinstance(value, float):
        return format_number(value, lang)
    if isinstance(value, Money):
        return format_currency(value.amount, value.currency, locale=locale)
    if isinstance(value, date):
        return format_when(value, lang)
    if isinstance(value, timedelta):
        return format_timedelta(value, locale=locale)
    return str(value)


@dataclass(frozen=True, slots=True)
class _Value:
    text: str
    ready: bool
    """Already in the target markup (a nested message, :class:`Raw`): never escaped again."""


def _values(message: Msg, lang: str, markup: Markup) -> dict[str, _Value]:
    out: dict[str, _Value] = {}
    for name, value in message.args.items():
        if isinstance(value, Raw):
            out[name] = _Value(value.text, True)
        elif isinstance(value, Msg):
            out[name] = _Value(render(value, lang, markup), True)
        else:
            out[name] = _Value(format_value(name, value, lang), False)
    return out


def _fill(
    text: str, values: Mapping[str, _Value], words: Callable[[str], str], args: Callable[[str], str]
) -> str:
    """The catalog's words through ``words``, placeholders through ``args``."""
    out: list[str] = []
    for literal, name, _spec, _conv in string.Formatter().parse(text):
        out.append(words(literal))
        if name is not None:
            value = values.get(name)
            if value is None:
                out.append(words("{" + name + "}"))
            else:
                out.append(value.text if value.ready else args(value.text))
    return "".join(out)


def render(message: Msg | str, lang: str | None = None, markup: Markup = PLAIN) -> str:
    """``message`` in ``lang`` (the current language by default), written in ``markup``.

    A plain ``str`` is a text that is not in the catalog (a person's words, or a message
    from before the catalog): it is only escaped.
    """
    if isinstance(message, str):
        return markup.escape(message)
    lang = negotiate(lang or current_language())
    count = message.args.get("count")
    text = template(lang, message.key, count if isinstance(count, int) else None)
    values = _values(message, lang, markup)
    words = markup.literal or markup.escape
    in_code = markup.code_escape or markup.escape
    out: list[str] = []
    last = 0
    for match in _TAG.finditer(text):
        out.append(_fill(text[last : match.start()], values, words, markup.escape))
        tag, inner, url_name, link_text = match.groups()
        if tag == "b":
            out.append(markup.bold(_fill(inner, values, words, markup.escape)))
        elif tag == "i":
            out.append(markup.italic(_fill(inner, values, words, markup.escape)))
        elif tag == "code":
            out.append(markup.code(_fill(inner, values, in_code, in_code)))
        else:
            url = message.args.get(url_name, "")
            out.append(markup.link(_fill(link_text, values, words, markup.escape), str(url)))
        last = match.end()
    out.append(_fill(text[last:], values, words, markup.escape))
    return "".join(out)


def t(key: str, lang: str | None = None, **args: Any) -> str:
    """Shorthand: the plain text of ``key`` with ``args`` in ``lang`` (or the current one)."""
    return render(Msg(key, args), lang, PLAIN)


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a message text uses (for the catalog guards)."""
    return {name for _lit, name, _s, _c in string.Formatter().parse(text) if name}


def rtl(lang: str) -> bool:
    """True for right-to-left languages."""
    return negotiate(lang) in RTL_LANGUAGES
