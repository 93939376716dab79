"""Workers: take queued jobs fairly, call the model, store, charge or refund, deliver.

``queued -> running -> delivering -> succeeded``; any failure after the hold goes to
``failed`` (or ``rejected`` for a safety refusal) and releases the hold in the same
transaction. The model is called outside any transaction. A job whose worker died is
found by its expired lease (or, on SQLite, by any leftover ``running`` row at start-up)
and is queued again until it runs out of attempts, then failed with its credits back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from datetime import timedelta

from core.billing import CreditLedger
from core.errors import (
    GENERIC_SORRY,
    GENERIC_SORRY_MSG,
    ContentRefused,
    ProviderUnavailable,
    UserFacingError,
)
from core.files import FileStore
from core.generation.capacity import Permit, ProviderCapacity, memory_estimate
from core.generation.jobs import stored
from core.generation.models import spec_for
from core.generation.ports import ImageModel, ModelCall, ModelImage, ModelPartial
from core.i18n import SOURCE_LANGUAGE, Msg, render
from core.metrics import Metrics, NoMetrics
from core.notifier import NotifierHub
from core.ports import Clock
from core.repositories import ImageRecord, JobRecord, UnitOfWorkFactory
from core.safety import SafetyService, Screener, reason_message
from core.types import (
    Delivered,
    Failed,
    InputImage,
    JobState,
    PartialImage,
    ReplyTarget,
    ResolvedOptions,
    Started,
    StoredImage,
)
from core.users import UserService

log = logging.getLogger("imagebot.worker")

RUNNING = JobState.RUNNING.value
QUEUED = JobState.QUEUED.value
DELIVERING = JobState.DELIVERING.value


class Worker:
    """Job loops in this process. How many model calls run at once is decided by
    :class:`ProviderCapacity` (the provider's limits, memory, the operator's ceiling
    ``concurrency``); ``per_user_limit`` keeps it fair between users."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        files: FileStore,
        model: ImageModel,
        ledger: CreditLedger,
        users: UserService,
        screener: Screener,
        notifier: NotifierHub,
        clock: Clock,
        concurrency: int = 4,
        per_user_limit: int = 2,
        lease_seconds: float = 120.0,
        max_attempts: int = 3,
        partial_images: int = 2,
        poll_interval: float = 1.0,
        owner: str | None = None,
        safety: SafetyService | None = None,
        metrics: Metrics | None = None,
        capacity: ProviderCapacity | None = None,
        default_model: str = "",
    ) -> None:
        self._uow = uow
        self.files = files
        self.model = model
        self.ledger = ledger
        self.users = users
        self.screener = screener
        self.notifier = notifier
        self.clock = clock
        self.concurrency = concurrency
        self.per_user_limit = per_user_limit
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.partial_images = partial_images
        self.poll_interval = poll_interval
        self.owner = owner or f"w-{secrets.token_hex(4)}"
        self.safety = safety
        self.metrics: Metrics = metrics or NoMetrics()
        # Without a capacity of its own the worker behaves as a fixed pool of `concurrency`.
        self.capacity = capacity or ProviderCapacity(ceiling=concurrency, initial=concurrency)
        self.default_model = default_model
        # One signal per queued job wakes one idle loop (not all of them: fewer empty claims).
        # A signal says why to claim ("local", "chain", "stop") and, for a job queued here,
        # whose job it is.
        self._signals: asyncio.Queue[tuple[str, int | None]] = asyncio.Queue()
        # user id -> jobs of theirs running in this process (each counts toward the limit).
        self._running_users: dict[int, int] = {}
        # The last claim found nothing it could take while jobs were queued (their users at
        # the per-user limit, or not due yet): a finished job may free one of them.
        self._held_back = False
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        # user id -> pseudonymous hash (P21); stable, so kept for the process's lifetime.
        self._pseudonyms: OrderedDict[int, str] = OrderedDict()

    def _remember_pseudonym(self, user_id: int, value: str) -> None:
        self._pseudonyms[user_id] = value
        if len(self._pseudonyms) > 10_000:
            self._pseudonyms.popitem(last=False)

    def limit_key(self, model: str | None) -> str:
        """The capacity lane of calls to ``model`` through this worker's provider."""
        return f"{self.model.name}:{model or self.default_model}"

    def eta(self, position: int, model: str | None = None) -> float | None:
        """Seconds until a job queued at ``position`` is done, from the measured rate
        (None while nothing was measured)."""
        return self.capacity.eta(self.limit_key(model), position)

    # --- lifecycle ---------------------------------------------------------------------------

    def wake(self, user_id: int | None = None, *, reason: str = "local") -> None:
        """Tell one idle loop that a job (of ``user_id``, when known) was queued."""
        if self._signals.qsize() < self.concurrency:
            self._signals.put_nowait((reason, user_id))

    async def start(self, *, exclusive: bool) -> None:
        """Recover leftovers, then start the loops and the lease heartbeat.

        ``exclusive``: this is the only worker process (SQLite), so every job left running
        or delivering belongs to a process that is gone.
        """
        await self.recover(include_unexpired=exclusive)
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._loop(i), name=f"{self.owner}-loop-{i}")
            for i in range(self.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._heartbeat(), name=f"{self.owner}-lease"))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking jobs; let running ones finish within ``grace`` seconds, hand the
        rest back to the queue."""
        self._stopping = True
        for _ in range(self.concurrency):
            self._signals.put_nowait(("stop", None))
        in_flight = list(self._in_flight.values())
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.capacity.aclose()

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Process jobs in this task until none is claimable (tests, the console)."""
        async with asyncio.timeout(timeout):
            while True:
                job = await self._claim()
                if job is None:
                    return
                options = ResolvedOptions(**job.options)
                permit = await self.capacity.acquire(
                    self.limit_key(options.model),
                    options.n,
                    memory_estimate(options.size, options.n),
                )
                await self._process(job, permit)

    # --- the loop ----------------------------------------------------------------------------

    async def _loop(self, index: int = 0) -> None:
        """One job loop. A loop claims only with a reason to expect a job: a wake-up
        signal (one per job queued here), the first loop's poll every ``poll_interval`` (jobs
        queued elsewhere), or, after finishing a job, a queue that last showed jobs held
        back by the per-user limit. A job found by the poll (or by a loop it woke) wakes
        one more loop, so a queue filled by another process is taken up by as many loops as
        it needs; a job queued here never makes a second, empty claim."""
        default_key = self.limit_key(None)
        default_memory = memory_estimate("1024x1024", 1)
        reason: str | None = None  # why this round claims: "local", "chain", "poll", "after"
        while not self._stopping:
            if reason is None:
                try:
                    reason, user_id = await asyncio.wait_for(
                        self._signals.get(), self.poll_interval if index == 0 else None
                    )
                except TimeoutError:
                    reason, user_id = "poll", None
                if self._stopping:
                    return
                if user_id is not None and self._at_user_limit(user_id):
                    # Their jobs running here already fill their share: the job waits for
                    # one of them to finish (which claims again), no claim is tried now.
                    self._held_back = True
                    reason = None
                    continue
            # A place with the provider first, then a job: a job never waits while running.
            permit = await self.capacity.acquire(default_key, 1, default_memory)
            try:
                job = await self._claim()
            except asyncio.CancelledError:
                self.capacity.release(permit)
                raise
            except Exception:
                log.exception("claim failed owner=%s", self.owner)
                job = None
            if job is None:
                self.capacity.release(permit)
                reason = None
                continue
            if reason in ("poll", "chain") and self._signals.empty():
                self.wake(reason="chain")  # maybe more jobs queued elsewhere: one more loop
            task = asyncio.current_task()
            assert task is not None
            self._in_flight[job.id] = task
            self._running_users[job.user_id] = self._running_users.get(job.user_id, 0) + 1
            try:
                await self._process(job, permit)
            finally:
                self._in_flight.pop(job.id, None)
                left = self._running_users.pop(job.user_id, 1) - 1
                if left > 0:
                    self._running_users[job.user_id] = left
            # Next: a pending signal, or the jobs this one's user kept waiting.
            reason = None
            while reason is None and not self._signals.empty():
                reason, user_id = self._signals.get_nowait()
                if user_id is not None and self._at_user_limit(user_id):
                    self._held_back, reason = True, None
            if reason is None and self._held_back:
                reason = "after"

    def _at_user_limit(self, user_id: int) -> bool:
        """True when this process alone runs as many jobs of the user as one may run."""
        return self._running_users.get(user_id, 0) >= self.per_user_limit

    async def _heartbeat(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self._uow() as uow:
                    if self._in_flight:
                        await uow.jobs.renew_leases(
                            self.owner, list(self._in_flight), self.clock.now() + self.lease
                        )
                        await uow.commit()
                await self.capacity.renew()
                await self.recover(include_unexpired=False)
                async with self._uow() as uow:
                    self.metrics.queue_depth(await uow.jobs.count_by_state())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease heartbeat failed owner=%s", self.owner)

    async def _claim(self) -> JobRecord | None:
        now = self.clock.now()
        async with self._uow() as uow:
            job = await uow.jobs.claim_next(self.owner, now, now + self.lease, self.per_user_limit)
            if job is None:
                self._held_back = await uow.jobs.any_queued()
            await uow.commit()
        if job is not None:
            log.info("job running job=%s attempt=%s owner=%s", job.id, job.attempts, self.owner)
            self.metrics.job_state(job.platform, RUNNING)
            self.metrics.queue_time((now - job.created_at).total_seconds())
        return job

    # --- one job -----------------------------------------------------------------------------

    async def _permit_for(self, job: JobRecord, permit: Permit) -> Permit:
        """The place taken before the claim, moved to the job's own lane if it differs."""
        options = ResolvedOptions(**job.options)
        key = self.limit_key(options.model)
        memory = memory_estimate(options.size, options.n)
        if key == permit.key:
            self.capacity.adjust(permit, options.n, memory)
            return permit
        self.capacity.release(permit)
        return await self.capacity.acquire(key, options.n, memory)

    async def _process(self, job: JobRecord, permit: Permit) -> None:
        target = ReplyTarget.from_json(job.reply_target)
        try:
            permit = await self._permit_for(job, permit)  # on failure it holds nothing
            try:
                with self.capacity.reporting(permit):
                    await self.notifier.notify(target, Started(job.id))
                    outputs = await self._generate(job, target)
                permit.ok = True
            except UserFacingError as exc:
                permit.ok = not isinstance(exc, ProviderUnavailable)
                raise
            finally:
                self.capacity.release(permit)
            delivered = await self._finish(job, outputs)
            if delivered is not None:
                await self._deliver(job, target, delivered)
        except asyncio.CancelledError:
            await asyncio.shield(self._hand_back(job))
            raise
        except UserFacingError as exc:
            log.info("job refused job=%s code=%s", job.id, exc.code)
            if isinstance(exc, ContentRefused):
                self.metrics.moderation_refusal(exc.stage)
            else:
                self.metrics.provider_error(exc.code)
            if isinstance(exc, ContentRefused) and exc.stage == "input" and self.safety:
                try:
                    await self.safety.strike(job.user_id, reason=exc.reason, job_id=job.id)
                except Exception:
                    log.exception("strike failed job=%s", job.id)
            state = JobState.REJECTED if isinstance(exc, ContentRefused) else JobState.FAILED
            await self._fail(job, target, exc.code, exc.user_message, state, exc.msg)
        except Exception:
            log.exception("job crashed job=%s", job.id)
            self.metrics.provider_error("internal")
            await self._fail(
                job, target, "internal", GENERIC_SORRY, JobState.FAILED, GENERIC_SORRY_MSG
            )

    async def _generate(self, job: JobRecord, target: ReplyTarget) -> list[StoredImage]:
        user_hash = self._pseudonyms.get(job.user_id)
        images: list[ImageRecord] = []
        if user_hash is None or job.kind == "edit":
            async with self._uow() as uow:
                if user_hash is None:
                    user = await uow.users.get(job.user_id)
                    assert user is not None
                    user_hash = await self.users.pseudonym(uow, user)
                    self._remember_pseudonym(job.user_id, user_hash)
                if job.kind == "edit":
                    images = await uow.jobs.images(job.id)
        inputs: list[InputImage] = []
        mask: InputImage | None = None
        for image in images:
            if image.role not in ("input", "mask"):
                continue  # outputs, and the gallery's thumbnails of them
            item = InputImage(
                await self.files.read(image.path),
                image.content_type,
                image.path.rsplit("/", 1)[-1],
                image.width,
                image.height,
            )
            if image.role == "mask":
                mask = item
            else:
                inputs.append(item)
        options = ResolvedOptions(**job.options)
        streams = spec_for(options.model).streams and options.n == 1
        call = ModelCall(
            prompt=job.prompt,
            options=options,
            user_hash=user_hash,
            inputs=tuple(inputs),
            mask=mask,
            stream_partials=self.partial_images if streams else 0,
        )
        outputs: list[StoredImage] = []
        async for event in self.model.run(call):
            if isinstance(event, ModelPartial):
                await self.notifier.notify(
                    target, PartialImage(job.id, event.index, event.data, event.content_type)
                )
            elif isinstance(event, ModelImage):
                verdict = await self.screener.screen_output(event.data, event.content_type)
                if not verdict.allowed:
                    await self._withhold(job, event, verdict.reason, verdict.categories)
                    raise ContentRefused(
                        verdict.reason,
                        stage="output",
                        reviewed=True,
                        shown=reason_message(verdict),
                    )
                outputs.append(
                    await self.files.write_image(
                        job.user_id, f"jobs/{job.id}/output-{len(outputs)}", event.data
                    )
                )
        if not outputs:
            raise ProviderUnavailable()
        return outputs

    async def _withhold(
        self, job: JobRecord, image: ModelImage, reason: str, categories: tuple[str, ...]
    ) -> None:
        """Keep a refused output out of the chat, for an operator to approve or dismiss."""
        item = await self.files.write_image(job.user_id, f"jobs/{job.id}/withheld-0", image.data)
        now = self.clock.now()
        async with self._uow() as uow:
            review_id = await uow.safety.add_review(
                user_id=job.user_id,
                job_id=job.id,
                kind="withheld_output",
                categories={"categories": list(categories), "reason": reason},
                path=item.path,
                now=now,
            )
            await uow.privacy.audit(
                actor="system:safety",
                action="withhold_output",
                subject_user_id=job.user_id,
                subject_hash=None,
                reason=reason,
                details={"job_id": job.id, "review": review_id},
                now=now,
            )
            await uow.commit()
        log.info("output withheld job=%s review=%s", job.id, review_id)

    async def _finish(self, job: JobRecord, outputs: list[StoredImage]) -> Delivered | None:
        """One transaction: running -> delivering, outputs recorded, the hold captured."""
        now = self.clock.now()
        async with self._uow() as uow:
            moved = await uow.jobs.transition(
                job.id, (RUNNING,), DELIVERING, now, lease_owner=self.owner
            )
            if not moved:
                log.warning("lease lost before finishing job=%s owner=%s", job.id, self.owner)
                return None
            await uow.jobs.add_images(
                [
                    ImageRecord(
                        job.id,
                        job.user_id,
                        "output",
                        idx,
                        item.path,
                        item.content_type,
                        item.width,
                        item.height,
                        item.size_bytes,
                    )
                    for idx, item in enumerate(outputs)
                ],
                now,
            )
            balance = await self.ledger.capture(uow, job.user_id, job.cost, job.id)
            if balance is None:  # captured before (a crash after commit): read it
                account = await uow.ledger.account(job.user_id)
                balance = account.balance if account else 0
            else:
                self.metrics.credits("spent", job.cost)
            await uow.commit()
        return Delivered(
            job_id=job.id,
            prompt=job.prompt,
            outputs=tuple(outputs),
            absolute_paths=tuple(self.files.absolute(o.path) for o in outputs),
            cost=job.cost,
            balance=balance,
            notice=self.model.notice,
        )

    async def _deliver(self, job: JobRecord, target: ReplyTarget, event: Delivered) -> None:
        ok = await self.notifier.notify(target, event, final=True)
        now = self.clock.now()
        async with self._uow() as uow:
            await uow.jobs.transition(
                job.id, (DELIVERING,), JobState.SUCCEEDED, now, fields={"finished_at": now}
            )
            await uow.commit()
        log.info("job succeeded job=%s delivered=%s", job.id, ok)
        self.metrics.job_state(job.platform, JobState.SUCCEEDED)
        self.metrics.delivery_time((now - job.created_at).total_seconds())

    async def _fail(
        self,
        job: JobRecord,
        target: ReplyTarget,
        code: str,
        message: str,
        state: JobState,
        text: Msg | str | None = None,
    ) -> None:
        """Mark the job failed and release its hold, in one transaction."""
        now = self.clock.now()
        refunded = 0
        async with self._uow() as uow:
            moved = await uow.jobs.transition(
                job.id,
                (RUNNING,),
                state,
                now,
                lease_owner=self.owner,
                fields={"error_code": code, "error_message": message[:500], "finished_at": now},
            )
            if moved and await self.ledger.release(uow, job.user_id, job.cost, job.id):
                refunded = job.cost
            await uow.commit()
        if moved:
            log.info("job %s job=%s refunded=%s", state.value, job.id, refunded)
            self.metrics.job_state(job.platform, state)
            await self.notifier.notify(
                target, Failed(job.id, code, message, refunded, text), final=True
            )

    async def _hand_back(self, job: JobRecord) -> None:
        """Shutdown mid-job: the job goes back to the queue for another worker."""
        now = self.clock.now()
        async with self._uow() as uow:
            moved = await uow.jobs.transition(
                job.id,
                (RUNNING,),
                QUEUED,
                now,
                lease_owner=self.owner,
                fields={"lease_owner": None, "lease_expires_at": None},
            )
            await uow.commit()
        if moved:
            log.info("job handed back job=%s", job.id)

    # --- recovery ----------------------------------------------------------------------------

    async def recover(self, *, include_unexpired: bool) -> int:
        """Resume or fail jobs whose worker is gone; return how many were touched."""
        now = self.clock.now()
        async with self._uow() as uow:
            stale = await uow.jobs.stale(now, include_unexpired)
        stale = [j for j in stale if j.id not in self._in_flight]
        for job in stale:
            if job.state == DELIVERING:
                await self._redeliver(job)
            elif job.attempts < self.max_attempts:
                async with self._uow() as uow:
                    moved = await uow.jobs.transition(
                        job.id,
                        (RUNNING,),
                        QUEUED,
                        now,
                        fields={"lease_owner": None, "lease_expires_at": None},
                    )
                    await uow.commit()
                if moved:
                    log.warning("job resumed after a lost worker job=%s", job.id)
                    self.wake()
            else:
                await self._give_up(job)
        return len(stale)

    async def _give_up(self, job: JobRecord) -> None:
        now = self.clock.now()
        text = Msg(ProviderUnavailable.default_key)
        message = render(text, SOURCE_LANGUAGE)
        refunded = 0
        async with self._uow() as uow:
            moved = await uow.jobs.transition(
                job.id,
                (RUNNING,),
                JobState.FAILED,
                now,
                fields={"error_code": "interrupted", "error_message": message, "finished_at": now},
            )
            if moved and await self.ledger.release(uow, job.user_id, job.cost, job.id):
                refunded = job.cost
            await uow.commit()
        if moved:
            log.warning("job failed after %s attempts job=%s", job.attempts, job.id)
            await self.notifier.notify(
                ReplyTarget.from_json(job.reply_target),
                Failed(job.id, "interrupted", message, refunded, text),
                final=True,
            )

    async def _redeliver(self, job: JobRecord) -> None:
        async with self._uow() as uow:
            outputs = [stored(i) for i in await uow.jobs.images(job.id, "output")]
            account = await uow.ledger.account(job.user_id)
        event = Delivered(
            job_id=job.id,
            prompt=job.prompt,
            outputs=tuple(outputs),
            absolute_paths=tuple(self.files.absolute(o.path) for o in outputs),
            cost=job.cost,
            balance=account.balance if account else 0,
            notice=self.model.notice,
        )
        await self._deliver(job, ReplyTarget.from_json(job.reply_target), event)
