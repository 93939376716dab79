"""The gallery in its user's language (aiohttp client against the running gallery): the
stored ``/settings language`` choice, else the platform language stored with the account,
else ``IMAGEBOT_DEFAULT_LANGUAGE``; pages before sign-in follow the browser's
``Accept-Language``. ``<html lang dir>`` is set (right to left for Arabic) and dates and
numbers are written as the locale writes them."""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientSession

from bot.web.gallery.routes import browser_language
from core.i18n import format_when
from core.types import Actor
from storage.database import Database
from tests.e2e.gallery.conftest import Gallery, start_gallery

LAYLA = Actor("test", "7001", display_name="Layla", locale="ar")
ANA = Actor("test", "7002", display_name="Ana", locale="en")


async def get(client: ClientSession, g: Gallery, path: str, **headers: str) -> tuple[int, str]:
    async with client.get(g.base_url + path, allow_redirects=False, headers=headers) as r:
        return r.status, await r.text()


async def test_an_arabic_user_sees_the_gallery_in_arabic_right_to_left(gallery: Gallery) -> None:
    ids = await gallery.make(2, who=LAYLA)
    client = await gallery.signed_in(LAYLA)
    status, html = await get(client, gallery, "/gallery/")
    assert status == 200
    assert '<html lang="ar" dir="rtl">' in html
    assert "تسجيل الخروج" in html and "الأحدث أولًا" in html and "معرضك" in html
    assert "Sign out" not in html and "newest first" not in html
    status, html = await get(client, gallery, f"/gallery/i/{ids[0]}/0")
    assert status == 200 and "النموذج" in html and "نزّل الأصل" in html
    item = await gallery.core.gallery.item(
        (await gallery.core.credits.user_for(LAYLA)) or 0, ids[0], 0
    )
    assert format_when(item.created_at, "ar") in html  # Babel's Arabic date
    assert f">{item.created_at:%Y-%m-%d}" not in html  # not the ISO date any more
    status, html = await get(client, gallery, f"/gallery/i/{'f' * 32}/0")
    assert status == 404 and "لا توجد صورة كهذه في معرضك." in html


async def test_the_stored_language_choice_wins_over_the_platform_language(
    gallery: Gallery,
) -> None:
    await gallery.make(1, who=ANA)
    await gallery.core.users.set_language(ANA, "es")
    client = await gallery.signed_in(ANA)
    status, html = await get(client, gallery, "/gallery/", **{"Accept-Language": "de"})
    assert status == 200 and '<html lang="es" dir="ltr">' in html
    assert "Cerrar sesión" in html and "1 imagen, las más recientes primero" in html
    status, html = await get(client, gallery, "/gallery/?q=zzz")
    assert "Ninguna imagen tiene una descripción" in html
    await gallery.core.users.set_language(ANA, "default")
    status, html = await get(client, gallery, "/gallery/")
    assert '<html lang="en" dir="ltr">' in html and "1 image, newest first" in html


async def test_pages_before_sign_in_follow_the_browser_then_the_default(
    database: Database, tmp_path: Path
) -> None:
    g, runner = await start_gallery(database, tmp_path, default_language="uk")
    try:
        client = g.browser()
        status, html = await get(
            client, g, "/gallery/", **{"Accept-Language": "zz, fr-CH;q=0.9, en;q=0.8"}
        )
        assert status == 401 and '<html lang="fr" dir="ltr">' in html
        assert "Connectez-vous depuis le chat" in html
        status, html = await get(client, g, "/gallery/", **{"Accept-Language": "xx-YY"})
        assert '<html lang="uk" dir="ltr">' in html and "Увійдіть із чату" in html
    finally:
        for client in g.clients:
            await client.close()
        await runner.cleanup()


def test_accept_language_is_read_by_weight_and_hostile_headers_fall_back() -> None:
    assert browser_language("de;q=0.5, es-419;q=0.9", "en") == "es"
    assert browser_language("pt-BR,pt;q=0.9", "en") == "pt-BR"
    assert browser_language("*;q=1, ar;q=0", "id") == "id"
    assert browser_language("ru;q=abc, tr", "en") == "tr"
    assert browser_language("x" * 100_000, "en") == "en"
    assert browser_language(",;;,q=,", "de") == "de"
