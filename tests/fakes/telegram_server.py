"""A loopback Telegram Bot API server for tests and benchmarks.

``FakeTelegram`` is a real aiohttp server on 127.0.0.1 that speaks the Bot API's wire
format, so the real python-telegram-bot talks to it over HTTP: ``POST /bot<T>/<method>``
with form-encoded or multipart bodies (object fields as JSON strings), answers
``{"ok": true, "result": …}`` or ``{"ok": false, "error_code", "description",
"parameters"}``, and ``GET /file/bot<T>/<path>`` for downloads. It validates what the
real service validates where imagebot could get it wrong (HTML parse mode, the 4096 and
1024 character limits, 64-byte callback data, 10 MB photos, 20 MB downloads, editing a
message into identical content, replying to a missing message, answering a callback
query twice), records every call, and plays the users' side: texts, photos, documents,
albums, replies and button presses become updates served by a held-open ``getUpdates``
long poll, or posted to the webhook the bot set.

Scripting: ``fail_next(method, …)`` (for example a 429 with ``retry_after``) and
``block(chat_id)`` (the user blocked the bot: 403 on every send to that chat). Anything
raised by the fake's own code lands in ``errors``; fixtures assert it stays empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import math
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from typing import Any

from aiohttp import ClientSession, web

from tests.fakes.telegram_stars import StarsFake

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvwxyz0123"
BOT_ID = 123456
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_PHOTO_BYTES = 10_000_000
MAX_DOCUMENT_BYTES = 50_000_000
MAX_DOWNLOAD_BYTES = 20_000_000
ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-z-]+(?:=\"[^\"<>]*\")?)*)\s*>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});")
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,64})?")
_JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "media",
    "commands",
    "scope",
    "allowed_updates",
    "message_ids",
    "link_preview_options",
    "entities",
    "caption_entities",
}
_INT_FIELDS = {
    "chat_id",
    "message_id",
    "offset",
    "limit",
    "timeout",
    "message_thread_id",
    "cache_time",
    "max_connections",
    "user_id",
}
_BOOL_FIELDS = {
    "show_alert",
    "drop_pending_updates",
    "disable_notification",
    "has_spoiler",
    "disable_content_type_detection",
    "protect_content",
}

# --- strictness: the parameters each implemented method takes ------------------------------
# From the Bot API reference (https://core.telegram.org/bots/api, Bot API 9.2, the version
# python-telegram-bot 22.x targets), method by method. The real server (tdlib's
# telegram-bot-api) reads only the arguments a method names and silently ignores the rest,
# so a misplaced parameter (``parse_mode`` on ``editMessageMedia``) is lost without a word:
# the fake, strict by default, refuses it so the test that sent it fails. The description
# is the fake's own (Telegram has none for this case), in Telegram's "Bad Request: …" form.
_SEND = {
    "business_connection_id",
    "chat_id",
    "message_thread_id",
    "direct_messages_topic_id",
    "disable_notification",
    "protect_content",
    "allow_paid_broadcast",
    "message_effect_id",
    "suggested_post_parameters",
    "reply_parameters",
    # Replaced by reply_parameters in Bot API 7.0; still accepted by the server.
    "reply_to_message_id",
    "allow_sending_without_reply",
}
_EDIT = {"business_connection_id", "chat_id", "message_id", "inline_message_id", "reply_markup"}
METHOD_PARAMETERS: dict[str, frozenset[str]] = {
    name: frozenset(params)
    for name, params in {
        "getMe": set(),
        "logOut": set(),
        "close": set(),
        "getUpdates": {"offset", "limit", "timeout", "allowed_updates"},
        "setWebhook": {
            "url",
            "certificate",
            "ip_address",
            "max_connections",
            "allowed_updates",
            "drop_pending_updates",
            "secret_token",
        },
        "deleteWebhook": {"drop_pending_updates"},
        "getWebhookInfo": set(),
        "setMyCommands": {"commands", "scope", "language_code"},
        "getChatMember": {"chat_id", "user_id"},
        "sendChatAction": {"business_connection_id", "chat_id", "message_thread_id", "action"},
        "sendMessage": _SEND
        | {
            "text",
            "parse_mode",
            "entities",
            "link_preview_options",
            "reply_markup",
            "disable_web_page_preview",  # replaced by link_preview_options (7.0); accepted
        },
        "sendPhoto": _SEND
        | {
            "photo",
            "caption",
            "parse_mode",
            "caption_entities",
            "show_caption_above_media",
            "has_spoiler",
            "reply_markup",
        },
        "sendDocument": _SEND
        | {
            "document",
            "thumbnail",
            "caption",
            "parse_mode",
            "caption_entities",
            "disable_content_type_detection",
            "reply_markup",
        },
        "sendMediaGroup": _SEND | {"media"},
        "editMessageText": _EDIT
        | {"text", "parse_mode", "entities", "link_preview_options", "disable_web_page_preview"},
        "editMessageCaption": _EDIT
        | {"caption", "parse_mode", "caption_entities", "show_caption_above_media"},
        "editMessageMedia": _EDIT | {"media"},
        "editMessageReplyMarkup": set(_EDIT),
        "deleteMessage": {"chat_id", "message_id"},
        "deleteMessages": {"chat_id", "message_ids"},
        "answerCallbackQuery": {"callback_query_id", "text", "show_alert", "url", "cache_time"},
        "getFile": {"file_id"},
    }.items()
}


GROUP_COUNTED = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendMediaGroup",
        "sendVideo",
        "sendAnimation",
        "sendAudio",
        "sendVoice",
        "sendSticker",
        "sendPoll",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
    }
)
"""Methods that post or change a message: what a group's per-minute budget counts."""


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass
class Upload:
    """A file part the bot uploaded."""

    name: str
    filename: str
    content_type: str
    size: int
    data: bytes | None


