"""The gallery's safety without a browser (aiohttp client): forged, altered, expired and
reused sign-in links, Mini App initData, CSRF on every state change, the headers of every
page, another user's ids, rate limits on sign-in, and erasure ending every session."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from aiohttp import ClientSession
from sqlalchemy import func, select

from bot.web.gallery import SignInLimiter
from core.errors import NotFound
from core.generation import GalleryNotConfigured
from core.types import Conversation
from storage.database import Database
from storage.gallery.models import GallerySession, GallerySignIn
from storage.models import JobImage
from tests.e2e.gallery.conftest import BOT_TOKEN, Gallery, init_data, start_gallery
from tests.helpers import actor, make_core

DM = Conversation("test", "dm-1001", is_private=True)
MALLORY = actor("666", "Mallory")


async def post_token(client: ClientSession, g: Gallery, token: str) -> tuple[int, str]:
    async with client.post(
        f"{g.base_url}/gallery/signin", data={"token": token}, allow_redirects=False
    ) as r:
        return r.status, await r.text()


async def get(client: ClientSession, g: Gallery, path: str) -> tuple[int, str]:
    async with client.get(g.base_url + path, allow_redirects=False) as r:
        return r.status, await r.text(errors="replace")


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


async def test_sign_in_link_works_once_and_sets_a_strict_cookie(gallery: Gallery) -> None:
    await gallery.make(2)
    link = await gallery.link()
    assert link.startswith(f"{gallery.base_url}/gallery/signin/")
    first = gallery.browser()
    # Opening the link is a page that posts the token: fetching it uses nothing up.
    status, html = await get(first, gallery, link[len(gallery.base_url) :])
    assert status == 200 and 'action="/gallery/signin"' in html
    async with first.post(
        f"{gallery.base_url}/gallery/signin", data={"token": token_of(link)}, allow_redirects=False
    ) as r:
        assert r.status == 303 and r.headers["Location"] == "/gallery/"
        cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # the public URL is http here
    status, html = await get(first, gallery, "/gallery/")
    assert status == 200 and html.count('class="tile"') == 2
    # The same link again, from another browser (a forwarded link): refused.
    second = gallery.browser()
    status, html = await post_token(second, gallery, token_of(link))
    assert status == 403 and 'data-kind="link_refused"' in html
    assert (await get(second, gallery, "/gallery/"))[0] == 401
    # And from the first browser too: a link is good for one sign-in, whoever uses it.
    assert (await post_token(gallery.browser(), gallery, token_of(link)))[0] == 403


async def test_forged_altered_and_expired_links_are_refused(gallery: Gallery) -> None:
    await gallery.make(1)
    await gallery.make(1, MALLORY)
    link = token_of(await gallery.link())
    encoded, signature = link.split(".")
    payload = base64.urlsafe_b64decode(encoded + "==").decode()
    user_id, nonce, expires = payload.split(":")
    forged = [
        f"{encoded}.{'0' * 64}",  # a made-up signature
        f"{encoded}.{signature[:-1]}{'0' if signature[-1] != '0' else '1'}",
        # Another user id, or a later expiry, under the original signature.
        base64.urlsafe_b64encode(f"{int(user_id) + 1}:{nonce}:{expires}".encode()).decode()
        + f".{signature}",
        base64.urlsafe_b64encode(f"{user_id}:{nonce}:{int(expires) + 3600}".encode()).decode()
        + f".{signature}",
        "garbage",
        "",
        "a" * 1000,
    ]
    client = gallery.browser()
    for token in forged:
        status, _ = await post_token(client, gallery, token)
        assert status == 403, token
    assert not client.cookie_jar.filter_cookies(gallery.base_url)  # type: ignore[arg-type]
    # The untouched link still works (nothing above used it up) ...
    assert (await post_token(client, gallery, link))[0] == 303
    # ... but an expired one does not.
    late = token_of(await gallery.link())
    gallery.clock.advance(minutes=16)
    assert (await post_token(gallery.browser(), gallery, late))[0] == 403


async def test_every_state_change_needs_the_csrf_token(gallery: Gallery) -> None:
    [job] = await gallery.make(1)
    client = await gallery.signed_in()
    status, html = await get(client, gallery, f"/gallery/delete/{job}/0")
    assert status == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    url = f"{gallery.base_url}/gallery/delete/{job}/0"
    for data, headers in [
        ({}, {}),
        ({"csrf": "wrong"}, {}),
        ({"csrf": csrf.group(1)[:-1]}, {}),
        ({"csrf": csrf.group(1)}, {"Origin": "https://evil.example"}),
        ({"csrf": csrf.group(1)}, {"Origin": "null"}),
    ]:
        async with client.post(url, data=data, headers=headers, allow_redirects=False) as r:
            assert r.status == 403, (data, headers)
            assert 'data-kind="csrf"' in await r.text()
    assert (await get(client, gallery, f"/gallery/i/{job}/0"))[0] == 200
    # Sign-out is a state change too.
    async with client.post(f"{gallery.base_url}/gallery/signout", data={}) as r:
        assert r.status == 403
    # Another session's token does not fit this session.
    other = await gallery.signed_in()
    _, other_html = await get(other, gallery, f"/gallery/delete/{job}/0")
    other_csrf = re.search(r'name="csrf" value="([^"]+)"', other_html)
    assert other_csrf is not None and other_csrf.group(1) != csrf.group(1)
    async with client.post(url, data={"csrf": other_csrf.group(1)}, allow_redirects=False) as r:
        assert r.status == 403
    # With its own token, from its own origin: deleted, through the chat's path.
    async with client.post(
        url,
        data={"csrf": csrf.group(1)},
        headers={"Origin": gallery.base_url},
        allow_redirects=False,
    ) as r:
        assert r.status == 303 and r.headers["Location"] == "/gallery/?deleted=1"
    assert (await gallery.core.history.page(actor())).total == 0
    assert (await get(client, gallery, f"/gallery/i/{job}/0"))[0] == 404


async def test_another_users_ids_are_not_found(gallery: Gallery) -> None:
    [mine] = await gallery.make(1)
    [theirs] = await gallery.make(1, MALLORY)
    client = await gallery.signed_in()
    for path in ("i", "img", "thumb", "download", "delete"):
        assert (await get(client, gallery, f"/gallery/{path}/{mine}/0"))[0] == 200, path
        status, html = await get(client, gallery, f"/gallery/{path}/{theirs}/0")
        assert status == 404 and 'data-kind="not_found"' in html, path
        assert (await get(client, gallery, f"/gallery/{path}/{mine}/7"))[0] == 404
        assert (await get(client, gallery, f"/gallery/{path}/ffffffffffffffff/0"))[0] == 404
    _, html = await get(client, gallery, f"/gallery/delete/{mine}/0")
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    async with client.post(
        f"{gallery.base_url}/gallery/delete/{theirs}/0", data={"csrf": csrf.group(1)}
    ) as r:
        assert r.status == 404
    assert (await gallery.core.history.page(MALLORY)).total == 1
    owner = await gallery.core.credits.user_for(actor())
    assert owner is not None
    with pytest.raises(NotFound):
        await gallery.core.gallery.item(owner, theirs, 0)


async def test_headers_on_every_page(gallery: Gallery) -> None:
    [job] = await gallery.make(1)
    anonymous = gallery.browser()
    client = await gallery.signed_in()
    pages = [
        (client, "/gallery/", 200),
        (client, "/gallery/?q=fox&page=99", 200),
        (client, "/gallery/more?page=2", 200),
        (client, f"/gallery/i/{job}/0", 200),
        (client, f"/gallery/img/{job}/0", 200),
        (client, f"/gallery/thumb/{job}/0", 200),
        (client, f"/gallery/download/{job}/0", 200),
        (client, f"/gallery/delete/{job}/0", 200),
        (client, "/gallery/static/gallery.css", 200),
        (client, "/gallery/static/gallery.js", 200),
        (client, "/gallery/i/zzz/0", 404),
        (client, "/gallery/nothing-here", 404),
        (anonymous, "/gallery/", 401),
        (anonymous, f"/gallery/img/{job}/0", 401),
        (anonymous, "/gallery/signin/abc.def", 200),
        (anonymous, "/gallery/app", 200),
    ]
    for who, path, expected in pages:
        async with who.get(gallery.base_url + path, allow_redirects=False) as r:
            assert r.status == expected, path
            csp = r.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "unsafe-inline" not in csp, path
            assert "unsafe-eval" not in csp and "base-uri 'none'" in csp, path
            assert r.headers["X-Content-Type-Options"] == "nosniff", path
            assert r.headers["Referrer-Policy"] == "same-origin", path
            body = await r.read()
            if path == "/gallery/app":
                # The one third-party origin: Telegram's Mini App script, on the Mini App.
                assert "script-src 'self' https://telegram.org;" in csp
                assert "frame-ancestors https://web.telegram.org" in csp
            else:
                assert "script-src 'self';" in csp and "telegram.org" not in csp, path
                assert "frame-ancestors 'none'" in csp and r.headers["X-Frame-Options"] == "DENY"
            if r.content_type == "text/html":
                assert r.headers["Cache-Control"] == "no-store", path
                # No inline script or style anywhere: every script has a src.
                assert re.search(rb"<script(?![^>]*\bsrc=)", body) is None, path
                assert b"<style" not in body and b" style=" not in body and b"onclick" not in body
    # Images go out with their checked type; downloads as attachments.
    async with client.get(f"{gallery.base_url}/gallery/download/{job}/0") as r:
        assert r.content_type == "image/png"
        assert r.headers["Content-Disposition"] == f'attachment; filename="imagebot-{job}-1.png"'
        _, stored = await gallery.core.history.download(actor(), job)
        assert await r.read() == stored
    async with client.get(f"{gallery.base_url}/gallery/img/{job}/0") as r:
        assert r.content_type == "image/png" and r.headers["Content-Disposition"] == "inline"


async def test_no_directory_listing_and_only_listed_static_files(gallery: Gallery) -> None:
    client = await gallery.signed_in()
    for path in (
        "/gallery/static/",
        "/gallery/static/routes.py",
        "/gallery/static/..%2Froutes.py",
        "/gallery/static/../templates/base.html",
        "/gallery/templates/base.html",
    ):
        status, body = await get(client, gallery, path)
        assert status == 404, path
        assert "Index of" not in body and "import" not in body


async def test_sign_in_is_rate_limited(database: Database, tmp_path: Path) -> None:
    g, runner = await start_gallery(database, tmp_path, limiter=SignInLimiter(limit=5, window=60))
    try:
        client = g.browser()
        statuses = [(await post_token(client, g, "forged.0"))[0] for _ in range(6)]
        assert statuses == [403] * 5 + [429]
        async with client.post(f"{g.base_url}/gallery/signin", data={"token": "x"}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        # A good link is refused too while the address is over its limit.
        status, _ = await post_token(client, g, token_of(await g.link()))
        assert status == 429
        async with client.post(
            f"{g.base_url}/gallery/app/signin", data={"init_data": init_data(1)}
        ) as r:
            assert r.status == 429
    finally:
        for c in g.clients:
            await c.close()
        await runner.cleanup()
        await g.core.aclose()


async def test_mini_app_signs_in_with_valid_init_data_only(gallery: Gallery) -> None:
    tg = actor("424242", "Tele")
    tg = type(tg)("telegram", "424242", "Tele", "en")
    await gallery.make(3, tg)
    url = f"{gallery.base_url}/gallery/app/signin"
    now = int(gallery.clock.now().timestamp())
    refused = [
        init_data(424242, forge=True),
        init_data(424242, token="654321:ANOTHER-bot-token_abcdefghijklmnopqr"),
        init_data(424242, auth_date=now - 86400 - 60),  # older than a day
        init_data(424242, auth_date=now + 3600),  # from the future
        init_data(424242) + "&auth_date=1",  # a repeated field
        init_data(424242).replace("424242", "424243"),  # another user, same hash
        "",
        "hash=abc",
        "x" * 9000,
    ]
    for body in refused:
        client = gallery.browser()
        async with client.post(url, data={"init_data": body}) as r:
            assert r.status == 403, body[:80]
            assert not r.headers.getall("Set-Cookie", [])
        assert (await get(client, gallery, "/gallery/"))[0] == 401
    # Someone who never used the bot gets no session (and no account is made).
    async with gallery.browser().post(url, data={"init_data": init_data(777)}) as r:
        assert r.status == 400
    client = gallery.browser()
    async with client.post(url, data={"init_data": init_data(424242)}) as r:
        assert r.status == 200 and (await r.json()) == {"ok": True, "next": "/gallery/"}
        assert "HttpOnly" in r.headers["Set-Cookie"]
    async with client.get(f"{gallery.base_url}/gallery/") as r:
        html = await r.text()
        assert html.count('class="tile"') == 3
        # Pages of a Mini App session may load Telegram's script, and be framed by Telegram.
        assert "https://telegram.org" in r.headers["Content-Security-Policy"]
        assert "X-Frame-Options" not in r.headers
    # A foreign origin cannot sign someone in (login CSRF).
    async with gallery.browser().post(
        url, data={"init_data": init_data(424242)}, headers={"Origin": "https://evil.example"}
    ) as r:
        assert r.status == 403


async def test_P08_erasure_ends_every_session_and_link(gallery: Gallery) -> None:
    await gallery.make(2)
    client = await gallery.signed_in()
    unused = token_of(await gallery.link())
    assert (await get(client, gallery, "/gallery/"))[0] == 200
    await gallery.core.privacy.erase(actor(), DM)
    assert (await get(client, gallery, "/gallery/"))[0] == 401
    assert (await post_token(gallery.browser(), gallery, unused))[0] == 403
    async with gallery.db.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(GallerySession))).scalar() == 0
        assert (await conn.execute(select(func.count()).select_from(GallerySignIn))).scalar() == 0


async def test_P07_sessions_are_in_the_export_as_hashes_only(
    gallery: Gallery, tmp_path: Path
) -> None:
    import io
    import json
    import zipfile

    await gallery.make(1)
    client = await gallery.signed_in()
    cookie = next(iter(client.cookie_jar)).value
    result = await gallery.core.privacy.export(actor(), DM)
    with zipfile.ZipFile(io.BytesIO(Path(result.absolute_path).read_bytes())) as zf:
        sessions = json.loads(zf.read("gallery_sessions.json"))
        sign_ins = json.loads(zf.read("gallery_sign_ins.json"))
        everything = b"".join(zf.read(n) for n in zf.namelist())
    assert len(sessions) == 1 and sessions[0]["via"] == "link" and len(sign_ins) == 1
    assert cookie.encode() not in everything


async def test_thumbnails_are_made_once_beside_the_original_and_go_with_it(
    gallery: Gallery,
) -> None:
    [job] = await gallery.make(1, size="1024x1536")
    client = await gallery.signed_in()
    async with client.get(f"{gallery.base_url}/gallery/thumb/{job}/0") as r:
        assert r.status == 200 and r.content_type == "image/webp"
        first = await r.read()
    async with client.get(f"{gallery.base_url}/gallery/thumb/{job}/0") as r:
        assert await r.read() == first
    async with gallery.db.engine.connect() as conn:
        rows = (
            await conn.execute(select(JobImage.path, JobImage.role).where(JobImage.job_id == job))
        ).all()
    paths = {role: path for path, role in rows}
    assert set(paths) == {"output", "thumb"}
    assert paths["thumb"].rsplit("/", 1)[0] == paths["output"].rsplit("/", 1)[0]
    from PIL import Image

    with Image.open(__import__("io").BytesIO(first)) as im:
        assert max(im.size) <= 512 and im.size[0] < im.size[1]
    files = gallery.core.files
    assert Path(files.absolute(paths["thumb"])).exists()
    # A reroll sends the reference images again, never the thumbnail.
    view = (await gallery.core.history.page(actor())).items[0]
    assert view.inputs == ()
    # Deleting in the chat removes the thumbnail too.
    await gallery.core.history.delete(actor(), job)
    assert not Path(files.absolute(paths["thumb"])).exists()
    assert not Path(files.absolute(paths["output"])).exists()


async def test_filter_and_pages(gallery: Gallery) -> None:
    await gallery.make(3, prompt="a lighthouse at dusk")
    await gallery.make(2, prompt="a Red Fox in snow")
    client = await gallery.signed_in()
    owner = await gallery.core.credits.user_for(actor())
    assert owner is not None
    result = await gallery.core.gallery.page(owner, query="RED fox")
    assert result.total == 2 and all("Fox" in i.prompt for i in result.items)
    _, html = await get(client, gallery, "/gallery/?q=lighthouse")
    assert html.count('class="tile"') == 3
    _, html = await get(client, gallery, "/gallery/?q=%3Cscript%3E")
    assert html.count('class="tile"') == 0 and "<script>" not in html
    gallery.core.gallery.page_size = 2
    first = await gallery.core.gallery.page(owner)
    assert [len(first.items), first.pages, first.total] == [2, 3, 5]
    assert first.items[0].created_at >= first.items[1].created_at  # newest first
    _, html = await get(client, gallery, "/gallery/more?page=3")
    assert html.count('class="tile"') == 1
    _, html = await get(client, gallery, "/gallery/more?page=4")
    assert html.count('class="tile"') == 0


async def test_without_a_public_url_there_is_no_gallery(database: Database, tmp_path: Path) -> None:
    from aiohttp import web

    from bot.web.server import build_http_app

    core, _ = await make_core(database, tmp_path, public_url=None, telegram_token=BOT_TOKEN)
    try:
        assert not core.gallery_access.enabled
        with pytest.raises(GalleryNotConfigured) as info:
            await core.gallery_access.sign_in_link(actor())
        assert "IMAGEBOT_PUBLIC_URL" in info.value.user_message
        app = build_http_app(core)
        paths = {r.resource.canonical for r in app.router.routes() if r.resource}
        assert not any(p.startswith("/gallery") for p in paths)
        assert isinstance(app, web.Application)
    finally:
        await core.aclose()


async def test_secure_cookie_when_the_public_url_is_https(
    database: Database, tmp_path: Path
) -> None:
    from aiohttp import web

    from bot.web.gallery import install_gallery_routes
    from tests.e2e.gallery.conftest import free_port

    core, _ = await make_core(database, tmp_path, public_url="https://bot.example.net")
    port = free_port()
    app = web.Application()
    install_gallery_routes(core, app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        token = (await core.gallery_access.sign_in_link(actor())).rsplit("/", 1)[1]
        async with (
            ClientSession() as client,
            client.post(
                f"http://127.0.0.1:{port}/gallery/signin",
                data={"token": token},
                allow_redirects=False,
            ) as r,
        ):
            cookie = r.headers["Set-Cookie"]
        assert cookie.startswith("__Host-imagebot_gallery=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        await runner.cleanup()
        await core.aclose()


async def test_double_clicks_and_concurrent_thumbnails(gallery: Gallery) -> None:
    import asyncio

    [job] = await gallery.make(1)
    client = await gallery.signed_in()
    urls = [f"{gallery.base_url}/gallery/thumb/{job}/0"] * 6

    async def fetch(url: str) -> bytes:
        async with client.get(url) as r:
            assert r.status == 200
            return await r.read()

    bodies = await asyncio.gather(*(fetch(u) for u in urls))
    assert len(set(bodies)) == 1
    async with gallery.db.engine.connect() as conn:
        thumbs = (
            await conn.execute(
                select(func.count()).where(JobImage.job_id == job, JobImage.role == "thumb")
            )
        ).scalar()
    assert thumbs == 1
    _, html = await get(client, gallery, f"/gallery/delete/{job}/0")
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    url = f"{gallery.base_url}/gallery/delete/{job}/0"

    async def press() -> int:
        async with client.post(url, data={"csrf": csrf.group(1)}, allow_redirects=False) as r:
            return r.status

    statuses = sorted(await asyncio.gather(press(), press()))
    assert statuses in ([303, 404], [303, 303])
    assert await press() == 404
    assert (await gallery.core.history.page(actor())).total == 0
    owner = await gallery.core.credits.user_for(actor())
    assert owner is not None
    assert [p for p in gallery.core.files.user_files(owner) if "/jobs/" in p] == []


async def test_hostile_query_values(gallery: Gallery) -> None:
    await gallery.make(2)
    client = await gallery.signed_in()
    for path in (
        "/gallery/?page=-5",
        "/gallery/?page=99999999999999999999",
        "/gallery/?page=abc",
        "/gallery/?q=" + "%F0%9F%A6%8A" * 500,
        "/gallery/?q=%00%01%02",
        "/gallery/more?page=0",
    ):
        status, _ = await get(client, gallery, path)
        assert status == 200, path
    assert (await get(client, gallery, "/gallery/i/" + "a" * 40 + "/0"))[0] == 404
    assert (await get(client, gallery, "/gallery/i/abc/99999"))[0] == 404
