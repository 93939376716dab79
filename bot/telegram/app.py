"""The Telegram adapter: python-telegram-bot around the core, started by ``imagebot run``.

``start(core)`` builds the bot (against ``IMAGEBOT_TELEGRAM_API_URL`` when set: a
self-hosted Bot API server, or a test fake), sets the command menu, registers the
notifier and receives updates by long polling, or, when ``IMAGEBOT_TELEGRAM_WEBHOOK_URL``
is set, through the route ``install_routes(core, app)`` mounts on imagebot's own HTTP
server (each request must carry the secret token: 403 otherwise, nothing processed).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    Defaults,
    MessageHandler,
    PreCheckoutQueryHandler,
    TypeHandler,
    filters,
)

from bot.telegram import admin, handlers, payments, privacy
from bot.telegram.buttons import on_button
from bot.telegram.notifier import TelegramNotifier
from bot.telegram.outbox import GroupPacer, Outbox
from bot.telegram.replies import log_failure
from bot.telegram.runtime import Runtime
from bot.telegram.status import StatusBoard
from bot.telegram.transport import AiohttpRequest
from core.app import Core
from core.errors import ConfigurationError
from core.i18n import LANGUAGES, t

log = logging.getLogger("imagebot.telegram")

ALLOWED_UPDATES = ["message", "callback_query", "pre_checkout_query"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"
CONCURRENT_UPDATES = 512
"""Updates handled at once: a burst of commands all get their first answer quickly."""
PROGRESS_RATE = 10.0
"""With Telegram's limits enforced (30 messages a second), progress edits of all chats take
at most this many a second; first answers and results keep the rest."""

GROUP_MENU = ("imagine", "edit", "history", "settings", "balance", "help")
PRIVATE_MENU = (
    "start",
    *GROUP_MENU[:-1],
    "buy",
    "subscribe",
    "billing",
    "gallery",
    "paysupport",
    GROUP_MENU[-1],
)
PRIVACY_MENU = ("privacy", "export", "delete_my_data", "feedback", "support")
OPERATOR_MENU = ("admin",)


def commands(names: Sequence[str], lang: str) -> list[BotCommand]:
    """The menu entries ``names`` described in ``lang``."""
    return [BotCommand(name, t(f"menu.{name}", lang)) for name in names]


def menu_language_code(lang: str) -> str:
    """Telegram's ``language_code`` for a shipped language (two-letter ISO 639-1)."""
    return lang.split("-", 1)[0]


def menu(*, privacy: bool, lang: str = "en") -> tuple[list[BotCommand], list[BotCommand]]:
    """(every chat, private chats) in ``lang``; with ``privacy`` the privacy commands are
    listed, in private chats only (they answer only there)."""
    private = list(PRIVATE_MENU)
    if privacy:
        private[-1:-1] = PRIVACY_MENU
    return commands(GROUP_MENU, lang), commands(private, lang)


def operator_ids(core: Core) -> list[int]:
    """The Telegram ids among ``IMAGEBOT_ADMINS``."""
    return sorted(
        int(uid)
        for platform, uid in core.settings.admin_ids
        if platform == "telegram" and uid.lstrip("-").isdigit()
    )


