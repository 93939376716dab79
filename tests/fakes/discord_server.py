"""A loopback fake of Discord (REST API v10 and the gateway), speaking the real wire format.

Point the real ``discord.py`` at it and test against real HTTP and a real WebSocket::

    fake = FakeDiscord()
    await fake.start()
    # IMAGEBOT_DISCORD_API_URL=fake.api_url, IMAGEBOT_DISCORD_GATEWAY_URL=fake.gateway_url
    ix = await fake.slash("imagine", {"prompt": "a red fox"}, user=fake.user(42))
    await ix.wait(lambda i: i.acked)
    await fake.stop()

What it serves (REST under ``/api/v10``; every answer is ``Content-Type: application/json``
exactly, as discord.py requires):

- Bot routes, checked against ``Authorization: Bot <token>``: ``GET /users/@me``,
  ``GET /oauth2/applications/@me``, ``GET /gateway/bot``, ``PUT /applications/{app}/commands``
  and the guild variant (validated: names, descriptions, option order and counts),
  ``POST /channels/{id}/messages``, ``POST /users/@me/channels`` (opens a DM).
- Interaction routes (no bot auth, the token is in the path):
  ``POST /interactions/{id}/{token}/callback?with_response=1`` (answered 200 with the
  ``InteractionCallbackResponse`` JSON; a second answer is 400 code 40060, a late one 404
  code 10062), ``PATCH|GET|DELETE /webhooks/{app}/{token}/messages/@original`` (or an id),
  ``POST /webhooks/{app}/{token}?wait=1`` (follow-ups). JSON or multipart
  (``payload_json`` plus ``files[n]``) bodies; uploads above ``upload_limit`` answer 413
  code 40005; content over 2000 characters, bad components and bad modals answer 400
  code 50035 like Discord. An expired token (``expire``) answers 401 code 50027.
- ``GET /attachments/{id}/{filename}``: files made with :meth:`FakeDiscord.attachment`
  and files the bot uploaded, so ``Attachment.read()`` works over loopback.
- The gateway at ``/gateway``: HELLO, heartbeat ACKs, IDENTIFY -> READY (per shard),
  RESUME -> RESUMED; :meth:`FakeDiscord.dispatch` sends events as plain JSON text frames.

Every REST request is recorded in :attr:`FakeDiscord.requests`; messages the bot made are in
:attr:`FakeDiscord.messages`; interactions built by :meth:`slash`, :meth:`press`,
:meth:`submit_modal` and :meth:`message_command` are :class:`FakeInteraction` objects that
record their answer. :meth:`slash` takes subcommands (``"admin grant"``), channel options
(:meth:`channel`) and the member's ``permissions`` in a server (default
:data:`MEMBER_PERMISSIONS`: neither Manage Server nor Administrator; see
:data:`MANAGE_GUILD`, :data:`ADMINISTRATOR`); command sync is validated down to
subcommands. :meth:`press_forged` presses a button with any custom id, on a message as if
the bot had sent it (what a tampered client could claim), for fuzzing.

Failures are scripted with :meth:`rate_limit_next` (429 with ``Via``
and a JSON body, which discord.py retries), :meth:`fail_next`, :meth:`expire` and
:meth:`forbid_channel`. Exceptions in the fake's own code are kept in :attr:`errors`.

Run ``python tests/fakes/discord_server.py`` to serve it standalone (benchmarks): it prints
one JSON line with its URLs and takes control requests under ``/_control``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import re
import secrets
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_premium import PremiumFake

__all__ = [
    "ADMINISTRATOR",
    "MANAGE_GUILD",
    "MEMBER_PERMISSIONS",
    "TOKEN",
    "FakeDiscord",
    "FakeInteraction",
    "RecordedRequest",
    "snowflake",
]

TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAx.GfakeX.fake-discord-token-for-tests-000000"
"""A bot token of the right shape (imagebot's settings check the shape)."""
DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
COMPONENTS_V2 = 1 << 15
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
MEMBER_PERMISSIONS = 2248473465835073
"""A member's permissions in the channel: neither Manage Server nor Administrator."""
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
_counter = itertools.count(1)
_ARRIVED: contextvars.ContextVar[float] = contextvars.ContextVar("arrived")


def snowflake(at: float | None = None) -> int:
    """A Discord id whose timestamp is ``at`` (epoch seconds, default now)."""
    ms = int((time.time() if at is None else at) * 1000)
    return ((ms - DISCORD_EPOCH_MS) << 22) | (next(_counter) & 0x3FFFFF)


def _iso(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, UTC).isoformat()


@dataclass
class RecordedRequest:
    """One REST request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    files: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    """``(field name, filename, content type, bytes)`` of multipart file parts."""
    status: int = 0
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeInteraction:
    """An interaction dispatched to the bot, and what the bot answered."""

    fake: FakeDiscord
    id: str
    token: str
    type: int
    payload: dict[str, Any]
    user_id: str
    channel_id: str
    guild_id: str | None
    dispatched_at: float = field(default_factory=time.monotonic)
    acked_at: float | None = None
    ack_type: int | None = None
    ack_flags: int = 0
    ack_data: dict[str, Any] | None = None
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    expired: bool = False
    final_at: float | None = None
    """When an edit or follow-up with attachments and components arrived (benchmarks)."""

    @property
    def acked(self) -> bool:
        """True once the bot answered the callback."""
        return self.ack_type is not None

    @property
    def original(self) -> dict[str, Any] | None:
        """The original response message, as last edited."""
        return self.fake.messages.get(self.original_id) if self.original_id else None

    @property
    def followups(self) -> list[dict[str, Any]]:
        """Follow-up messages, oldest first."""
        return [self.fake.messages[m] for m in self.followup_ids if m in self.fake.messages]

    @property
    def ephemeral(self) -> bool:
        """True when the first answer was ephemeral."""
        return bool(self.ack_flags & EPHEMERAL)

    async def wait(
        self, predicate: Callable[[FakeInteraction], Any], timeout: float = 10.0
    ) -> None:
        """Until ``predicate(self)`` is true."""
        await self.fake.wait_until(lambda: predicate(self), timeout)


@dataclass
class _Script:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


@dataclass
class _Shard:
    ws: web.WebSocketResponse
    shard_id: int
    shard_count: int
    seq: int = 0
    session_id: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FakeDiscord(PremiumFake):
    """Discord's REST API and gateway on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        application_id: int | None = None,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
        ack_deadline: float = 3.0,
        shard_count: int = 1,
        keep_files: bool = True,
        heartbeat_interval_ms: int = 41_250,
    ) -> None:
        self.token = token
        self.application_id = str(application_id or snowflake())
        self.bot_user = {
            "id": self.application_id,
            "username": "imagebot",
            "discriminator": "0",
            "global_name": "imagebot",
            "avatar": None,
            "bot": True,
        }
        self.upload_limit = upload_limit
        self.ack_deadline = ack_deadline
        self.shard_count = shard_count
        self.keep_files = keep_files
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.locales: dict[str, str] = {}
        """The client language (``locale``) of a user's interactions, by user id (default en-US)."""
        self.messages: dict[str, dict[str, Any]] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.identifies: list[dict[str, Any]] = []
        self.downloads: list[str] = []
        self.forbidden_channels: set[str] = set()
        self.dm_channels: dict[str, str] = {}
        self.threads: dict[str, str] = {}
        """Thread id -> parent channel id, from :meth:`thread`."""
        """user id -> DM channel id."""
        self.files: dict[str, tuple[str, str, bytes]] = {}
        """attachment id -> (filename, content type, bytes)."""
        self.keep_requests = True
        self._scripts: list[_Script] = []
        self._shards: dict[int, _Shard] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        """Serve on 127.0.0.1 (a free port unless given)."""
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{id}/{filename}", self._download)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_route("*", "/_control/{action}", self._control)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # Discord's edge takes any number of connections at once; the default backlog of
        # 128 would drop the SYNs of a burst and add seconds of client retries.
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=2048)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Close every gateway connection and stop serving."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The REST base, as ``IMAGEBOT_DISCORD_API_URL`` takes it."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The gateway, as ``IMAGEBOT_DISCORD_GATEWAY_URL`` takes it."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- scripting ---------------------------------------------------------------------------

    def rate_limit_next(
        self, method: str, path: str, *, times: int = 1, retry_after: float = 0.05
    ) -> None:
        """Answer the next ``times`` matching requests 429, as Discord does (``Via`` header,
        JSON body, rate-limit headers). ``path`` is a regular expression searched in the path."""
        self._scripts.append(
            _Script(
                method.upper(),
                re.compile(path),
                429,
                {
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": False,
                },
                {
                    "Via": "1.1 fake-discord",
                    "Retry-After": str(max(1, int(retry_after))),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                    "X-RateLimit-Bucket": "fake-bucket",
                    "X-RateLimit-Scope": "user",
                },
                times,
            )
        )

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int,
        code: int = 0,
        message: str = "error",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with a Discord error body."""
        self._scripts.append(
            _Script(
                method.upper(),
                re.compile(path),
                status,
                {"message": message, "code": code},
                {},
                times,
            )
        )

    def expire(self, interaction: FakeInteraction) -> None:
        """The interaction's token is no longer valid (15 minutes passed)."""
        interaction.expired = True

    def forbid_channel(self, channel_id: str) -> None:
        """The bot may not post in this channel (403 code 50001, Missing Access)."""
        self.forbidden_channels.add(str(channel_id))

    # --- building interactions ------------------------------------------------------------

    @staticmethod
    def user(user_id: int | str, name: str = "") -> dict[str, Any]:
        """A user object."""
        return {
            "id": str(user_id),
            "username": name or f"user{user_id}",
            "discriminator": "0",
            "global_name": name or None,
            "avatar": None,
        }

    def attachment(
        self,
        data: bytes,
        filename: str = "image.png",
        content_type: str | None = "image/png",
        *,
        size: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> dict[str, Any]:
        """An attachment served by the fake; ``size`` may lie (the bot should check it
        before downloading)."""
        attachment_id = str(snowflake())
        self.files[attachment_id] = (filename, content_type or "application/octet-stream", data)
        item: dict[str, Any] = {
            "id": attachment_id,
            "filename": filename,
            "size": len(data) if size is None else size,
            "url": f"{self.base_url}/attachments/{attachment_id}/{filename}",
            "proxy_url": f"{self.base_url}/attachments/{attachment_id}/{filename}",
        }
        if content_type is not None:
            item["content_type"] = content_type
        if width is not None and height is not None:
            item["width"], item["height"] = width, height
        return item

    def command_id(self, name: str, guild_id: str | None = None) -> str:
        """The id the fake gave a synced command (a fresh id when not synced)."""
        for scope in (guild_id, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name:
                    return str(command["id"])
        return str(snowflake())

    @staticmethod
    def channel(channel_id: int | str, name: str = "general", kind: int = 0) -> dict[str, Any]:
        """A channel as a slash command's option value (Discord's resolved partial channel;
        ``kind`` 0 is a text channel)."""
        return {
            "id": str(channel_id),
            "name": name,
            "type": kind,
            "permissions": "2248473465835073",
            "flags": 0,
        }

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: dict[str, Any],
        guild_id: str | None = None,
        channel_id: str | None = None,
        attachment_size_limit: int | None = None,
        age: float = 0.0,
        permissions: int | None = None,
        send: bool = True,
    ) -> FakeInteraction:
        """Dispatch a slash command (with ``send=False``, only build it: :meth:`send`
        dispatches it later). Option types follow the values: str, int, float, bool,
        an attachment dict (from :meth:`attachment`) or a channel dict (from
        :meth:`channel`). A name with spaces is a subcommand: ``"admin grant"``, or
        ``"group sub command"``. ``age`` back-dates the interaction id (seconds), as if it
        had been created that long ago; ``permissions`` are the member's permissions in a
        server (default: a member without Manage Server or Administrator)."""
        opts: list[dict[str, Any]] = []
        resolved: dict[str, Any] = {}
        for key, value in (options or {}).items():
            if isinstance(value, dict) and "url" in value:
                resolved.setdefault("attachments", {})[value["id"]] = value
                opts.append({"name": key, "type": 11, "value": value["id"]})
            elif isinstance(value, dict) and "permissions" in value:
                resolved.setdefault("channels", {})[value["id"]] = value
                opts.append({"name": key, "type": 7, "value": value["id"]})
            elif isinstance(value, bool):
                opts.append({"name": key, "type": 5, "value": value})
            elif isinstance(value, int):
                opts.append({"name": key, "type": 4, "value": value})
            elif isinstance(value, float):
                opts.append({"name": key, "type": 10, "value": value})
            else:
                opts.append({"name": key, "type": 3, "value": str(value)})
        root, *path = name.split()
        for depth, part in enumerate(reversed(path)):
            # The innermost name is a subcommand (1), an outer one a subcommand group (2).
            opts = [{"name": part, "type": 1 if depth == 0 else 2, "options": opts}]
        data: dict[str, Any] = {
            "id": self.command_id(root, guild_id),
            "name": root,
            "type": 1,
            "options": opts,
        }
        if resolved:
            data["resolved"] = resolved
        return await self._interaction(
            2,
            data,
            user=user,
            guild_id=guild_id,
            channel_id=channel_id,
            attachment_size_limit=attachment_size_limit,
            age=age,
            permissions=permissions,
            send=send,
        )

    async def send(self, interaction: FakeInteraction) -> None:
        """Dispatch an interaction built with ``send=False``; its clock starts now."""
        interaction.dispatched_at = time.monotonic()
        await self.dispatch(
            "INTERACTION_CREATE", interaction.payload, guild_id=interaction.guild_id
        )

    async def message_command(
        self,
        name: str,
        target: dict[str, Any],
        *,
        user: dict[str, Any],
        guild_id: str | None = None,
        channel_id: str | None = None,
    ) -> FakeInteraction:
        """Dispatch a message context-menu command on ``target`` (a message object)."""
        data = {
            "id": self.command_id(name, guild_id),
            "name": name,
            "type": 3,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}},
        }
        return await self._interaction(
            2, data, user=user, guild_id=guild_id, channel_id=channel_id or target["channel_id"]
        )

    async def press(
        self,
        message: dict[str, Any],
        custom_id: str,
        *,
        user: dict[str, Any],
        guild_id: str | None = None,
    ) -> FakeInteraction:
        """Press the button ``custom_id`` on ``message`` (a message the bot made)."""
        if not any(c.get("custom_id") == custom_id for c in _walk(message.get("components", []))):
            raise AssertionError(f"no button {custom_id!r} on message {message['id']}")
        guild_id = guild_id or message.get("guild_id")
        return await self._interaction(
            3,
            {"custom_id": custom_id, "component_type": 2},
            user=user,
            guild_id=guild_id,
            channel_id=message["channel_id"],
            message=message,
        )

    async def press_tampered(
        self,
        message: dict[str, Any],
        custom_id: str,
        *,
        user: dict[str, Any],
        guild_id: str | None = None,
    ) -> FakeInteraction:
        """What a tampered client can send: a press of ``custom_id`` on ``message`` (a real
        message of the bot) whether or not that button is on it."""
        guild_id = guild_id or message.get("guild_id")
        return await self._interaction(
            3,
            {"custom_id": custom_id, "component_type": 2},
            user=user,
            guild_id=guild_id,
            channel_id=message["channel_id"],
            message=message,
        )

    def age_message(self, message: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Make a stored message ``seconds`` older: a new id (a snowflake carries its time)
        and time stamp, as if it had been sent then. Returns the message as stored."""
        stored = self.messages.pop(str(message["id"]), message)
        stored["id"] = str(snowflake(time.time() - seconds))
        stored["timestamp"] = _iso(time.time() - seconds)
        self.messages[stored["id"]] = stored
        return stored

    async def press_forged(
        self,
        custom_id: str,
        *,
        user: dict[str, Any],
        guild_id: str | None = None,
        channel_id: str | None = None,
        ephemeral: bool = False,
    ) -> FakeInteraction:
        """Press a button whose custom id nobody checked: a message as if the bot had made
        it, carrying one button with ``custom_id`` (what a tampered client could claim),
        then the press. For fuzzing the bot's custom-id decoding."""
        if guild_id is None:
            channel_id = channel_id or self._dm_channel(user["id"])
        else:
            channel_id = channel_id or "900000000000000001"
        body: dict[str, Any] = {
            "content": "forged",
            "flags": EPHEMERAL if ephemeral else 0,
            "components": [
                {
                    "type": 1,
                    "components": [{"type": 2, "style": 2, "label": "?", "custom_id": custom_id}],
                }
            ],
        }
        message = self._store_message(channel_id, body, [], None)
        if guild_id is not None:
            message["guild_id"] = str(guild_id)
        return await self._interaction(
            3,
            {"custom_id": custom_id, "component_type": 2},
            user=user,
            guild_id=guild_id,
            channel_id=channel_id,
            message=message,
        )

    async def submit_modal(
        self,
        opened_by: FakeInteraction,
        values: dict[str, str],
        *,
        user: dict[str, Any] | None = None,
    ) -> FakeInteraction:
        """Submit the modal that ``opened_by`` answered with, filling text inputs by custom id."""
        modal = opened_by.modal
        if modal is None:
            raise AssertionError("that interaction did not open a modal")
        components = []
        for row in modal.get("components", []):
            if row.get("type") == 18:  # a Label around one component
                inner = row["component"]
                components.append(
                    {
                        "type": 18,
                        "id": row.get("id", 0),
                        "component": {
                            "type": inner["type"],
                            "id": inner.get("id", 0),
                            "custom_id": inner["custom_id"],
                            "value": values.get(inner["custom_id"], ""),
                        },
                    }
                )
            else:
                components.append(
                    {
                        "type": 1,
                        "id": row.get("id", 0),
                        "components": [
                            {
                                "type": c["type"],
                                "id": c.get("id", 0),
                                "custom_id": c["custom_id"],
                                "value": values.get(c["custom_id"], ""),
                            }
                            for c in row.get("components", [])
                        ],
                    }
                )
        data = {"custom_id": modal["custom_id"], "components": components}
        message = (
            self.messages.get(str(opened_by.payload["message"]["id"]))
            if "message" in opened_by.payload
            else None
        )
        return await self._interaction(
            5,
            data,
            user=user or self._user_of(opened_by),
            guild_id=opened_by.guild_id,
            channel_id=opened_by.channel_id,
            message=message,
        )

    def _user_of(self, interaction: FakeInteraction) -> dict[str, Any]:
        payload = interaction.payload
        return payload["member"]["user"] if "member" in payload else payload["user"]

    async def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user: dict[str, Any],
        guild_id: str | None,
        channel_id: str | None,
        attachment_size_limit: int | None = None,
        message: dict[str, Any] | None = None,
        age: float = 0.0,
        permissions: int | None = None,
        send: bool = True,
    ) -> FakeInteraction:
        interaction_id = str(snowflake(time.time() - age))
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": interaction_id,
            "application_id": self.application_id,
            "type": kind,
            "token": token,
            "version": 1,
            "data": data,
            "locale": self.locales.get(str(user.get("id")), "en-US"),
            "entitlements": self._interaction_entitlements(user["id"]),
            "app_permissions": "2248473465835073",
            "attachment_size_limit": attachment_size_limit or self.upload_limit,
        }
        if guild_id is not None:
            channel_id = channel_id or "900000000000000001"
            payload.update(
                guild_id=str(guild_id),
                guild_locale="en-US",
                context=0,
                authorizing_integration_owners={"0": str(guild_id)},
                member={
                    "user": user,
                    "roles": [],
                    "joined_at": _iso(),
                    "deaf": False,
                    "mute": False,
                    "flags": 0,
                    "permissions": str(MEMBER_PERMISSIONS if permissions is None else permissions),
                },
                channel={
                    "id": str(channel_id),
                    "type": 0,
                    "guild_id": str(guild_id),
                    "name": "general",
                    "position": 0,
                    "flags": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                },
                channel_id=str(channel_id),
            )
            if str(channel_id) in self.threads:
                payload["channel"] = self._thread_channel(str(channel_id), str(guild_id))
        else:
            channel_id = channel_id or self._dm_channel(user["id"])
            payload.update(
                user=user,
                context=1,
                authorizing_integration_owners={"1": user["id"]},
                channel={
                    "id": str(channel_id),
                    "type": 1,
                    "recipients": [user],
                    "flags": 0,
                    "last_message_id": None,
                },
                channel_id=str(channel_id),
            )
        if message is not None:
            payload["message"] = message
        interaction = FakeInteraction(
            self,
            interaction_id,
            token,
            kind,
            payload,
            user["id"],
            str(channel_id),
            str(guild_id) if guild_id is not None else None,
        )
        self.interactions[interaction_id] = interaction
        if send:
            await self.dispatch("INTERACTION_CREATE", payload, guild_id=guild_id)
        return interaction

    def thread(self, thread_id: str, parent_id: str) -> str:
        """Make ``thread_id`` a public thread of the channel ``parent_id``: interactions in
        it carry the thread as their channel (type 11, with ``parent_id``), as on Discord."""
        self.threads[str(thread_id)] = str(parent_id)
        return str(thread_id)

    def _thread_channel(self, thread_id: str, guild_id: str) -> dict[str, Any]:
        return {
            "id": thread_id,
            "type": 11,
            "guild_id": guild_id,
            "parent_id": self.threads[thread_id],
            "name": "a thread",
            "owner_id": "1",
            "flags": 0,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _iso(),
                "locked": False,
            },
            "permissions": "2248473465835073",
        }

    def _dm_channel(self, user_id: str) -> str:
        if user_id not in self.dm_channels:
            self.dm_channels[user_id] = str(snowflake())
        return self.dm_channels[user_id]

    # --- reading what happened ---------------------------------------------------------

    def channel_messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Plain messages the bot posted in a channel (not interaction responses)."""
        return [
            m
            for m in self.messages.values()
            if m["channel_id"] == str(channel_id) and not m.get("webhook_id")
        ]

    def dm_messages(self, user_id: str) -> list[dict[str, Any]]:
        """Messages the bot sent to a user's DM channel."""
        channel = self.dm_channels.get(str(user_id))
        return self.channel_messages(channel) if channel else []

    def file_bytes(self, attachment: dict[str, Any]) -> bytes:
        """The bytes of an attachment of a message the bot sent."""
        return self.files[str(attachment["id"])][2]

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        """Recorded requests whose method matches and whose path matches ``pattern``."""
        rx = re.compile(pattern)
        return [r for r in self.requests if r.method == method.upper() and rx.search(r.path)]

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> None:
        """Until ``predicate()`` is true (re-checked on every request the fake handles)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

    async def wait_connected(self, shards: int = 1, timeout: float = 10.0) -> None:
        """Until ``shards`` gateway connections have identified."""
        await self.wait_until(lambda: len(self._shards) >= shards, timeout)

    @property
    def connected_shards(self) -> list[int]:
        """Ids of the shards connected now."""
        return sorted(self._shards)

    # --- gateway -------------------------------------------------------------------------

    async def dispatch(
        self, event: str, data: dict[str, Any], *, guild_id: str | None = None
    ) -> None:
        """Send a dispatch (op 0) on the shard that owns ``guild_id`` (shard 0 for DMs)."""
        if not self._shards:
            raise AssertionError("no gateway connection to dispatch on")
        count = next(iter(self._shards.values())).shard_count
        shard_id = (int(guild_id) >> 22) % count if guild_id is not None else 0
        shard = self._shards.get(shard_id)
        if shard is None:
            raise AssertionError(f"shard {shard_id} is not connected")
        await self._send_dispatch(shard, event, data)

    async def _send_dispatch(self, shard: _Shard, event: str, data: dict[str, Any]) -> None:
        async with shard.lock:
            shard.seq += 1
            await shard.ws.send_str(json.dumps({"op": 0, "t": event, "s": shard.seq, "d": data}))

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        shard: _Shard | None = None
        try:
            await ws.send_str(
                json.dumps(
                    {
                        "op": 10,
                        "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                        "s": None,
                        "t": None,
                    }
                )
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                elif op == 2:
                    shard = await self._identify(ws, frame["d"])
                    if shard is None:
                        break
                elif op == 6:
                    data = frame["d"]
                    shard = next(
                        (
                            s
                            for s in self._shards.values()
                            if s.session_id == data.get("session_id")
                        ),
                        None,
                    )
                    if shard is None:
                        await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
                        continue
                    shard.ws = ws
                    await self._send_dispatch(shard, "RESUMED", {})
        except Exception:
            self.errors.append(traceback.format_exc())
        finally:
            self._sockets.discard(ws)
            if shard is not None and self._shards.get(shard.shard_id) is shard and shard.ws is ws:
                del self._shards[shard.shard_id]
            self._changed.set()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> _Shard | None:
        self.identifies.append(data)
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        shard_id, shard_count = data.get("shard") or [0, 1]
        shard = _Shard(ws, int(shard_id), int(shard_count), session_id=secrets.token_hex(16))
        self._shards[shard.shard_id] = shard
        await self._send_dispatch(
            shard,
            "READY",
            {
                "v": 10,
                "user": self.bot_user,
                "guilds": [],
                "session_id": shard.session_id,
                "resume_gateway_url": self.gateway_url,
                "shard": [shard.shard_id, shard.shard_count],
                "application": {"id": self.application_id, "flags": 0},
                "private_channels": [],
                "relationships": [],
            },
        )
        self._changed.set()
        return shard

    # --- REST ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            self.errors.append(traceback.format_exc())
            return _json({"message": "fake crashed", "code": 0}, status=500)
        finally:
            self._changed.set()

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        # The answer counts from its arrival, not from when this loop got round to it.
        _ARRIVED.set(time.monotonic())
        path = "/" + request.match_info["tail"]
        payload, files = await _read_body(request)
        record = RecordedRequest(
            request.method,
            path,
            dict(request.query),
            dict(request.headers),
            payload,
            files,
        )
        if self.keep_requests:
            self.requests.append(record)
        response = self._scripted(request.method, path)
        if response is None:
            response = await self._route(request, path, payload, files)
        record.status = response.status
        return response

    def _scripted(self, method: str, path: str) -> web.Response | None:
        for script in self._scripts:
            if script.times > 0 and script.method == method and script.pattern.search(path):
                script.times -= 1
                if script.times == 0:
                    self._scripts.remove(script)
                return _json(script.body, status=script.status, headers=script.headers)
        return None

    async def _route(
        self,
        request: web.Request,
        path: str,
        payload: Any,
        files: list[tuple[str, str, str, bytes]],
    ) -> web.Response:
        method = request.method
        parts = path.strip("/").split("/")
        if parts[0] == "interactions" and len(parts) == 4 and parts[3] == "callback":
            return self._callback(parts[1], parts[2], payload, files)
        if parts[0] == "webhooks" and len(parts) >= 3:
            return self._webhook(method, parts, request.query, payload, files)
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        if method == "GET" and path == "/users/@me":
            return _json(self.bot_user)
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json(self._application())
        if method == "GET" and path in ("/gateway/bot", "/gateway"):
            return _json(
                {
                    "url": self.gateway_url,
                    "shards": self.shard_count,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 14_400_000,
                        "max_concurrency": 1,
                    },
                }
            )
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            guild = parts[3] if len(parts) == 5 and parts[2] == "guilds" else None
            return self._sync(guild, payload)
        if (
            method == "POST"
            and len(parts) == 3
            and parts[0] == "channels"
            and parts[2] == "messages"
        ):
            return self._channel_message(parts[1], payload, files)
        if method == "POST" and path == "/users/@me/channels":
            recipient = str(payload["recipient_id"])
            channel_id = self._dm_channel(recipient)
            return _json(
                {
                    "id": channel_id,
                    "type": 1,
                    "recipients": [self.user(recipient)],
                    "last_message_id": None,
                    "flags": 0,
                }
            )
        premium = self._premium_route(method, parts, request.query, payload)
        if premium is not None:
            status, body = premium
            return web.Response(status=204) if status == 204 else _json(body, status=status)
        self.errors.append(f"unhandled {method} {path}")
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _application(self) -> dict[str, Any]:
        return {
            "id": self.application_id,
            "name": "imagebot",
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": self.user("1", "owner"),
            "team": None,
            "rpc_origins": [],
            "summary": "",
        }

    def _sync(self, guild: str | None, payload: Any) -> web.Response:
        problems = _check_commands(payload)
        if problems:
            return _command_errors(problems)
        stored = []
        for command in payload:
            item = {"description": "", "options": [], "nsfw": False, **command}
            item.update(
                id=str(snowflake()),
                application_id=self.application_id,
                version=str(snowflake()),
                default_member_permissions=command.get("default_member_permissions"),
            )
            if guild is not None:
                item["guild_id"] = guild
            stored.append(item)
        self.commands[guild] = stored
        return _json(stored)

    # --- interactions --------------------------------------------------------------------

    def _callback(
        self,
        interaction_id: str,
        token: str,
        payload: Any,
        files: list[tuple[str, str, str, bytes]],
    ) -> web.Response:
        interaction = self.interactions.get(interaction_id)
        if interaction is None or interaction.token != token or interaction.expired:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        if interaction.acked:
            return _json(
                {"message": "Interaction has already been acknowledged.", "code": 40060},
                status=400,
            )
        if time.monotonic() - interaction.dispatched_at > self.ack_deadline:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        kind = payload.get("type")
        data = payload.get("data") or {}
        resource: dict[str, Any] = {"type": kind}
        if kind == 9:
            problems = _check_modal(data)
            if problems:
                return _invalid_form(problems)
            interaction.modal = data
        elif kind in (4, 5):
            flags = int(data.get("flags") or 0)
            if kind == 5 and flags & ~EPHEMERAL:
                return _invalid_form(["a deferred response may only set the EPHEMERAL flag"])
            if kind == 4:
                problems = _check_message(data, files, self.upload_limit)
                if problems:
                    return _problem_response(problems)
            body = data if kind == 4 else {"content": "", "flags": flags | LOADING}
            message = self._store_message(interaction.channel_id, body, files, interaction)
            interaction.original_id = message["id"]
            interaction.ack_flags = flags
            resource["message"] = message
        elif kind in (6, 7):
            target = interaction.payload.get("message")
            if target is None:
                return _invalid_form(["only component interactions can update a message"])
            interaction.original_id = str(target["id"])
            if kind == 7:
                problems = _check_message(data, files, self.upload_limit)
                if problems:
                    return _problem_response(problems)
                message = self._edit_message(interaction.original_id, data, files, interaction)
                if message is None:
                    return _json({"message": "Unknown Message", "code": 10008}, status=404)
                resource["message"] = message
        else:
            return _invalid_form([f"unsupported callback type {kind}"])
        interaction.ack_type = kind
        interaction.ack_data = data
        interaction.acked_at = _ARRIVED.get(None) or time.monotonic()
        original = self.messages.get(interaction.original_id or "")
        return _json(
            {
                "interaction": {
                    "id": interaction.id,
                    "type": interaction.type,
                    "activity_instance_id": None,
                    "response_message_id": original["id"] if original else None,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool(
                        original and int(original["flags"]) & EPHEMERAL
                    ),
                },
                "resource": resource,
            }
        )

    def _webhook(
        self,
        method: str,
        parts: list[str],
        query: Any,
        payload: Any,
        files: list[tuple[str, str, str, bytes]],
    ) -> web.Response:
        app_id, token = parts[1], parts[2]
        interaction = next(
            (i for i in self.interactions.values() if i.token == token),
            None,
        )
        if app_id != self.application_id or interaction is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        if interaction.expired:
            return _json({"message": "Invalid Webhook Token", "code": 50027}, status=401)
        if not interaction.acked:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        if len(parts) == 3 and method == "POST":
            problems = _check_message(payload, files, self.upload_limit)
            if problems:
                return _problem_response(problems)
            if interaction.ack_type == 5 and not interaction.followup_ids and interaction.original:
                original = interaction.original
                if int(original["flags"]) & LOADING:
                    # The first follow-up after a deferred "thinking" answer replaces it and
                    # keeps the deferral's visibility.
                    body = dict(payload)
                    body["flags"] = (int(payload.get("flags") or 0) & ~EPHEMERAL) | (
                        int(original["flags"]) & EPHEMERAL
                    )
                    message = self._edit_message(original["id"], body, files, interaction)
                    assert message is not None
                    interaction.followup_ids.append(message["id"])
                    return _json(message)
            message = self._store_message(interaction.channel_id, payload, files, interaction)
            interaction.followup_ids.append(message["id"])
            return _json(message)
        if len(parts) == 5 and parts[3] == "messages":
            target = interaction.original_id if parts[4] == "@original" else parts[4]
            if target is None or target not in self.messages:
                return _json({"message": "Unknown Message", "code": 10008}, status=404)
            if method == "GET":
                return _json(self.messages[target])
            if method == "DELETE":
                del self.messages[target]
                return web.Response(status=204)
            if method == "PATCH":
                problems = _check_message(payload, files, self.upload_limit)
                if problems:
                    return _problem_response(problems)
                message = self._edit_message(target, payload, files, interaction)
                assert message is not None
                return _json(message)
        self.errors.append(f"unhandled webhook {method} {'/'.join(parts)}")
        return _json({"message": "405: Method Not Allowed", "code": 0}, status=405)

    def _channel_message(
        self, channel_id: str, payload: Any, files: list[tuple[str, str, str, bytes]]
    ) -> web.Response:
        if channel_id in self.forbidden_channels:
            return _json({"message": "Missing Access", "code": 50001}, status=403)
        problems = _check_message(payload, files, self.upload_limit)
        if problems:
            return _problem_response(problems)
        message = self._store_message(channel_id, payload, files, None)
        return _json(message)

    # --- messages -----------------------------------------------------------------------

    def _store_message(
        self,
        channel_id: str,
        body: dict[str, Any],
        files: list[tuple[str, str, str, bytes]],
        interaction: FakeInteraction | None,
    ) -> dict[str, Any]:
        message_id = str(snowflake())
        message: dict[str, Any] = {
            "id": message_id,
            "channel_id": str(channel_id),
            "type": 20 if interaction is not None else 0,
            "content": "",
            "author": self.bot_user,
            "attachments": [],
            "embeds": [],
            "components": [],
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "mention_everyone": False,
            "tts": False,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "flags": 0,
            "allowed_mentions": None,
        }
        if interaction is not None:
            message["webhook_id"] = self.application_id
            message["application_id"] = self.application_id
            if interaction.guild_id is not None:
                message["guild_id"] = interaction.guild_id
            message["interaction_metadata"] = {
                "id": interaction.id,
                "type": interaction.type,
                "user": self._user_of(interaction),
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
        self.messages[message_id] = message
        self._apply(message, body, files, interaction, creating=True)
        return message

    def _edit_message(
        self,
        message_id: str,
        body: dict[str, Any],
        files: list[tuple[str, str, str, bytes]],
        interaction: FakeInteraction | None,
    ) -> dict[str, Any] | None:
        message = self.messages.get(message_id)
        if message is None:
            return None
        message["flags"] = int(message["flags"]) & ~LOADING
        message["edited_timestamp"] = _iso()
        self._apply(message, body, files, interaction, creating=False)
        return message

    def _apply(
        self,
        message: dict[str, Any],
        body: dict[str, Any],
        files: list[tuple[str, str, str, bytes]],
        interaction: FakeInteraction | None,
        *,
        creating: bool,
    ) -> None:
        if "content" in body:
            message["content"] = body["content"] or ""
        if "components" in body:
            message["components"] = body["components"] or []
        if "embeds" in body:
            message["embeds"] = body["embeds"] or []
        if creating and "flags" in body:
            message["flags"] = int(body["flags"] or 0)
        if "allowed_mentions" in body:
            message["allowed_mentions"] = body["allowed_mentions"]
        message["mention_everyone"] = False
        uploaded = {}
        for name, filename, content_type, data in files:
            match = re.fullmatch(r"files\[(\d+)\]", name)
            if match:
                uploaded[int(match.group(1))] = (filename, content_type, data)
        if "attachments" in body or uploaded:
            kept = {a["id"]: a for a in message["attachments"]}
            new: list[dict[str, Any]] = []
            for item in body.get("attachments") or [
                {"id": i, "filename": f[0]} for i, f in sorted(uploaded.items())
            ]:
                ref = str(item.get("id"))
                if ref in kept:
                    new.append(kept[ref])
                elif ref.isdigit() and int(ref) in uploaded:
                    filename, content_type, data = uploaded[int(ref)]
                    name = item.get("filename") or filename
                    new.append(self._upload(message, name, content_type, data))
                else:
                    self.errors.append(f"attachment {ref} is neither kept nor uploaded")
            message["attachments"] = new
        if interaction is not None and message["attachments"] and message["components"]:
            interaction.final_at = time.monotonic()

    def _upload(
        self, message: dict[str, Any], filename: str, content_type: str, data: bytes
    ) -> dict[str, Any]:
        attachment_id = str(snowflake())
        content_type = _sniff(data) or content_type  # Discord derives the type itself
        if self.keep_files:
            self.files[attachment_id] = (filename, content_type, data)
        url = f"{self.base_url}/attachments/{attachment_id}/{filename}"
        item: dict[str, Any] = {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        dims = _image_size(data)
        if dims:
            item["width"], item["height"] = dims
        if int(message.get("flags") or 0) & EPHEMERAL:
            item["ephemeral"] = True
        return item

    async def _download(self, request: web.Request) -> web.StreamResponse:
        attachment_id = request.match_info["id"]
        self.downloads.append(attachment_id)
        item = self.files.get(attachment_id)
        if item is None:
            return web.Response(status=404, text="Not Found")
        _, content_type, data = item
        return web.Response(body=data, content_type=content_type)

    # --- control (standalone mode) ----------------------------------------------------------

    async def _control(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        body = await request.json() if request.can_read_body else {}
        if action == "wait_connected":
            await self.wait_connected(int(body.get("shards", 1)), float(body.get("timeout", 30)))
            return _json({"ok": True})
        if action == "burst":
            result = await self._burst(body)
            return _json(result)
        if action == "errors":
            return _json({"errors": self.errors})
        return _json({"message": "unknown control"}, status=404)

    async def _burst(self, body: dict[str, Any]) -> dict[str, Any]:
        """Dispatch ``count`` /imagine interactions from ``users`` users at once; wait until
        each has its final result (or ``timeout``); report per-interaction latencies."""
        count, users = int(body["count"]), int(body.get("users", 50))
        timeout = float(body.get("timeout", 300))
        guild = body.get("guild_id")
        items = []
        for i in range(count):  # built first: the clock of each starts when it is sent
            user = self.user(int(body.get("user_base", 700_000)) + i % users)
            items.append(
                await self.slash(
                    body.get("command", "imagine"),
                    {"prompt": f"a red fox in snow, variation {i}", **body.get("options", {})},
                    user=user,
                    guild_id=guild,
                    send=False,
                )
            )
        started = time.monotonic()
        for item in items:
            await self.send(item)
            # Let the answers already here be received (and timed) between two sends: a
            # fake busy sending must not make the bot's acknowledgements look late.
            await asyncio.sleep(0)
        with contextlib.suppress(TimeoutError):
            await self.wait_until(lambda: all(i.final_at for i in items), timeout)
        return {
            "count": count,
            "wall_s": time.monotonic() - started,
            "defer_s": [(i.acked_at - i.dispatched_at) if i.acked_at else None for i in items],
            "final_s": [(i.final_at - i.dispatched_at) if i.final_at else None for i in items],
            "errors": self.errors[:5],
        }


# --- helpers -------------------------------------------------------------------------------


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": with "; charset=utf-8" discord.py reads the body as text.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _invalid_form(problems: Iterable[str]) -> web.Response:
    return _json(
        {"message": "Invalid Form Body", "code": 50035, "errors": {"_errors": list(problems)}},
        status=400,
    )


def _problem_response(problems: list[str]) -> web.Response:
    if any(p.startswith("413") for p in problems):
        return _json({"message": "Request entity too large", "code": 40005}, status=413)
    return _invalid_form(problems)


async def _read_body(request: web.Request) -> tuple[Any, list[tuple[str, str, str, bytes]]]:
    files: list[tuple[str, str, str, bytes]] = []
    if not request.can_read_body:
        return None, files
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("multipart/"):
        payload: Any = None
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            name = part.name or ""  # type: ignore[union-attr]
            data = await part.read()  # type: ignore[union-attr]
            if name == "payload_json":
                payload = json.loads(data)
            else:
                files.append(
                    (
                        name,
                        part.filename or "",  # type: ignore[union-attr]
                        part.headers.get("Content-Type", "application/octet-stream"),
                        bytes(data),
                    )
                )
        return payload or {}, files
    raw = await request.read()
    return (json.loads(raw) if raw else None), files


def _walk(components: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for component in components:
        yield component
        yield from _walk(component.get("components", []))
        if "component" in component:
            yield from _walk([component["component"]])


def _check_message(
    body: Any, files: list[tuple[str, str, str, bytes]], upload_limit: int
) -> list[str]:
    """What Discord would refuse in a message body (content, components, files)."""
    problems = []
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    content = body.get("content") or ""
    if len(content) > 2000:
        problems.append(f"content: must be 2000 or fewer in length (got {len(content)})")
    for _, filename, _, data in files:
        if len(data) > upload_limit:
            problems.append(f"413 {filename} is {len(data)} bytes")
    rows = body.get("components") or []
    if len(rows) > 5:
        problems.append("components: at most 5 action rows")
    seen: set[str] = set()
    for row in rows:
        children = row.get("components", [])
        if row.get("type") == 1 and len(children) > 5:
            problems.append("components: at most 5 buttons per row")
        for child in children:
            custom_id = child.get("custom_id")
            if child.get("type") == 2 and child.get("style") == 6:
                # A premium button: a SKU, and none of label, emoji, custom_id or url.
                if not child.get("sku_id") or any(
                    child.get(k) for k in ("label", "emoji", "custom_id", "url")
                ):
                    problems.append("a premium button has a sku_id and nothing else")
                continue
            if child.get("type") == 2 and child.get("style") == 5:
                if not child.get("url") or len(child["url"]) > 512 or custom_id:
                    problems.append("a link button needs a url of at most 512 characters")
                continue
            if not custom_id or len(custom_id) > 100:
                problems.append(f"custom_id must be 1-100 characters: {custom_id!r}")
            elif custom_id in seen:
                problems.append(f"custom_id {custom_id!r} is used twice")
            seen.add(custom_id or "")
            if len(child.get("label") or "") > 80:
                problems.append("a button label is at most 80 characters")
    return problems


def _check_modal(data: dict[str, Any]) -> list[str]:
    problems = []
    if not 1 <= len(data.get("title") or "") <= 45:
        problems.append("modal title must be 1-45 characters")
    if not 1 <= len(data.get("custom_id") or "") <= 100:
        problems.append("modal custom_id must be 1-100 characters")
    if not 1 <= len(data.get("components") or []) <= 5:
        problems.append("a modal has 1-5 components")
    return problems


MAX_SAFE_INTEGER = 2**53 - 1
"""Discord's bound on ``min_value``/``max_value`` (JavaScript's safe integers)."""
CHANNEL_TYPES = frozenset({0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16})
"""The documented channel types (``GUILD_TEXT`` 0 … ``GUILD_MEDIA`` 16; Discord API docs,
Channel Types, checked against discord-api-types 0.38): ``channel_types`` takes no other."""
OPTION_TYPES = frozenset(range(1, 12))

Problem = tuple[tuple[str | int, ...], str, str]
"""Where in the body (``(0, "options", 1, "max_value")``), Discord's code, its message."""


