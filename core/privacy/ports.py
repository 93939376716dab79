"""Records and the repository port for privacy data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A user's switches: model improvement, product updates, usage analytics."""

    training_opt_in: bool
    product_updates: bool
    usage_analytics: bool
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class PrivacyRequestRecord:
    """One logged privacy request."""

    id: int
    kind: str
    status: str
    reason: str
    received_at: datetime
    completed_at: datetime | None
    appeal_status: str | None
    appeal_text: str | None


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A /feedback or /support message."""

    id: int
    user_id: int
    kind: str
    text: str
    created_at: datetime
    reply_text: str | None
    replied_at: datetime | None


class PrivacyRepository(Protocol):
    """Storage of privacy data, and the schema walks behind export and erasure."""

    async def consents(self, user_id: int) -> ConsentRecord:
        """The user's switches (all off when never set)."""
        ...

    async def set_consent(self, user_id: int, name: str, value: bool, now: datetime) -> None:
        """Change one switch."""
        ...

    async def users_with_consent(self, name: str, after_id: int, limit: int) -> list[int]:
        """Users who turned ``name`` on, paged by id."""
        ...

    async def add_request(
        self,
        *,
        user_id: int | None,
        subject_hash: str,
        kind: str,
        status: str,
        reason: str,
        now: datetime,
        completed: bool,
    ) -> int:
        """Log a request; returns its id."""
        ...

    async def requests_for(self, subject_hash: str) -> list[PrivacyRequestRecord]:
        """A person's requests, newest first."""
        ...

    async def appeal(self, request_id: int, subject_hash: str, text_: str, now: datetime) -> bool:
        """Appeal a refused request; True when recorded."""
        ...

    async def open_appeals(self) -> list[PrivacyRequestRecord]:
        """Appeals waiting for an operator."""
        ...

    async def request(self, request_id: int) -> tuple[PrivacyRequestRecord, int | None] | None:
        """One request and the id of the user it belongs to (None once erased)."""
        ...

    async def decide_appeal(self, request_id: int, decision: str) -> bool:
        """Close an open appeal as ``granted`` or ``denied``; False when it was not open
        (decided meanwhile, or never appealed)."""
        ...

    async def add_feedback(self, user_id: int, kind: str, text_: str, now: datetime) -> int:
        """Store a message; returns its id."""
        ...

    async def feedback(self, message_id: int) -> FeedbackRecord | None:
        """One message."""
        ...

    async def reply_feedback(self, message_id: int, text_: str, now: datetime) -> None:
        """Record an operator's answer."""
        ...

    async def audit(
        self,
        *,
        actor: str,
        action: str,
        subject_user_id: int | None,
        subject_hash: str | None,
        reason: str,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        """Append to the audit log."""
        ...

    async def rows_for_user(self, user_id: int) -> dict[str, list[dict[str, Any]]]:
        """Every stored row about the user, by table."""
        ...

    async def erase_user(self, user_id: int, subject_hash: str) -> dict[str, int]:
        """Delete the user and what cascades; unlink what is kept. Row counts by table."""
        ...
