"""Composition: build settings-driven services once and hand a ``Core`` to the adapters."""

from __future__ import annotations

import logging

from bot.logs import LogFilePruner
from core.app import Core
from core.billing import BillingService, CheckoutGateway, parse_offers
from core.clock import SystemClock
from core.credits import CreditLedger, CreditsService
from core.generation import GenerationLimits, GenerationService
from core.history import HistoryService
from core.images import ImageLimits
from core.messages import MessageService, parse_chat
from core.onboarding import OnboardingService, Policy
from core.ports import Clock, ImageModel
from core.pricing import PriceTable
from core.privacy import PrivacyService
from core.providers import build_image_model
from core.retention import RetentionPolicy, RetentionService
from core.screening import BlocklistScreener, Screener
from core.settings import Settings
from core.types import Actor
from core.users import UserService
from core.worker import NotifierHub, Worker
from storage.database import Database
from storage.files import LocalFileStore
from storage.uow import SqlUnitOfWorkFactory

log = logging.getLogger("imagebot")


async def build_core(
    settings: Settings,
    *,
    console: bool = False,
    model: ImageModel | None = None,
    clock: Clock | None = None,
    screener: Screener | None = None,
    database: Database | None = None,
    migrate: bool = True,
    gateway: CheckoutGateway | None = None,
    poll_interval: float = 1.0,
    lease_seconds: float | None = None,
) -> Core:
    """Open the database (migrating it), the file store and the model; wire the services."""
    clock = clock or SystemClock()
    cipher = settings.data_cipher()
    db = database or Database(settings.database_url, schema=settings.database_schema, cipher=cipher)
    if database is not None and cipher is not None:
        db.engine.dialect.imagebot_cipher = cipher  # type: ignore[attr-defined]
    if migrate:
        await db.migrate()
    uow = SqlUnitOfWorkFactory(db)
    files = LocalFileStore(settings.data_dir, cipher)
    model = model or build_image_model(settings, console=console)
    if model.notice:
        log.warning("image provider: %s (%s)", model.name, model.notice)
    else:
        log.info("image provider: %s model=%s", model.name, settings.image_model)
    if cipher is None:
        log.warning(
            "IMAGEBOT_ENCRYPTION_KEY is not set: images and prompts are stored in plain form"
        )
    else:
        log.info("data at rest is encrypted with key %s", cipher.current_id)
    model_name = "demo" if model.name == "demo" else settings.image_model
    prices = PriceTable.from_json(settings.prices)
    ledger = CreditLedger(clock)
    screener = screener or BlocklistScreener(settings.blocklist_patterns)
    users = UserService(uow, ledger, clock, free_credits=settings.free_credits, model=model_name)
    onboarding = OnboardingService(
        uow,
        users,
        files,
        clock,
        policy=Policy(settings.policy_version, settings.policy_effective_date, settings.policy_url),
        required=settings.require_terms,
    )
    notifier = NotifierHub()
    worker = Worker(
        uow=uow,
        files=files,
        model=model,
        ledger=ledger,
        users=users,
        screener=screener,
        notifier=notifier,
        clock=clock,
        concurrency=settings.worker_concurrency,
        per_user_limit=settings.per_user_concurrency,
        max_attempts=settings.max_job_attempts,
        partial_images=settings.partial_images,
        poll_interval=poll_interval,
        lease_seconds=lease_seconds or settings.lease_seconds,
    )
    generation = GenerationService(
        uow=uow,
        users=users,
        ledger=ledger,
        files=files,
        prices=prices,
        screener=screener,
        clock=clock,
        model=model_name,
        limits=GenerationLimits(
            max_queued_per_user=settings.max_queued_per_user,
            image_limits=ImageLimits(
                max_bytes=settings.max_input_bytes, max_pixels=settings.max_input_pixels
            ),
        ),
        onboarding=onboarding,
        wake_workers=worker.wake,
    )

    async def ensure_user_id(actor: Actor) -> int:
        return (await users.register(actor)).id

    billing = BillingService(parse_offers(settings.offers), gateway, ensure_user=ensure_user_id)
    retention_policy = RetentionPolicy.from_json(settings.retention)
    privacy = PrivacyService(
        uow,
        users,
        files,
        clock,
        policy=onboarding.policy,
        retention=retention_policy,
        compact=db.checkpoint,
        public_url=settings.public_url,
    )
    retention = RetentionService(
        uow, files, clock, retention_policy, prune_logs=LogFilePruner(settings.log_dir)
    )
    messages = MessageService(
        uow, users, notifier, clock, operators_chat=parse_chat(settings.support_chat)
    )
    core = Core(
        settings=settings,
        generation=generation,
        credits=CreditsService(uow, ledger, clock),
        history=HistoryService(uow, files),
        users=users,
        onboarding=onboarding,
        billing=billing,
        privacy=privacy,
        messages=messages,
        retention=retention,
        worker=worker,
        notifier=notifier,
        model=model,
        files=files,
        clock=clock,
        exclusive_worker=db.is_sqlite,
    )
    if database is None:
        core.on_close(db.dispose)
    core.on_close(model.aclose)
    return core
