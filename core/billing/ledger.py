"""The credit ledger: grants, holds, captures and releases, each exactly once.

Invariants (DESIGN.md): every movement is a ledger row with a unique idempotency key;
the account's ``balance`` equals the sum of the user's ledger rows at every commit; no
spend takes a balance below zero (the conditional update in ``spend`` decides, never
a read followed by a write). Amounts: ``grant``/``purchase``/``release`` are positive,
``hold`` is negative (credits leave the spendable balance), ``capture`` is zero (the
hold becomes final), money movements (``refund``, ``dispute``, ``adjust``) may be either.
"""

from __future__ import annotations

from datetime import datetime

from core.errors import InsufficientCredits, InvalidRequest, NotFound, SpendingBlocked
from core.i18n import msg
from core.ports import Clock
from core.repositories import UnitOfWork, UnitOfWorkFactory
from core.types import Actor, BalanceView, LedgerLine, PlanView

SPEND_KINDS = ("hold", "capture", "release")


class CreditLedger:
    """Ledger operations inside a caller's unit of work (they never commit)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def grant(
        self,
        uow: UnitOfWork,
        user_id: int,
        amount: int,
        *,
        key: str,
        kind: str = "grant",
        note: str = "",
    ) -> bool:
        """Add (or, for money movements, take) credits once per ``key``; True when applied."""
        now = self.clock.now()
        await uow.ledger.ensure_account(user_id, now)
        inserted = await uow.ledger.append(
            user_id=user_id,
            kind=kind,
            amount=amount,
            idempotency_key=key,
            job_id=None,
            note=note,
            now=now,
        )
        if inserted:
            await uow.ledger.change_balance(user_id, balance_delta=amount, held_delta=0, now=now)
        return inserted

    async def hold(self, uow: UnitOfWork, user_id: int, amount: int, job_id: str) -> int:
        """Reserve ``amount`` for a job, or raise when the balance does not cover it;
        returns the balance left."""
        now = self.clock.now()
        balance = await uow.ledger.spend(user_id, amount, now)
        if balance is None:
            account = await uow.ledger.account(user_id)
            current = account.balance if account else 0
            if account is not None and (account.frozen or account.balance < 0):
                raise SpendingBlocked(
                    msg("tg.core.spending_paused_dispute")
                    if account.frozen
                    else msg("tg.core.spending_paused_negative", balance=current)
                )
            raise InsufficientCredits(price=amount, balance=current)
        await uow.ledger.append(
            user_id=user_id,
            kind="hold",
            amount=-amount,
            idempotency_key=f"job:{job_id}:hold",
            job_id=job_id,
            note="",
            now=now,
        )
        return balance

    async def capture(self, uow: UnitOfWork, user_id: int, amount: int, job_id: str) -> int | None:
        """Make a job's hold final, once only; returns the balance, or None when it was
        captured or released before. The job's state transition (running -> delivering,
        in the same transaction) already keeps a job from being both."""
        now = self.clock.now()
        # The ledger keeps its own invariant too: never capture what was released.
        inserted = await uow.ledger.append_unless(
            absent=f"job:{job_id}:release",
            user_id=user_id,
            kind="capture",
            amount=0,
            idempotency_key=f"job:{job_id}:capture",
            job_id=job_id,
            note=f"{amount} credits",
            now=now,
        )
        if not inserted:
            return None
        return await uow.ledger.change_balance(
            user_id, balance_delta=0, held_delta=-amount, now=now
        )

    async def release(self, uow: UnitOfWork, user_id: int, amount: int, job_id: str) -> bool:
        """Return a job's hold to the balance; once only, never after a capture."""
        now = self.clock.now()
        if amount <= 0 or await uow.ledger.has_entry(f"job:{job_id}:capture"):
            return False
        if not await uow.ledger.has_entry(f"job:{job_id}:hold"):
            return False
        inserted = await uow.ledger.append(
            user_id=user_id,
            kind="release",
            amount=amount,
            idempotency_key=f"job:{job_id}:release",
            job_id=job_id,
            note="",
            now=now,
        )
        if inserted:
            await uow.ledger.change_balance(
                user_id, balance_delta=amount, held_delta=-amount, now=now
            )
        return inserted


class CreditsService:
    """Use cases around credits: the balance a user sees, operator grants."""

    def __init__(self, uow: UnitOfWorkFactory, ledger: CreditLedger, clock: Clock) -> None:
        self._uow = uow
        self.ledger = ledger
        self.clock = clock

    async def balance(self, user_id: int, *, recent: int = 10) -> BalanceView:
        """Available and held credits with the newest ledger lines and the current plan."""
        async with self._uow() as uow:
            account = await uow.ledger.account(user_id)
            rows = await uow.ledger.recent(user_id, recent)
            sub = await uow.billing.current_plan(user_id)
        lines = tuple(
            LedgerLine(r.kind, r.amount, r.created_at, r.job_id or "", r.note) for r in rows
        )
        plan = (
            PlanView(
                sub.offer_id,
                sub.plan_name,
                sub.credits,
                sub.status,
                sub.current_period_end,
                sub.cancel_at_period_end,
            )
            if sub is not None
            else None
        )
        if account is None:
            return BalanceView(0, 0, lines, plan=plan)
        return BalanceView(
            account.balance,
            account.held,
            lines,
            spending_blocked=account.frozen or account.balance < 0,
            plan=plan,
        )

    async def operator_grant(
        self,
        platform: str,
        platform_user_id: str,
        amount: int,
        *,
        action_id: str,
        reason: str,
        now: datetime | None = None,
    ) -> tuple[bool, int]:
        """Grant (or with a negative amount, revoke) credits as an operator, once per action.

        Returns (applied, new balance). The user must exist.
        """
        if amount == 0:
            raise InvalidRequest(msg("tg.core.amount_zero"))
        async with self._uow() as uow:
            user = await uow.users.find(platform, platform_user_id)
            if user is None:
                raise NotFound(msg("tg.core.no_user", who=f"{platform}:{platform_user_id}"))
            kind = "grant" if amount > 0 else "adjust"
            applied = await self.ledger.grant(
                uow, user.id, amount, key=f"admin:{action_id}", kind=kind, note=reason
            )
            account = await uow.ledger.account(user.id)
            await uow.commit()
        return applied, account.balance if account else 0

    async def user_for(self, actor: Actor) -> int | None:
        """The stored id of an actor, if known."""
        async with self._uow() as uow:
            user = await uow.users.find(actor.platform, actor.user_id)
        return user.id if user else None
