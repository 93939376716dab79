"""Operator tools (P17, P19): only the operators in ``IMAGEBOT_ADMINS`` reach them, and
every action is written to the audit log with who, what, whom, when and why.

To anyone else the admin verbs raise :class:`NotAnOperator`, which adapters answer
exactly like an unknown command, so nothing about them is revealed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.billing import CreditLedger, CreditsService
from core.errors import InvalidRequest, NotFound, UserFacingError
from core.files import FileStore
from core.generation import image_dimensions
from core.i18n import msg, negotiate, render
from core.notifier import NotifierHub
from core.ports import Clock
from core.privacy import (
    AppealDecision,
    PrivacyRequestRecord,
    PrivacyService,
    RetentionService,
    dm_target,
)
from core.repositories import UnitOfWorkFactory, UserRecord
from core.safety import ReviewRecord, SafetyService, Standing, audit
from core.types import (
    Actor,
    Announcement,
    BalanceView,
    Delivered,
    JobState,
    ReplyTarget,
    StoredImage,
)

log = logging.getLogger("imagebot.admin")


class NotAnOperator(UserFacingError):
    """Someone who is not an operator tried an admin verb: answered as an unknown command."""

    code = "unknown_command"
    default_key = "error.no_such_command"


@dataclass(frozen=True, slots=True)
class UserSummary:
    """What an operator sees about a user."""

    user: UserRecord
    balance: BalanceView
    standing: Standing
    jobs: int


class AdminService:
    """The verbs behind /admin and ``imagebot admin``."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        operators: frozenset[tuple[str, str]],
        credits: CreditsService,
        ledger: CreditLedger,
        safety: SafetyService,
        privacy: PrivacyService,
        retention: RetentionService,
        notifier: NotifierHub,
        files: FileStore,
    ) -> None:
        self._uow = uow
        self.clock = clock
        self.operators = operators
        self.credits = credits
        self.ledger = ledger
        self.safety = safety
        self.privacy = privacy
        self.retention = retention
        self.notifier = notifier
        self.files = files

    def is_operator(self, actor: Actor) -> bool:
        """True for the configured operators (and the local command line)."""
        return actor.platform == "cli" or (actor.platform, actor.user_id) in self.operators

    def _require(self, actor: Actor) -> str:
        if not self.is_operator(actor):
            log.info("admin refused platform=%s", actor.platform)
            raise NotAnOperator()
        return f"{actor.platform}:{actor.user_id}"

    async def _find(self, platform: str, platform_user_id: str) -> UserRecord:
        async with self._uow() as uow:
            user = await uow.users.find(platform, platform_user_id)
        if user is None:
            raise NotFound(msg("tg.core.no_user", who=f"{platform}:{platform_user_id}"))
        return user

    async def lookup(self, op: Actor, platform: str, platform_user_id: str) -> UserSummary:
        """A user's balance, standing and job count."""
        who = self._require(op)
        user = await self._find(platform, platform_user_id)
        async with self._uow() as uow:
            standing = await uow.safety.standing(user.id)
            _, jobs = await uow.jobs.page_for_user(user.id, 0, 0)
            await audit(
                uow,
                self.clock.now(),
                actor=who,
                action="lookup",
                user_id=user.id,
                reason="operator lookup",
            )
            await uow.commit()
        return UserSummary(user, await self.credits.balance(user.id), standing, jobs)

    async def grant(
        self,
        op: Actor,
        platform: str,
        platform_user_id: str,
        amount: int,
        *,
        reason: str,
        action_id: str,
    ) -> int:
        """Grant (positive) or revoke (negative) credits; once per ``action_id``."""
        who = self._require(op)
        if not reason.strip():
            raise InvalidRequest(msg("tg.core.give_reason_ledger"))
        user = await self._find(platform, platform_user_id)
        applied, balance = await self.credits.operator_grant(
            platform, platform_user_id, amount, action_id=action_id, reason=reason
        )
        if applied:
            async with self._uow() as uow:
                await audit(
                    uow,
                    self.clock.now(),
                    actor=who,
                    action="grant" if amount > 0 else "revoke",
                    user_id=user.id,
                    reason=reason,
                    amount=amount,
                    action_id=action_id,
                )
                await uow.commit()
        return balance

    async def ban(
        self,
        op: Actor,
        platform: str,
        platform_user_id: str,
        *,
        reason: str,
        hours: float | None = None,
    ) -> Standing:
        """Ban for ``hours`` or for good."""
        who = self._require(op)
        user = await self._find(platform, platform_user_id)
        return await self.safety.set_ban(user.id, by=who, reason=reason, hours=hours)

    async def unban(self, op: Actor, platform: str, platform_user_id: str, *, reason: str) -> None:
        """Lift a ban and clear strikes."""
        who = self._require(op)
        user = await self._find(platform, platform_user_id)
        await self.safety.set_ban(user.id, by=who, reason=reason, hours=None, lift=True)

    async def refund_job(self, op: Actor, job_id: str, *, reason: str) -> int:
        """Give back the credits of a finished job (a bad result); once per job."""
        who = self._require(op)
        if not reason.strip():
            raise InvalidRequest(msg("tg.core.give_reason_ledger"))
        now = self.clock.now()
        async with self._uow() as uow:
            job = await uow.jobs.get(job_id)
            if job is None:
                raise NotFound()
            # A delivering job has its hold captured already: its result may be on screen
            # before the worker has marked it succeeded.
            if job.state not in (JobState.DELIVERING, JobState.SUCCEEDED) or job.cost <= 0:
                raise InvalidRequest(msg("tg.core.refund_finished_only"))
            applied = await self.ledger.grant(
                uow,
                job.user_id,
                job.cost,
                key=f"refund:job:{job.id}",
                kind="refund",
                note=reason,
            )
            if applied:
                await audit(
                    uow,
                    now,
                    actor=who,
                    action="refund_job",
                    user_id=job.user_id,
                    reason=reason,
                    job_id=job.id,
                    amount=job.cost,
                )
            await uow.commit()
        return job.cost if applied else 0

    async def stats(self, op: Actor) -> dict[str, int]:
        """Jobs by state, users, open reviews and appeals."""
        self._require(op)
        async with self._uow() as uow:
            by_state = await uow.jobs.count_by_state()
            reviews = await uow.safety.reviews("open", 1000)
            appeals = await uow.privacy.open_appeals()
        stats = {f"jobs_{k}": v for k, v in sorted(by_state.items())}
        stats["open_reviews"] = len(reviews)
        stats["open_appeals"] = len(appeals)
        return stats

    async def run_retention(self, op: Actor, *, dry_run: bool = False) -> dict[str, int]:
        """Run the retention sweep now."""
        who = self._require(op)
        result = await self.retention.sweep(dry_run=dry_run)
        async with self._uow() as uow:
            await audit(
                uow,
                self.clock.now(),
                actor=who,
                action="retention_run",
                user_id=None,
                reason="dry run" if dry_run else "run now",
                **result,
            )
            await uow.commit()
        return result

    async def reviews(self, op: Actor) -> list[ReviewRecord]:
        """Open items of the review queue, oldest first."""
        self._require(op)
        async with self._uow() as uow:
            return await uow.safety.reviews("open", 50)

    async def decide_review(self, op: Actor, review_id: int, *, approve: bool) -> ReviewRecord:
        """Approve (a withheld output is delivered, free) or dismiss (its file is deleted)."""
        who = self._require(op)
        now = self.clock.now()
        async with self._uow() as uow:
            item = await uow.safety.review(review_id)
            if item is None or item.status != "open":
                raise NotFound(msg("tg.core.no_open_review"))
            await uow.safety.decide_review(
                review_id, "approved" if approve else "dismissed", who, now
            )
            job = await uow.jobs.get(item.job_id)
            user = await uow.users.get(item.user_id)
            await audit(
                uow,
                now,
                actor=who,
                action="review_approve" if approve else "review_dismiss",
                user_id=item.user_id,
                reason="operator review",
                review=review_id,
                job_id=item.job_id,
            )
            await uow.commit()
        if approve and item.path and job is not None and user is not None:
            data = await self.files.read(item.path)
            info = image_dimensions(data)
            content_type, width, height = info if info else ("image/png", 0, 0)
            target = ReplyTarget.from_json(job.reply_target)
            # The requester's language, fixed on the job's target when it was submitted.
            lang = negotiate(target.extra.get("lang"))
            await self.notifier.notify(
                target,
                Delivered(
                    job_id=job.id,
                    prompt=job.prompt,
                    outputs=(StoredImage(item.path, content_type, width, height, len(data)),),
                    absolute_paths=(self.files.absolute(item.path),),
                    cost=0,
                    balance=0,
                    notice=render(msg("tg.admin.released"), lang),
                ),
                final=True,
            )
        elif not approve and item.path:
            await self.files.delete(item.path)
        return item

    async def appeals(self, op: Actor) -> list[PrivacyRequestRecord]:
        """Privacy appeals waiting for a decision."""
        self._require(op)
        return await self.privacy.open_appeals()

    async def decide_appeal(
        self, op: Actor, request_id: int, *, grant: bool, reason: str
    ) -> tuple[AppealDecision, bool]:
        """Grant or deny an appeal (audited), then tell its owner in a DM. Returns the
        decision and whether the message reached them."""
        who = self._require(op)
        decision = await self.privacy.decide_appeal(
            request_id, grant=grant, reason=reason, operator=who
        )
        told = False
        if decision.recipient is not None:
            told = await self.notifier.notify(
                dm_target(*decision.recipient), Announcement(decision.text), final=True
            )
        return decision, told
