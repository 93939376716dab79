"""Download links for stored files (P23 full-resolution downloads, P07 exports): a
presigned URL from an S3 store holding plain objects; otherwise imagebot's HTTP server
streams the file, decrypted, under a signed link bound to the user and the path, until it
expires. Forged, altered, expired and foreign links get nothing."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.web.server import build_http_app
from core.clock import ManualClock
from core.crypto import STREAM_MAGIC
from storage.database import Database
from tests.helpers import actor, make_core, request

KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
UNSIGNED = b'[1,"users/1/jobs/x/output-0.png","x.png",9999999999]'


async def made_image(core: Any, notes: Any, who: str) -> tuple[int, str, bytes]:
    sub = await core.generation.submit(request(actor(who, f"user {who}"), "a fox"))
    await core.worker.run_until_idle()
    await notes.wait_final(sub.job.id)
    user_id = await core.credits.user_for(actor(who, f"user {who}"))
    path = next(p for p in await core.files.list_user(user_id) if "/output-" in p)
    return user_id, path, await core.files.read(path)


@pytest.mark.parametrize("store", ["local", "s3"])
async def test_P23_signed_link_streams_the_decrypted_file_and_refuses_tampering(
    database: Database, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    extra = request.getfixturevalue("s3_settings") if store == "s3" else {}
    clock = ManualClock()
    server: TestServer | None = None
    core, notes = await make_core(database, tmp_path, clock=clock, encryption_key=KEY, **extra)
    try:
        server = TestServer(build_http_app(core))
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        core.downloads.public_url = base  # type: ignore[union-attr]
        links = core.downloads
        assert links is not None
        user_id, path, picture = await made_image(core, notes, "1001")
        assert picture.startswith(b"\x89PNG")
        link = await links.link(user_id, path, filename="fox.png")
        assert link is not None and link.startswith(f"{base}/files/")  # ciphertext: via us
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as resp:
                assert resp.status == 200
                assert await resp.read() == picture
                assert resp.headers["Content-Type"] == "image/png"
                assert 'filename="fox.png"' in resp.headers["Content-Disposition"]
                assert resp.headers["Cache-Control"] == "private, no-store"
                assert resp.headers["Content-Length"] == str(len(picture))
            async with http.head(link) as resp:  # a HEAD: the headers, no body
                assert resp.status == 200
                assert resp.headers["Content-Length"] == str(len(picture))
            token = link.rsplit("/", 1)[1]
            encoded, signature = token.split(".")
            forged = [
                f"{encoded}.{'0' * len(signature)}",  # a made-up signature
                f"{encoded[:-2]}AA.{signature}",  # an altered payload
                "not-a-token",
                base64.urlsafe_b64encode(UNSIGNED).decode() + ".x",  # unsigned
            ]
            for bad in forged:
                async with http.get(f"{base}/files/{bad}") as resp:
                    assert resp.status == 403
                    assert STREAM_MAGIC not in await resp.read()
            # Another user's file is never linked for this user.
            other_id, other_path, _ = await made_image(core, notes, "2002")
            with pytest.raises(ValueError):
                await links.link(user_id, other_path, filename="x.png")
            # A file deleted since the link was made is gone, not an error page.
            second = await links.link(other_id, other_path, filename="cat.png")
            await core.files.delete(other_path)
            assert second is not None
            async with http.get(second) as resp:
                assert resp.status == 410
            # Expired links are refused.
            clock.advance(seconds=core.settings.download_link_seconds + 1)
            async with http.get(link) as resp:
                assert resp.status == 410
                assert "expired" in await resp.text()
    finally:
        if server is not None:
            await server.close()
        await core.aclose()


async def test_P23_plain_objects_in_s3_get_a_presigned_url(
    database: Database, tmp_path: Path, s3_settings: dict[str, Any]
) -> None:
    core, notes = await make_core(database, tmp_path, **s3_settings)
    try:
        assert core.downloads is not None
        user_id, path, picture = await made_image(core, notes, "1001")
        link = await core.downloads.link(user_id, path, filename="fox.png")
        assert link is not None and link.startswith(s3_settings["s3_endpoint_url"])
        assert "X-Amz-Signature=" in link
        assert f"X-Amz-Expires={core.settings.download_link_seconds}" in link
        async with aiohttp.ClientSession() as http, http.get(link) as resp:
            assert resp.status == 200 and await resp.read() == picture
    finally:
        await core.aclose()


async def test_no_public_address_and_a_local_store_means_no_link(
    sqlite_only: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(sqlite_only, tmp_path)
    try:
        assert core.downloads is not None
        user_id, path, _ = await made_image(core, notes, "1001")
        assert await core.downloads.link(user_id, path, filename="fox.png") is None
    finally:
        await core.aclose()


async def test_P18_a_damaged_object_is_never_served_past_its_damage(
    sqlite_only: Database, tmp_path: Path
) -> None:
    """Damage in the header: a kind error page, not a download. Damage further in: the
    authenticated segments before it are sent, then the connection is cut short of its
    Content-Length, so the browser reports a failed download; the damaged segment's
    bytes never leave."""
    core, _ = await make_core(sqlite_only, tmp_path, encryption_key=KEY)
    server = TestServer(build_http_app(core))
    try:
        await server.start_server()
        links = core.downloads
        assert links is not None
        links.public_url = str(server.make_url("")).rstrip("/")
        data = os.urandom(400_000)
        path = await core.files.write_blob(7, "exports/export-20260101-000000-9.zip", data)
        stored = tmp_path / "data" / path
        raw = bytearray(stored.read_bytes())
        raw[300_000] ^= 1
        stored.write_bytes(bytes(raw))
        link = await links.link(7, path, filename="export.zip")
        assert link is not None
        received = bytearray()
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientPayloadError):
                async with http.get(link) as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Length"] == str(len(data))
                    async for chunk in resp.content.iter_any():
                        received += chunk
            assert 0 < len(received) < 300_000 and data.startswith(bytes(received))
            raw[22] ^= 1  # now the header too (its segment size)
            stored.write_bytes(bytes(raw))
            async with http.get(link) as resp:
                assert resp.status == 410
                assert "no longer available" in await resp.text()
    finally:
        await server.close()
        await core.aclose()
