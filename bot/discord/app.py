"""Starting and stopping the Discord adapter (``imagebot run`` calls :func:`start`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import discord
import discord.gateway
import yarl
from discord.gateway import DiscordWebSocket, KeepAliveHandler
from discord.http import Route

from bot.discord.client import ImagebotBot
from core.errors import ConfigurationError

log = logging.getLogger("imagebot.discord")

READY_TIMEOUT = 60.0


class RunningAdapter:
    """The started adapter; calling it stops it (what ``imagebot run`` keeps)."""

    def __init__(self, bot: ImagebotBot, restore: Callable[[], None]) -> None:
        self.bot = bot
        self.task: asyncio.Task[None] | None = None
        self._restore = restore

    async def __call__(self) -> None:
        """Close every shard and the HTTP session; put discord.py's endpoints back."""
        await self.bot.close()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.task, 10)
        self._restore()
        log.info("discord adapter stopped")


async def start(core: Any) -> Callable[[], Awaitable[None]]:
    """Log in, sync the commands, connect every shard of this process and register the
    notifier; return the coroutine function that stops it all (a :class:`RunningAdapter`)."""
    settings = core.settings
    if settings.discord_token is None:
        raise ConfigurationError("IMAGEBOT_DISCORD_TOKEN is not set")
    _quiet_library_debug_logs()
    shard_ids = parse_shard_ids(settings.discord_shard_ids, settings.discord_shard_count)
    guild = (settings.discord_guild_id or "").strip()
    if guild and not guild.isdigit():
        raise ConfigurationError("IMAGEBOT_DISCORD_GUILD_ID must be a server id (digits only)")
    bot = ImagebotBot(
        core,
        shard_count=settings.discord_shard_count,
        shard_ids=shard_ids,
        guild_id=int(guild) if guild else None,
    )
    running = RunningAdapter(bot, _point_at(settings.discord_api_url))
    try:
        try:
            await bot.login(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            raise ConfigurationError(
                "Discord refused IMAGEBOT_DISCORD_TOKEN; copy the bot token again from the "
                "Developer Portal"
            ) from None
        await _choose_gateway(bot, settings.discord_gateway_url, settings.discord_shard_count)
        core.notifier.register("discord", bot.notifier)
        running.task = asyncio.create_task(bot.connect(reconnect=True), name="discord-gateway")
        await _wait_ready(bot, running.task)
    except BaseException:
        await running()
        raise
    log.info("discord adapter ready shards=%s of %s", shard_ids or "all", bot.shard_count)
    return running


async def _wait_ready(bot: ImagebotBot, connection: asyncio.Task[None]) -> None:
    ready = asyncio.create_task(bot.wait_until_ready())
    done, _ = await asyncio.wait(
        {connection, ready}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
    )
    if ready in done:
        return
    ready.cancel()
    if connection in done:
        connection.result()  # raises what ended the connection
    raise ConfigurationError("the Discord gateway did not become ready in time")


async def start_delivery(core: Any) -> Callable[[], Awaitable[None]]:
    """Only the notifier, over REST (no gateway, no commands): for a process that runs
    workers but not the bot (``imagebot run --role worker``), so results still reach
    Discord from there. Returns the coroutine function that stops it."""
    settings = core.settings
    if settings.discord_token is None:
        raise ConfigurationError("IMAGEBOT_DISCORD_TOKEN is not set")
    _quiet_library_debug_logs()
    bot = ImagebotBot(core, serve_commands=False)
    running = RunningAdapter(bot, _point_at(settings.discord_api_url))
    try:
        await bot.login(settings.discord_token.get_secret_value())
    except BaseException:
        await running()
        raise
    core.notifier.register("discord", bot.notifier)
    return running


def parse_shard_ids(text: str, count: int | None) -> list[int] | None:
    """``"0,1"`` -> ``[0, 1]``; empty -> None (every shard). Checked against the count."""
    if not text.strip():
        return None
    try:
        ids = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigurationError(
            "IMAGEBOT_DISCORD_SHARD_IDS must be shard numbers separated by commas, e.g. 0,1"
        ) from None
    if count is None:
        raise ConfigurationError(
            "IMAGEBOT_DISCORD_SHARD_IDS needs IMAGEBOT_DISCORD_SHARD_COUNT (the total)"
        )
    if any(i < 0 or i >= count for i in ids):
        raise ConfigurationError(f"IMAGEBOT_DISCORD_SHARD_IDS must be between 0 and {count - 1}")
    return ids


class StampedKeepAlive(KeepAliveHandler):
    """discord.py's heartbeat thread, with the send time stamped when the heartbeat is
    handed to the event loop.

    discord.py stamps it in the heartbeat thread once the send has completed. When the
    process is busy, the loop thread can read Discord's ACK before that thread runs
    again (it needs the GIL back), and the ACK is then measured from the *previous*
    heartbeat: a false "Can't keep up, websocket is 41.3s behind" (one heartbeat
    interval) and a latency of 41 s, with the gateway on time."""

    def get_payload(self) -> dict[str, Any]:
        """The heartbeat, stamped as sent now."""
        self._last_send = time.perf_counter()
        return super().get_payload()


def _yielding(
    poll_event: Callable[[DiscordWebSocket], Awaitable[None]],
) -> Callable[[DiscordWebSocket], Awaitable[None]]:
    """discord.py's gateway reader, giving the loop a turn after each event.

    Frames already received are read without a pause: a burst of 500 interactions was
    parsed whole (a quarter of a second and more) before the first handler could send
    its defer. One turn per event lets each handler defer while the rest are read."""

    async def poll(ws: DiscordWebSocket) -> None:
        await poll_event(ws)
        await asyncio.sleep(0)

    poll.yields = True  # type: ignore[attr-defined]
    return poll


def _point_at(api_url: str | None) -> Callable[[], None]:
    """Send REST calls (interaction callbacks and follow-ups too) to ``api_url``, and
    measure heartbeats with :class:`StampedKeepAlive`.

    discord.py keeps the base URL, the gateway and the heartbeat class in classes and
    modules, for the whole process; the returned function puts back what was there."""
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    keep_alive = discord.gateway.KeepAliveHandler
    poll_event = DiscordWebSocket.poll_event
    if api_url:
        Route.BASE = api_url.rstrip("/")
    discord.gateway.KeepAliveHandler = StampedKeepAlive  # type: ignore[misc]
    if not getattr(poll_event, "yields", False):
        DiscordWebSocket.poll_event = _yielding(poll_event)  # type: ignore[method-assign,assignment]

    def restore() -> None:
        Route.BASE = base
        DiscordWebSocket.DEFAULT_GATEWAY = gateway
        discord.gateway.KeepAliveHandler = keep_alive  # type: ignore[misc]
        DiscordWebSocket.poll_event = poll_event  # type: ignore[method-assign]

    return restore


async def _choose_gateway(
    bot: ImagebotBot, gateway_url: str | None, shard_count: int | None
) -> None:
    """The gateway URL and the shard count: from the settings, else from
    ``GET /gateway/bot`` on the REST base (which is how Discord says how many shards)."""
    if gateway_url is None or shard_count is None:
        shards, url, _ = await bot.http.get_bot_gateway()
        gateway_url = gateway_url or url
        shard_count = shard_count or shards
    bot.shard_count = shard_count
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def _quiet_library_debug_logs() -> None:
    # discord.py's debug logs print request URLs, which carry interaction tokens, and
    # gateway payloads, which carry prompts: never below INFO.
    library = logging.getLogger("discord")
    if library.getEffectiveLevel() < logging.INFO:
        library.setLevel(logging.INFO)
