"""The ``imagebot`` command: run, console, migrate, check-config, credits, keys."""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any

from bot.logs import add_file_logging, configure_logging
from bot.memory import tune_malloc
from core.errors import ConfigurationError, ImagebotError, UserFacingError
from core.settings import Settings, describe, load_settings, load_settings_for_report

log = logging.getLogger("imagebot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagebot",
        description="Self-hosted Discord and Telegram bot for GPT Image generation and editing.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="start every configured adapter and the worker (default)")
    run.add_argument(
        "--role",
        action="append",
        choices=["bot", "worker", "web", "scheduler"],
        help="run only these roles (repeatable); default: all",
    )
    sub.add_parser("console", help="use imagebot in this terminal, no tokens needed")
    sub.add_parser("migrate", help="bring the database schema up to date")
    sub.add_parser("check-config", help="say what is configured and what is missing")
    models = sub.add_parser("models", help="print the effective model catalog and prices")
    models.add_argument(
        "--check", action="store_true", help="also ask the providers about the enabled models"
    )

    credits = sub.add_parser("credits", help="operator tools for credits")
    csub = credits.add_subparsers(dest="credits_command", required=True)
    grant = csub.add_parser("grant", help="give credits to a user")
    grant.add_argument("user", help="platform:id, e.g. telegram:123456")
    grant.add_argument("amount", type=int)
    grant.add_argument("--reason", default="operator grant")
    grant.add_argument("--action-id", help="idempotency key (default: random)")
    revoke = csub.add_parser("revoke", help="take credits from a user")
    revoke.add_argument("user")
    revoke.add_argument("amount", type=int)
    revoke.add_argument("--reason", default="operator revoke")
    revoke.add_argument("--action-id")
    show = csub.add_parser("show", help="a user's balance and recent ledger")
    show.add_argument("user")

    retention = sub.add_parser("retention", help="scheduled deletion by category")
    rsub = retention.add_subparsers(dest="retention_command", required=True)
    rrun = rsub.add_parser("run", help="delete what is past its retention period now")
    rrun.add_argument("--dry-run", action="store_true", help="only say what would go")

    broadcast = sub.add_parser(
        "broadcast", help="send a product update to users who opted in to product updates"
    )
    broadcast.add_argument("text")
    reply = sub.add_parser("reply", help="answer a /feedback or /support message")
    reply.add_argument("message_id", type=int)
    reply.add_argument("text")
    appeals = sub.add_parser("appeals", help="privacy appeals: list them (default) or decide one")
    apsub = appeals.add_subparsers(dest="appeals_command")
    apsub.add_parser("list", help="appeals waiting for an operator")
    decide = apsub.add_parser(
        "decide",
        help="grant or deny an appeal; audited, and the user is told the outcome in a DM "
        "(granting an appeal against a refused erasure erases the account)",
    )
    decide.add_argument("request", type=int, help="the request number, as `appeals` lists it")
    verdict = decide.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--grant", action="store_true", help="the user was right")
    verdict.add_argument("--deny", action="store_true", help="the refusal stands")
    decide.add_argument("--reason", required=True, help="why; the user reads it")
    i18n = sub.add_parser(
        "i18n", help="the message catalogs: check them, or sync them with English"
    )
    isub = i18n.add_subparsers(dest="i18n_command", required=True)
    isub.add_parser("check", help="list missing, empty or inconsistent translations")
    isub.add_parser("sync", help="add English's new messages to every catalog (empty)")

    admin = sub.add_parser("admin", help="operator actions")
    asub = admin.add_subparsers(dest="admin_command", required=True)
    minor = asub.add_parser(
        "erase-minor", help="erase a user reported to be under 13 and refuse them from now on"
    )
    minor.add_argument("user", help="platform:id")
    training = asub.add_parser(
        "training-export",
        help="copy results of users who opted in to model improvement into a folder (P03)",
    )
    training.add_argument("folder")

    stripe_cmd = sub.add_parser("stripe", help="Stripe billing tools")
    ssub = stripe_cmd.add_subparsers(dest="stripe_command", required=True)
    reconcile = ssub.add_parser(
        "reconcile",
        help="apply paid checkouts, plan invoices, refunds and disputes that webhooks missed",
    )
    reconcile.add_argument(
        "--days", type=int, default=7, help="how far back to look, 1..30 (default 7)"
    )

    stars_cmd = sub.add_parser("stars", help="Telegram Stars tools")
    stsub = stars_cmd.add_subparsers(dest="stars_command", required=True)
    srefund = stsub.add_parser("refund", help="refund a Stars payment and take its credits back")
    srefund.add_argument("charge_id", help="the telegram_payment_charge_id")
    srefund.add_argument("--reason", required=True, help="why (kept in the operator log)")
    sreconcile = stsub.add_parser(
        "reconcile", help="apply Stars payments and refunds that lost updates missed"
    )
    sreconcile.add_argument("--days", type=int, default=3, help="how far back (1..90)")
    discord_cmd = sub.add_parser("discord", help="Discord premium tools")
    dsub = discord_cmd.add_subparsers(dest="discord_command", required=True)
    dreconcile = dsub.add_parser(
        "reconcile", help="apply Discord entitlements that lost events missed"
    )
    dreconcile.add_argument("--days", type=int, default=30, help="how far back (1..365)")
    files = sub.add_parser("files", help="the file store: move it to S3, check it")
    fsub = files.add_subparsers(dest="files_command", required=True)
    fmig = fsub.add_parser(
        "migrate",
        help="copy every local file to the S3 store (checksummed, resumable; safe while "
        "the bot runs: run it again after switching IMAGEBOT_FILE_STORE=s3)",
    )
    fmig.add_argument("--to", choices=["s3"], required=True)
    fmig.add_argument("--concurrency", type=int, default=8)
    fsub.add_parser("verify", help="report database rows without files and files without rows")

    keys = sub.add_parser("keys", help="encryption keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    ksub.add_parser("new", help="print a new random IMAGEBOT_ENCRYPTION_KEY")
    ksub.add_parser(
        "rotate",
        help="re-encrypt stored images and prompts under IMAGEBOT_ENCRYPTION_KEY "
        "(put the previous key in IMAGEBOT_ENCRYPTION_OLD_KEYS)",
    )
    return parser


def _version() -> str:
    """The installed distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imagebot")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


class _AlembicNoise(logging.Filter):
    """Alembic's set-up lines (plugins, dialect, DDL mode) say nothing to an operator;
    the "Running upgrade" lines do, and stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(("Context impl", "Will assume"))


def _quiet_alembic() -> None:
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    migration = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, _AlembicNoise) for f in migration.filters):
        migration.addFilter(_AlembicNoise())


