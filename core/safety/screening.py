"""Safety screening of prompts and reference images before any credit moves (P16)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from core.i18n import Msg, msg
from core.types import InputImage


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a screening: allowed, or refused with a reason in plain words.

    ``degraded`` says the safety service could not be asked and the operator's fail-open
    choice let the item through (logged per job).
    """

    allowed: bool
    reason: str = ""
    category: str = ""
    categories: tuple[str, ...] = ()
    degraded: bool = False


ALLOWED = Verdict(True)

CATEGORY_KEYS = {
    "hate": "hate",
    "hate/threatening": "hate_threatening",
    "harassment": "harassment",
    "harassment/threatening": "harassment_threatening",
    "illicit": "illicit",
    "illicit/violent": "illicit_violent",
    "self-harm": "self_harm",
    "self-harm/intent": "self_harm",
    "self-harm/instructions": "self_harm_instructions",
    "sexual": "sexual",
    "sexual/minors": "sexual_minors",
    "violence": "violence",
    "violence/graphic": "violence_graphic",
}
"""Moderation categories and the catalog names of their words (``moderation.cat.<name>``)."""


def categories_message(categories: Iterable[str]) -> Msg | None:
    """The categories in words of the reader's language (``violence, sexual content``), or
    None when one of them has no words in the catalog."""
    names: list[str] = []
    for category in categories:
        name = CATEGORY_KEYS.get(category)
        if name is None:
            return None
        if name not in names:
            names.append(name)
    if not names:
        return None
    shown = msg(f"moderation.cat.{names[-1]}")
    for name in reversed(names[:-1]):
        shown = msg("moderation.list", first=msg(f"moderation.cat.{name}"), rest=shown)
    return shown


def reason_message(verdict: Verdict) -> Msg | None:
    """Why ``verdict`` refused, in the reader's language (None: show its plain reason)."""
    if verdict.category == "blocklist":
        return msg("moderation.blocked_term")
    if verdict.category == "unavailable":
        return msg("moderation.unavailable")
    what = categories_message(verdict.categories)
    return msg("moderation.looks_like", what=what) if what is not None else None


class Screener(Protocol):
    """Screens inputs before a job is priced, and outputs before delivery."""

    async def screen_input(self, prompt: str, images: tuple[InputImage, ...]) -> Verdict:
        """Screen a prompt and its reference images."""
        ...

    async def screen_output(self, data: bytes, content_type: str) -> Verdict:
        """Screen a generated image."""
        ...


class BlocklistScreener:
    """Refuses prompts that match the operator's block list (words or regular expressions).

    The model provider screens again on its side; its refusals cost nothing either.
    """

    def __init__(self, patterns: list[str] | None = None) -> None:
        self._patterns = [re.compile(p, re.IGNORECASE) for p in (patterns or []) if p.strip()]

    async def screen_input(self, prompt: str, images: tuple[InputImage, ...]) -> Verdict:
        """Refuse a prompt that matches the block list."""
        for pattern in self._patterns:
            if pattern.search(prompt):
                return Verdict(
                    False, "the prompt contains a blocked term", "blocklist", ("blocklist",)
                )
        return ALLOWED

    async def screen_output(self, data: bytes, content_type: str) -> Verdict:
        """Outputs pass (the provider screens its own outputs)."""
        return ALLOWED
