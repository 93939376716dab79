"""Ports of the generation area: what an image model must offer the worker.

``core/generation/providers`` implements them (the OpenAI Images client and the demo model).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from core.types import InputImage, ResolvedOptions

# --- the image model ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelCall:
    """Everything sent to the model for one job (P21: a pseudonymous user hash only)."""

    prompt: str
    options: ResolvedOptions
    user_hash: str
    inputs: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    stream_partials: int = 0


@dataclass(frozen=True, slots=True)
class ModelPartial:
    """A streamed preview."""

    index: int
    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class ModelImage:
    """A finished image as returned by the model."""

    data: bytes
    content_type: str


ModelEvent = ModelPartial | ModelImage


@dataclass(frozen=True, slots=True)
class ModelLookup:
    """What a provider said about one model (``GET /v1/models/{model}``)."""

    known: bool | None
    """False: the provider does not know it (404); None: the check itself failed."""
    shutdown_date: date | None = None


class ModelDirectory(Protocol):
    """A provider that can say which models it serves (OpenAI-compatible ones can)."""

    async def lookup(self, models: Iterable[str]) -> dict[str, ModelLookup]:
        """What the provider says about each of ``models``; never raises for its errors."""
        ...


class ImageModel(Protocol):
    """A text-to-image and image-editing model."""

    name: str
    """Short provider name for logs and replies (``openai``, ``demo``)."""

    notice: str
    """A note added to every reply it produces (the demo model labels itself); may be empty."""

    def run(self, call: ModelCall) -> AsyncIterator[ModelEvent]:
        """Generate (no inputs) or edit (inputs), yielding partials then every final image.

        Raises :class:`core.errors.ContentRefused` for a safety refusal,
        :class:`core.errors.ProviderRejected` for an invalid request and
        :class:`core.errors.ProviderUnavailable` once retries are spent.
        """
        ...

    async def check(self) -> str | None:
        """Check that the configured model exists; return a warning, or None if fine."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
