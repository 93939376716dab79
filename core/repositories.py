"""Repository ports and the records they return; ``storage/`` implements them.

Repositories never commit: a use case opens one :class:`UnitOfWork`, calls them, and
commits once, so every change of a use case is one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Self

from core.types import UserSettingsView

if TYPE_CHECKING:
    # The unit of work gathers every area's repository port; the kernel names them for
    # typing only, so no area is imported at run time.
    from core.billing import BillingRepository
    from core.generation import GalleryRepository
    from core.privacy import PrivacyRepository
    from core.safety import SafetyRepository, UpdateRepository


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A stored user."""

    id: int
    platform: str
    platform_user_id: str
    display_name: str
    locale: str
    created_at: datetime
    terms_version: str | None = None
    age_confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """A credit account: spendable balance, credits held by jobs, and the freeze flag."""

    user_id: int
    balance: int
    held: int
    frozen: bool


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One ledger row; ``user_id`` is None once the person was erased (kept for tax)."""

    id: int
    user_id: int | None
    kind: str
    amount: int
    idempotency_key: str
    job_id: str | None
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """A stored image of a job (``role``: input, mask or output)."""

    job_id: str
    user_id: int
    role: str
    idx: int
    path: str
    content_type: str
    width: int
    height: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A stored job."""

    id: str
    user_id: int
    idempotency_key: str
    kind: str
    state: str
    prompt: str
    options: dict[str, Any]
    cost: int
    fair_seq: int
    platform: str
    chat_id: str
    reply_target: dict[str, Any]
    parent_job_id: str | None
    attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a submit inserts."""

    id: str
    user_id: int
    idempotency_key: str
    kind: str
    state: str
    prompt: str
    options: dict[str, Any]
    cost: int
    platform: str
    chat_id: str
    reply_target: dict[str, Any]
    parent_job_id: str | None
    created_at: datetime
    group_id: str | None = None


class UserRepository(Protocol):
    """Users and their settings."""

    async def get_or_create(
        self, platform: str, platform_user_id: str, display_name: str, locale: str, now: datetime
    ) -> tuple[UserRecord, bool]:
        """The user, created when new; True when this call created it (races included)."""
        ...

    async def get(self, user_id: int) -> UserRecord | None:
        """A user by id."""
        ...

    async def find(self, platform: str, platform_user_id: str) -> UserRecord | None:
        """A user by platform identity."""
        ...

    async def find_with_settings(
        self, platform: str, platform_user_id: str
    ) -> tuple[UserRecord | None, UserSettingsView]:
        """A user by platform identity and their defaults, in one query (empty defaults
        for an unknown user)."""
        ...

    async def touch(self, user_id: int, display_name: str, locale: str, now: datetime) -> None:
        """Refresh the profile fields the platform gave with the latest command."""
        ...

    async def settings(self, user_id: int) -> UserSettingsView:
        """The user's defaults (empty when never set)."""
        ...

    async def save_settings(self, user_id: int, settings: UserSettingsView) -> None:
        """Replace the user's defaults."""
        ...

    async def move_model(self, old: str, new: str) -> list[tuple[str, str]]:
        """Move every saved model choice ``old`` to ``new``; the (platform, platform user
        id) of each user moved."""
        ...

    async def installation_value(self, key: str, default: str) -> str:
        """A per-installation value, stored as ``default`` on first use."""
        ...

    async def accept_terms(self, user_id: int, version: str, now: datetime) -> None:
        """Record that the user accepted policy ``version`` and confirmed their age."""
        ...

    async def add_refusal_marker(self, marker: str, now: datetime) -> None:
        """Remember a refused (under-age) identity by its keyed hash."""
        ...

    async def has_refusal_marker(self, marker: str) -> bool:
        """True when this keyed hash was refused before."""
        ...

    async def delete(self, user_id: int) -> None:
        """Delete the user row; every row that references it goes with it."""
        ...


class LedgerRepository(Protocol):
    """Credit accounts and the append-only ledger."""

    async def ensure_account(self, user_id: int, now: datetime) -> None:
        """Create an empty account if there is none."""
        ...

    async def account(self, user_id: int) -> AccountRecord | None:
        """The account of a user."""
        ...

    async def append(
        self,
        *,
        user_id: int,
        kind: str,
        amount: int,
        idempotency_key: str,
        job_id: str | None,
        note: str,
        now: datetime,
    ) -> bool:
        """Insert a ledger row unless its key exists; True when inserted."""
        ...

    async def append_unless(
        self,
        *,
        absent: str,
        user_id: int,
        kind: str,
        amount: int,
        idempotency_key: str,
        job_id: str | None,
        note: str,
        now: datetime,
    ) -> bool:
        """Like :meth:`append`, but also not when a row keyed ``absent`` exists (one
        statement: the check and the insert cannot be told apart by a concurrent writer
        that holds the same row locks)."""
        ...

    async def change_balance(
        self, user_id: int, *, balance_delta: int, held_delta: int, now: datetime
    ) -> int:
        """Apply a movement to the account unconditionally (grants, releases, money
        events); returns the new balance."""
        ...

    async def lock_account(self, user_id: int) -> None:
        """Serialise this user's concurrent submits until the transaction ends (their fair
        ranks must not be read at the same moment); a no-op where the unit of work already
        holds the database's write lock (SQLite)."""
        ...

    async def spend(self, user_id: int, amount: int, now: datetime) -> int | None:
        """Move ``amount`` from balance to held in one conditional update.

        Returns the new balance when the account had at least ``amount``, was not frozen
        and not negative, else None; never takes a balance below zero, whatever runs
        concurrently.
        """
        ...

    async def has_entry(self, idempotency_key: str) -> bool:
        """True when a row with this key exists."""
        ...

    async def recent(self, user_id: int, limit: int) -> list[LedgerRecord]:
        """The newest rows of a user."""
        ...

    async def sum_for(self, user_id: int) -> int:
        """The sum of a user's ledger rows."""
        ...

    async def set_frozen(self, user_id: int, frozen: bool, now: datetime) -> None:
        """Freeze (no spending at all) or unfreeze an account, e.g. during a dispute."""
        ...


