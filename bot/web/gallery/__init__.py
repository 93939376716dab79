"""The private web gallery: thin aiohttp routes over ``core.gallery`` and
``core.gallery_access`` (issue 16). Mounted by :func:`bot.web.server.build_http_app` when
IMAGEBOT_PUBLIC_URL is set."""

from bot.web.gallery.routes import GALLERY_COOKIE, SignInLimiter, install_gallery_routes

__all__ = ["GALLERY_COOKIE", "SignInLimiter", "install_gallery_routes"]
