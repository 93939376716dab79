"""``imagebot run`` with platform tokens: adapters, worker and HTTP server in one process."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.memory import freeze_startup_heap
from bot.scheduler import start_scheduler
from bot.web.server import build_http_app, start_http
from bot.wiring import build_core
from core.errors import ConfigurationError
from core.settings import Settings

log = logging.getLogger("imagebot")

# Each adapter module exposes ``async def start(core) -> stop`` (an async callable), and
# may expose ``install_routes(core, app)`` to mount webhook routes on imagebot's HTTP server
# (called before the server starts).
ADAPTERS = {"telegram": "bot.telegram.app", "discord": "bot.discord.app"}
ALL_ROLES = {"bot", "worker", "web", "scheduler"}


async def start_deliveries(core: Any, platforms: list[str]) -> list[Callable[[], Awaitable[None]]]:
    """Send-only notifiers for ``platforms`` (worker processes, operator commands)."""
    stoppers = []
    for name in platforms:
        try:
            module = importlib.import_module(ADAPTERS[name])
        except ModuleNotFoundError:
            continue
        starter = getattr(module, "start_delivery", None)
        if starter is not None:
            stoppers.append(await starter(core))
            log.info("delivery started: %s", name)
    return stoppers


async def run_service(settings: Settings, *, adapters: list[str], roles: set[str]) -> int:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    roles = roles or ALL_ROLES
    starters: dict[str, Callable[[Any], Awaitable[Callable[[], Awaitable[None]]]]] = {}
    route_installers: list[Callable[[Any, web.Application], None]] = []
    if "bot" in roles:
        for name in adapters:
            try:
                module = importlib.import_module(ADAPTERS[name])
            except ModuleNotFoundError as exc:
                raise ConfigurationError(
                    f"The {name} adapter is not part of this build of imagebot yet; "
                    f"unset IMAGEBOT_{name.upper()}_TOKEN or use `imagebot console`."
                ) from exc
            starters[name] = module.start
            if hasattr(module, "install_routes"):
                route_installers.append(module.install_routes)
    model = None
    http_only = not roles & {"bot", "worker"}
    if http_only and settings.image_provider is None and settings.openai_api_key is None:
        # An HTTP-only process (webhooks, health, gallery) makes no image: it needs no key.
        from core.generation.providers.demo import DemoImageModel

        model = DemoImageModel()
    core = await build_core(settings, console=False, model=model)
    if model is None:
        warning = await core.model.check()
        if warning:
            log.warning("model check: %s", warning)
        if core.generation.watch is not None:
            # Which enabled models the providers still serve, before the first user asks.
            await core.generation.watch.refresh()
    log.info(
        "serving roles=%s adapters=%s http=%s:%s",
        ",".join(sorted(roles)),
        ",".join(adapters) or "none",
        settings.http_host,
        settings.http_port,
    )
    stoppers: list[Callable[[], Awaitable[None]]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if "web" in roles:
            app = build_http_app(core)
            for install in route_installers:
                install(core, app)
            runner = await start_http(core, app)
            stoppers.append(runner.cleanup)
        for name, starter in starters.items():
            stoppers.append(await starter(core))
            log.info("adapter started: %s", name)
        if "worker" in roles:
            if core.locks is not None:
                await core.locks.hold_worker_slot()
            if "bot" not in roles:
                # A worker without the adapters still delivers: each configured platform
                # registers a send-only notifier (no polling, no gateway).
                stoppers += await start_deliveries(core, adapters)
            await core.worker.start(exclusive=core.exclusive_worker)
        if "scheduler" in roles:
            stoppers.append(await start_scheduler(core))
        freeze_startup_heap()  # full collections under load walk only what came since
        await stop.wait()
        log.info("shutting down")
        await core.worker.stop(grace=settings.shutdown_grace_seconds)
    finally:
        for stopper in reversed(stoppers):
            with contextlib.suppress(Exception):
                await stopper()
        await core.aclose()
    return 0
