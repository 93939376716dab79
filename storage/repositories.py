"""SQL implementations of core's repository ports. None of them commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.repositories import (
    AccountRecord,
    ImageRecord,
    JobRecord,
    LedgerRecord,
    NewJob,
    UserRecord,
)
from core.types import UserSettingsView
from storage.models import (
    AgeRefusal,
    CreditAccount,
    Installation,
    Job,
    JobImage,
    LedgerEntry,
    User,
    UserSettings,
)

QUEUED = "queued"
RUNNING = "running"
DELIVERING = "delivering"

# The hot path (submit, claim, finish, deliver, the ledger's hold and capture) runs Core
# statements built once here, with bound parameters: no ORM loading, no statement built per
# call, and SQLAlchemy's compiled cache is hit on a key computed once per statement.
_users: Any = User.__table__
_settings: Any = UserSettings.__table__
_accounts: Any = CreditAccount.__table__
_ledger: Any = LedgerEntry.__table__
_jobs: Any = Job.__table__
_images: Any = JobImage.__table__

_FIND_USER = select(*_users.c).where(
    _users.c.platform == bindparam("p_platform"),
    _users.c.platform_user_id == bindparam("p_user"),
)
_FIND_USER_WITH_SETTINGS = (
    select(*_users.c, *(c.label(f"s_{c.name}") for c in _settings.c if c.name != "user_id"))
    .select_from(_users.outerjoin(_settings, _settings.c.user_id == _users.c.id))
    .where(
        _users.c.platform == bindparam("p_platform"),
        _users.c.platform_user_id == bindparam("p_user"),
    )
)
_GET_USER = select(*_users.c).where(_users.c.id == bindparam("p_id"))
_USER_SETTINGS = select(*_settings.c).where(_settings.c.user_id == bindparam("p_id"))
_TOUCH_USER = (
    update(_users)
    .where(_users.c.id == bindparam("p_id"))
    .values(
        display_name=bindparam("p_name"),
        locale=bindparam("p_locale"),
        last_seen_at=bindparam("p_now"),
    )
)

_ACCOUNT = select(*_accounts.c).where(_accounts.c.user_id == bindparam("p_user"))
_LOCK_ACCOUNT = (
    select(_accounts.c.user_id).where(_accounts.c.user_id == bindparam("p_user")).with_for_update()
)
_SPEND = (
    update(_accounts)
    .where(
        _accounts.c.user_id == bindparam("p_user"),
        _accounts.c.balance >= bindparam("p_amount"),
        _accounts.c.balance >= 0,
        _accounts.c.frozen.is_(False),
    )
    .values(
        balance=_accounts.c.balance - bindparam("p_amount"),
        held=_accounts.c.held + bindparam("p_amount"),
        updated_at=bindparam("p_now"),
    )
    .returning(_accounts.c.balance)
)
_CHANGE_BALANCE = (
    update(_accounts)
    .where(_accounts.c.user_id == bindparam("p_user"))
    .values(
        balance=_accounts.c.balance + bindparam("p_balance"),
        held=_accounts.c.held + bindparam("p_held"),
        updated_at=bindparam("p_now"),
    )
    .returning(_accounts.c.balance)
)
_HAS_ENTRY = select(_ledger.c.id).where(_ledger.c.idempotency_key == bindparam("p_key"))
_APPEND = {
    name: dialect.insert(_ledger)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_ledger.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
_unless_absent = (
    select(_ledger.c.id).where(_ledger.c.idempotency_key == bindparam("p_absent")).exists()
)
_APPEND_UNLESS = {
    name: dialect.insert(_ledger)
    .from_select(
        ["user_id", "kind", "amount", "idempotency_key", "job_id", "note", "created_at"],
        select(
            bindparam("p_user", type_=_ledger.c.user_id.type),
            bindparam("p_kind", type_=_ledger.c.kind.type),
            bindparam("p_amount", type_=_ledger.c.amount.type),
            bindparam("p_key", type_=_ledger.c.idempotency_key.type),
            bindparam("p_job", type_=_ledger.c.job_id.type),
            bindparam("p_note", type_=_ledger.c.note.type),
            bindparam("p_now", type_=_ledger.c.created_at.type),
        ).where(~_unless_absent),
    )
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_ledger.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}

_JOB_BY_KEY = select(*_jobs.c).where(_jobs.c.idempotency_key == bindparam("p_key"))
_JOB_BY_ID = select(*_jobs.c).where(_jobs.c.id == bindparam("p_id"))
_JOB_FOR_USER = select(*_jobs.c).where(
    _jobs.c.id == bindparam("p_id"), _jobs.c.user_id == bindparam("p_user")
)
_INSERT_JOB = {
    name: dialect.insert(_jobs)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_jobs.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
_mine = _jobs.c.user_id == bindparam("p_user")
_QUEUE_SLOT = select(
    func.min(_jobs.c.fair_seq),
    func.max(case((_mine, _jobs.c.fair_seq))),
    func.count(case((_mine, 1))),
).where(_jobs.c.state == QUEUED)
_POSITION = select(func.count()).where(
    _jobs.c.state == QUEUED,
    or_(
        _jobs.c.fair_seq < bindparam("p_seq"),
        and_(_jobs.c.fair_seq == bindparam("p_seq"), _jobs.c.created_at < bindparam("p_at")),
        and_(
            _jobs.c.fair_seq == bindparam("p_seq"),
            _jobs.c.created_at == bindparam("p_at"),
            _jobs.c.id < bindparam("p_id"),
        ),
    ),
)
_INSERT_IMAGE = _images.insert()
_ANY_QUEUED = select(_jobs.c.id).where(_jobs.c.state == QUEUED).limit(1)


def _claim_statement(postgres: bool) -> Any:
    busy_users = (
        select(_jobs.c.user_id)
        .where(_jobs.c.state == RUNNING)
        .group_by(_jobs.c.user_id)
        .having(func.count() >= bindparam("p_limit"))
    )
    pick = (
        select(_jobs.c.id)
        .where(
            _jobs.c.state == QUEUED,
            or_(_jobs.c.not_before.is_(None), _jobs.c.not_before <= bindparam("p_now")),
            _jobs.c.user_id.not_in(busy_users),
        )
        .order_by(_jobs.c.fair_seq, _jobs.c.created_at, _jobs.c.id)
        .limit(1)
    )
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    return (
        update(_jobs)
        .where(_jobs.c.id == pick.scalar_subquery(), _jobs.c.state == QUEUED)
        .values(
            state=RUNNING,
            updated_at=bindparam("p_now"),
            lease_owner=bindparam("p_owner"),
            lease_expires_at=bindparam("p_until"),
            attempts=_jobs.c.attempts + 1,
            started_at=bindparam("p_now"),
        )
        .returning(*_jobs.c)
    )


_CLAIM = {"sqlite": _claim_statement(False), "postgresql": _claim_statement(True)}
_TRANSITIONS: dict[tuple[bool, tuple[str, ...]], Any] = {}


def _transition_statement(with_owner: bool, fields: tuple[str, ...]) -> Any:
    """``UPDATE jobs`` from some states to one, with these extra columns: built once per
    shape (there are a handful), then reused."""
    key = (with_owner, fields)
    stmt = _TRANSITIONS.get(key)
    if stmt is None:
        conditions = [
            _jobs.c.id == bindparam("p_id"),
            _jobs.c.state.in_(bindparam("p_from", expanding=True)),
        ]
        if with_owner:
            conditions.append(_jobs.c.lease_owner == bindparam("p_owner"))
        values: dict[str, Any] = {"state": bindparam("p_to"), "updated_at": bindparam("p_now")}
        values.update({name: bindparam(f"f_{name}") for name in fields})
        stmt = _TRANSITIONS[key] = update(_jobs).where(*conditions).values(**values)
    return stmt


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None
    return bind.dialect.name


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """A dialect insert that supports ``on_conflict_do_nothing``."""
    if _dialect(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(session: AsyncSession) -> bool:
    return _dialect(session) == "postgresql"


def _user(row: Any) -> UserRecord:
    return UserRecord(
        id=row.id,
        platform=row.platform,
        platform_user_id=row.platform_user_id,
        display_name=row.display_name,
        locale=row.locale,
        created_at=row.created_at,
        terms_version=row.terms_version,
        age_confirmed_at=row.age_confirmed_at,
    )


def _job(row: Any) -> JobRecord:
    return JobRecord(
        id=row.id,
        user_id=row.user_id,
        idempotency_key=row.idempotency_key,
        kind=row.kind,
        state=row.state,
        prompt=row.prompt,
        options=dict(row.options),
        cost=row.cost,
        fair_seq=row.fair_seq,
        platform=row.platform,
        chat_id=row.chat_id,
        reply_target=dict(row.reply_target),
        parent_job_id=row.parent_job_id,
        attempts=row.attempts,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        error_code=row.error_code,
        error_message=row.error_message,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _image(row: JobImage) -> ImageRecord:
    return ImageRecord(
        job_id=row.job_id,
        user_id=row.user_id,
        role=row.role,
        idx=row.idx,
        path=row.path,
        content_type=row.content_type,
        width=row.width,
        height=row.height,
        size_bytes=row.size_bytes,
    )


class SqlUserRepository:
    """Users, settings and installation values."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get_or_create(
        self, platform: str, platform_user_id: str, display_name: str, locale: str, now: datetime
    ) -> tuple[UserRecord, bool]:
        """The user, created when new (a concurrent creation is not an error)."""
        existing = await self._find_row(platform, platform_user_id)
        if existing is not None:
            return _user(existing), False
        stmt = (
            dialect_insert(self.s, User)
            .values(
                platform=platform,
                platform_user_id=platform_user_id,
                display_name=display_name[:128],
                locale=locale[:16],
                created_at=now,
                last_seen_at=now,
            )
            .on_conflict_do_nothing(index_elements=["platform", "platform_user_id"])
            .returning(User.id)
        )
        created_id = (await self.s.execute(stmt)).scalar_one_or_none()
        row = await self._find_row(platform, platform_user_id)
        assert row is not None
        return _user(row), created_id is not None

    async def _find_row(self, platform: str, platform_user_id: str) -> Any:
        params = {"p_platform": platform, "p_user": platform_user_id}
        return (await self.s.execute(_FIND_USER, params)).first()

    async def get(self, user_id: int) -> UserRecord | None:
        """A user by id."""
        row = (await self.s.execute(_GET_USER, {"p_id": user_id})).first()
        return _user(row) if row else None

    async def find(self, platform: str, platform_user_id: str) -> UserRecord | None:
        """A user by platform identity."""
        row = await self._find_row(platform, platform_user_id)
        return _user(row) if row else None

    async def find_with_settings(
        self, platform: str, platform_user_id: str
    ) -> tuple[UserRecord | None, UserSettingsView]:
        """A user by platform identity and their defaults, in one query."""
        params = {"p_platform": platform, "p_user": platform_user_id}
        row = (await self.s.execute(_FIND_USER_WITH_SETTINGS, params)).first()
        if row is None:
            return None, UserSettingsView()
        return _user(row), UserSettingsView(
            size=row.s_size,
            quality=row.s_quality,
            output_format=row.s_output_format,
            background=row.s_background,
            n=row.s_n,
            model=row.s_model,
            language=row.s_language,
        )

    async def touch(self, user_id: int, display_name: str, locale: str, now: datetime) -> None:
        """Refresh the profile fields from the platform."""
        await self.s.execute(
            _TOUCH_USER,
            {"p_id": user_id, "p_name": display_name[:128], "p_locale": locale[:16], "p_now": now},
        )

    async def settings(self, user_id: int) -> UserSettingsView:
        """The user's defaults."""
        row = (await self.s.execute(_USER_SETTINGS, {"p_id": user_id})).first()
        if row is None:
            return UserSettingsView()
        return UserSettingsView(
            size=row.size,
            quality=row.quality,
            output_format=row.output_format,
            background=row.background,
            n=row.n,
            model=row.model,
            language=row.language,
        )

    async def save_settings(self, user_id: int, settings: UserSettingsView) -> None:
        """Replace the user's defaults."""
        values = {
            "size": settings.size,
            "quality": settings.quality,
            "output_format": settings.output_format,
            "background": settings.background,
            "n": settings.n,
            "model": settings.model,
            "language": settings.language,
        }
        stmt = (
            dialect_insert(self.s, UserSettings)
            .values(user_id=user_id, **values)
            .on_conflict_do_update(index_elements=["user_id"], set_=values)
        )
        await self.s.execute(stmt)

    async def move_model(self, old: str, new: str) -> list[tuple[str, str]]:
        """Move every saved model choice ``old`` to ``new``; the users moved.

        ``UPDATE ... RETURNING``: when two processes move at once, the second one's update
        finds no row left (PostgreSQL re-checks the condition after the first commits), so
        each user is moved, and told, once.
        """
        moved = (
            (
                await self.s.execute(
                    update(UserSettings)
                    .where(UserSettings.model == old)
                    .values(model=new)
                    .returning(UserSettings.user_id)
                )
            )
            .scalars()
            .all()
        )
        if not moved:
            return []
        rows = (
            await self.s.execute(
                select(User.platform, User.platform_user_id)
                .where(User.id.in_(moved))
                .order_by(User.id)
            )
        ).all()
        return [(str(p), str(u)) for p, u in rows]

    async def installation_value(self, key: str, default: str) -> str:
        """A per-installation value, stored on first use."""
        stmt = (
            dialect_insert(self.s, Installation)
            .values(key=key, value=default)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        await self.s.execute(stmt)
        row = await self.s.get(Installation, key)
        assert row is not None
        return row.value

    async def accept_terms(self, user_id: int, version: str, now: datetime) -> None:
        """Record the accepted policy version and the age confirmation."""
        await self.s.execute(
            update(User)
            .where(User.id == user_id)
            .values(terms_version=version, terms_accepted_at=now, age_confirmed_at=now)
        )

    async def add_refusal_marker(self, marker: str, now: datetime) -> None:
        """Keep the keyed hash of a refused identity."""
        stmt = (
            dialect_insert(self.s, AgeRefusal)
            .values(marker=marker, created_at=now)
            .on_conflict_do_nothing(index_elements=["marker"])
        )
        await self.s.execute(stmt)

    async def has_refusal_marker(self, marker: str) -> bool:
        """True when the identity was refused before."""
        return await self.s.get(AgeRefusal, marker) is not None

    async def delete(self, user_id: int) -> None:
        """Delete the user; foreign keys cascade to everything that names them."""
        await self.s.execute(delete(User).where(User.id == user_id))


class SqlLedgerRepository:
    """Accounts and ledger rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def ensure_account(self, user_id: int, now: datetime) -> None:
        """Create an empty account if missing."""
        stmt = (
            dialect_insert(self.s, CreditAccount)
            .values(user_id=user_id, balance=0, held=0, frozen=False, updated_at=now)
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        await self.s.execute(stmt)

    async def account(self, user_id: int) -> AccountRecord | None:
        """The account of a user."""
        row = (await self.s.execute(_ACCOUNT, {"p_user": user_id})).first()
        if row is None:
            return None
        return AccountRecord(row.user_id, row.balance, row.held, row.frozen)

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
        """Insert unless the key exists."""
        values = {
            "user_id": user_id,
            "kind": kind,
            "amount": amount,
            "idempotency_key": idempotency_key,
            "job_id": job_id,
            "note": note[:200],
            "created_at": now,
        }
        result = await self.s.execute(_APPEND[_dialect(self.s)], values)
        return result.first() is not None

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
        """Insert unless the key exists or a row keyed ``absent`` does, in one statement."""
        params = {
            "p_absent": absent,
            "p_user": user_id,
            "p_kind": kind,
            "p_amount": amount,
            "p_key": idempotency_key,
            "p_job": job_id,
            "p_note": note[:200],
            "p_now": now,
        }
        result = await self.s.execute(_APPEND_UNLESS[_dialect(self.s)], params)
        return result.first() is not None

    async def change_balance(
        self, user_id: int, *, balance_delta: int, held_delta: int, now: datetime
    ) -> int:
        """Unconditional movement; returns the new balance."""
        params = {"p_user": user_id, "p_balance": balance_delta, "p_held": held_delta, "p_now": now}
        return int((await self.s.execute(_CHANGE_BALANCE, params)).scalar_one())

    async def lock_account(self, user_id: int) -> None:
        """PostgreSQL: lock the account row for the rest of the transaction."""
        if is_postgres(self.s):
            await self.s.execute(_LOCK_ACCOUNT, {"p_user": user_id})

    async def spend(self, user_id: int, amount: int, now: datetime) -> int | None:
        """One atomic conditional update: the database decides, not a prior read."""
        params = {"p_user": user_id, "p_amount": amount, "p_now": now}
        balance = (await self.s.execute(_SPEND, params)).scalar_one_or_none()
        return None if balance is None else int(balance)

    async def has_entry(self, idempotency_key: str) -> bool:
        """True when a row with this key exists."""
        return (await self.s.execute(_HAS_ENTRY, {"p_key": idempotency_key})).first() is not None

    async def recent(self, user_id: int, limit: int) -> list[LedgerRecord]:
        """Newest rows first."""
        stmt = (
            select(LedgerEntry)
            .where(LedgerEntry.user_id == user_id)
            .order_by(LedgerEntry.id.desc())
            .limit(limit)
        )
        rows = (await self.s.execute(stmt)).scalars().all()
        return [
            LedgerRecord(
                r.id,
                r.user_id,
                r.kind,
                r.amount,
                r.idempotency_key,
                r.job_id,
                r.note,
                r.created_at,
            )
            for r in rows
        ]

    async def sum_for(self, user_id: int) -> int:
        """Sum of a user's ledger."""
        stmt = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.user_id == user_id
        )
        return int((await self.s.execute(stmt)).scalar_one())

    async def set_frozen(self, user_id: int, frozen: bool, now: datetime) -> None:
        """Freeze or unfreeze an account (``try_spend`` refuses frozen accounts)."""
        await self.s.execute(
            update(CreditAccount)
            .where(CreditAccount.user_id == user_id)
            .values(frozen=frozen, updated_at=now)
            .execution_options(synchronize_session=False)
        )


