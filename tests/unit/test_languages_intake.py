"""Core's image checks name catalog messages: the same refusal reads in the reader's
language, and the file's own description is a nested message translated with it."""

from __future__ import annotations

import pytest

from core.errors import InvalidImage
from core.generation.intake import normalize_reference
from core.i18n import render


def _refusal(data: bytes) -> InvalidImage:
    with pytest.raises(InvalidImage) as caught:
        normalize_reference(data)
    return caught.value


def test_an_empty_file_and_a_text_file_are_refused_in_german_and_arabic() -> None:
    empty = _refusal(b"")
    assert empty.user_message == "This file is empty. Send a PNG, JPEG, WebP or GIF image."
    assert (
        render(empty.msg, "de")
        == "Diese Datei ist leer. Sende ein PNG-, JPEG-, WebP- oder GIF-Bild."
    )
    text = _refusal(b"hello, this is only words\n" * 4)
    assert render(text.msg, "de") == (
        "Diese Datei ist kein Bild, das wir verwenden können (es sieht nach Text aus). "
        "Sende ein PNG-, JPEG-, WebP- oder GIF-Bild."
    )
    assert "يبدو أنه نص" in render(text.msg, "ar")


def test_a_heic_photo_is_explained_in_spanish() -> None:
    heic = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64
    assert "es una foto HEIC, el formato del iPhone" in render(_refusal(heic).msg, "es")
