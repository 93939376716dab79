"""Core's own words are catalog messages: image checks (the file's description is a nested
message translated with it), model notices and provider refusals, in the reader's language."""

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


def test_model_notices_and_provider_refusals_are_catalog_messages() -> None:
    from datetime import date

    from core.generation.providers import refused_message
    from core.generation.watch import operator_notice, user_moved_notice

    moved = user_moved_notice("gpt-image-1", "gpt-image-2")
    assert render(moved).startswith("The image model gpt-image-1 you chose has been retired")
    assert render(moved, "ru").startswith("Поставщик вывел из эксплуатации")
    notice = operator_notice("gpt-image-1", date(2027, 1, 15), 3)
    assert "(in 3 days)" in render(notice) and "(через 3 дня)" in render(notice, "ru")
    from tests.unit.test_model_catalog import catalog as make

    catalog = make("gpt-image-2")
    catalog.mark_refused("gpt-image-2", "background", "transparent")
    refused = refused_message(catalog.spec("gpt-image-2"), "background", "transparent")
    assert "no longer supports the background 'transparent'" in render(refused)
    assert "unterstützt Hintergrund 'transparent' nicht mehr" in render(refused, "de")


def test_P16_moderation_reasons_are_told_in_the_readers_language() -> None:
    """The reason of a refusal is words of the reader's language; the recorded reason
    (strikes, the review queue) stays the plain English one."""
    from core.errors import ContentRefused
    from core.safety import reason_message
    from core.safety.screening import Verdict

    verdict = Verdict(
        False,
        "it looks like violence, graphic violence",
        "violence",
        ("violence", "violence/graphic"),
    )
    refused = ContentRefused(verdict.reason, shown=reason_message(verdict))
    assert refused.reason == "it looks like violence, graphic violence"
    english = render(refused.msg, "en")
    assert "(it looks like violence, graphic violence)" in english
    spanish = render(refused.msg, "es")
    assert "parece violencia, violencia explícita" in spanish
    arabic = render(refused.msg, "ar")
    assert "عنفًا، عنفًا صريحًا" in arabic
    blocked = Verdict(False, "the prompt contains a blocked term", "blocklist", ("blocklist",))
    shown = render(ContentRefused(blocked.reason, shown=reason_message(blocked)).msg, "de")
    assert "gesperrten Begriff" in shown
    # A category the catalog has no words for is shown as the provider named it.
    odd = Verdict(False, "it looks like something new", "new", ("new",))
    assert reason_message(odd) is None
