"""Ports of the generation area: what an image model must offer the worker.

``core/generation/providers`` implements them (the OpenAI Images client and the demo model).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

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


# --- the gallery's storage ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GalleryRow:
    """One stored output of a finished job, with what the gallery shows beside it."""

    job_id: str
    index: int
    path: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    prompt: str
    options: dict[str, Any]
    cost: int
    kind: str
    created_at: datetime
    outputs: int
    """How many outputs the job has (a delete removes them all)."""


class GalleryRepository(Protocol):
    """The gallery's queries (outputs of succeeded jobs, newest first), its sign-in links
    and its web sessions. Secrets are stored only as hashes."""

    async def outputs(
        self, user_id: int, offset: int, limit: int, job_ids: list[str] | None = None
    ) -> tuple[list[GalleryRow], int]:
        """A page of the user's outputs (only of ``job_ids`` when given) and their total."""
        ...

    async def prompts(self, user_id: int) -> list[tuple[str, str]]:
        """(job id, prompt) of the user's succeeded jobs, newest first (for the text filter,
        done in Python because prompts may be encrypted at rest)."""
        ...

    async def output(self, user_id: int, job_id: str, index: int) -> GalleryRow | None:
        """One output of one of the user's succeeded jobs; None when not theirs."""
        ...

    async def add_sign_in(
        self, token_hash: str, user_id: int, now: datetime, expires_at: datetime
    ) -> None:
        """Record an issued sign-in link."""
        ...

    async def use_sign_in(self, token_hash: str, now: datetime) -> int | None:
        """Mark an unexpired, unused link used; the user id when this call used it."""
        ...

    async def add_session(
        self, session_hash: str, user_id: int, via: str, now: datetime, expires_at: datetime
    ) -> None:
        """Record a signed-in browser."""
        ...

    async def session(self, session_hash: str, now: datetime) -> tuple[int, str] | None:
        """(user id, via) of an unexpired session."""
        ...

    async def end_session(self, session_hash: str) -> None:
        """Forget one session (sign-out)."""
        ...

    async def purge_expired(self, now: datetime) -> int:
        """Delete expired sessions and links; how many rows went."""
        ...
