"""Safety screening of prompts and reference images before any credit moves (P16)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

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
