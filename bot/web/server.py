"""imagebot's own HTTP server: /healthz, /readyz, /metrics, export downloads, file
downloads under signed links, the private web gallery (when IMAGEBOT_PUBLIC_URL is set),
and the webhook routes that adapters and payments mount."""

from __future__ import annotations

import asyncio
import html
import logging

from aiohttp import web

from bot.metrics import PrometheusMetrics
from core.app import Core
from core.files import LinkRefused
from core.i18n import negotiate, t

log = logging.getLogger("imagebot.web")

_LINK_REFUSED = {
    "invalid": "tg.link_invalid",
    "expired": "tg.web.link_expired",
    "gone": "tg.web.file_gone",
}
"""What a browser shows for a refused download link (catalog keys, in the browser's
language)."""


def refusal_page(text: str, lang: str) -> str:
    """A small page telling a browser why a download was refused (already translated)."""
    body = html.escape(text)
    return (
        f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{body}</title></head><body><p>{body}</p></body></html>"
    )


def browser_language(request: web.Request, default: str) -> str:
    """The shipped language a browser asks for first (``Accept-Language``), else
    ``default``."""
    header = request.headers.get("Accept-Language", "")
    for part in header.split(",")[:10]:
        tag = part.split(";", 1)[0].strip()
        if tag and tag != "*":
            lang = negotiate(tag)  # English for a language the bot lacks: try the next
            if lang != "en" or tag.lower().replace("_", "-").split("-")[0] == "en":
                return lang
    return negotiate(default)


_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "zip": "application/zip",
}


def build_http_app(core: Core) -> web.Application:
    """The aiohttp application with the health endpoints; adapters and payments add their
    routes (webhooks) before it starts."""
    app = web.Application(client_max_size=2 * 1024 * 1024)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        checks: dict[str, str] = {}
        for name, check in core.readiness.items():
            try:
                problem = await asyncio.wait_for(check(), timeout=5)
            except Exception as exc:  # a check that cannot run is a failed check
                problem = f"check failed ({type(exc).__name__})"
            checks[name] = problem or "ok"
        ready = all(v == "ok" for v in checks.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    async def metrics(_: web.Request) -> web.Response:
        exporter = core.metrics
        if not isinstance(exporter, PrometheusMetrics):
            return web.Response(status=404)
        return web.Response(body=exporter.render(), headers={"Content-Type": exporter.content_type})

    def refusal(request: web.Request, status: int, key: str) -> web.Response:
        lang = browser_language(request, core.users.default_language)
        return web.Response(
            status=status,
            text=refusal_page(t(key, lang), lang),
            content_type="text/html",
            headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
        )

    async def old_export_link(request: web.Request) -> web.Response:
        # Export links made before exports moved to /files/ (one signing scheme): they
        # lived 24 hours; a person holding one is told to ask again.
        return refusal(request, 410, "tg.export_link_expired")

    async def file_download(request: web.Request) -> web.StreamResponse:
        # Stored files under a signed, expiring link: streamed, decrypted segment by
        # segment on the way when the store holds ciphertext; never a listing, never
        # another user's file.
        links = core.downloads
        if links is None:
            return web.Response(status=404)
        try:
            path, filename = await links.open(request.match_info["token"])
        except LinkRefused as refused:
            status = 403 if refused.reason == "invalid" else 410
            return refusal(request, status, _LINK_REFUSED[refused.reason])
        try:
            opened = await core.files.open(path)
        except FileNotFoundError:
            return refusal(request, 410, _LINK_REFUSED["gone"])
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in filename)[:120]
        response = web.StreamResponse(
            headers={
                "Content-Type": _TYPES.get(path.rsplit(".", 1)[-1], "application/octet-stream"),
                "Content-Disposition": f'attachment; filename="{safe or "download"}"',
                "Cache-Control": "private, no-store",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
            }
        )
        if opened.size is not None:
            response.content_length = opened.size
        chunks = opened.chunks
        if request.method == "HEAD":  # the headers only: a body would break the connection
            await chunks.aclose()
            await response.prepare(request)
            await response.write_eof()
            return response
        try:
            # The first chunk before the headers: a file that cannot be read (a wrong
            # key, a damaged header) is an error page, not a broken download.
            first = await anext(chunks, b"")
        except Exception:
            await chunks.aclose()
            log.exception("download failed before its first byte path_user=%s", path.split("/")[1])
            return refusal(request, 410, _LINK_REFUSED["gone"])
        await response.prepare(request)
        try:
            if first:
                await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
        except ConnectionError:
            return response  # the browser went away: nothing to finish
        except Exception:
            # Authentication failed mid-way (a truncated or altered object): stop at
            # once; the client sees a short body against its Content-Length, never
            # unauthenticated bytes.
            log.exception("download aborted path_user=%s", path.split("/")[1])
            if request.transport is not None:
                request.transport.close()
            return response
        finally:
            await chunks.aclose()
        await response.write_eof()
        return response

    app.router.add_get("/exports/{token}", old_export_link)
    app.router.add_get("/files/{token}", file_download)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if core.gallery_access.enabled:
        from bot.web.gallery import install_gallery_routes

        install_gallery_routes(core, app)
    if core.billing.gateway is not None:
        from payments.stripe.webhook import install_stripe_routes

        install_stripe_routes(core, app)
    return app


async def start_http(core: Core, app: web.Application | None = None) -> web.AppRunner:
    """Serve ``app`` on IMAGEBOT_HTTP_HOST:IMAGEBOT_HTTP_PORT; returns the runner."""
    runner = web.AppRunner(app or build_http_app(core), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, core.settings.http_host, core.settings.http_port)
    await site.start()
    return runner
