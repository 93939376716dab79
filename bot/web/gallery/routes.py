"""Routes of the web gallery. Every page goes through :func:`_security_headers` (a strict
CSP without inline scripts, nosniff, no framing outside Telegram's Mini App, no caching of
pages), every state change checks a CSRF token bound to the session, and sign-in is rate
limited per address. Files are served from a fixed list: there is no directory to list."""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from aiohttp import web

from core.app import Core
from core.errors import NotFound, UserFacingError
from core.generation import (
    GalleryPage,
    GallerySession,
    SessionGrant,
    SignInRefused,
    sniff_image_type,
)
from core.i18n import LANGUAGES, format_number, format_when, negotiate, rtl, t

log = logging.getLogger("imagebot.web.gallery")

HERE = Path(__file__).parent
GALLERY_COOKIE = "imagebot_gallery"
TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js"
# Telegram's own script is the one third-party origin: Telegram requires it in Mini Apps,
# and it cannot be served by imagebot. Everything else comes from 'self'.
TELEGRAM_ORIGIN = "https://telegram.org"
# Telegram Web shows Mini Apps in a frame; nothing else may frame a gallery page.
TELEGRAM_FRAMERS = "https://web.telegram.org"
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
STATIC = {
    "gallery.css": "text/css",
    "gallery.js": "text/javascript",
    "signin.js": "text/javascript",
    "miniapp.js": "text/javascript",
}
JOB = r"{job:[0-9a-f]{1,32}}"
INDEX = r"{index:[0-9]{1,3}}"
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")

SESSION_KEY = web.RequestKey("gallery_session", GallerySession)
MINI_APP_KEY = web.RequestKey("gallery_mini_app", bool)
LANGUAGE_KEY = web.RequestKey("gallery_language", str)
_FILE_PATHS = ("/gallery/thumb/", "/gallery/img/", "/gallery/download/")
"""Image responses: no page, so no language to look up (an error page among them speaks
the browser's language)."""