def _i18n(action: str) -> int:
    """``imagebot i18n check|sync`` (needs no settings or database)."""
    from bot import i18n_tool

    if action == "sync":
        for lang, count in i18n_tool.sync().items():
            print(f"{lang}: {count} new message(s) to translate")
        return 0
    problems = i18n_tool.check()
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    command = args.command or "run"
    tune_malloc()
    configure_logging(
        os.environ.get("IMAGEBOT_LOG_LEVEL", "INFO"),
        quiet=command == "console",
        fmt=os.environ.get("IMAGEBOT_LOG_FORMAT", "text").lower(),
    )
    _quiet_alembic()
    if command == "i18n":
        return _i18n(args.i18n_command)
    if command == "keys" and args.keys_command == "new":
        print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        return 0
    if command == "check-config":
        return _check_config()
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"Configuration problem:\n{exc}", file=sys.stderr)
        return 2
    if settings.log_dir is not None:
        add_file_logging(settings.log_dir)
    try:
        if command == "models":
            return _models(settings, check=args.check)
        if command == "migrate":
            return asyncio.run(_migrate(settings))
        if command == "credits":
            return asyncio.run(_credits(settings, args))
        if command == "keys":
            return asyncio.run(_rotate_keys(settings))
        if command == "files":
            return asyncio.run(_files(settings, args))
        if command == "stripe":
            return asyncio.run(_stripe(settings, args))
        if command == "stars":
            if args.stars_command == "refund":
                return asyncio.run(stars_refund(settings, args.charge_id, reason=args.reason))
            return asyncio.run(stars_reconcile(settings, days=args.days))
        if command == "discord":
            return asyncio.run(discord_reconcile(settings, days=args.days))
        if command in ("retention", "broadcast", "reply", "appeals", "admin"):
            return asyncio.run(_operator(settings, args))
        if command == "console":
            return asyncio.run(_console(settings))
        with asyncio.Runner(loop_factory=event_loop_factory(settings)) as runner:
            return runner.run(_run(settings, getattr(args, "role", None)))
    except ConfigurationError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    except UserFacingError as exc:
        print(exc.user_message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _check_config() -> int:
    """Every variable on one line; a refused value is one line of the report (exit 2, as
    the bot would not start with it), not the end of it."""
    try:
        settings, invalid = load_settings_for_report()
    except ConfigurationError as exc:
        print(f"Configuration problem:\n{exc}", file=sys.stderr)
        return 2
    report = describe(settings, invalid)
    model_rows, models_ok = _model_rows(settings)
    lines = list(report.lines) + payment_rails_report(settings) + model_rows
    width = max(len(var) for _, var, _ in lines)
    marks = {
        "ok": "ok     ",
        "missing": "missing",
        "warning": "warning",
        "invalid": "INVALID",
        "error": "error  ",
    }
    for status, var, words in lines:
        print(f"{marks[status]}  {var.ljust(width)}  {words}")
    print(_run_summary(settings))
    return 2 if invalid or not models_ok else 0


def _run_summary(settings: Settings) -> str:
    """What ``imagebot run`` would do with these settings, in one sentence."""
    tokens = (("Telegram", settings.telegram_token), ("Discord", settings.discord_token))
    chats = [name for name, token in tokens if token]
    if chats:
        if settings.effective_provider(console=False) == "openai" and not settings.openai_api_key:
            return "imagebot run: refuses to start (a chat token is set, OPENAI_API_KEY is not)."
        bots = " and ".join(chats)
        return f"imagebot run: starts the {bots} bot, the worker and the HTTP server."
    if settings.stripe_secret_key is not None:
        return (
            "imagebot run: no chat token, so it serves the HTTP server only (Stripe webhooks, "
            f"health, metrics) on {settings.http_host}:{settings.http_port}."
        )
    return "imagebot run: no chat token, so it opens the console (as `imagebot console` does)."


def payment_rails_report(settings: Settings) -> list[tuple[str, str, str]]:
    """``check-config`` rows per payment rail: what is on sale there and what is missing."""
    from core.billing import parse_offers, rail_report

    try:
        offers = parse_offers(settings.offers)
    except ConfigurationError as exc:
        return [("missing", "IMAGEBOT_OFFERS", str(exc))]
    return rail_report(
        offers,
        telegram=settings.telegram_payments,
        discord=settings.discord_payments,
        stripe=settings.stripe_secret_key is not None,
    )


def _model_rows(settings: Settings) -> tuple[list[tuple[str, str, str]], bool]:
    """check-config's model section: the catalog is valid, every enabled model has a
    provider and key, and what the providers say (shutdown dates, unknown models)."""
    from core.generation.models import CatalogError, build_catalog

    rows: list[tuple[str, str, str]] = []
    try:
        catalog = build_catalog(settings, demo=settings.effective_provider(console=False) == "demo")
    except CatalogError as exc:
        rows.append(("error", "IMAGEBOT_MODELS_FILE", str(exc)))
        return rows, False
    except ConfigurationError as exc:
        rows.append(("error", "IMAGEBOT_MODELS", str(exc)))
        return rows, False
    if settings.models_file is not None:
        rows.append(("ok", "IMAGEBOT_MODELS_FILE", f"{settings.models_file} (valid)"))
    for item in catalog.enabled:
        where = item.route.base_url or settings.openai_base_url or "OpenAI's"
        if item.name not in _listed(settings):
            rows.append(
                (
                    "warning",
                    "IMAGEBOT_MODELS",
                    f"{item.name}: not in the catalog, so it gets the default model's sizes, "
                    "options and prices (describe it in IMAGEBOT_MODELS_FILE)",
                )
            )
        if item.route.key_env is not None and not os.environ.get(item.route.key_env, "").strip():
            rows.append(
                ("missing", "IMAGEBOT_MODELS", f"{item.name}: {item.route.key_env} is not set")
            )
            continue
        rows.append(("ok", "IMAGEBOT_MODELS", f"{item.name} on {where}"))
    has_key = settings.openai_api_key is not None or any(
        item.route.key_env for item in catalog.enabled
    )
    if settings.effective_provider(console=False) == "openai" and has_key:
        warnings = asyncio.run(_ask_providers(settings, catalog))
        for text in warnings:
            rows.append(("warning", "IMAGEBOT_MODELS", text))
    else:
        for name in catalog.enabled_names:
            shutdown = catalog.shutdown_date(name)
            if shutdown is not None:
                rows.append(
                    ("warning", "IMAGEBOT_MODELS", f"{name}: shutdown date {shutdown.isoformat()}")
                )
    return rows, True


def _listed(settings: Settings) -> set[str]:
    from core.generation.models import load_catalog

    return set(load_catalog(settings.models_file))


async def _ask_providers(settings: Settings, catalog: Any) -> list[str]:
    """Ask each provider about its enabled models; the warnings for the operator."""
    from core.clock import SystemClock
    from core.generation.providers import CatalogRouter, build_image_model
    from core.generation.watch import ModelWatch
    from core.notifier import NotifierHub

    try:
        model = build_image_model(settings, console=False, catalog=catalog)
    except ConfigurationError as exc:
        return [str(exc)]
    assert isinstance(model, CatalogRouter)
    try:
        # No database: check-config only asks; nothing is moved or sent.
        watch = ModelWatch(
            catalog=catalog, lookup=model.lookup, notifier=NotifierHub(), clock=SystemClock()
        )
        warnings = await watch.check()
    finally:
        await model.aclose()
    return [w.text for w in warnings]


def _models(settings: Settings, *, check: bool) -> int:
    """``imagebot models``: the effective catalog, the enabled models first."""
    from core.generation.models import CatalogError, allowed_sizes_text, build_catalog
    from core.generation.pricing import PriceTable

    try:
        catalog = build_catalog(settings, demo=settings.effective_provider(console=False) == "demo")
        prices = PriceTable.from_catalog(catalog.all_specs(), settings.prices)
    except (CatalogError, ConfigurationError) as exc:
        print(f"Configuration problem:\n{exc}", file=sys.stderr)
        return 2
    warnings: list[str] = []
    if check:
        warnings = asyncio.run(_ask_providers(settings, catalog))
    enabled = catalog.enabled_names
    names = list(enabled) + sorted(n for n in catalog.all_specs() if n not in enabled)
    source = f"shipped + {settings.models_file}" if settings.models_file else "shipped"
    print(f"Model catalog ({source}); enabled: {', '.join(enabled)}")
    for name in names:
        spec = catalog.spec(name)
        state = "enabled" if name in enabled else "available"
        if name == enabled[0]:
            state = "enabled, default"
        if spec.retired:
            state += ", retired"
        shutdown = catalog.shutdown_date(name)
        if shutdown is not None:
            state += f", shutdown {shutdown.isoformat()}"
        print()
        print(f"{name}  ({spec.display}; {state})")
        route = catalog.route(name)
        provider = spec.provider
        if route.base_url:
            provider += f" at {route.base_url} (key in {route.key_env or 'OPENAI_API_KEY'})"
        print(f"  provider     {provider}")
        print(f"  sizes        {allowed_sizes_text(spec)}")
        print(f"  qualities    {', '.join(spec.qualities)}")
        print(f"  formats      {', '.join(spec.formats)}")
        print(f"  backgrounds  {', '.join(spec.backgrounds)}")
        extras = [
            f"streaming {'yes' if spec.streams else 'no'}",
            f"inputs up to {spec.max_inputs}",
            f"mask {'yes' if spec.supports_mask else 'no'}",
            f"prompt up to {spec.max_prompt_chars} characters",
        ]
        if spec.input_fidelity:
            extras.append("input_fidelity")
        print(f"  takes        {', '.join(extras)}")
        defaults = ", ".join(f"{k} {v}" for k, v in spec.defaults.items())
        print(f"  defaults     {defaults}")
        row = prices.row(name)
        print(
            "  credits      "
            + ", ".join(f"{q} {row[q]}" for q in spec.qualities if q in row)
            + " (per 1024x1024 image; other sizes by area)"
        )
        if spec.successor:
            print(f"  successor    {spec.successor}")
    for text in warnings:
        print(f"\nwarning: {text}")
    return 0


async def _migrate(settings: Settings) -> int:
    from storage.database import Database

    db = Database(settings.database_url, schema=settings.database_schema)
    try:
        await db.migrate()
    finally:
        await db.dispose()
    print("database is up to date")
    return 0


async def _console(settings: Settings) -> int:
    from bot.console.app import run_console
    from bot.wiring import build_core

    core = await build_core(settings, console=True)
    return await run_console(core)


def event_loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop for ``imagebot run`` unless turned off (``IMAGEBOT_UVLOOP=false``)
    or not installed (then asyncio's own)."""
    if not settings.uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _run(settings: Settings, roles: list[str] | None) -> int:
    adapters = [
        name
        for name, token in (
            ("telegram", settings.telegram_token),
            ("discord", settings.discord_token),
        )
        if token
    ]
    if not adapters and not roles and settings.stripe_secret_key is not None:
        # Billing without a chat platform (yet): an operator expects the webhooks served.
        url = f"http://{settings.http_host}:{settings.http_port}"
        print(
            "No IMAGEBOT_TELEGRAM_TOKEN or IMAGEBOT_DISCORD_TOKEN set, but Stripe is: serving "
            f"the HTTP server only, Stripe webhooks at {url}/stripe/webhook, health at "
            f"{url}/healthz. Use `imagebot console` to try the bot in a terminal.",
            file=sys.stderr,
        )
        from bot.runner import run_service

        return await run_service(settings, adapters=[], roles={"web", "scheduler"})
    if not adapters and not roles:
        # No platform configured: the README's first command lands here on a fresh machine.
        print(
            "No IMAGEBOT_TELEGRAM_TOKEN or IMAGEBOT_DISCORD_TOKEN set: opening the console.",
            file=sys.stderr,
        )
        logging.getLogger().setLevel(logging.WARNING)  # the console's own lines only
        return await _console(settings)
    from bot.runner import run_service

    return await run_service(settings, adapters=adapters, roles=set(roles or []))


async def _rotate_keys(settings: Settings) -> int:
    from storage.database import Database
    from storage.files import S3FileStore, build_file_store

    cipher = settings.data_cipher()
    if cipher is None:
        print(
            "Set IMAGEBOT_ENCRYPTION_KEY to the new key first (and the old one in "
            "IMAGEBOT_ENCRYPTION_OLD_KEYS).",
            file=sys.stderr,
        )
        return 2
    db = Database(settings.database_url, schema=settings.database_schema, cipher=cipher)
    try:
        await db.migrate()
        values = await db.reencrypt()
        store = build_file_store(settings, cipher)
        files = await store.reencrypt_all()
        if isinstance(store, S3FileStore):
            await store.aclose()
    finally:
        await db.dispose()
    print(f"re-encrypted {values} stored texts and {files} files under key {cipher.current_id}")
    return 0


def _s3_store(settings: Settings) -> Any:
    from storage.files import S3FileStore

    if not settings.s3_bucket:
        raise ConfigurationError(
            "set IMAGEBOT_S3_BUCKET (and IMAGEBOT_S3_ENDPOINT_URL for a store other than AWS S3)"
        )
    return S3FileStore(
        settings.s3_bucket,
        prefix=settings.s3_prefix,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        cipher=settings.data_cipher(),
    )


async def _files(settings: Settings, args: argparse.Namespace) -> int:
    """``imagebot files migrate --to s3`` and ``imagebot files verify``."""
    from storage.database import Database
    from storage.files import build_file_store
    from storage.files.local import LocalFileStore
    from storage.files.moving import copy_files, progress_bar, verify_files

    cipher = settings.data_cipher()
    if args.files_command == "migrate":
        source = LocalFileStore(settings.data_dir, cipher)
        target = _s3_store(settings)
        try:
            problem = await target.check()
            if problem:
                print(f"Cannot reach the S3 store: {problem}", file=sys.stderr)
                return 2
            report = await copy_files(
                source, target, progress=progress_bar(sys.stderr), concurrency=args.concurrency
            )
        finally:
            await target.aclose()
        print(
            f"{report.total} files: {report.copied} copied ({report.bytes_copied} bytes), "
            f"{report.skipped} already there, {report.vanished} deleted meanwhile"
        )
        return 0
    db = Database(settings.database_url, schema=settings.database_schema, cipher=cipher)
    store = build_file_store(settings, cipher)
    try:
        await db.migrate()
        result = await verify_files(db, store)
    finally:
        await db.dispose()
        if hasattr(store, "aclose"):
            await store.aclose()
    for path in result.rows_without_objects:
        print(f"row without file: {path}")
    for path in result.objects_without_rows:
        print(f"file without row: {path}")
    print(
        f"{settings.file_store} store: {result.objects} files ({result.exports} exports), "
        f"{result.rows} rows; {len(result.rows_without_objects)} rows without files, "
        f"{len(result.objects_without_rows)} files without rows"
    )
    return 0 if result.ok else 1


async def _operator(settings: Settings, args: argparse.Namespace) -> int:
    """Operator commands that need the core but no platform connection (except DMs)."""
    from bot.wiring import build_core
    from core.generation.providers.demo import DemoImageModel

    core = await build_core(settings, model=DemoImageModel())
    try:
        if args.command == "retention":
            counts = await core.retention.sweep(dry_run=args.dry_run)
            verb = "would delete" if args.dry_run else "deleted"
            for category, count in counts.items():
                print(f"{category:<20} {verb} {count}")
        elif args.command == "admin" and args.admin_command == "erase-minor":
            platform, _, user_id = args.user.partition(":")
            if not user_id:
                print("Give the user as platform:id, e.g. telegram:123456", file=sys.stderr)
                return 2
            from core.types import Actor

            await core.onboarding.refuse(Actor(platform, user_id))
            print(f"erased {args.user}; only a refusal marker is kept")
        elif args.command == "admin" and args.admin_command == "training-export":
            count = await _training_export(core, args.folder)
            print(f"exported {count} results of users who opted in")
        elif args.command == "appeals" and getattr(args, "appeals_command", None) == "decide":
            return await _decide_appeal(core, args)
        elif args.command == "appeals":
            appeals = await core.privacy.open_appeals()
            if not appeals:
                print("no open appeals")
            for a in appeals:
                print(f"#{a.id} {a.kind} refused: {a.reason}; appeal: {a.appeal_text}")
            if appeals:
                print("Decide with: imagebot appeals decide ID --grant|--deny --reason TEXT")
        else:
            await _start_platform_senders(core)
            if args.command == "broadcast":
                print(f"sent to {await core.messages.broadcast(args.text)} users")
            else:
                await core.messages.reply(args.message_id, args.text)
                print("answer stored and sent")
        return 0
    finally:
        await core.aclose()


async def _decide_appeal(core: Any, args: argparse.Namespace) -> int:
    """``imagebot appeals decide``: the operator's verdict, audited as the local operator,
    and told to the user in a DM through the configured platform."""
    import getpass

    from core.errors import NotFound
    from core.types import Actor

    await _start_platform_senders(core)
    operator = Actor("cli", os.environ.get("USER") or getpass.getuser())
    try:
        decision, told = await core.admin.decide_appeal(
            operator, args.request, grant=args.grant, reason=args.reason
        )
    except NotFound as exc:
        print(exc.user_message, file=sys.stderr)
        return 1
    print(f"appeal #{decision.request_id} {decision.decision}; recorded in the audit log")
    if decision.receipt is not None:
        print(f"the account was erased (request {decision.receipt.request_id})")
    if decision.recipient is None:
        print("the account no longer exists: nobody to tell")
    elif told:
        print("the user was told in a direct message")
    else:
        print(
            "the user could not be reached (no token for their platform, or they blocked "
            "the bot); the decision stands and is in their /privacy requests",
            file=sys.stderr,
        )
    return 0


async def _training_export(core: Any, folder: str) -> int:
    """Write opted-in results and a manifest into ``folder``."""
    import json
    from pathlib import Path

    out = Path(folder)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    manifest = []
    for job_id, prompt, paths in await core.privacy.training_material():
        files = []
        for index, path in enumerate(paths):
            name = f"{job_id}-{index}.{path.rsplit('.', 1)[-1]}"
            await asyncio.to_thread((out / name).write_bytes, await core.files.read(path))
            files.append(name)
        manifest.append({"job": job_id, "prompt": prompt, "files": files})
    text = json.dumps(manifest, ensure_ascii=False, indent=1)
    await asyncio.to_thread((out / "manifest.json").write_text, text)
    return len(manifest)


async def _start_platform_senders(core: Any) -> None:
    """Register each configured platform's send-only notifier so DMs leave the CLI."""
    from bot.runner import start_deliveries

    platforms = [
        name
        for name, token in (
            ("telegram", core.settings.telegram_token),
            ("discord", core.settings.discord_token),
        )
        if token
    ]
    for stop in await start_deliveries(core, platforms):
        core.on_close(stop)


async def _stripe(settings: Settings, args: argparse.Namespace) -> int:
    """``imagebot stripe reconcile``: what lost webhooks missed, through the same path."""
    if settings.stripe_secret_key is None:
        print("IMAGEBOT_STRIPE_SECRET_KEY is not set: nothing to reconcile.", file=sys.stderr)
        return 2
    if not 1 <= args.days <= 30:
        print("--days must be 1..30 (Stripe lists events for 30 days).", file=sys.stderr)
        return 2
    import stripe

    from bot.wiring import build_core
    from core.generation.providers.demo import DemoImageModel
    from payments.stripe.gateway import StripeGateway
    from payments.stripe.reconcile import reconcile

    core = await build_core(settings, model=DemoImageModel())
    try:
        gateway = core.billing.gateway
        assert isinstance(gateway, StripeGateway)
        await _start_platform_senders(core)
        report = await reconcile(gateway, days=args.days)
        print(report.text())
        return 0
    except stripe.StripeError as exc:
        print(
            f"Stripe failed ({type(exc).__name__}, status {exc.http_status}); nothing "
            "half-applied, run it again.",
            file=sys.stderr,
        )
        return 1
    finally:
        await core.aclose()


async def stars_refund(settings: Settings, charge_id: str, *, reason: str) -> int:
    """``imagebot stars refund <charge id> --reason …``: refund at Telegram, then the ledger."""
    if not reason.strip():
        print("Give a reason with --reason.", file=sys.stderr)
        return 2
    from telegram.error import TelegramError

    from bot.telegram.payments import make_bot, refund_stars
    from bot.wiring import build_core
    from core.generation.providers.demo import DemoImageModel

    bot = make_bot(settings)
    core = await build_core(settings, model=DemoImageModel())
    try:
        await _start_platform_senders(core)
        async with bot:
            outcome = await refund_stars(core, bot, charge_id)
        log.info(
            "stars refund charge=%s applied=%s reason=%r",
            charge_id[:64],
            outcome.applied,
            reason[:200],
        )
        print(
            "Refunded; credits taken back."
            if outcome.applied
            else "Refunded at Telegram; the ledger had it already."
        )
        return 0
    except TelegramError as exc:
        print(f"Telegram refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await core.aclose()


async def stars_reconcile(settings: Settings, *, days: int) -> int:
    """``imagebot stars reconcile [--days N]``: what lost updates missed, applied once."""
    if not 1 <= days <= 90:
        print("--days must be 1..90.", file=sys.stderr)
        return 2
    from telegram.error import TelegramError

    from bot.telegram.payments import make_bot, reconcile_stars
    from bot.wiring import build_core
    from core.generation.providers.demo import DemoImageModel

    bot = make_bot(settings)
    core = await build_core(settings, model=DemoImageModel())
    try:
        await _start_platform_senders(core)
        async with bot:
            report = await reconcile_stars(core, bot, days=days)
        print(report.text())
        return 0
    except TelegramError as exc:
        print(f"Telegram failed: {type(exc).__name__}; run it again.", file=sys.stderr)
        return 1
    finally:
        await core.aclose()


async def discord_reconcile(settings: Settings, *, days: int) -> int:
    """``imagebot discord reconcile``: entitlements that lost events missed, applied once."""
    if not 1 <= days <= 365:
        print("--days must be 1..365.", file=sys.stderr)
        return 2
    from bot.discord.premium import reconcile_entitlements
    from bot.wiring import build_core
    from core.generation.providers.demo import DemoImageModel

    core = await build_core(settings, model=DemoImageModel())
    try:
        await _start_platform_senders(core)
        report = await reconcile_entitlements(core, days=days)
        print(report.text())
        return 0
    finally:
        await core.aclose()


async def _credits(settings: Settings, args: argparse.Namespace) -> int:
    from bot.wiring import build_core

    platform, _, user_id = args.user.partition(":")
    if not user_id:
        print("Give the user as platform:id, e.g. telegram:123456", file=sys.stderr)
        return 2
    from core.generation.providers.demo import DemoImageModel

    core = await build_core(settings, model=DemoImageModel())
    try:
        if args.credits_command == "show":
            from core.types import Actor

            user_pk = await core.credits.user_for(Actor(platform, user_id))
            if user_pk is None:
                print(f"No user {args.user}.", file=sys.stderr)
                return 1
            from bot.console.render import render_balance

            print(render_balance(await core.credits.balance(user_pk, recent=20)))
            return 0
        amount = args.amount if args.credits_command == "grant" else -args.amount
        if args.amount <= 0:
            print("The amount must be a positive number.", file=sys.stderr)
            return 2
        action = args.action_id or secrets.token_hex(8)
        applied, balance = await core.credits.operator_grant(
            platform, user_id, amount, action_id=action, reason=args.reason
        )
        verb = "granted" if amount > 0 else "revoked"
        if applied:
            print(f"{verb} {abs(amount)} credits to {args.user}; balance now {balance}")
        else:
            print(f"action {action} was already applied; balance {balance}")
        return 0
    except ImagebotError as exc:
        print(getattr(exc, "user_message", str(exc)), file=sys.stderr)
        return 1
    finally:
        await core.aclose()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
