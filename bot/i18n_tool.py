"""``imagebot i18n check|sync``: keep the ten catalogs in step with English, no ``make``.

- ``sync`` adds every English message a catalog lacks (empty, with the English text as a
  comment for the translator), drops messages English no longer has, and refreshes the
  comments; translations already written are kept as they are.
- ``check`` lists what the tests would refuse: syntax errors, missing or empty
  translations, placeholders that differ from English's, missing plural forms.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from core.i18n import (
    LANGUAGES,
    LOCALES_DIR,
    SOURCE_LANGUAGE,
    CatalogSyntaxError,
    placeholders,
    po_syntax_errors,
)


def _path(root: Path, lang: str) -> Path:
    return root / lang.replace("-", "_") / "LC_MESSAGES" / "imagebot.po"


def _read(root: Path, lang: str) -> Catalog:
    path = _path(root, lang)
    errors = po_syntax_errors(path.read_text(encoding="utf-8"))
    if errors:
        raise CatalogSyntaxError(f"{path}: " + "; ".join(errors[:5]))
    with path.open("rb") as fp:
        return read_po(fp, locale=lang.replace("-", "_"), abort_invalid=True)


def _key(message_id: object) -> str:
    return str(message_id[0] if isinstance(message_id, tuple | list) else message_id)


def sync(root: Path = LOCALES_DIR) -> dict[str, int]:
    """Bring every catalog to English's list of messages; returns how many were added."""
    source = _read(root, SOURCE_LANGUAGE)
    added: dict[str, int] = {}
    for lang in LANGUAGES:
        if lang == SOURCE_LANGUAGE:
            continue
        path = _path(root, lang)
        if path.exists():
            old = _read(root, lang)
        else:
            old = Catalog(locale=lang.replace("-", "_"), domain="imagebot")
        current = {_key(m.id): m for m in old if m.id}
        new = Catalog(
            locale=lang.replace("-", "_"),
            domain="imagebot",
            project="imagebot",
            version="1",
            copyright_holder="imagebot",
            last_translator=old.last_translator,
            language_team=old.language_team,
            creation_date=old.creation_date,
            fuzzy=False,
        )
        count = 0
        for message in source:
            if not message.id:
                continue
            key = _key(message.id)
            english = message.string
            comment = english[-1] if isinstance(english, tuple | list) else english
            known = current.get(key)
            if isinstance(message.id, tuple | list):
                forms: tuple[str, ...] | list[str] = (
                    known.string
                    if known is not None and isinstance(known.string, tuple | list)
                    else ("",) * new.num_plurals
                )
                new.add((key, key), forms, auto_comments=[str(comment)])
            else:
                text = known.string if known is not None else ""
                new.add(key, text, auto_comments=[str(comment)])
            count += known is None
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fp:
            write_po(fp, new, width=0)
        added[lang] = count
    return added


def check(root: Path = LOCALES_DIR) -> list[str]:
    """Everything the catalog guards would refuse, one line each (empty: all good)."""
    problems: list[str] = []
    try:
        source = _read(root, SOURCE_LANGUAGE)
    except (OSError, CatalogSyntaxError) as exc:
        return [str(exc)]
    english = {_key(m.id): m.string for m in source if m.id}
    for lang in LANGUAGES:
        if lang == SOURCE_LANGUAGE:
            continue
        try:
            catalog = _read(root, lang)
        except (OSError, CatalogSyntaxError) as exc:
            problems.append(f"{lang}: {exc}")
            continue
        entries = {_key(m.id): m for m in catalog if m.id}
        for key, text in english.items():
            found = entries.get(key)
            if found is None:
                problems.append(f"{lang}: {key} is missing")
                continue
            forms = found.string if isinstance(found.string, tuple | list) else (found.string,)
            if found.fuzzy or not all(forms):
                problems.append(f"{lang}: {key} is not translated")
                continue
            wanted = placeholders(str(text[-1] if isinstance(text, tuple | list) else text))
            for form in forms:
                found_names = placeholders(str(form))
                if found_names - {"count"} != wanted - {"count"}:
                    problems.append(f"{lang}: {key} has placeholders {sorted(found_names)}")
            if isinstance(text, tuple | list) and len(forms) != catalog.num_plurals:
                problems.append(f"{lang}: {key} needs {catalog.num_plurals} plural forms")
        for key in sorted(set(entries) - set(english)):
            problems.append(f"{lang}: {key} is not in English any more")
    return problems