def _command_errors(problems: list[Problem]) -> web.Response:
    """Discord's 50035 body: errors nested along the path of each bad field, e.g.
    ``{"0": {"options": {"1": {"max_value": {"_errors": [{"code", "message"}]}}}}}``."""
    errors: dict[str, Any] = {}
    for path, code, message in problems:
        node = errors
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return _json({"code": 50035, "errors": errors, "message": "Invalid Form Body"}, status=400)


def _length(value: Any, low: int, high: int, path: tuple[str | int, ...]) -> list[Problem]:
    if isinstance(value, str) and low <= len(value) <= high:
        return []
    return [(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")]


def _bounded(value: Any, low: int, high: int, path: tuple[str | int, ...]) -> list[Problem]:
    kind = "int" if isinstance(value, int) else "float"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not {kind}.')]
    if value > high:
        return [(path, "NUMBER_TYPE_MAX", f"{kind} value should be less than or equal to {high}.")]
    if value < low:
        return [
            (path, "NUMBER_TYPE_MIN", f"{kind} value should be greater than or equal to {low}.")
        ]
    return []


def _check_commands(payload: Any) -> list[Problem]:
    """Validate a bulk command registration like Discord does (API v10, Application
    Commands: names, descriptions, option counts and types, value and length bounds,
    channel types, choices)."""
    if not isinstance(payload, list):
        return [((), "BASE_TYPE_ARRAY", "Must be an array.")]
    if len(payload) > 100:
        return [((), "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")]
    problems: list[Problem] = []
    names: set[tuple[str, int]] = set()
    for index, command in enumerate(payload):
        at: tuple[str | int, ...] = (index,)
        kind = int(command.get("type", 1))
        name = command.get("name", "")
        if (name, kind) in names:
            problems.append(
                (
                    (*at, "name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            )
        names.add((name, kind))
        if kind == 1:
            if not isinstance(name, str) or not _COMMAND_NAME.match(name) or name != name.lower():
                problems.append(
                    ((*at, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
                )
            problems += _length(command.get("description", ""), 1, 100, (*at, "description"))
        else:
            problems += _length(name, 1, 32, (*at, "name"))
        problems += _check_options(command.get("options") or [], at, depth=0)
    return problems


def _check_options(
    options: list[dict[str, Any]], at: tuple[str | int, ...], *, depth: int
) -> list[Problem]:
    """A command's options; subcommand groups (type 2) and subcommands (type 1) nest at
    most two levels and may not be mixed with plain options, as on Discord."""
    problems: list[Problem] = []
    here = (*at, "options")
    if len(options) > 25:
        problems.append((here, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
    kinds = {int(o.get("type", 3)) for o in options}
    if kinds & {1, 2} and kinds - {1, 2}:
        problems.append(
            (
                here,
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-command and sub-command group option types are mutually exclusive to all "
                "other types",
            )
        )
    optional_seen = False
    for index, option in enumerate(options):
        path = (*here, index)
        option_name = option.get("name", "")
        if (
            not isinstance(option_name, str)
            or not _COMMAND_NAME.match(option_name)
            or option_name != option_name.lower()
        ):
            problems.append(
                ((*path, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            )
        problems += _length(option.get("description", ""), 1, 100, (*path, "description"))
        kind = int(option.get("type", 3))
        if kind not in OPTION_TYPES:
            problems.append(
                ((*path, "type"), "ENUM_TYPE_COERCE", f'Value "{kind}" is not a valid enum value.')
            )
        if kind in (1, 2):
            if (kind == 2 and depth > 0) or (kind == 1 and depth > 1):
                problems.append(
                    (
                        (*path, "type"),
                        "APPLICATION_COMMAND_OPTION_TYPE_INVALID",
                        "Sub-command groups and sub-commands nest at most two levels",
                    )
                )
            problems += _check_options(option.get("options") or [], path, depth=depth + 1)
            continue
        if option.get("required"):
            if optional_seen:
                problems.append(
                    (
                        (*path, "required"),
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
                )
        else:
            optional_seen = True
        for bound in ("min_value", "max_value"):
            if bound in option:
                problems += _bounded(
                    option[bound], -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER, (*path, bound)
                )
        if "min_length" in option:
            problems += _bounded(option["min_length"], 0, 6000, (*path, "min_length"))
        if "max_length" in option:
            problems += _bounded(option["max_length"], 1, 6000, (*path, "max_length"))
        for position, channel_type in enumerate(option.get("channel_types") or []):
            if channel_type not in CHANNEL_TYPES:
                problems.append(
                    (
                        (*path, "channel_types", position),
                        "ENUM_TYPE_COERCE",
                        f'Value "{channel_type}" is not a valid enum value.',
                    )
                )
        choices = option.get("choices") or []
        if len(choices) > 25:
            problems.append(
                ((*path, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            )
        for position, choice in enumerate(choices):
            problems += _length(choice.get("name"), 1, 100, (*path, "choices", position, "name"))
            value = choice.get("value")
            if isinstance(value, str):
                problems += _length(value, 1, 100, (*path, "choices", position, "value"))
            elif kind in (4, 10):
                problems += _bounded(
                    value,
                    -MAX_SAFE_INTEGER,
                    MAX_SAFE_INTEGER,
                    (*path, "choices", position, "value"),
                )
    return problems


def _sniff(data: bytes) -> str | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


async def _serve_forever(heartbeat_interval_ms: int) -> None:
    import sys

    fake = FakeDiscord(keep_files=False, heartbeat_interval_ms=heartbeat_interval_ms)
    fake.keep_requests = False
    await fake.start()
    print(
        json.dumps(
            {"api_url": fake.api_url, "gateway_url": fake.gateway_url, "base_url": fake.base_url}
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    await fake.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the loopback Discord, standalone")
    parser.add_argument("--heartbeat-ms", type=int, default=41_250)
    asyncio.run(_serve_forever(parser.parse_args().heartbeat_ms))
