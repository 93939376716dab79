"""Records and the repository port for safety data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Standing:
    """Strikes and bans of a user."""

    strikes: int = 0
    banned_until: datetime | None = None
    banned_forever: bool = False
    ban_reason: str = ""

    def banned_at(self, now: datetime) -> bool:
        """True when the user may not generate at ``now``."""
        return self.banned_forever or (self.banned_until is not None and self.banned_until > now)


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """An item in the review queue."""

    id: int
    user_id: int
    job_id: str
    kind: str
    categories: dict[str, Any]
    path: str | None
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ChatControlRecord:
    """A chat's own switches."""

    enabled: bool = True
    allowed_channels: tuple[str, ...] = ()
    daily_cap_per_member: int | None = None
    requests_per_minute: int | None = None
    """The chat's own cap on requests a minute, all members together (None: no cap
    beyond the operator's IMAGEBOT_RATE_CHAT_PLATFORMS)."""
    language: str | None = None
    """The server language for server-wide notices (None: the bot's default)."""


class SafetyRepository(Protocol):
    """Storage of rate buckets, standing, the review queue and chat controls."""

    async def take_token(
        self, key: str, capacity: float, per_second: float, now: datetime, count: int = 1
    ) -> float:
        """Take ``count`` tokens from the bucket ``key`` (all or none); 0 when taken, else
        seconds to wait."""
        ...

    async def standing(self, user_id: int) -> Standing:
        """The user's strikes and bans."""
        ...

    async def save_standing(self, user_id: int, standing: Standing, now: datetime) -> None:
        """Replace the user's standing."""
        ...

    async def add_review(
        self,
        *,
        user_id: int,
        job_id: str,
        kind: str,
        categories: dict[str, Any],
        path: str | None,
        now: datetime,
    ) -> int:
        """Queue an item for review; returns its id."""
        ...

    async def reviews(self, status: str, limit: int) -> list[ReviewRecord]:
        """Items with ``status``, oldest first."""
        ...

    async def review(self, review_id: int) -> ReviewRecord | None:
        """One item."""
        ...

    async def decide_review(self, review_id: int, status: str, by: str, now: datetime) -> bool:
        """Close an open item as approved or dismissed; True when it was open."""
        ...

    async def chat_control(self, platform: str, chat_id: str) -> ChatControlRecord:
        """A chat's switches (defaults when never set)."""
        ...

    async def save_chat_control(
        self, platform: str, chat_id: str, control: ChatControlRecord, now: datetime
    ) -> None:
        """Replace a chat's switches."""
        ...

    async def jobs_today(self, user_id: int, platform: str, chat_id: str, since: datetime) -> int:
        """Jobs a user made in one chat since ``since`` (for the per-member daily cap)."""
        ...


class UpdateRepository(Protocol):
    """Platform update ids already handled."""

    async def first_time(self, key: str, now: datetime) -> bool:
        """Record ``key``; True when it was not recorded before."""
        ...