@dataclass
class BotCall:
    """One request the bot made, with its decoded parameters and the answer."""

    method: str
    params: dict[str, Any]
    files: dict[str, Upload]
    at: float
    status: int = 200
    result: Any = None
    description: str = ""

    @property
    def chat_id(self) -> int | None:
        """The chat the call was about, if any."""
        value = self.params.get("chat_id")
        return value if isinstance(value, int) else None

    @property
    def text(self) -> str:
        """The raw text or caption sent (HTML as the bot wrote it)."""
        media = self.params.get("media")
        caption = media.get("caption") if isinstance(media, dict) else None
        return str(self.params.get("text") or self.params.get("caption") or caption or "")

    @property
    def ok(self) -> bool:
        """True when the fake answered ``ok``."""
        return self.status == 200

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data or url) of every inline button sent with the call."""
        markup = self.params.get("reply_markup") or {}
        return [
            (
                b["text"],
                b.get("callback_data") or b.get("url") or (b.get("web_app") or {}).get("url", ""),
            )
            for row in markup.get("inline_keyboard", [])
            for b in row
        ]


@dataclass
class StoredFile:
    """A file the fake serves through getFile and the download URL."""

    file_id: str
    unique_id: str
    path: str
    size: int
    data: bytes | None


@dataclass
class _Failure:
    method: str
    code: int
    description: str
    retry_after: int | None
    times: int
    chat_id: int | None


@dataclass
class FakeUser:
    """A person (or the bot) on the fake's side."""

    id: int
    first_name: str
    username: str | None = None
    is_bot: bool = False
    language_code: str | None = "en"

    def to_api(self) -> dict[str, Any]:
        """The Bot API ``User`` object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass
class FakeChat:
    """A private chat or a group."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None

    @property
    def is_private(self) -> bool:
        """True for a private chat."""
        return self.type == "private"

    def to_api(self) -> dict[str, Any]:
        """The Bot API ``Chat`` object."""
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title:
            data["title"] = self.title
        if self.first_name:
            data["first_name"] = self.first_name
        return data


@dataclass
class WebhookResult:
    """What imagebot's HTTP server answered to a posted update."""

    status: int
    body: str


