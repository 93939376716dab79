"""The private web gallery (issue 16): browsing a user's results, thumbnails made once and
kept beside the original, and signing in from the chat or as a Telegram Mini App.

Nothing here is new data: the gallery shows the outputs, prompts and options that /export
already gives, and deletes through :meth:`HistoryService.delete`, the chat's own path.
Sign-in links and sessions are stored as hashes, name the user with a cascading reference,
and so end with /delete_my_data.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from core.errors import NotFound, UserFacingError
from core.files import FileStore
from core.generation.history import HistoryService
from core.generation.ports import GalleryRow
from core.ports import Clock
from core.repositories import ImageRecord, UnitOfWork, UnitOfWorkFactory
from core.types import Actor, StoredImage
from core.users import UserService

log = logging.getLogger("imagebot.gallery")

THUMB_ROLE = "thumb"
"""``job_images.role`` of a thumbnail: kept beside the output it was made from, so the
chat's delete, the retention sweep and the erasure remove it with the job."""
THUMB_EDGE = 512
"""Longest side of a thumbnail, in pixels."""
MAX_QUERY = 200
"""Characters of a text filter that are used."""
MAX_FILTER_JOBS = 10_000
"""A filter shows at most the newest this many matching results (one SQL ``IN`` list)."""


class GalleryNotConfigured(UserFacingError):
    """The operator has not set IMAGEBOT_PUBLIC_URL, so there is no gallery to open."""

    code = "gallery_not_configured"
    default_message = (
        "The web gallery is not available: the operator has not set IMAGEBOT_PUBLIC_URL "
        "(the public https address of this bot's web server). /history works as always."
    )


class SignInRefused(UserFacingError):
    """A sign-in link or Mini App sign-in that is forged, altered, used or expired."""

    code = "sign_in_refused"
    default_message = (
        "This sign-in link is not valid any more: each link works once and for a short "
        "time. Send /gallery in the chat for a new one."
    )


@dataclass(frozen=True, slots=True)
class GalleryItem:
    """One image of the gallery with what the detail view shows."""

    job_id: str
    index: int
    image: StoredImage
    prompt: str
    model: str
    size: str
    quality: str
    cost: int
    created_at: datetime
    kind: str
    outputs: int
    """How many images the job made; a delete removes all of them."""


@dataclass(frozen=True, slots=True)
class GalleryPage:
    """A page of the gallery, newest first."""

    items: tuple[GalleryItem, ...]
    page: int
    pages: int
    total: int
    query: str


@dataclass(frozen=True, slots=True)
class GallerySession:
    """A signed-in browser: whose it is, how it signed in, and its CSRF token."""

    user_id: int
    via: str
    csrf_token: str


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """A new session: the cookie value (shown once, stored only as a hash) and its end."""

    cookie: str
    user_id: int
    via: str
    expires_at: datetime


def _item(row: GalleryRow) -> GalleryItem:
    options = row.options
    return GalleryItem(
        job_id=row.job_id,
        index=row.index,
        image=StoredImage(row.path, row.content_type, row.width, row.height, row.size_bytes),
        prompt=row.prompt,
        model=str(options.get("model", "")),
        size=str(options.get("size", f"{row.width}x{row.height}")),
        quality=str(options.get("quality", "")),
        cost=row.cost,
        created_at=row.created_at,
        kind=row.kind,
        outputs=row.outputs,
    )


