"""Cleaning what people type before it is stored, priced or sent anywhere."""

from __future__ import annotations

import re
import unicodedata

from core.errors import InvalidRequest
from core.i18n import Msg, msg

# Bidirectional overrides and isolates can make stored text display differently from
# what it is; zero-width characters can hide words from block lists.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069\u00ad]")
_SPACES = re.compile(r"[ \t]{3,}")
_NEWLINES = re.compile(r"\n{3,}")


def clean_prompt(text: str, *, max_chars: int) -> str:
    """NFC-normalise, drop control and invisible characters, and check the length.

    Raises :class:`InvalidRequest` for an empty prompt or one over ``max_chars``.
    """
    text = unicodedata.normalize("NFC", text or "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs", "Co"}
    )
    text = _INVISIBLE.sub("", text)
    text = _NEWLINES.sub("\n\n", _SPACES.sub("  ", text)).strip()
    if not text:
        raise InvalidRequest(Msg("error.empty_prompt"))
    if len(text) > max_chars:
        raise InvalidRequest(msg("error.prompt_too_long", length=len(text), limit=max_chars))
    return text