def build_application(
    core: Core,
    *,
    rate_limit: bool,
    polling: bool = True,
    concurrent_updates: int = CONCURRENT_UPDATES,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The python-telegram-bot application, handlers registered, not started; without
    ``polling`` it has no updater (webhook mode, or sending only)."""
    settings = core.settings
    if settings.telegram_token is None:
        raise ConfigurationError("IMAGEBOT_TELEGRAM_TOKEN is not set")
    builder = (
        Application.builder()
        .token(settings.telegram_token.get_secret_value())
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .concurrent_updates(concurrent_updates)
        .job_queue(None)  # unused: no APScheduler scheduler of PTB's own
        # aiohttp (HTTP/1.1, which self-hosted Bot API servers want) instead of httpx.
        .request(AiohttpRequest())
        # Two connections for polling, or stopping waits on the held long poll.
        .get_updates_request(AiohttpRequest(calls=2, uploads=1))
    )
    if settings.telegram_api_url:
        root = settings.telegram_api_url.rstrip("/")
        builder = builder.base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
    if rate_limit:
        # PTB paces the bot's overall rate; the per-group budget is the GroupPacer's (kept in
        # the database, shared by every process, and it merges progress edits).
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3, group_max_rate=0))  # type: ignore[arg-type]
    if not polling:
        builder = builder.updater(None)
    application = builder.build()
    register_handlers(application)
    return application


def register_handlers(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Every command, message and button handler, in the order they are tried."""
    application.add_handler(TypeHandler(Update, handlers.screen_update), group=-1)
    add = application.add_handler
    add(CommandHandler("start", handlers.start_command))
    add(CommandHandler("help", handlers.help_command))
    add(CommandHandler(["imagine", "edit"], handlers.imagine_command))
    # CommandHandler ignores captions: a photo, file or album captioned with a command.
    add(
        MessageHandler(
            filters.CaptionRegex(r"^/(imagine|edit)(@\w+)?(\s|$)")
            & (filters.PHOTO | filters.Document.ALL),
            handlers.imagine_command,
        )
    )
    add(CommandHandler("settings", handlers.settings_command))
    add(CommandHandler("history", handlers.history_command))
    add(CommandHandler("gallery", handlers.gallery_command))
    add(CommandHandler("balance", handlers.balance_command))
    add(CommandHandler(["buy", "subscribe"], handlers.offers_command))
    add(CommandHandler("billing", handlers.billing_command))
    add(CommandHandler("paysupport", handlers.paysupport_command))
    add(PreCheckoutQueryHandler(payments.pre_checkout))
    add(MessageHandler(filters.SUCCESSFUL_PAYMENT, payments.successful_payment))
    add(MessageHandler(filters.StatusUpdate.REFUNDED_PAYMENT, payments.refunded_payment))
    for name, handler in {**privacy.COMMANDS, **admin.COMMANDS}.items():
        add(CommandHandler(name, handler))
    add(CallbackQueryHandler(on_button))
    add(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, handlers.edit_instruction))
    add(MessageHandler(filters.COMMAND, handlers.unknown_command))
    add(
        MessageHandler(
            filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, handlers.plain_text
        )
    )
    application.add_error_handler(_on_error)


async def _on_error(update: object, context: object) -> None:
    error = getattr(context, "error", None)
    if error is not None:
        update_id = update.update_id if isinstance(update, Update) else None
        log_failure("telegram", error, update_id)


