"""Composition: build settings-driven services once and hand a ``Core`` to the adapters."""

from __future__ import annotations

import logging
import time

from bot.logs import LogFilePruner
from bot.metrics import PrometheusMetrics
from core.admin.service import AdminService
from core.app import Core
from core.billing.ledger import CreditLedger, CreditsService
from core.billing.offers import BillingService, CheckoutGateway, parse_offers
from core.billing.purchases import PurchaseService
from core.clock import SystemClock
from core.generation.capacity import ProviderCapacity, default_memory_budget
from core.generation.history import HistoryService
from core.generation.intake import ImageLimits
from core.generation.models import resolve_options
from core.generation.ports import ImageModel
from core.generation.pricing import PriceTable
from core.generation.providers import build_image_model
from core.generation.service import GenerationLimits, GenerationService
from core.generation.worker import Worker
from core.notifier import NotifierHub
from core.ports import Clock
from core.privacy.messages import MessageService, parse_chat
from core.privacy.onboarding import OnboardingService, Policy
from core.privacy.retention import RetentionPolicy, RetentionService
from core.privacy.service import PrivacyService
from core.safety.moderation import OpenAIModerationScreener
from core.safety.screening import BlocklistScreener, Screener
from core.safety.service import SafetyConfig, SafetyService
from core.settings import Settings
from core.types import Actor
from core.users import UserService
from storage.database import Database
from storage.files.local import LocalFileStore
from storage.generation.capacity import SqlSharedLanes
from storage.locks import DatabaseLocks
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
    screener = screener or build_screener(settings, model_name)
    safety = SafetyService(
        uow,
        clock,
        SafetyConfig(
            user_per_minute=settings.rate_user_per_minute,
            user_burst=settings.rate_user_burst,
            chat_per_minute=settings.rate_chat_per_minute,
            chat_burst=settings.rate_chat_burst,
            strikes_temp_ban=settings.strikes_temp_ban,
            strikes_permanent_ban=settings.strikes_permanent_ban,
            temp_ban_hours=settings.temp_ban_hours,
        ),
    )
    users = UserService(
        uow,
        ledger,
        clock,
        free_credits=settings.free_credits,
        model=model_name,
        resolve_options=resolve_options,
    )
    onboarding = OnboardingService(
        uow,
        users,
        files,
        clock,
        policy=Policy(settings.policy_version, settings.policy_effective_date, settings.policy_url),
        required=settings.require_terms,
    )
    notifier = NotifierHub()
    metrics = PrometheusMetrics()
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
        safety=safety,
        metrics=metrics,
        owner=settings.worker_name,
        capacity=ProviderCapacity(
            ceiling=settings.worker_concurrency,
            memory_budget=default_memory_budget(),
            initial=min(4, settings.worker_concurrency),
            # On PostgreSQL every worker process keeps to one bound per provider lane.
            shared=None if db.is_sqlite else SqlSharedLanes(db),
            clock=time.monotonic if db.is_sqlite else time.time,
            lease_s=lease_seconds or settings.lease_seconds,
        ),
        default_model=model_name,
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
        safety=safety,
        metrics=metrics,
        wake_workers=worker.wake,
        eta=worker.eta,
    )

    async def ensure_user_id(actor: Actor) -> int:
        return (await users.register(actor)).id

    offers = parse_offers(settings.offers)
    stripe_gateway = None
    if gateway is None and settings.stripe_secret_key is not None:
        from payments.stripe.gateway import build_stripe_gateway

        purchases = PurchaseService(uow, ledger, notifier, clock, offers, metrics)
        gateway = stripe_gateway = build_stripe_gateway(settings, purchases)
    billing = BillingService(offers, gateway, ensure_user=ensure_user_id)
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
        ledger=ledger,
    )
    retention = RetentionService(
        uow, files, clock, retention_policy, prune_logs=LogFilePruner(settings.log_dir)
    )
    messages = MessageService(
        uow, users, notifier, clock, operators_chat=parse_chat(settings.support_chat)
    )
    credits = CreditsService(uow, ledger, clock)
    admin = AdminService(
        uow,
        clock,
        operators=settings.admin_ids,
        credits=credits,
        ledger=ledger,
        safety=safety,
        privacy=privacy,
        retention=retention,
        notifier=notifier,
        files=files,
    )
    core = Core(
        settings=settings,
        generation=generation,
        credits=credits,
        history=HistoryService(uow, files),
        users=users,
        onboarding=onboarding,
        billing=billing,
        privacy=privacy,
        messages=messages,
        retention=retention,
        safety=safety,
        admin=admin,
        metrics=metrics,
        worker=worker,
        notifier=notifier,
        model=model,
        files=files,
        clock=clock,
        exclusive_worker=db.is_sqlite,
    )
    core.readiness["database"] = db.readiness
    core.locks = DatabaseLocks(db)
    core.on_close(core.locks.release)
    if database is None:
        core.on_close(db.dispose)
    core.on_close(model.aclose)
    if stripe_gateway is not None:
        core.on_close(stripe_gateway.aclose)
    if hasattr(screener, "aclose"):
        core.on_close(screener.aclose)
    return core


def build_screener(settings: Settings, model_name: str) -> Screener:
    """The block list, plus the provider's moderation endpoint when one is configured."""
    blocklist = BlocklistScreener(settings.blocklist_patterns)
    if not settings.moderation or model_name == "demo" or settings.openai_api_key is None:
        if settings.moderation and model_name != "demo":
            log.warning("moderation endpoint unavailable without OPENAI_API_KEY: block list only")
        return blocklist
    return OpenAIModerationScreener(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        model=settings.moderation_model,
        fail_open=settings.moderation_fail_mode == "open",
        thresholds=settings.thresholds(),
        screen_outputs=settings.moderate_outputs,
        blocklist=blocklist,
    )