class FakeTelegram(StarsFake):
    """The loopback Bot API server; see the module docstring."""

    def __init__(
        self,
        token: str = TOKEN,
        *,
        bot_username: str = "imagebot_test_bot",
        keep_files: bool = True,
        keep_calls: bool = True,
        max_poll_seconds: float | None = None,
        strict: bool = True,
    ) -> None:
        self.token = token
        self.strict = strict
        """Refuse parameters a method does not take (see ``METHOD_PARAMETERS``)."""
        self.bot = FakeUser(BOT_ID, "imagebot", bot_username, is_bot=True)
        self.keep_files = keep_files
        self.keep_calls = keep_calls
        self.max_poll_seconds = max_poll_seconds
        self.calls: list[BotCall] = []
        self.errors: list[BaseException] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.html: dict[tuple[int, int], str] = {}
        self.history: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.deleted: set[tuple[int, int]] = set()
        self.files: dict[str, StoredFile] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.localized_commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        """``setMyCommands`` with a ``language_code``, by (scope key, language code)."""
        """Command menus by scope: ``default``, ``all_private_chats``, ``chat:<id>``…"""
        self.members: dict[tuple[int, int], str] = {}
        """Statuses of chat members (``administrator``, ``creator``…) set by tests;
        anyone else is a plain ``member``."""
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.pending: list[dict[str, Any]] = []
        self.update_times: dict[int, float] = {}
        self.on_call: Callable[[BotCall], None] | None = None
        """Called with every call once answered (benchmarks time the bot's answers)."""
        self.on_serve: Callable[[list[dict[str, Any]]], None] | None = None
        """Called with every batch of updates handed to the bot."""
        self._failures: list[_Failure] = []
        self.group_limit: tuple[int, float] | None = None
        self.group_sends: dict[int, list[float]] = {}
        self.group_refusals: list[BotCall] = []
        self._blocked: set[int] = set()
        self._next_message: dict[int, int] = {}
        self._update_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._user_ids = itertools.count(1001)
        self._group_ids = itertools.count(1)
        self._group_seq = itertools.count(1)
        self.served_update_id = 0
        """The highest update id handed to the bot so far."""
        self._updates_changed = asyncio.Event()
        self._calls_changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._closing = False
        self.port = 0

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root, as ``IMAGEBOT_TELEGRAM_API_URL`` takes it."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve on a free loopback port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Release held polls and stop serving."""
        self._closing = True
        self._updates_changed.set()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- scripting ----------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        code: int = 429,
        description: str = "",
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (to ``chat_id``) with an error;
        a 429 carries ``retry_after`` (1 s unless given)."""
        if code == 429 and retry_after is None:
            retry_after = 1
        if not description:
            description = (
                f"Too Many Requests: retry after {retry_after}" if code == 429 else "Bad Request"
            )
        self._failures.append(_Failure(method, code, description, retry_after, times, chat_id))

    def enforce_group_rate(self, limit: int = 20, window: float = 60.0) -> None:
        """Refuse messages (sends and edits) to a group beyond ``limit`` per sliding
        ``window`` seconds, as Telegram does (about 20 a minute in one group): a 429
        ``Too Many Requests: retry after N`` with ``parameters.retry_after``. Accepted
        messages are kept per chat in ``group_sends``; refusals in ``group_refusals``."""
        self.group_limit = (limit, window)

    def max_group_sends(self, chat_id: int, window: float) -> int:
        """The most messages accepted in ``chat_id`` within any ``window`` seconds."""
        times = self.group_sends.get(chat_id, [])
        best, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def _check_group_rate(self, call: BotCall) -> None:
        chat_id = call.params.get("chat_id")
        if self.group_limit is None or not isinstance(chat_id, int) or chat_id >= 0:
            return
        if call.method not in GROUP_COUNTED:
            return
        limit, window = self.group_limit
        now = time.monotonic()
        times = self.group_sends.setdefault(chat_id, [])
        recent = [t for t in times if t > now - window]
        weight = len(call.params.get("media") or ()) if call.method == "sendMediaGroup" else 1
        if len(recent) + max(weight, 1) > limit:
            retry_after = max(1, math.ceil(recent[0] + window - now))
            self.group_refusals.append(call)
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        times.extend([now] * max(weight, 1))

    def set_member(self, chat: FakeChat, user: FakeUser, status: str) -> None:
        """``user``'s status in ``chat`` as getChatMember reports it (``creator``,
        ``administrator``, ``member``, ``restricted``, ``left``, ``kicked``)."""
        self.members[(chat.id, user.id)] = status

    def block(self, chat_id: int) -> None:
        """The user of this private chat blocked the bot: sends to it answer 403."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        """The user unblocked the bot."""
        self._blocked.discard(chat_id)

    # --- the users' side ----------------------------------------------------------------------

    def user(self, first_name: str = "Ada", *, username: str | None = None) -> FakeUser:
        """A new person."""
        uid = next(self._user_ids)
        return FakeUser(uid, first_name, username or f"{first_name.lower()}{uid}")

    def private_chat(self, user: FakeUser) -> FakeChat:
        """The private chat between ``user`` and the bot."""
        return FakeChat(user.id, "private", first_name=user.first_name)

    def group(self, title: str = "Artists") -> FakeChat:
        """A new supergroup."""
        return FakeChat(-1_000_000_000_000 - next(self._group_ids), "supergroup", title=title)

    def send_text(
        self,
        user: FakeUser,
        chat: FakeChat,
        text: str,
        *,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The user sends a text message (a command when it starts with ``/``)."""
        message = self._user_message(user, chat, reply_to)
        message["text"] = text
        entities = _command_entities(text)
        if entities:
            message["entities"] = entities
        return self._queue_message(message)

    def send_photo(
        self,
        user: FakeUser,
        chat: FakeChat,
        data: bytes,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: dict[str, Any] | None = None,
        declared_size: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a photo (optionally captioned, or as part of an album)."""
        message = self._user_message(user, chat, reply_to)
        message["photo"] = self._photo_sizes(data, "photos", declared_size=declared_size)
        self._caption(message, caption)
        if media_group_id:
            message["media_group_id"] = media_group_id
        return self._queue_message(message)

    def send_document(
        self,
        user: FakeUser,
        chat: FakeChat,
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        reply_to: dict[str, Any] | None = None,
        declared_size: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a file."""
        message = self._user_message(user, chat, reply_to)
        stored = self._store_file(data, "documents", file_name.rsplit(".", 1)[-1])
        message["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": declared_size if declared_size is not None else stored.size,
        }
        if declared_size is not None:
            stored.size = declared_size
        self._caption(message, caption)
        return self._queue_message(message)

    def send_album(
        self,
        user: FakeUser,
        chat: FakeChat,
        images: list[bytes],
        *,
        caption: str | None = None,
    ) -> list[dict[str, Any]]:
        """The user sends 2 to 10 photos as one album; the caption goes on the first."""
        assert 2 <= len(images) <= 10
        group_id = f"album{next(self._group_seq)}"
        return [
            self.send_photo(
                user, chat, data, caption=caption if i == 0 else None, media_group_id=group_id
            )
            for i, data in enumerate(images)
        ]

    def press(
        self, user: FakeUser, message: dict[str, Any], data: str, *, check: bool = True
    ) -> str:
        """The user presses the inline button with ``data`` on ``message``; returns the
        callback query id. ``check`` insists the button is on the message now."""
        key = (message["chat"]["id"], message["message_id"])
        current = self.messages.get(key, message)
        if check:
            datas = [
                b.get("callback_data")
                for row in (current.get("reply_markup") or {}).get("inline_keyboard", [])
                for b in row
            ]
            assert data in datas, f"no button {data!r} on message {key}: {datas}"
        query_id = f"q{next(self._query_ids)}"
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.to_api(),
                    "message": current,
                    "chat_instance": f"ci{abs(key[0])}",
                    "data": data,
                }
            }
        )
        return query_id

    def push_update(self, body: dict[str, Any]) -> int:
        """Queue a raw update (``update_id`` is added); returns its id."""
        return self._push(body)

    # --- webhook side ---------------------------------------------------------------------------

    async def post_webhook(
        self, update: dict[str, Any], *, secret: str | None = "", url: str | None = None
    ) -> WebhookResult:
        """Post ``update`` like Telegram does; ``secret`` ``""`` means the one set by the bot,
        ``None`` sends no secret header."""
        if self._session is None:
            self._session = ClientSession()
        headers = {"Content-Type": "application/json"}
        token = self.webhook_secret if secret == "" else secret
        if token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        async with self._session.post(
            url or self.webhook_url, data=json.dumps(update).encode(), headers=headers
        ) as resp:
            return WebhookResult(resp.status, await resp.text())

    def make_update(self, body: dict[str, Any]) -> dict[str, Any]:
        """An update with a fresh ``update_id``, not queued (for posting to a webhook)."""
        update_id = next(self._update_ids)
        self.update_times[update_id] = time.perf_counter()
        return {"update_id": update_id, **body}

    def text_update(
        self, user: FakeUser, chat: FakeChat, text: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A text message as an update, not queued; returns (update, message)."""
        message = self._user_message(user, chat, None)
        message["text"] = text
        entities = _command_entities(text)
        if entities:
            message["entities"] = entities
        self._store(message)
        return self.make_update({"message": message}), message

    # --- assertions -----------------------------------------------------------------------------

    def calls_of(self, method: str | None = None, chat_id: int | None = None) -> list[BotCall]:
        """Recorded calls, filtered by method and chat."""
        return [
            c
            for c in self.calls
            if (method is None or c.method == method) and (chat_id is None or c.chat_id == chat_id)
        ]

    async def wait_for(
        self, predicate: Callable[[], Any], *, timeout: float = 10.0, what: str = ""
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after every call); return it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    value = predicate()
                    if value:
                        return value
                    self._calls_changed.clear()
                    await self._calls_changed.wait()
        except TimeoutError:
            recent = [(c.method, c.chat_id, c.text[:60], c.status) for c in self.calls[-12:]]
            raise AssertionError(f"timed out waiting for {what or predicate}: {recent}") from None

    async def wait_call(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        where: Callable[[BotCall], bool] | None = None,
        after: int = 0,
        timeout: float = 10.0,
    ) -> BotCall:
        """The first successful call of ``method`` (index ≥ ``after``) matching ``where``."""

        def find() -> BotCall | None:
            for call in self.calls[after:]:
                if (
                    call.method == method
                    and call.ok
                    and (chat_id is None or call.chat_id == chat_id)
                    and (where is None or where(call))
                ):
                    return call
            return None

        found: BotCall = await self.wait_for(find, timeout=timeout, what=method)
        return found

    async def wait_answer(self, query_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The bot's answerCallbackQuery for ``query_id``."""
        answer: dict[str, Any] = await self.wait_for(
            lambda: self.answers.get(query_id), timeout=timeout, what=f"answer to {query_id}"
        )
        return answer

    async def wait_served(self, timeout: float = 10.0) -> None:
        """Until every queued update was handed to the bot."""
        last = max((u["update_id"] for u in self.pending), default=0)
        await self.wait_for(
            lambda: self.served_update_id >= last, timeout=timeout, what="updates served"
        )

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat that still exist, oldest first."""
        return [
            m
            for (cid, _), m in sorted(self.messages.items())
            if cid == chat_id and m["from"]["id"] == BOT_ID
        ]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """A message as it is now (None once deleted)."""
        return self.messages.get((chat_id, message_id))

    def file_bytes(self, file_id: str) -> bytes | None:
        """The bytes behind a file id (when kept)."""
        stored = self.files.get(file_id)
        return stored.data if stored else None

    # --- the HTTP side --------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _answer_error(ApiError(401, "Unauthorized"))
        call = BotCall(method, {}, {}, time.perf_counter())
        try:
            call.params, call.files = await self._read_params(request)
            self._check_failures(call)
            self._check_group_rate(call)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            if self.strict:
                _check_parameters(call)
            result = await handler(call)
            call.result = result
            response = _answer({"ok": True, "result": result})
        except ApiError as exc:
            call.status = exc.code
            call.description = exc.description
            response = _answer_error(exc)
        except Exception as exc:  # the fake itself is broken: make it loud
            self.errors.append(exc)
            traceback.print_exc()
            call.status = 500
            response = _answer_error(ApiError(500, "Internal Server Error: fake crashed"))
        self._record(call)
        return response

    def _record(self, call: BotCall) -> None:
        if self.keep_calls:
            self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        self._calls_changed.set()

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.path == path and stored.data is not None:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.Response(status=404, text="Not Found")

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, Upload] = {}
        if request.body_exists:
            ctype = request.content_type
            if ctype == "application/json":
                raw.update(await request.json())
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for name, value in form.items():
                    if not isinstance(value, web.FileField):
                        raw[name] = value if isinstance(value, str) else value.decode()
                    else:
                        data = value.file.read()
                        files[name] = Upload(
                            name,
                            value.filename,
                            value.content_type,
                            len(data),
                            data if self.keep_files else _head(data),
                        )
            else:
                raise ApiError(400, f"Bad Request: unsupported content type {ctype}")
        params: dict[str, Any] = {}
        for name, value in raw.items():
            params[name] = _decode(name, value)
        return params, files

    def _check_failures(self, call: BotCall) -> None:
        for failure in self._failures:
            if failure.method != call.method or failure.times <= 0:
                continue
            if failure.chat_id is not None and failure.chat_id != call.params.get("chat_id"):
                continue
            failure.times -= 1
            raise ApiError(failure.code, failure.description, failure.retry_after)
        self._failures = [f for f in self._failures if f.times > 0]
        chat_id = call.params.get("chat_id")
        if chat_id in self._blocked and call.method != "getUpdates":
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    # --- methods --------------------------------------------------------------------------------

    async def _m_getMe(self, call: BotCall) -> Any:
        return {
            **self.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_deleteWebhook(self, call: BotCall) -> Any:
        self.webhook_url = ""
        self.webhook_secret = None
        if call.params.get("drop_pending_updates"):
            self.pending.clear()
        return True

    async def _m_setWebhook(self, call: BotCall) -> Any:
        url = str(call.params.get("url", ""))
        if url and not re.match(r"^(https://|http://127\.0\.0\.1[:/])", url):
            raise ApiError(400, "Bad Request: bad webhook: HTTPS url must be provided for webhook")
        secret = call.params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook_url = url
        self.webhook_secret = secret
        return True

    async def _m_getWebhookInfo(self, call: BotCall) -> Any:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }

    async def _m_getUpdates(self, call: BotCall) -> Any:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(call.params.get("offset") or 0)
        limit = min(max(int(call.params.get("limit") or 100), 1), 100)
        timeout = float(call.params.get("timeout") or 0)
        if self.max_poll_seconds is not None:
            timeout = min(timeout, self.max_poll_seconds)
        if offset:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while not self.pending and not self._closing:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._updates_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._updates_changed.wait(), left)
        batch = self.pending[:limit]
        if batch and batch[-1]["update_id"] > self.served_update_id:
            self.served_update_id = batch[-1]["update_id"]
            if self.on_serve is not None:
                self.on_serve(batch)
            self._calls_changed.set()
        return batch

    async def _m_setMyCommands(self, call: BotCall) -> Any:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100")
        for item in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(item.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(item.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        scope = call.params.get("scope") or {"type": "default"}
        key = scope["type"]
        if key in ("chat", "chat_administrators", "chat_member"):
            if not isinstance(scope.get("chat_id"), int):
                raise ApiError(400, "Bad Request: chat not found")
            key = f"{key}:{scope['chat_id']}"
            if key.startswith("chat_member:"):
                key += f":{scope.get('user_id')}"
        language = str(call.params.get("language_code") or "")
        if language:
            # Menus for one language live beside the language-less one, as on Telegram
            # (a user whose app language matches sees that menu).
            self.localized_commands[(key, language)] = commands
            return True
        self.commands[key] = commands
        return True

    async def _m_getChatMember(self, call: BotCall) -> Any:
        chat_id = self._chat_of(call)
        user_id = call.params.get("user_id")
        if not isinstance(user_id, int):
            raise ApiError(400, "Bad Request: user not found")
        status = self.members.get((chat_id, user_id), "member")
        user = {"id": user_id, "is_bot": False, "first_name": "member"}
        member: dict[str, Any] = {"status": status, "user": user}
        if status == "administrator":
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
            )
        elif status == "creator":
            member.update(is_anonymous=False)
        elif status == "restricted":
            member.update(
                is_member=True,
                can_send_messages=True,
                can_send_audios=True,
                can_send_documents=True,
                can_send_photos=True,
                can_send_videos=True,
                can_send_video_notes=True,
                can_send_voice_notes=True,
                can_send_polls=True,
                can_send_other_messages=True,
                can_add_web_page_previews=True,
                can_change_info=False,
                can_invite_users=False,
                can_pin_messages=False,
                can_manage_topics=False,
                until_date=0,
            )
        elif status == "kicked":
            member.update(until_date=0)
        return member

    async def _m_sendChatAction(self, call: BotCall) -> Any:
        self._chat_of(call)
        if call.params.get("action") not in {"typing", "upload_photo", "upload_document"}:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _m_sendMessage(self, call: BotCall) -> Any:
        text = self._html(call.params.get("text"), call, MAX_TEXT, "message text")
        message = self._bot_message(call)
        message["text"] = text
        return self._store(message, call.params.get("text"))

    async def _m_sendPhoto(self, call: BotCall) -> Any:
        caption = self._html(call.params.get("caption"), call, MAX_CAPTION, "caption", True)
        message = self._bot_message(call)
        message["photo"] = self._bot_photo(call.params.get("photo"), call.files.get("photo"))
        if caption:
            message["caption"] = caption
        return self._store(message, call.params.get("caption"))

    async def _m_sendDocument(self, call: BotCall) -> Any:
        caption = self._html(call.params.get("caption"), call, MAX_CAPTION, "caption", True)
        message = self._bot_message(call)
        message["document"] = self._bot_document(
            call.params.get("document"), call.files.get("document")
        )
        if caption:
            message["caption"] = caption
        return self._store(message, call.params.get("caption"))

    async def _m_sendMediaGroup(self, call: BotCall) -> Any:
        media = call.params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: media must include 2-10 items")
        kinds = {m.get("type") for m in media}
        if len(kinds) > 1 and not kinds <= {"photo", "video"}:
            raise ApiError(400, "Bad Request: documents can't be mixed with other media types")
        if "reply_markup" in call.params:
            raise ApiError(400, "Bad Request: media groups take no reply markup")
        group_id = f"botalbum{next(self._group_seq)}"
        results = []
        for item in media:
            caption = self._html(item.get("caption"), call, MAX_CAPTION, "caption", True, item)
            message = self._bot_message(call)
            message["media_group_id"] = group_id
            if item.get("type") == "photo":
                message["photo"] = self._bot_photo(item.get("media"), self._attached(call, item))
            else:
                message["document"] = self._bot_document(
                    item.get("media"), self._attached(call, item)
                )
            if caption:
                message["caption"] = caption
            results.append(self._store(message, item.get("caption")))
        return results

    async def _m_editMessageText(self, call: BotCall) -> Any:
        key, current = self._editable(call)
        if "text" not in current:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = self._html(call.params.get("text"), call, MAX_TEXT, "message text")
        updated = dict(current)
        updated["text"] = text
        self._set_markup(updated, call)
        return self._replace(key, current, updated, call.params.get("text"))

    async def _m_editMessageCaption(self, call: BotCall) -> Any:
        key, current = self._editable(call)
        if "photo" not in current and "document" not in current:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption = self._html(call.params.get("caption"), call, MAX_CAPTION, "caption", True)
        updated = dict(current)
        updated.pop("caption", None)
        if caption:
            updated["caption"] = caption
        self._set_markup(updated, call)
        return self._replace(key, current, updated, call.params.get("caption"))

    async def _m_editMessageMedia(self, call: BotCall) -> Any:
        key, current = self._editable(call)
        media = call.params.get("media")
        if not isinstance(media, dict) or media.get("type") not in ("photo", "document"):
            raise ApiError(400, "Bad Request: can't parse InputMedia")
        caption = self._html(media.get("caption"), call, MAX_CAPTION, "caption", True, media)
        updated = {k: v for k, v in current.items() if k not in ("text", "photo", "document")}
        updated.pop("caption", None)
        updated.pop("entities", None)
        if media["type"] == "photo":
            updated["photo"] = self._bot_photo(media.get("media"), self._attached(call, media))
        else:
            updated["document"] = self._bot_document(
                media.get("media"), self._attached(call, media)
            )
        if caption:
            updated["caption"] = caption
        self._set_markup(updated, call)
        return self._replace(key, current, updated, media.get("caption"), media_changed=True)

    async def _m_editMessageReplyMarkup(self, call: BotCall) -> Any:
        key, current = self._editable(call)
        updated = dict(current)
        self._set_markup(updated, call)
        return self._replace(key, current, updated, self.html.get(key))

    async def _m_deleteMessage(self, call: BotCall) -> Any:
        chat = self._chat_of(call)
        key = (chat, int(call.params.get("message_id", 0)))
        if key not in self.messages:
            raise ApiError(400, "Bad Request: message to delete not found")
        self._delete(key)
        return True

    async def _m_deleteMessages(self, call: BotCall) -> Any:
        chat = self._chat_of(call)
        ids = call.params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError(400, "Bad Request: message_ids must be 1-100 ids")
        for mid in ids:
            if (chat, int(mid)) in self.messages:
                self._delete((chat, int(mid)))
        return True

    async def _m_answerCallbackQuery(self, call: BotCall) -> Any:
        query_id = str(call.params.get("callback_query_id", ""))
        if query_id in self.answers or not query_id.startswith("q"):
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        text = call.params.get("text")
        if text is not None and len(str(text)) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.answers[query_id] = dict(call.params)
        return True

    async def _m_getFile(self, call: BotCall) -> Any:
        stored = self.files.get(str(call.params.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.size > MAX_DOWNLOAD_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_size": stored.size,
            "file_path": stored.path,
        }

    async def _m_close(self, call: BotCall) -> Any:
        return True

    async def _m_logOut(self, call: BotCall) -> Any:
        return True

    # --- helpers --------------------------------------------------------------------------------

    def _push(self, body: dict[str, Any]) -> int:
        update = self.make_update(body)
        self.pending.append(update)
        self._updates_changed.set()
        return int(update["update_id"])

    def _user_message(
        self, user: FakeUser, chat: FakeChat, reply_to: dict[str, Any] | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat.id),
            "date": int(time.time()),
            "chat": chat.to_api(),
            "from": user.to_api(),
        }
        if reply_to is not None:
            # Telegram does not nest replies further than one level.
            message["reply_to_message"] = {
                k: v for k, v in reply_to.items() if k != "reply_to_message"
            }
        return message

    def _queue_message(self, message: dict[str, Any]) -> dict[str, Any]:
        self._store(message)
        self._push({"message": message})
        return message

    def _caption(self, message: dict[str, Any], caption: str | None) -> None:
        if caption:
            message["caption"] = caption
            entities = _command_entities(caption)
            if entities:
                message["caption_entities"] = entities

    def _new_message_id(self, chat_id: int) -> int:
        value = self._next_message.get(chat_id, 0) + 1
        self._next_message[chat_id] = value
        return value

    def _chat_of(self, call: BotCall) -> int:
        chat_id = call.params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _bot_message(self, call: BotCall) -> dict[str, Any]:
        chat_id = self._chat_of(call)
        chat = (
            {"id": chat_id, "type": "private", "first_name": "user"}
            if chat_id > 0
            else {"id": chat_id, "type": "supergroup", "title": "group"}
        )
        message: dict[str, Any] = {
            "message_id": 0,
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot.to_api(),
        }
        thread = call.params.get("message_thread_id")
        if thread:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        reply = call.params.get("reply_parameters")
        if isinstance(reply, dict):
            target = self.messages.get((chat_id, int(reply.get("message_id", 0))))
            if target is None and not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
            if target is not None:
                message["reply_to_message"] = {
                    k: v for k, v in target.items() if k != "reply_to_message"
                }
        self._set_markup(message, call)
        message["message_id"] = self._new_message_id(chat_id)
        return message

    @staticmethod
    def _check_web_app_button(button: dict[str, Any], call: BotCall) -> None:
        """Mini App buttons as Telegram takes them: only in private chats (elsewhere
        BUTTON_TYPE_INVALID), and only with an https URL (BUTTON_URL_INVALID)."""
        try:
            private = int(call.params.get("chat_id", 0)) > 0
        except (TypeError, ValueError):
            private = False  # a @channel username
        if not private:
            raise ApiError(400, "Bad Request: BUTTON_TYPE_INVALID")
        url = str((button.get("web_app") or {}).get("url", ""))
        if not url.startswith("https://") or len(url) > 2048:
            raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")

    @staticmethod
    def _check_url_button(url: str) -> None:
        """URL buttons as Telegram takes them: http, https or tg links; an http(s) host
        without a dot (``localhost``, a bare name) is BUTTON_URL_INVALID."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme == "tg":
            return
        if parts.scheme not in ("http", "https") or "." not in host.strip("."):
            raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")

    def _set_markup(self, message: dict[str, Any], call: BotCall) -> None:
        markup = call.params.get("reply_markup")
        if markup is None:
            if call.method.startswith("edit"):
                message.pop("reply_markup", None)
            return
        if "inline_keyboard" in markup:
            for row in markup["inline_keyboard"]:
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                    if not button.get("text"):
                        raise ApiError(400, "Bad Request: text buttons are unallowed")
                    if "web_app" in button:
                        self._check_web_app_button(button, call)
                    if "url" in button:
                        self._check_url_button(str(button["url"]))
            if markup["inline_keyboard"]:
                message["reply_markup"] = markup
            else:
                message.pop("reply_markup", None)
        elif markup.get("force_reply"):
            if call.method.startswith("edit"):
                raise ApiError(400, "Bad Request: inline keyboard expected")
        else:
            raise ApiError(400, "Bad Request: unsupported reply markup")

    def _html(
        self,
        value: Any,
        call: BotCall,
        limit: int,
        what: str,
        optional: bool = False,
        holder: dict[str, Any] | None = None,
    ) -> str:
        if value is None or value == "":
            if optional:
                return ""
            raise ApiError(400, f"Bad Request: {what} is empty")
        text = str(value)
        mode = (holder or call.params).get("parse_mode")
        plain = _parse_html(text) if mode == "HTML" else text
        if mode not in (None, "HTML"):
            raise ApiError(400, f"Bad Request: unsupported parse mode {mode}")
        if _utf16_len(plain) > limit:
            raise ApiError(
                400,
                f"Bad Request: {'message is too long' if limit == MAX_TEXT else what} is too long",
            )
        if not plain.strip() and not optional:
            raise ApiError(400, f"Bad Request: {what} is empty")
        return plain

    def _store(self, message: dict[str, Any], html: Any = None) -> dict[str, Any]:
        key = (message["chat"]["id"], message["message_id"])
        self.messages[key] = message
        self.history.setdefault(key, []).append(message)
        if html is not None:
            self.html[key] = str(html)
        return message

    def _replace(
        self,
        key: tuple[int, int],
        current: dict[str, Any],
        updated: dict[str, Any],
        html: Any,
        *,
        media_changed: bool = False,
    ) -> dict[str, Any]:
        same_markup = current.get("reply_markup") == updated.get("reply_markup")
        same_text = self.html.get(key) == (None if html is None else str(html)) and current.get(
            "text"
        ) == updated.get("text")
        if not media_changed and same_markup and same_text:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup of "
                "the message",
            )
        updated["edit_date"] = int(time.time())
        self.messages[key] = updated
        self.history.setdefault(key, []).append(updated)
        if html is not None:
            self.html[key] = str(html)
        else:
            self.html.pop(key, None)
        return updated

    def _editable(self, call: BotCall) -> tuple[tuple[int, int], dict[str, Any]]:
        chat = self._chat_of(call)
        key = (chat, int(call.params.get("message_id", 0)))
        current = self.messages.get(key)
        if current is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if current["from"]["id"] != BOT_ID:
            raise ApiError(400, "Bad Request: message can't be edited")
        return key, current

    def _delete(self, key: tuple[int, int]) -> None:
        self.messages.pop(key, None)
        self.deleted.add(key)

    def _attached(self, call: BotCall, item: dict[str, Any]) -> Upload | None:
        ref = str(item.get("media", ""))
        if ref.startswith("attach://"):
            upload = call.files.get(ref.removeprefix("attach://"))
            if upload is None:
                raise ApiError(400, "Bad Request: wrong HTTP URL specified")
            return upload
        return None

    def _bot_photo(self, ref: Any, upload: Upload | None) -> list[dict[str, Any]]:
        if upload is None:
            stored = self.files.get(str(ref or ""))
            if stored is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            return self._photo_entry(stored)
        if upload.size > MAX_PHOTO_BYTES:
            raise ApiError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
        dims = _dimensions(upload.data or b"")
        if dims is None:
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        if dims[0] + dims[1] > 10_000 or max(dims) > 20 * min(dims):
            raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        stored = self._store_file(upload.data, "photos", "jpg", size=upload.size)
        return self._photo_entry(stored, dims)

    def _bot_document(self, ref: Any, upload: Upload | None) -> dict[str, Any]:
        if upload is None:
            stored = self.files.get(str(ref or ""))
            if stored is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            return {"file_id": stored.file_id, "file_unique_id": stored.unique_id}
        if upload.size > MAX_DOCUMENT_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        stored = self._store_file(upload.data, "documents", "bin", size=upload.size)
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_name": upload.filename,
            "mime_type": upload.content_type,
            "file_size": upload.size,
        }

    def _photo_entry(
        self, stored: StoredFile, dims: tuple[int, int] | None = None
    ) -> list[dict[str, Any]]:
        width, height = dims or _dimensions(stored.data or b"") or (1, 1)
        return [
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.unique_id,
                "width": width,
                "height": height,
                "file_size": stored.size,
            }
        ]

    def _photo_sizes(
        self, data: bytes, folder: str, *, declared_size: int | None
    ) -> list[dict[str, Any]]:
        """A thumbnail first, the original last (the largest is the last, as on Telegram)."""
        sizes = []
        thumb = _thumbnail(data)
        if thumb is not None:
            small = self._store_file(thumb[0], folder, "jpg")
            sizes += self._photo_entry(small, thumb[1])
        big = self._store_file(data, folder, "jpg")
        if declared_size is not None:
            big.size = declared_size
        entry = self._photo_entry(big)
        if declared_size is not None:
            entry[0]["file_size"] = declared_size
        return sizes + entry

    def _store_file(
        self, data: bytes | None, folder: str, ext: str, *, size: int | None = None
    ) -> StoredFile:
        number = next(self._file_ids)
        stored = StoredFile(
            file_id=f"F{number:06d}AgAD",
            unique_id=f"U{number:06d}",
            path=f"{folder}/file_{number}.{ext}",
            size=size if size is not None else len(data or b""),
            data=data if self.keep_files or folder != "photos" else None,
        )
        self.files[stored.file_id] = stored
        return stored