class TelegramAdapter:
    """One running Telegram bot for one core."""

    def __init__(
        self,
        core: Core,
        *,
        progress_interval: float = 1.0,
        album_wait: float = 1.0,
        poll_timeout: int = 10,
        rate_limit: bool | None = None,
        receive: bool = True,
    ) -> None:
        settings = core.settings
        self.core = core
        self.poll_timeout = poll_timeout
        self.webhook_url = settings.telegram_webhook_url
        secret = settings.telegram_webhook_secret
        self.secret = secret.get_secret_value() if secret else secrets.token_urlsafe(32)
        limited = settings.telegram_rate_limit if rate_limit is None else rate_limit
        self.application = build_application(
            core, rate_limit=limited, polling=receive and not self.webhook_url
        )
        pacer = (
            GroupPacer(
                lambda chat, limit, window: core.safety.send_slot(
                    "telegram", chat, limit=limit, window=window
                ),
                limit=settings.telegram_group_sends_per_minute,
            )
            if limited
            else None
        )
        self.runtime = Runtime(
            core,
            self.application.bot,
            outbox=Outbox(pacer=pacer),
            board=StatusBoard(interval=progress_interval, rate=PROGRESS_RATE if limited else None),
            album_wait=album_wait,
        )
        self.application.bot_data["runtime"] = self.runtime
        self.started = False

    @property
    def webhook_path(self) -> str:
        """The path of the webhook route (that of the public URL, so a proxy maps 1:1)."""
        path = urlparse(self.webhook_url or "").path
        return path if path and path != "/" else DEFAULT_WEBHOOK_PATH

    def install_routes(self, app: web.Application) -> None:
        """Mount the webhook route on imagebot's HTTP server (webhook mode only)."""
        if self.webhook_url:
            app.router.add_post(self.webhook_path, self.handle_webhook)

    async def start(self) -> None:
        """Connect, set the menu, register the notifier, start receiving updates."""
        application = self.application
        await application.initialize()
        self.core.notifier.register("telegram", TelegramNotifier(self.runtime))
        await self._set_menu()
        await application.start()
        if self.webhook_url:
            await application.bot.set_webhook(
                self.webhook_url,
                secret_token=self.secret,
                allowed_updates=ALLOWED_UPDATES,
                max_connections=40,
            )
        else:
            assert application.updater is not None
            await application.updater.start_polling(
                timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES
            )
        self.started = True
        log.info(
            "telegram bot @%s started (%s)",
            self.runtime.username,
            "webhook" if self.webhook_url else "long polling",
        )

    async def start_sending(self) -> None:
        """Only the notifier (no updates received, no menu): for worker processes."""
        await self.application.initialize()
        self.core.notifier.register("telegram", TelegramNotifier(self.runtime))

    async def stop(self) -> None:
        """Stop receiving, let running handlers finish, close connections."""
        self.started = False
        application = self.application
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await self.runtime.board.aclose()
        await application.shutdown()

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """One update posted by Telegram: checked, queued, acknowledged."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403)
        if request.content_type != "application/json":
            return web.Response(status=403)
        if not self.started:
            return web.Response(status=503)  # Telegram retries later
        try:
            data = await request.json()
            update = Update.de_json(data, self.application.bot)
        except (ValueError, TypeError, KeyError, TelegramError):
            return web.Response(status=400)
        if update is None:
            return web.Response(status=400)
        # Several replicas may receive the same update (Telegram retries one whose answer
        # was slow or lost, and may reach another replica): the database lets one of them
        # handle it. Failing to ask means Telegram should retry, not that it was handled.
        try:
            first = await self.core.safety.first_delivery("telegram", update.update_id)
        except Exception as exc:
            log_failure("webhook dedupe", exc, update.update_id)
            return web.Response(status=503)
        if first:
            await self.application.update_queue.put(update)
        return web.Response(status=200)

    async def _set_menu(self) -> None:
        """The command menus of every scope: once without a language (in the default
        language) and once per shipped language with its ``language_code``."""
        default = self.core.users.default_language
        for lang in (None, *LANGUAGES):
            code = menu_language_code(lang) if lang else None
            await self._set_menus(lang or default, code)

    async def _set_menus(self, lang: str, code: str | None) -> None:
        everywhere, private = menu(privacy=handlers.PRIVACY_COMMANDS_READY, lang=lang)
        bot = self.application.bot
        try:
            await bot.set_my_commands(
                everywhere, scope=BotCommandScopeDefault(), language_code=code
            )
            await bot.set_my_commands(
                private, scope=BotCommandScopeAllPrivateChats(), language_code=code
            )
        except TelegramError as exc:
            log.warning("setting the command menu failed: %s", type(exc).__name__)
        # /admin is listed in the operators' own private chats only (a chat scope replaces
        # the private-chats menu there, so it carries that menu too).
        for operator in operator_ids(self.core):
            try:
                await bot.set_my_commands(
                    [*private, *commands(OPERATOR_MENU, lang)],
                    scope=BotCommandScopeChat(operator),
                    language_code=code,
                )
            except TelegramError as exc:
                # "chat not found" until the operator has started the bot once.
                log.warning("operator menu not set: %s", type(exc).__name__)


# --- the hooks ``imagebot run`` calls (bot/runner.py) ----------------------------------------

_ADAPTERS: dict[int, TelegramAdapter] = {}


def adapter_for(core: Core) -> TelegramAdapter:
    """The adapter of ``core``, made on first use (``install_routes`` runs before ``start``)."""
    adapter = _ADAPTERS.get(id(core))
    if adapter is None or adapter.core is not core:
        adapter = _ADAPTERS[id(core)] = TelegramAdapter(core)
    return adapter


def install_routes(core: Core, app: web.Application) -> None:
    """Mount the webhook route on imagebot's HTTP server when webhook mode is configured."""
    adapter_for(core).install_routes(app)


async def start_delivery(core: Core) -> Callable[[], Awaitable[None]]:
    """Only the notifier, for a process that runs workers but not the bot
    (``imagebot run --role worker``): results still reach Telegram from there."""
    adapter = TelegramAdapter(core, receive=False)
    await adapter.start_sending()
    return adapter.stop


async def start(core: Core) -> Callable[[], Awaitable[None]]:
    """Start the Telegram bot; returns the function that stops it."""
    adapter = adapter_for(core)
    await adapter.start()

    async def stop() -> None:
        try:
            await adapter.stop()
        finally:
            _ADAPTERS.pop(id(core), None)

    return stop