class SqlJobRepository:
    """Jobs, images and the fair queue."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def insert(self, job: NewJob, fair_seq: int) -> bool:
        """Insert unless the idempotency key exists."""
        values = {
            "id": job.id,
            "user_id": job.user_id,
            "idempotency_key": job.idempotency_key,
            "kind": job.kind,
            "state": job.state,
            "prompt": job.prompt,
            "options": job.options,
            "cost": job.cost,
            "fair_seq": fair_seq,
            "platform": job.platform,
            "chat_id": job.chat_id,
            "group_id": job.group_id,
            "reply_target": job.reply_target,
            "parent_job_id": job.parent_job_id,
            "attempts": 0,
            "created_at": job.created_at,
            "updated_at": job.created_at,
        }
        result = await self.s.execute(_INSERT_JOB[_dialect(self.s)], values)
        return result.first() is not None

    async def _one(self, stmt: Any, params: dict[str, Any]) -> JobRecord | None:
        row = (await self.s.execute(stmt, params)).first()
        return _job(row) if row is not None else None

    async def by_key(self, idempotency_key: str) -> JobRecord | None:
        """The job made for an event id."""
        return await self._one(_JOB_BY_KEY, {"p_key": idempotency_key})

    async def get(self, job_id: str) -> JobRecord | None:
        """A job by id."""
        return await self._one(_JOB_BY_ID, {"p_id": job_id})

    async def get_for_user(self, job_id: str, user_id: int) -> JobRecord | None:
        """A job only when owned by ``user_id``."""
        return await self._one(_JOB_FOR_USER, {"p_id": job_id, "p_user": user_id})

    async def queue_slot(self, user_id: int) -> tuple[int, int]:
        """(the user's queued jobs, fair rank for a new one) in one query.

        Virtual time: a new job ranks after the user's last queued job, but never before
        the lowest rank still queued, so every user gets one turn per round.
        """
        floor, own, count = (await self.s.execute(_QUEUE_SLOT, {"p_user": user_id})).one()
        rank = max(int(floor or 0), int(own) + 1 if own is not None else 0)
        return int(count or 0), rank

    async def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to run."""
        job = (
            await self.s.execute(
                select(Job.fair_seq, Job.created_at, Job.id, Job.state).where(Job.id == job_id)
            )
        ).first()
        if job is None or job.state != QUEUED:
            return None
        return await self.position_of(job.fair_seq, job.created_at, job.id)

    async def position_of(self, fair_seq: int, created_at: datetime, job_id: str) -> int:
        """How many queued jobs come before these keys, plus one."""
        params = {"p_seq": fair_seq, "p_at": created_at, "p_id": job_id}
        return int((await self.s.execute(_POSITION, params)).scalar_one()) + 1

    async def add_image(self, image: ImageRecord, now: datetime) -> None:
        """Record a stored image."""
        await self.add_images([image], now)

    async def add_images(self, images: list[ImageRecord], now: datetime) -> None:
        """Record stored images in one statement."""
        if not images:
            return
        rows = [
            {
                "job_id": image.job_id,
                "user_id": image.user_id,
                "role": image.role,
                "idx": image.idx,
                "path": image.path,
                "content_type": image.content_type,
                "width": image.width,
                "height": image.height,
                "size_bytes": image.size_bytes,
                "created_at": now,
            }
            for image in images
        ]
        await self.s.execute(_INSERT_IMAGE, rows if len(rows) > 1 else rows[0])

    async def images(self, job_id: str, role: str | None = None) -> list[ImageRecord]:
        """Images of a job in order."""
        stmt = select(JobImage).where(JobImage.job_id == job_id)
        if role is not None:
            stmt = stmt.where(JobImage.role == role)
        stmt = stmt.order_by(JobImage.role, JobImage.idx)
        return [_image(r) for r in (await self.s.execute(stmt)).scalars().all()]

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
        """Conditional state change; the WHERE clause makes double transitions impossible."""
        extra = fields or {}
        names = tuple(sorted(extra))
        stmt = _transition_statement(lease_owner is not None, names)
        params: dict[str, Any] = {
            "p_id": job_id,
            "p_from": [str(state) for state in from_states],
            "p_to": str(to_state),
            "p_now": now,
            **{f"f_{name}": extra[name] for name in names},
        }
        if lease_owner is not None:
            params["p_owner"] = lease_owner
        result = await self.s.execute(stmt, params)
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def claim_next(
        self, owner: str, now: datetime, lease_until: datetime, per_user_limit: int
    ) -> JobRecord | None:
        """Fair claim in one statement: lowest virtual time first, skipping users at their
        running limit, leased to ``owner``.

        On PostgreSQL the chosen row is locked with SKIP LOCKED so many workers never take
        the same job; on SQLite the unit of work already holds the write lock. The state
        check in the UPDATE keeps a claim exclusive either way.
        """
        params = {"p_limit": per_user_limit, "p_now": now, "p_owner": owner, "p_until": lease_until}
        row = (await self.s.execute(_CLAIM[_dialect(self.s)], params)).first()
        return _job(row) if row is not None else None

    async def any_queued(self) -> bool:
        """True when some job is queued (claimable now or not)."""
        return (await self.s.execute(_ANY_QUEUED)).first() is not None

    async def renew_leases(self, owner: str, job_ids: list[str], lease_until: datetime) -> None:
        """Heartbeat for running jobs."""
        if not job_ids:
            return
        await self.s.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.lease_owner == owner, Job.state.in_((RUNNING,)))
            .values(lease_expires_at=lease_until)
            .execution_options(synchronize_session=False)
        )

    async def stale(self, now: datetime, include_unexpired: bool) -> list[JobRecord]:
        """Jobs left running or delivering by a process that stopped."""
        stmt = select(Job).where(Job.state.in_((RUNNING, DELIVERING)))
        if not include_unexpired:
            stmt = stmt.where(or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now))
        stmt = stmt.order_by(Job.created_at).execution_options(populate_existing=True)
        rows = (await self.s.execute(stmt)).scalars().all()
        return [_job(r) for r in rows]

    async def page_for_user(
        self, user_id: int, offset: int, limit: int
    ) -> tuple[list[JobRecord], int]:
        """A page of a user's jobs, newest first."""
        total = int(
            (await self.s.execute(select(func.count()).where(Job.user_id == user_id))).scalar_one()
        )
        stmt = (
            select(Job)
            .where(Job.user_id == user_id)
            .order_by(Job.created_at.desc(), Job.id.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = (await self.s.execute(stmt)).scalars().all()
        return [_job(r) for r in rows], total

    async def count_by_state(self) -> dict[str, int]:
        """Jobs per state."""
        stmt = select(Job.state, func.count()).group_by(Job.state)
        return {state: int(n) for state, n in (await self.s.execute(stmt)).all()}

    async def delete(self, job_id: str) -> None:
        """Delete a job and its image rows."""
        await self.s.execute(delete(JobImage).where(JobImage.job_id == job_id))
        await self.s.execute(delete(Job).where(Job.id == job_id))

    async def active_for_user(self, user_id: int) -> list[JobRecord]:
        """Queued, running or delivering jobs of a user."""
        stmt = (
            select(Job)
            .where(Job.user_id == user_id, Job.state.in_((QUEUED, RUNNING, DELIVERING)))
            .execution_options(populate_existing=True)
        )
        return [_job(r) for r in (await self.s.execute(stmt)).scalars().all()]
