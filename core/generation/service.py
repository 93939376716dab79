"""Submitting generations and edits: validate, screen, price, reserve and queue.

The life of a job (DESIGN.md): ``received -> screened -> reserved -> queued`` happen in
this module within one call; the row is written once, in the transaction that holds
the credits, as ``queued`` (or as ``rejected`` when screening refused it, with no
credit moved). Workers take it from there (core/worker.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.billing import CreditLedger
from core.errors import (
    AgeRefused,
    ContentRefused,
    InvalidRequest,
    NotFound,
    ProviderUnavailable,
    TermsRequired,
)
from core.files import FileStore
from core.generation.intake import ImageLimits, normalize_mask, normalize_reference
from core.generation.jobs import job_view, new_job_id
from core.generation.models import EnabledModel, ModelCatalog, resolve_options, shipped_specs
from core.generation.pricing import PriceTable
from core.generation.watch import ModelWatch
from core.i18n import msg
from core.metrics import Metrics, NoMetrics
from core.ports import Clock
from core.privacy import OnboardingService
from core.repositories import ImageRecord, NewJob, UnitOfWorkFactory, UserRecord
from core.safety import SafetyService, Screener, reason_message
from core.text import clean_prompt
from core.types import (
    Actor,
    Conversation,
    GenerateOptions,
    GenerateRequest,
    InputImage,
    JobState,
    JobView,
    ReplyTarget,
    Submitted,
)
from core.users import UserService

log = logging.getLogger("imagebot.generation")


@dataclass(frozen=True)
class GenerationLimits:
    """Queue and input limits of the service."""

    max_queued_per_user: int = 20
    image_limits: ImageLimits = field(default_factory=ImageLimits)


class GenerationService:
    """The verbs ``generation.submit``, ``generation.repeat`` and ``generation.job``."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        users: UserService,
        ledger: CreditLedger,
        files: FileStore,
        prices: PriceTable,
        screener: Screener,
        clock: Clock,
        model: str,
        limits: GenerationLimits,
        onboarding: OnboardingService | None = None,
        safety: SafetyService | None = None,
        metrics: Metrics | None = None,
        wake_workers: Callable[[int], None] = lambda user_id: None,
        catalog: ModelCatalog | None = None,
        eta: Callable[[int, str], float | None] | None = None,
    ) -> None:
        self._uow = uow
        self.users = users
        self.ledger = ledger
        self.files = files
        self.prices = prices
        self.screener = screener
        self.clock = clock
        self.model = model
        self.limits = limits
        self.onboarding = onboarding
        self.safety = safety
        self.metrics: Metrics = metrics or NoMetrics()
        self.wake_workers = wake_workers
        self.catalog = catalog or ModelCatalog(shipped_specs(), [EnabledModel(model)])
        self.watch: ModelWatch | None = None
        """Follows the providers (set by the composition root)."""
        self.eta = eta

    def quote(self, options: GenerateOptions, saved_model: str | None = None) -> int:
        """The price of a job with these options, with the model's defaults applied."""
        model = self.choose_model(options.model, saved_model)
        return self.prices.price(resolve_options(options, model=model, catalog=self.catalog))

    def choose_model(self, requested: str | None, saved: str | None = None) -> str:
        """The model a new job would use (see :meth:`ModelCatalog.choose`)."""
        return self.catalog.choose(requested, saved, self.clock.now().date())

    def offered_models(self) -> tuple[str, ...]:
        """The models users may choose right now, the default first."""
        return self.catalog.offered(self.clock.now().date())

    def model_prices(self) -> list[tuple[str, str, Mapping[str, int]]]:
        """``(name, label, credits per square image by quality)`` of each offered model."""
        rows: list[tuple[str, str, Mapping[str, int]]] = []
        for name in self.offered_models():
            spec = self.catalog.spec(name)
            row = self.prices.row(name)
            rows.append((name, spec.display, {q: row[q] for q in spec.qualities if q in row}))
        return rows

    async def submit(self, request: GenerateRequest) -> Submitted:
        """Accept a job: one transaction holds its credits and queues it.

        A redelivered event (same idempotency key) returns the job made the first time
        and moves no credit. Raises a :class:`core.errors.UserFacingError` for anything
        the user must change; a refusal by screening costs nothing.
        """
        async with self._uow() as uow:
            known, defaults = await uow.users.find_with_settings(
                request.actor.platform, request.actor.user_id
            )
            if self.onboarding is not None:
                status = await self.onboarding.status_in(uow, request.actor, known=known)
                if status.state == "refused":
                    raise AgeRefused()
                if not status.may_generate:
                    # Nothing is stored about someone who has not accepted the terms.
                    raise TermsRequired(policy_changed=status.state == "policy_changed")
            user, _ = await self.users.ensure(uow, request.actor, known=known)
            existing = await uow.jobs.by_key(request.idempotency_key)
            if existing is None and self.safety is not None:
                # Bans, the chat's own limits and the rate limits, before any work.
                await self.safety.admit(uow, user, request.conversation)
            await uow.commit()
        if existing is not None:
            if existing.user_id != user.id:
                raise NotFound()
            return await self._existing(existing.id, user)

        # The model is fixed here, with the price: a queued job never changes either.
        model = self.choose_model(request.options.model, defaults.model)
        spec = self.catalog.spec(model)
        prompt = clean_prompt(request.prompt, max_chars=spec.max_prompt_chars)
        options = resolve_options(
            request.options,
            model=model,
            defaults=defaults,
            has_inputs=bool(request.inputs),
            catalog=self.catalog,
        )
        if len(request.inputs) > spec.max_inputs:
            raise InvalidRequest(msg("tg.gen.max_inputs", max=spec.max_inputs))
        if request.mask is not None and not request.inputs:
            raise InvalidRequest(msg("tg.gen.mask_needs_image"))
        if request.mask is not None and not spec.supports_mask:
            raise InvalidRequest(msg("tg.gen.no_mask", model=spec.name))

        inputs, mask = await asyncio.to_thread(self._normalise, request.inputs, request.mask)
        log.info("job received user=%s kind=%s", user.id, "edit" if inputs else "generate")

        verdict = await self.screener.screen_input(prompt, inputs)
        if not verdict.allowed and verdict.category == "unavailable":
            log.warning("screening unavailable, refused (fail closed) user=%s", user.id)
            raise ProviderUnavailable(msg("tg.gen.screening_unavailable"))
        if not verdict.allowed:
            job_id = await self._record_rejection(
                request, user, prompt, options.as_dict(), verdict.reason
            )
            if self.safety is not None:
                await self.safety.strike(user.id, reason=verdict.reason, job_id=job_id)
            self.metrics.moderation_refusal("input")
            self.metrics.job_state(request.conversation.platform, JobState.REJECTED)
            raise ContentRefused(verdict.reason, shown=reason_message(verdict))
        if verdict.degraded:
            log.warning("screening unavailable, let through (fail open) user=%s", user.id)

        job_id = new_job_id()
        paths: list[str] = []
        try:
            stored_inputs = []
            for idx, image in enumerate(inputs):
                item = await self.files.write_image(
                    user.id, f"jobs/{job_id}/input-{idx}", image.data
                )
                paths.append(item.path)
                stored_inputs.append(("input", idx, item))
            if mask is not None:
                item = await self.files.write_image(user.id, f"jobs/{job_id}/mask-0", mask.data)
                paths.append(item.path)
                stored_inputs.append(("mask", 0, item))

            cost = self.prices.price(options)
            now = self.clock.now()
            async with self._uow() as uow:
                await uow.ledger.lock_account(user.id)
                waiting, fair_seq = await uow.jobs.queue_slot(user.id)
                if waiting >= self.limits.max_queued_per_user:
                    raise InvalidRequest(
                        msg("tg.gen.queue_full", count=self.limits.max_queued_per_user)
                    )
                inserted = await uow.jobs.insert(
                    NewJob(
                        id=job_id,
                        user_id=user.id,
                        idempotency_key=request.idempotency_key,
                        kind="edit" if inputs else "generate",
                        state=JobState.QUEUED,
                        prompt=prompt,
                        options=options.as_dict(),
                        cost=cost,
                        platform=request.conversation.platform,
                        chat_id=request.conversation.chat_id,
                        reply_target=request.reply_target.to_json(),
                        parent_job_id=request.parent_job_id,
                        created_at=now,
                        group_id=_group(request.conversation),
                    ),
                    fair_seq,
                )
                if not inserted:
                    # The same event raced us here; its job stands and this one never was.
                    raise _Duplicate()
                balance = await self.ledger.hold(uow, user.id, cost, job_id)
                for role, idx, item in stored_inputs:
                    await uow.jobs.add_image(
                        ImageRecord(
                            job_id,
                            user.id,
                            role,
                            idx,
                            item.path,
                            item.content_type,
                            item.width,
                            item.height,
                            item.size_bytes,
                        ),
                        now,
                    )
                position = await uow.jobs.position_of(fair_seq, now, job_id)
                await uow.commit()
            # Built from what was just written: no read-back.
            view = JobView(
                id=job_id,
                state=JobState.QUEUED,
                prompt=prompt,
                options=options.as_dict(),
                cost=cost,
                created_at=now,
                kind="edit" if inputs else "generate",
                inputs=tuple(item for _, _, item in stored_inputs),
                queue_position=position,
                eta_seconds=self.eta(position, options.model) if self.eta else None,
            )
        except _Duplicate:
            await self._forget(paths)
            async with self._uow() as uow:
                existing = await uow.jobs.by_key(request.idempotency_key)
            assert existing is not None
            return await self._existing(existing.id, user)
        except BaseException:
            await self._forget(paths)
            raise
        log.log(
            logging.WARNING if verdict.degraded else logging.INFO,
            "job queued job=%s user=%s cost=%s screening=%s",
            job_id,
            user.id,
            cost,
            "degraded (fail open)" if verdict.degraded else "ok",
        )
        self.metrics.job_state(request.conversation.platform, JobState.QUEUED)
        self.wake_workers(user.id)
        return Submitted(view, created=True, balance=balance)

    async def repeat(
        self,
        actor: Actor,
        job_id: str,
        *,
        idempotency_key: str,
        conversation: Conversation,
        reply_target: ReplyTarget,
    ) -> Submitted:
        """Run a finished job again with the same prompt, options and reference images
        (Reroll): a new job, charged again."""
        async with self._uow() as uow:
            user, _ = await self.users.ensure(uow, actor)
            job = await uow.jobs.get_for_user(job_id, user.id)
            if job is None:
                raise NotFound()
            images = await uow.jobs.images(job.id)
            await uow.commit()
        inputs = []
        mask = None
        for image in images:
            if image.role not in ("input", "mask"):
                continue  # outputs, and the gallery's thumbnails of them
            data = await self.files.read(image.path)
            item = InputImage(data, image.content_type, image.path.rsplit("/", 1)[-1])
            if image.role == "mask":
                mask = item
            else:
                inputs.append(item)
        return await self.submit(
            GenerateRequest(
                actor=actor,
                conversation=conversation,
                prompt=job.prompt,
                options=_current_model(self, _stored_options(job.options)),
                idempotency_key=idempotency_key,
                reply_target=reply_target,
                inputs=tuple(inputs),
                mask=mask,
                parent_job_id=job.id,
            )
        )

    async def derive(
        self,
        actor: Actor,
        job_id: str,
        *,
        prompt: str | None,
        index: int = 0,
        idempotency_key: str,
        conversation: Conversation,
        reply_target: ReplyTarget,
    ) -> Submitted:
        """Edit one result of a finished job: with ``prompt`` it is the user's new
        instruction (Edit), without it a variation of that image (Variation)."""
        async with self._uow() as uow:
            user = await uow.users.find(actor.platform, actor.user_id)
            job = await uow.jobs.get_for_user(job_id, user.id) if user else None
            outputs = await uow.jobs.images(job.id, "output") if job else []
        if job is None or not 0 <= index < len(outputs):
            raise NotFound()
        output = outputs[index]
        data = await self.files.read(output.path)
        instruction = (
            prompt
            if prompt is not None
            else (
                "Create a variation of this image with the same subject and style. "
                f"Original description: {job.prompt}"
            )
        )
        return await self.submit(
            GenerateRequest(
                actor=actor,
                conversation=conversation,
                prompt=instruction[: self.catalog.spec(self.model).max_prompt_chars],
                options=_current_model(self, _stored_options(job.options, n=1)),
                idempotency_key=idempotency_key,
                reply_target=reply_target,
                inputs=(InputImage(data, output.content_type, "result"),),
                parent_job_id=job.id,
            )
        )

    async def cancel(self, actor: Actor, job_id: str) -> bool:
        """Cancel one of the actor's queued jobs and return its credits; False when it has
        already started or finished."""
        now = self.clock.now()
        async with self._uow() as uow:
            user = await uow.users.find(actor.platform, actor.user_id)
            job = await uow.jobs.get_for_user(job_id, user.id) if user else None
            if job is None:
                raise NotFound()
            moved = await uow.jobs.transition(
                job.id,
                (JobState.QUEUED,),
                JobState.CANCELLED,
                now,
                fields={"finished_at": now, "error_code": "cancelled"},
            )
            if moved:
                await self.ledger.release(uow, job.user_id, job.cost, job.id)
            await uow.commit()
        return moved

    async def job(self, actor: Actor, job_id: str) -> JobView:
        """One of the actor's jobs; another user's id answers exactly like a missing one."""
        async with self._uow() as uow:
            user = await uow.users.find(actor.platform, actor.user_id)
            job = await uow.jobs.get_for_user(job_id, user.id) if user else None
            if job is None:
                raise NotFound()
            return await job_view(uow, job, with_position=True)

    # --- helpers ---------------------------------------------------------------------------

    def _normalise(
        self, inputs: tuple[InputImage, ...], mask: InputImage | None
    ) -> tuple[tuple[InputImage, ...], InputImage | None]:
        limits = self.limits.image_limits
        normal = tuple(
            normalize_reference(i.data, filename=i.filename, limits=limits) for i in inputs
        )
        norm_mask = None
        if mask is not None and normal:
            norm_mask = normalize_mask(
                mask.data, size=(normal[0].width, normal[0].height), limits=limits
            )
        return normal, norm_mask

    async def _existing(self, job_id: str, user: UserRecord) -> Submitted:
        async with self._uow() as uow:
            job = await uow.jobs.get(job_id)
            assert job is not None
            view = await job_view(uow, job, with_position=True)
            account = await uow.ledger.account(user.id)
        return Submitted(view, created=False, balance=account.balance if account else 0)

    async def _record_rejection(
        self,
        request: GenerateRequest,
        user: UserRecord,
        prompt: str,
        options: Mapping[str, object],
        reason: str,
    ) -> str:
        """Keep a refused request (the moderation record) without moving any credit."""
        now = self.clock.now()
        job_id = new_job_id()
        async with self._uow() as uow:
            await uow.jobs.insert(
                NewJob(
                    id=job_id,
                    user_id=user.id,
                    idempotency_key=request.idempotency_key,
                    kind="edit" if request.inputs else "generate",
                    state=JobState.REJECTED,
                    prompt=prompt,
                    options=dict(options),
                    cost=0,
                    platform=request.conversation.platform,
                    chat_id=request.conversation.chat_id,
                    reply_target=request.reply_target.to_json(),
                    parent_job_id=request.parent_job_id,
                    created_at=now,
                ),
                0,
            )
            await uow.jobs.transition(
                job_id,
                (JobState.REJECTED,),
                JobState.REJECTED,
                now,
                fields={
                    "error_code": "content_refused",
                    "error_message": reason[:500],
                    "finished_at": now,
                },
            )
            await uow.commit()
        log.info("job rejected job=%s user=%s stage=input", job_id, user.id)
        return job_id

    async def _forget(self, paths: list[str]) -> None:
        for path in paths:
            await self.files.delete(path)


def _current_model(service: GenerationService, options: GenerateOptions) -> GenerateOptions:
    """A stored job's options for a new job: a model gone since gives way to its successor
    (or the user's default when it has none)."""
    if options.model is None or options.model in service.offered_models():
        return options
    successor = service.catalog.replacement(options.model, service.clock.now().date())
    return dataclasses.replace(options, model=successor)


def _stored_options(opts: Mapping[str, object], *, n: int | None = None) -> GenerateOptions:
    """The options a stored job ran with, to run it again (``n`` overrides the count)."""
    return GenerateOptions(
        size=str(opts.get("size")),
        quality=str(opts.get("quality")),
        output_format=str(opts.get("output_format")),
        background=str(opts.get("background")),
        n=n if n is not None else int(str(opts.get("n", 1))),
        model=str(opts["model"]) if opts.get("model") else None,
    )


def _group(conversation: Conversation) -> str | None:
    """The server or group a job counts against (None in private chats)."""
    if conversation.is_private:
        return None
    return conversation.group_id or conversation.chat_id


class _Duplicate(Exception):
    """Internal: the idempotency key was taken by a concurrent submit."""