# --- module helpers ---------------------------------------------------------------------------


def _check_parameters(call: BotCall) -> None:
    """Refuse a parameter the method does not take (strict mode). File parts count when
    the method names them or the call's media points at them (``attach://<name>``)."""
    accepted = METHOD_PARAMETERS.get(call.method)
    if accepted is None:
        return
    attached = set(re.findall(r"attach://([A-Za-z0-9_]+)", json.dumps(call.params.get("media"))))
    for name in [*call.params, *call.files]:
        if name not in accepted and name not in attached:
            raise ApiError(400, f"Bad Request: method {call.method} has no parameter {name!r}")


def _answer(payload: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(payload).encode(), content_type="application/json")


def _answer_error(exc: ApiError) -> web.Response:
    payload: dict[str, Any] = {
        "ok": False,
        "error_code": exc.code,
        "description": exc.description,
    }
    if exc.retry_after is not None:
        payload["parameters"] = {"retry_after": exc.retry_after}
    return web.Response(
        status=exc.code, body=json.dumps(payload).encode(), content_type="application/json"
    )


def _decode(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in _BOOL_FIELDS:
        return value.lower() == "true"
    return value


def _command_entities(text: str) -> list[dict[str, Any]]:
    match = _COMMAND.match(text)
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(match.group(0))}]


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _parse_html(text: str) -> str:
    """Telegram's HTML parse mode: only its tags, balanced; every other ``<``, ``>`` and ``&``
    escaped. Returns the plain text, or raises 400 "can't parse entities"."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "<":
            match = _TAG.match(text, pos)
            if not match:
                raise _cant_parse(f"unexpected start tag at byte offset {pos}")
            closing, name = match.group(1), match.group(2).lower()
            if name not in ALLOWED_TAGS:
                raise _cant_parse(f'unsupported start tag "{name}" at byte offset {pos}')
            if closing:
                if not stack or stack[-1] != name:
                    raise _cant_parse(
                        f'unmatched end tag at byte offset {pos}, expected "</'
                        f'{stack[-1] if stack else ""}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                stack.append(name)
            pos = match.end()
        elif ch == "&":
            match = _ENTITY.match(text, pos)
            if not match:
                raise _cant_parse(f"unsupported entity at byte offset {pos}")
            out.append(unescape(match.group(0)))
            pos = match.end()
        elif ch == ">":
            raise _cant_parse(f"unexpected end of tag at byte offset {pos}")
        else:
            out.append(ch)
            pos += 1
    if stack:
        raise _cant_parse(f'can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def _cant_parse(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {detail}")


def _dimensions(data: bytes) -> tuple[int, int] | None:
    if not data:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _thumbnail(data: bytes) -> tuple[bytes, tuple[int, int]] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if max(img.size) > 4096:
                return None
            img.thumbnail((90, 90))
            out = io.BytesIO()
            img.convert("RGB").save(out, "JPEG", quality=70)
            return out.getvalue(), img.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _head(data: bytes) -> bytes:
    """What is kept of an upload when files are not kept: enough to read the dimensions."""
    return data[: 64 * 1024]