def make_thumbnail(data: bytes, edge: int = THUMB_EDGE) -> bytes:
    """A WebP no larger than ``edge`` on its longest side (CPU work: call it in a thread)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (edge, edge))
        frame = image.convert("RGBA") if image.mode in ("RGBA", "LA", "P") else image.convert("RGB")
        frame.thumbnail((edge, edge))
        out = io.BytesIO()
        frame.save(out, "WEBP", quality=80, method=4)
        return out.getvalue()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class GalleryService:
    """The verbs behind the gallery's pages: a page, one image, its bytes, its thumbnail,
    and delete (through the chat's own path)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        files: FileStore,
        history: HistoryService,
        clock: Clock,
        *,
        page_size: int = 24,
    ) -> None:
        self._uow = uow
        self.files = files
        self.history = history
        self.clock = clock
        self.page_size = page_size
        self._thumb_locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def page(self, user_id: int, page: int = 1, query: str = "") -> GalleryPage:
        """Page ``page`` (1-based, clamped) of the user's images, newest first; with
        ``query``, only images whose prompt contains it (case-insensitive)."""
        query = " ".join(query.split())[:MAX_QUERY]
        async with self._uow() as uow:
            job_ids: list[str] | None = None
            if query:
                needle = query.casefold()
                job_ids = [
                    j for j, p in await uow.gallery.prompts(user_id) if needle in p.casefold()
                ][:MAX_FILTER_JOBS]
            _, total = await uow.gallery.outputs(user_id, 0, 0, job_ids)
            pages = max(1, -(-total // self.page_size))
            page = min(max(1, page), pages)
            rows, total = await uow.gallery.outputs(
                user_id, (page - 1) * self.page_size, self.page_size, job_ids
            )
        return GalleryPage(tuple(_item(r) for r in rows), page, pages, total, query)

    async def item(self, user_id: int, job_id: str, index: int) -> GalleryItem:
        """One image of the user; :class:`NotFound` for anyone else's (the same answer)."""
        async with self._uow() as uow:
            row = await uow.gallery.output(user_id, job_id, index)
        if row is None:
            raise NotFound()
        return _item(row)

    async def original(self, user_id: int, job_id: str, index: int) -> tuple[GalleryItem, bytes]:
        """The image at full resolution, as stored (decrypted when encrypted at rest)."""
        item = await self.item(user_id, job_id, index)
        try:
            return item, await self.files.read(item.image.path)
        except FileNotFoundError:
            raise NotFound() from None

    async def thumbnail(self, user_id: int, job_id: str, index: int) -> tuple[str, bytes]:
        """(content type, bytes) of the image's thumbnail, made on first request and stored
        beside the original through the file store."""
        item = await self.item(user_id, job_id, index)
        key = (job_id, index)
        lock = self._thumb_locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                async with self._uow() as uow:
                    existing = [
                        i for i in await uow.jobs.images(job_id, THUMB_ROLE) if i.idx == index
                    ]
                if existing:
                    try:
                        return existing[0].content_type, await self.files.read(existing[0].path)
                    except FileNotFoundError:
                        pass  # made again below
                return await self._make_thumbnail(user_id, item)
        finally:
            if not lock.locked() and self._thumb_locks.get(key) is lock:
                self._thumb_locks.pop(key, None)

    async def _make_thumbnail(self, user_id: int, item: GalleryItem) -> tuple[str, bytes]:
        original = await self.files.read(item.image.path)
        data = await asyncio.to_thread(make_thumbnail, original)
        stored = await self.files.write_image(
            user_id, f"jobs/{item.job_id}/thumb-{item.index}", data
        )
        try:
            async with self._uow() as uow:
                # Only while the job is still there: a delete racing this leaves no row.
                if await uow.gallery.output(user_id, item.job_id, item.index) is not None:
                    known = [
                        i
                        for i in await uow.jobs.images(item.job_id, THUMB_ROLE)
                        if i.idx == item.index
                    ]
                    if not known:
                        await uow.jobs.add_image(
                            ImageRecord(
                                job_id=item.job_id,
                                user_id=user_id,
                                role=THUMB_ROLE,
                                idx=item.index,
                                path=stored.path,
                                content_type=stored.content_type,
                                width=stored.width,
                                height=stored.height,
                                size_bytes=stored.size_bytes,
                            ),
                            self.clock.now(),
                        )
                        await uow.commit()
        except Exception:
            # Another process recorded the same thumbnail first; the file is the same name.
            log.info("thumbnail already recorded job=%s index=%s", item.job_id, item.index)
        return stored.content_type, data

    async def delete(self, user_id: int, job_id: str) -> int:
        """Delete one of the user's results with all its images, files and thumbnails
        included, through the chat's own path; returns how many files went."""
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise NotFound()
        actor = Actor(user.platform, user.platform_user_id, user.display_name, user.locale)
        return await self.history.delete(actor, job_id)


class GalleryAccess:
    """Signing in to the gallery: single-use links from the chat, Telegram Mini App
    ``initData``, and the server-side sessions both open."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        users: UserService,
        clock: Clock,
        *,
        public_url: str | None,
        telegram_token: Callable[[], str | None] = lambda: None,
        link_ttl: timedelta = timedelta(minutes=15),
        session_ttl: timedelta = timedelta(hours=12),
        init_data_max_age: timedelta = timedelta(days=1),
    ) -> None:
        self._uow = uow
        self.users = users
        self.clock = clock
        self.public_url = public_url.rstrip("/") if public_url else None
        self._telegram_token = telegram_token
        self.link_ttl = link_ttl
        self.session_ttl = session_ttl
        self.init_data_max_age = init_data_max_age

    @property
    def enabled(self) -> bool:
        """True when IMAGEBOT_PUBLIC_URL is set (the gallery is served)."""
        return self.public_url is not None

    @property
    def secure(self) -> bool:
        """True when the public address is https (cookies are then ``Secure``)."""
        return bool(self.public_url and self.public_url.startswith("https://"))

    def _base(self) -> str:
        if self.public_url is None:
            raise GalleryNotConfigured()
        return self.public_url

    def mini_app_url(self) -> str:
        """The Mini App's address (no secret in it: Telegram's initData signs in)."""
        return f"{self._base()}/gallery/app"

    async def sign_in_link(self, actor: Actor) -> str:
        """A link that signs ``actor`` in once, within ``link_ttl``; signed and stored as a
        hash, so a forged or altered link is refused and a used one opens nothing."""
        base = self._base()
        now = self.clock.now()
        expires = now + self.link_ttl
        async with self._uow() as uow:
            user, _ = await self.users.ensure(uow, actor)
            nonce = secrets.token_urlsafe(24)
            payload = f"{user.id}:{nonce}:{int(expires.timestamp())}"
            signature = await self.users.sign(uow, "gallery-sign-in", payload.encode())
            token = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
            await uow.gallery.purge_expired(now)
            await uow.gallery.add_sign_in(_hash(nonce), user.id, now, expires)
            await uow.commit()
        log.info("gallery link issued user=%s", user.id)
        return f"{base}/gallery/signin/{token}.{signature}"

    async def exchange_link(self, token: str) -> SessionGrant:
        """Trade a sign-in link for a session, once. Raises :class:`SignInRefused` for a
        forged, altered, expired or already used link."""
        encoded, _, signature = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            user_text, nonce, expires_text = payload.split(":")
            user_id, expires = int(user_text), int(expires_text)
        except (ValueError, UnicodeDecodeError):
            raise SignInRefused() from None
        async with self._uow() as uow:
            expected = await self.users.sign(uow, "gallery-sign-in", payload.encode())
        if not hmac.compare_digest(expected, signature):
            raise SignInRefused()
        now = self.clock.now()
        if now.timestamp() > expires:
            raise SignInRefused()
        async with self._uow() as uow:
            owner = await uow.gallery.use_sign_in(_hash(nonce), now)
            if owner is None or owner != user_id:
                raise SignInRefused()
            grant = await self._open(uow, user_id, "link", now)
            await uow.commit()
        log.info("gallery sign-in user=%s via=link", user_id)
        return grant

    async def exchange_init_data(self, init_data: str) -> SessionGrant:
        """Sign in a Telegram Mini App from its ``initData``: the HMAC-SHA256 under the key
        derived from the bot token, ``auth_date`` not older than ``init_data_max_age``,
        and a user who already uses the bot. Raises :class:`SignInRefused` otherwise."""
        token = self._telegram_token()
        if not token or len(init_data) > 8192:
            raise SignInRefused()
        telegram_id = verify_init_data(
            init_data, token, now=self.clock.now(), max_age=self.init_data_max_age
        )
        if telegram_id is None:
            raise SignInRefused()
        now = self.clock.now()
        async with self._uow() as uow:
            user = await uow.users.find("telegram", telegram_id)
            if user is None:
                raise SignInRefused(
                    "Open the bot's chat and send /start first; the gallery shows the "
                    "images you made there.",
                    code="gallery_unknown_user",
                )
            grant = await self._open(uow, user.id, "miniapp", now)
            await uow.commit()
        log.info("gallery sign-in user=%s via=miniapp", user.id)
        return grant

    async def _open(self, uow: UnitOfWork, user_id: int, via: str, now: datetime) -> SessionGrant:
        cookie = secrets.token_urlsafe(32)
        expires = now + self.session_ttl
        await uow.gallery.purge_expired(now)
        await uow.gallery.add_session(_hash(cookie), user_id, via, now, expires)
        return SessionGrant(cookie, user_id, via, expires)

    async def session(self, cookie: str) -> GallerySession | None:
        """The session behind a cookie value; None when unknown, expired or erased."""
        if not cookie or len(cookie) > 128:
            return None
        async with self._uow() as uow:
            found = await uow.gallery.session(_hash(cookie), self.clock.now())
            if found is None:
                return None
            csrf = await self.users.sign(uow, "gallery-csrf", cookie.encode())
        return GallerySession(found[0], found[1], csrf)

    async def sign_out(self, cookie: str) -> None:
        """End the session behind a cookie value."""
        async with self._uow() as uow:
            await uow.gallery.end_session(_hash(cookie))
            await uow.commit()


def verify_init_data(
    init_data: str, bot_token: str, *, now: datetime, max_age: timedelta
) -> str | None:
    """The Telegram user id in a Mini App's ``initData`` when its hash verifies and it is
    recent; None otherwise (Telegram's algorithm: core.telegram.org/bots/webapps)."""
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        return None  # a repeated key: refuse rather than guess which one Telegram signed
    received = fields.pop("hash", "")
    if not received:
        return None
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, received):
        return None
    try:
        auth_date = int(fields.get("auth_date", ""))
        user = json.loads(fields.get("user", ""))
        user_id = int(user["id"])
    except (ValueError, TypeError, KeyError):
        return None
    age = now.timestamp() - auth_date
    if age > max_age.total_seconds() or age < -300:
        return None
    return str(user_id)