class JobRepository(Protocol):
    """Jobs, their images, and the queue."""

    async def insert(self, job: NewJob, fair_seq: int) -> bool:
        """Insert unless the idempotency key exists; True when inserted."""
        ...

    async def by_key(self, idempotency_key: str) -> JobRecord | None:
        """The job made for an event id."""
        ...

    async def get(self, job_id: str) -> JobRecord | None:
        """A job by id."""
        ...

    async def get_for_user(self, job_id: str, user_id: int) -> JobRecord | None:
        """A job by id only when ``user_id`` owns it."""
        ...

    async def queue_slot(self, user_id: int) -> tuple[int, int]:
        """(jobs of this user waiting, fair-queue rank for a new job of this user).

        The rank is virtual time per user: one round per user, so one user's many jobs
        never starve another user's one.
        """
        ...

    async def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to run; None when the job is not queued."""
        ...

    async def position_of(self, fair_seq: int, created_at: datetime, job_id: str) -> int:
        """The queue position a queued job with these keys has (1 = next)."""
        ...

    async def add_image(self, image: ImageRecord, now: datetime) -> None:
        """Record a stored image of a job."""
        ...

    async def add_images(self, images: list[ImageRecord], now: datetime) -> None:
        """Record several stored images of a job at once."""
        ...

    async def images(self, job_id: str, role: str | None = None) -> list[ImageRecord]:
        """The images of a job, in order."""
        ...

    async def transition(
        self,
        job_id: str,
        from_states: tuple[str, ...],
        to_state: str,
        now: datetime,
        *,
        lease_owner: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> bool:
        """Move a job between states only if it is in ``from_states`` (and, when given,
        leased by ``lease_owner``); True when this call moved it."""
        ...

    async def claim_next(
        self, owner: str, now: datetime, lease_until: datetime, per_user_limit: int
    ) -> JobRecord | None:
        """Take the next queued job fairly and lease it to ``owner`` (state running)."""
        ...

    async def any_queued(self) -> bool:
        """True when some job is queued (claimable now or not)."""
        ...

    async def renew_leases(self, owner: str, job_ids: list[str], lease_until: datetime) -> None:
        """Extend the leases of running jobs (the heartbeat)."""
        ...

    async def stale(self, now: datetime, include_unexpired: bool) -> list[JobRecord]:
        """Jobs left running or delivering: lease expired, or all of them."""
        ...

    async def page_for_user(
        self, user_id: int, offset: int, limit: int
    ) -> tuple[list[JobRecord], int]:
        """A page of a user's jobs, newest first, and the total count."""
        ...

    async def count_by_state(self) -> dict[str, int]:
        """How many jobs are in each state."""
        ...

    async def delete(self, job_id: str) -> None:
        """Delete a job and its image rows (files are the caller's)."""
        ...

    async def active_for_user(self, user_id: int) -> list[JobRecord]:
        """The user's jobs that are queued, running or delivering."""
        ...


class UnitOfWork(Protocol):
    """One transaction across every repository; rolls back unless committed.

    The repositories are read-only members (properties), so an implementation may hold
    its own concrete repository types: a plain attribute in a protocol would have to be
    exactly the port's type.
    """

    @property
    def users(self) -> UserRepository:
        """Users."""
        ...

    @property
    def ledger(self) -> LedgerRepository:
        """The credit ledger."""
        ...

    @property
    def jobs(self) -> JobRepository:
        """Jobs."""
        ...

    @property
    def billing(self) -> BillingRepository:
        """Purchases, plans and checkout state."""
        ...

    @property
    def privacy(self) -> PrivacyRepository:
        """Privacy requests, consents, messages, the audit log."""
        ...

    @property
    def safety(self) -> SafetyRepository:
        """Bans, strikes, rate buckets, reviews, chat controls."""
        ...

    @property
    def updates(self) -> UpdateRepository:
        """Platform updates already seen."""
        ...

    @property
    def gallery(self) -> GalleryRepository:
        """Gallery sign-in links and sessions."""
        ...

    async def __aenter__(self) -> Self:
        """Begin."""
        ...

    async def __aexit__(self, *exc: object) -> None:
        """Roll back what was not committed."""
        ...

    async def commit(self) -> None:
        """Commit the transaction."""
        ...


class UnitOfWorkFactory(Protocol):
    """Makes a fresh unit of work per use case."""

    def __call__(self) -> UnitOfWork:
        """A new unit of work (enter it with ``async with``)."""
        ...
