"""Composition: build settings-driven services once and hand a ``Core`` to the adapters."""

from __future__ import annotations

import functools
import logging
import time
from datetime import date

from bot.logs import LogFilePruner
from bot.metrics import PrometheusMetrics
from core.admin.service import AdminService
from core.app import Core
from core.billing.ledger import CreditLedger, CreditsService
from core.billing.offers import BillingService, CheckoutGateway, parse_offers
from core.billing.purchases import PurchaseService
from core.clock import SystemClock
from core.files import DownloadLinks
from core.generation import GalleryAccess, GalleryService
from core.generation.capacity import ProviderCapacity, default_memory_budget
from core.generation.history import HistoryService
from core.generation.intake import ImageLimits
from core.generation.models import ModelCatalog, build_catalog, resolve_options
from core.generation.ports import ImageModel
from core.generation.pricing import PriceTable
from core.generation.providers import CatalogRouter, build_image_model
from core.generation.service import GenerationLimits, GenerationService
from core.generation.watch import ModelWatch
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
from core.types import Actor, GenerateOptions, ResolvedOptions, UserSettingsView
from core.users import UserService
from storage.database import Database
from storage.files import S3FileStore, build_file_store
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
    files = build_file_store(settings, cipher)
    clock_ = clock

    def today() -> date:
        return clock_.now().date()

    demo = (
        (model.name == "demo")
        if model is not None
        else (settings.effective_provider(console=console) == "demo")
    )
    catalog = build_catalog(settings, demo=demo)
    if model is None:
        model = build_image_model(settings, console=console, catalog=catalog, today=today)
    elif not isinstance(model, CatalogRouter):
        model = CatalogRouter(catalog, {}, model, today=today)
    if model.notice:
        log.warning("image provider: %s (%s)", model.name, model.notice)
    else:
        log.info("image provider: %s models=%s", model.name, ",".join(catalog.enabled_names))
    if cipher is None:
        log.warning(
            "IMAGEBOT_ENCRYPTION_KEY is not set: images and prompts are stored in plain form"
        )
    else:
        log.info("data at rest is encrypted with key %s", cipher.current_id)
    model_name = catalog.enabled_names[0]
    prices = PriceTable.from_catalog(catalog.all_specs(), settings.prices)
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
            chat_platforms=settings.chat_rate_platforms,
            group_sends_per_minute=settings.telegram_group_sends_per_minute,
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
        resolve_options=functools.partial(_resolve_for_settings, catalog, clock),
        default_language=settings.default_language,
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
            memory_budget=(
                settings.worker_memory_mb * 2**20
                if settings.worker_memory_mb
                else default_memory_budget()
            ),
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
        catalog=catalog,
        eta=worker.eta,
    )
    generation.watch = ModelWatch(
        catalog=catalog,
        lookup=model.lookup if isinstance(model, CatalogRouter) and not demo else None,
        uow=uow,
        notifier=notifier,
        clock=clock,
        operators=sorted(settings.admin_ids),
        metrics=metrics,
        language=settings.default_language,
    )

    async def ensure_user_id(actor: Actor) -> int:
        return (await users.register(actor)).id

    offers = parse_offers(settings.offers)
    stripe_gateway = None
    # One purchase core for every rail: Stripe (payments/), Telegram Stars and Discord
    # premium (through their adapters).
    purchases = PurchaseService(uow, ledger, notifier, clock, offers, metrics)
    if gateway is None and settings.stripe_secret_key is not None:
        from payments.stripe.gateway import build_stripe_gateway

        gateway = stripe_gateway = build_stripe_gateway(settings, purchases)
    billing = BillingService(offers, gateway, ensure_user=ensure_user_id, purchases=purchases)
    retention_policy = RetentionPolicy.from_json(settings.retention)

    async def sign(purpose: str, message: bytes) -> str:
        async with uow() as unit:
            signature = await users.sign(unit, purpose, message)
            await unit.commit()  # the installation secret is made on first use
        return signature

    downloads = DownloadLinks(
        files,
        sign,
        clock.now,
        public_url=settings.public_url,
        ttl_seconds=settings.download_link_seconds,
    )
    privacy = PrivacyService(
        uow,
        users,
        files,
        clock,
        policy=onboarding.policy,
        retention=retention_policy,
        compact=db.checkpoint,
        downloads=downloads,
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
    history = HistoryService(uow, files, downloads=downloads)
    telegram_token = settings.telegram_token
    core = Core(
        settings=settings,
        generation=generation,
        credits=credits,
        history=history,
        gallery=GalleryService(uow, files, history, clock),
        gallery_access=GalleryAccess(
            uow,
            users,
            clock,
            public_url=settings.public_url,
            telegram_token=lambda: telegram_token.get_secret_value() if telegram_token else None,
        ),
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

    core.downloads = downloads
    if isinstance(files, S3FileStore):
        core.readiness["files"] = files.check
        core.on_close(files.aclose)
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


def _resolve_for_settings(
    catalog: ModelCatalog,
    clock: Clock,
    options: GenerateOptions,
    *,
    model: str,
    defaults: UserSettingsView | None = None,
) -> ResolvedOptions:
    """Check a user's /settings choice: the model must be on offer, the values its own."""
    chosen = catalog.choose(options.model, None, clock.now().date()) if options.model else model
    if not options.model and model not in catalog.offered(clock.now().date()):
        chosen = catalog.default_model(clock.now().date())
    return resolve_options(options, model=chosen, defaults=defaults, catalog=catalog)


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
