"""The ``imagebot`` command: run, console, migrate, check-config, credits, keys."""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from bot.logs import add_file_logging, configure_logging
from bot.memory import tune_malloc
from core.errors import ConfigurationError, ImagebotError, UserFacingError
from core.settings import Settings, describe, load_settings

log = logging.getLogger("imagebot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagebot",
        description="Self-hosted Discord and Telegram bot for GPT Image generation and editing.",
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
    sub.add_parser("appeals", help="list privacy appeals waiting for an operator")
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

    keys = sub.add_parser("keys", help="encryption keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    ksub.add_parser("new", help="print a new random IMAGEBOT_ENCRYPTION_KEY")
    ksub.add_parser(
        "rotate",
        help="re-encrypt stored images and prompts under IMAGEBOT_ENCRYPTION_KEY "
        "(put the previous key in IMAGEBOT_ENCRYPTION_OLD_KEYS)",
    )
    return parser


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
    if command == "i18n":
        return _i18n(args.i18n_command)
    if command == "keys" and args.keys_command == "new":
        print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        return 0
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"Configuration problem:\n{exc}", file=sys.stderr)
        return 2
    if settings.log_dir is not None:
        add_file_logging(settings.log_dir)
    try:
        if command == "check-config":
            return _check_config(settings)
        if command == "migrate":
            return asyncio.run(_migrate(settings))
        if command == "credits":
            return asyncio.run(_credits(settings, args))
        if command == "keys":
            return asyncio.run(_rotate_keys(settings))
        if command == "stripe":
            return asyncio.run(_stripe(settings, args))
        if command in ("retention", "broadcast", "reply", "appeals", "admin"):
            return asyncio.run(_operator(settings, args))
        if command == "console":
            return asyncio.run(_console(settings))
        return asyncio.run(_run(settings, getattr(args, "role", None)))
    except ConfigurationError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    except UserFacingError as exc:
        print(exc.user_message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _check_config(settings: Settings) -> int:
    report = describe(settings)
    width = max(len(var) for _, var, _ in report.lines)
    marks = {"ok": "ok     ", "missing": "missing", "warning": "warning"}
    for status, var, words in report.lines:
        print(f"{marks[status]}  {var.ljust(width)}  {words}")
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


async def _run(settings: Settings, roles: list[str] | None) -> int:
    adapters = [
        name
        for name, token in (
            ("telegram", settings.telegram_token),
            ("discord", settings.discord_token),
        )
        if token
    ]
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
    from storage.files.local import LocalFileStore

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
        files = await LocalFileStore(settings.data_dir, cipher).reencrypt_all()
    finally:
        await db.dispose()
    print(f"re-encrypted {values} stored texts and {files} files under key {cipher.current_id}")
    return 0


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
        elif args.command == "appeals":
            appeals = await core.privacy.open_appeals()
            if not appeals:
                print("no open appeals")
            for a in appeals:
                print(f"#{a.id} {a.kind} refused: {a.reason}; appeal: {a.appeal_text}")
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