def browser_language(header: str, default: str) -> str:
    """The first shipped language of an ``Accept-Language`` header (by weight), else
    ``default``: the language of pages shown before anyone is signed in."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and tag != "*" and weight > 0:
            weighted.append((-weight, position, tag))
    for _w, _p, tag in sorted(weighted):
        found = negotiate(tag, LANGUAGES[0])
        if found == negotiate(tag, LANGUAGES[1]):  # the same either way: the bot has it
            return found
    return default


class SignInLimiter:
    """At most ``limit`` refused sign-ins per address within ``window`` seconds; past that,
    every sign-in from the address waits (a good link included) until the window moves."""

    def __init__(self, limit: int = 20, window: float = 300.0, max_addresses: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._seen: dict[str, deque[float]] = {}

    def _stamps(self, address: str, now: float) -> deque[float]:
        stamps = self._seen.get(address)
        if stamps is None:
            if len(self._seen) >= self.max_addresses:
                self._seen.clear()  # a flood of addresses: start again rather than grow
            stamps = self._seen[address] = deque()
        while stamps and now - stamps[0] > self.window:
            stamps.popleft()
        return stamps

    def retry_after(self, address: str) -> float:
        """0 when a sign-in from ``address`` may be tried now, else seconds to wait."""
        now = time.monotonic()
        stamps = self._stamps(address, now)
        if len(stamps) >= self.limit:
            return self.window - (now - stamps[0])
        return 0.0

    def refused(self, address: str) -> None:
        """Count a refused sign-in from ``address``."""
        self._stamps(address, time.monotonic()).append(time.monotonic())


def redirect(location: str, status: int = 303) -> web.Response:
    """A redirect to a path of our own."""
    return web.Response(status=status, headers={"Location": location})


def _csp(mini_app: bool) -> str:
    scripts = f"'self' {TELEGRAM_ORIGIN}" if mini_app else "'self'"
    framers = TELEGRAM_FRAMERS if mini_app else "'none'"
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'self'; "
        "img-src 'self'; "
        "connect-src 'self'; "
        "form-action 'self'; "
        "base-uri 'none'; "
        f"frame-ancestors {framers}"
    )


def install_gallery_routes(
    core: Core, app: web.Application, *, limiter: SignInLimiter | None = None
) -> None:
    """Mount the gallery under /gallery on imagebot's HTTP server."""
    access = core.gallery_access
    gallery = core.gallery
    limiter = limiter or SignInLimiter()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["urlq"] = lambda v: quote(str(v), safe="")
    public = urlsplit(access.public_url or "")
    public_origin = f"{public.scheme}://{public.netloc}"
    cookie_name = f"__Host-{GALLERY_COOKIE}" if access.secure else GALLERY_COOKIE

    def page(
        request: web.Request, template: str, status: int = 200, **context: Any
    ) -> web.Response:
        session = request.get(SESSION_KEY)
        mini_app = bool(context.pop("mini_app", False)) or (
            isinstance(session, GallerySession) and session.via == "miniapp"
        )
        request[MINI_APP_KEY] = mini_app
        lang = request.get(LANGUAGE_KEY) or browser_language(
            request.headers.get("Accept-Language", ""), core.users.default_language
        )

        def words(key: str, **args: Any) -> str:
            return t(key, lang, **args)

        html = env.get_template(template).render(
            session=session,
            mini_app=mini_app,
            telegram_script=TELEGRAM_SCRIPT,
            _=words,
            lang=lang,
            direction="rtl" if rtl(lang) else "ltr",
            when=lambda value: format_when(value, lang),
            number=lambda value: format_number(value, lang),
            **context,
        )
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def message(request: web.Request, status: int, kind: str) -> web.Response:
        return page(request, "message.html", status=status, kind=kind)

    @web.middleware
    async def _security_headers(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith("/gallery"):
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status in (404, 405):
                response = message(request, exc.status, "not_found")
            elif exc.status >= 400:
                response = message(request, exc.status, "error")
            else:
                response = web.Response(status=exc.status, headers=exc.headers)
        mini_app = bool(request.get(MINI_APP_KEY))
        headers = response.headers
        headers["Content-Security-Policy"] = _csp(mini_app)
        headers["X-Content-Type-Options"] = "nosniff"
        # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on
        # our own form posts, and the Origin check below needs the real one.
        headers["Referrer-Policy"] = "same-origin"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Cross-Origin-Resource-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
        if not mini_app:
            headers["X-Frame-Options"] = "DENY"
        headers.setdefault("Cache-Control", "no-store")
        return response

    app.middlewares.append(_security_headers)

    # --- helpers ------------------------------------------------------------------------

    async def current(request: web.Request) -> GallerySession | None:
        cookie = request.cookies.get(cookie_name, "")
        session = await access.session(cookie) if cookie else None
        if session is not None:
            request[SESSION_KEY] = session
            if not request.path.startswith(_FILE_PATHS):  # files need no words
                request[LANGUAGE_KEY] = await core.users.language_by_id(session.user_id)
        return session

    async def required(request: web.Request) -> GallerySession:
        session = await current(request)
        if session is None:
            raise _Stop(message(request, 401, "signed_out"))
        return session

    def same_origin(request: web.Request) -> bool:
        # Browsers send Origin on every POST; a foreign one is a cross-site request.
        fetch_site = request.headers.get("Sec-Fetch-Site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        own = f"{request.scheme}://{request.host}"
        return origin in (public_origin, own)

    async def checked_post(request: web.Request) -> tuple[GallerySession, Any]:
        session = await required(request)
        form = await request.post()
        token = str(form.get("csrf", ""))
        if not same_origin(request) or not hmac.compare_digest(token, session.csrf_token):
            raise _Stop(message(request, 403, "csrf"))
        return session, form

    def set_cookie(response: web.StreamResponse, grant: SessionGrant) -> None:
        response.set_cookie(
            cookie_name,
            grant.cookie,
            max_age=int(access.session_ttl.total_seconds()),
            path="/",
            secure=access.secure,
            httponly=True,
            samesite="Lax",
        )

    def limited(request: web.Request) -> web.Response | None:
        wait = limiter.retry_after(request.remote or "unknown")
        if wait <= 0:
            return None
        response = message(request, 429, "slow_down")
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response

    def ids(request: web.Request) -> tuple[str, int]:
        return request.match_info["job"], int(request.match_info["index"])

    # --- sign-in --------------------------------------------------------------------------

    async def sign_in_page(request: web.Request) -> web.StreamResponse:
        # A page, not the exchange: link previews and prefetchers that fetch the URL use
        # nothing up. The browser posts the token (signin.js does it at once).
        return page(request, "signin.html", token=request.match_info["token"])

    async def sign_in(request: web.Request) -> web.StreamResponse:
        if (stop := limited(request)) is not None:
            return stop
        form = await request.post()
        if not same_origin(request):
            return message(request, 403, "csrf")
        try:
            grant = await access.exchange_link(str(form.get("token", ""))[:1024])
        except SignInRefused:
            limiter.refused(request.remote or "unknown")
            return message(request, 403, "link_refused")
        response = redirect("/gallery/")
        set_cookie(response, grant)
        return response

    async def mini_app(request: web.Request) -> web.StreamResponse:
        return page(request, "miniapp.html", mini_app=True)

    async def mini_app_sign_in(request: web.Request) -> web.StreamResponse:
        request[MINI_APP_KEY] = True
        if (stop := limited(request)) is not None:
            return stop
        if not same_origin(request):
            return web.json_response({"ok": False}, status=403)
        form = await request.post()
        try:
            grant = await access.exchange_init_data(str(form.get("init_data", "")))
        except SignInRefused as exc:
            limiter.refused(request.remote or "unknown")
            if exc.code == SignInRefused.code:
                return web.json_response({"ok": False, "reason": "refused"}, status=403)
            return web.json_response({"ok": False, "reason": "unknown_user"}, status=400)
        response = web.json_response({"ok": True, "next": "/gallery/"})
        set_cookie(response, grant)
        return response

    async def sign_out(request: web.Request) -> web.StreamResponse:
        await checked_post(request)
        await access.sign_out(request.cookies.get(cookie_name, ""))
        response = message(request, 200, "signed_out_done")
        response.del_cookie(cookie_name, path="/")
        return response

    # --- browsing -------------------------------------------------------------------------

    def _page_number(request: web.Request) -> int:
        try:
            return max(1, min(int(request.query.get("page", "1")), 1_000_000))
        except ValueError:
            return 1

    def _listing(request: web.Request, result: GalleryPage) -> Callable[[int], str]:
        def query_string(n: int) -> str:
            return urlencode({"page": n, **({"q": result.query} if result.query else {})})

        return query_string

    async def _result(request: web.Request) -> GalleryPage:
        session = await required(request)
        return await gallery.page(
            session.user_id, _page_number(request), request.query.get("q", "")
        )

    async def grid(request: web.Request) -> web.StreamResponse:
        result = await _result(request)
        return page(
            request,
            "grid.html",
            result=result,
            deleted=request.query.get("deleted") == "1",
            query_string=_listing(request, result),
        )

    async def more(request: web.Request) -> web.StreamResponse:
        # The tiles of one further page, for infinite scroll; nothing past the last page.
        result = await _result(request)
        items = result.items if result.page == _page_number(request) else ()
        return page(
            request,
            "tiles.html",
            result=result,
            items=items,
            query_string=_listing(request, result),
        )

    async def detail(request: web.Request) -> web.StreamResponse:
        session = await required(request)
        job_id, index = ids(request)
        try:
            item = await gallery.item(session.user_id, job_id, index)
        except NotFound:
            return message(request, 404, "not_found")
        return page(request, "detail.html", item=item)

    async def image(request: web.Request, *, download: bool) -> web.StreamResponse:
        session = await required(request)
        job_id, index = ids(request)
        try:
            item, data = await gallery.original(session.user_id, job_id, index)
        except NotFound:
            return message(request, 404, "not_found")
        kind = sniff_image_type(data)
        if kind is None or kind != item.image.content_type or kind not in IMAGE_TYPES:
            log.warning("stored image type mismatch job=%s index=%s", job_id, index)
            return message(request, 404, "not_found")
        headers = {"Cache-Control": "private, max-age=3600"}
        if download:
            name = _SAFE_FILENAME.sub("-", f"imagebot-{job_id}-{index + 1}")
            headers["Content-Disposition"] = f'attachment; filename="{name}.{IMAGE_TYPES[kind]}"'
        else:
            headers["Content-Disposition"] = "inline"
        return web.Response(body=data, content_type=kind, headers=headers)

    async def original(request: web.Request) -> web.StreamResponse:
        return await image(request, download=False)

    async def download(request: web.Request) -> web.StreamResponse:
        return await image(request, download=True)

    async def thumbnail(request: web.Request) -> web.StreamResponse:
        session = await required(request)
        job_id, index = ids(request)
        try:
            kind, data = await gallery.thumbnail(session.user_id, job_id, index)
        except NotFound:
            return message(request, 404, "not_found")
        if sniff_image_type(data) != kind or kind not in IMAGE_TYPES:
            return message(request, 404, "not_found")
        return web.Response(
            body=data, content_type=kind, headers={"Cache-Control": "private, max-age=86400"}
        )

    async def confirm_delete(request: web.Request) -> web.StreamResponse:
        session = await required(request)
        job_id, index = ids(request)
        try:
            item = await gallery.item(session.user_id, job_id, index)
        except NotFound:
            return message(request, 404, "not_found")
        return page(request, "delete.html", item=item)

    async def delete(request: web.Request) -> web.StreamResponse:
        session, _ = await checked_post(request)
        job_id, _index = ids(request)
        try:
            await gallery.delete(session.user_id, job_id)
        except NotFound:
            return message(request, 404, "not_found")
        except UserFacingError:
            return message(request, 409, "not_yet")
        log.info("gallery delete user=%s job=%s", session.user_id, job_id)
        return redirect("/gallery/?deleted=1")

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:
            return message(request, 404, "not_found")
        return web.Response(
            body=(HERE / "static" / name).read_bytes(),
            content_type=STATIC[name],
            charset="utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def to_grid(_: web.Request) -> web.StreamResponse:
        return redirect("/gallery/", 302)

    def stoppable(
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except _Stop as stop:
                return stop.response

        return run

    routes = [
        ("GET", "/gallery", to_grid),
        ("GET", "/gallery/", grid),
        ("GET", "/gallery/more", more),
        ("GET", f"/gallery/i/{JOB}/{INDEX}", detail),
        ("GET", f"/gallery/img/{JOB}/{INDEX}", original),
        ("GET", f"/gallery/thumb/{JOB}/{INDEX}", thumbnail),
        ("GET", f"/gallery/download/{JOB}/{INDEX}", download),
        ("GET", f"/gallery/delete/{JOB}/{INDEX}", confirm_delete),
        ("POST", f"/gallery/delete/{JOB}/{INDEX}", delete),
        ("GET", "/gallery/signin/{token:[A-Za-z0-9_.=-]{1,1024}}", sign_in_page),
        ("POST", "/gallery/signin", sign_in),
        ("POST", "/gallery/signout", sign_out),
        ("GET", "/gallery/app", mini_app),
        ("POST", "/gallery/app/signin", mini_app_sign_in),
        ("GET", "/gallery/static/{name}", static),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, stoppable(handler))


class _Stop(Exception):
    """Ends a handler early with a ready response (signed out, CSRF refused)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__()
        self.response = response
