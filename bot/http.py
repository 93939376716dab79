"""imagebot's own HTTP server: health now; webhooks and metrics mount here too."""

from __future__ import annotations

from aiohttp import web

from core.app import Core
from core.errors import UserFacingError


def build_http_app(core: Core) -> web.Application:
    """The aiohttp application with the health endpoints; adapters and payments add their
    routes (webhooks) before it starts."""
    app = web.Application(client_max_size=2 * 1024 * 1024)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        try:
            await core.credits.balance(0)
        except Exception:
            return web.json_response({"status": "database unreachable"}, status=503)
        return web.json_response({"status": "ready"})

    async def export_download(request: web.Request) -> web.Response:
        try:
            name, data = await core.privacy.open_export_link(request.match_info["token"])
        except UserFacingError as exc:
            return web.Response(status=403, text=exc.user_message)
        return web.Response(
            body=data,
            content_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
        )

    app.router.add_get("/exports/{token}", export_download)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_http(core: Core, app: web.Application | None = None) -> web.AppRunner:
    """Serve ``app`` on IMAGEBOT_HTTP_HOST:IMAGEBOT_HTTP_PORT; returns the runner."""
    runner = web.AppRunner(app or build_http_app(core), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, core.settings.http_host, core.settings.http_port)
    await site.start()
    return runner
