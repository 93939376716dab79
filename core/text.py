"""Cleaning what people type before it is stored, priced or sent anywhere."""

from __future__ import annotations

import re
import unicodedata

from core.errors import InvalidRequest
from core.i18n import Msg, msg

_SPACES = re.compile(r"[ \t]{3,}")
_NEWLINES = re.compile(r"\n{3,}")

ZWNJ = "\u200c"
ZWJ = "\u200d"
BLACK_FLAG = "\U0001f3f4"
CANCEL_TAG = "\U000e007f"

# Invisible characters outside the "Cf" (format) category that can hide or disguise text:
# the Hangul fillers (blank "letters"), the combining grapheme joiner.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f")

# Scripts whose spelling needs the zero-width (non-)joiner between letters: Arabic and
# Syriac, the Indic scripts, Tibetan and Myanmar, Khmer and Mongolian, Arabic
# presentation forms. Latin, Greek and Cyrillic never do, so a joiner inside a Latin word
# can only be there to hide the word from a block list.
_JOINING_SCRIPTS = (
    (0x0600, 0x08FF),
    (0x0900, 0x0DFF),
    (0x0F00, 0x109F),
    (0x1780, 0x18AF),
    (0xA8E0, 0xA8FF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFE),
)

# Emoji that can take part in a ZWJ sequence (Extended_Pictographic, approximately: the
# blocks it covers, plus the few emoji in other blocks).
_PICTOGRAPHIC = (
    (0x2190, 0x21FF),
    (0x2300, 0x23FF),
    (0x2460, 0x27BF),
    (0x2900, 0x297F),
    (0x2B00, 0x2BFF),
    (0x1F000, 0x1FAFF),
)
_PICTOGRAPHIC_EXTRA = frozenset("\u00a9\u00ae\u203c\u2049\u2122\u2139\u3030\u303d\u3297\u3299")


def _in(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in ranges)


def _pictographic(ch: str) -> bool:
    return ch in _PICTOGRAPHIC_EXTRA or _in(ch, _PICTOGRAPHIC)


def _variation_selector(ch: str) -> bool:
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def _emoji_part(ch: str) -> bool:
    """Something a ZWJ may follow inside an emoji: a pictograph, the emoji presentation
    selector, or a skin tone."""
    return _pictographic(ch) or ch == "\ufe0f" or 0x1F3FB <= ord(ch) <= 0x1F3FF


def _joining_letter(ch: str) -> bool:
    return _in(ch, _JOINING_SCRIPTS) and unicodedata.category(ch)[0] in "LM"


def _tag(ch: str) -> bool:
    return 0xE0020 <= ord(ch) <= 0xE007F


def _keep_invisibles(text: str) -> str:
    """Drop format characters (bidi marks, overrides and isolates, zero-width spaces,
    invisible operators, tags, soft hyphens…) and other invisibles, except where an emoji
    or a script needs them: a ZWJ between emoji parts (family, profession, rainbow flag), a
    ZWJ or ZWNJ between letters of a script that joins, one variation selector after a
    visible character (text or emoji presentation; a run of selectors can smuggle hidden
    bytes), and the tags of a subdivision flag (England, Scotland, Wales)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        prev = out[-1][-1] if out else ""
        nxt = text[i + 1] if i + 1 < n else ""
        if ch == BLACK_FLAG:
            end = i + 1
            while end < n and _tag(text[end]) and text[end] != CANCEL_TAG:
                end += 1
            if end > i + 1 and end < n and text[end] == CANCEL_TAG:
                out.append(text[i : end + 1])  # a subdivision flag: keep it whole
                i = end + 1
                continue
            out.append(ch)
        elif ch == ZWJ:
            if (
                prev
                and nxt
                and (
                    (_emoji_part(prev) and _pictographic(nxt))
                    or (_joining_letter(prev) and _joining_letter(nxt))
                )
            ):
                out.append(ch)
        elif ch == ZWNJ:
            if prev and nxt and _joining_letter(prev) and _joining_letter(nxt):
                out.append(ch)
        elif _variation_selector(ch):
            visible = prev and not _variation_selector(prev) and not prev.isspace()
            if visible and unicodedata.category(prev) not in ("Cf", "Zl", "Zp"):
                out.append(ch)
        elif ch in "\u2028\u2029":
            out.append("\n")
        elif unicodedata.category(ch) == "Cf" or ch in _INVISIBLE_LETTERS:
            pass
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def clean_prompt(text: str, *, max_chars: int) -> str:
    """NFC-normalise, drop control and invisible characters (keeping emoji sequences
    whole), and check the length.

    Raises :class:`InvalidRequest` for an empty prompt or one over ``max_chars``.
    """
    text = unicodedata.normalize("NFC", text or "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs", "Co"}
    )
    text = _keep_invisibles(text)
    text = _NEWLINES.sub("\n\n", _SPACES.sub("  ", text)).strip()
    if not text:
        raise InvalidRequest(Msg("error.empty_prompt"))
    if len(text) > max_chars:
        raise InvalidRequest(msg("error.prompt_too_long", length=len(text), limit=max_chars))
    return text
