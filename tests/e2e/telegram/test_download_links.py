"""Full-resolution downloads and exports that do not pass through the bot (issue #15,
P23, P07), pressed through python-telegram-bot against the loopback Bot API: with the S3
store the Full resolution button answers with a presigned URL (a URL button) that
downloads exactly the stored image from the bucket; with an encrypted local store and a
public address, with imagebot's signed link, streamed decrypted by its HTTP server;
another person's press and a forged link get nothing; /export over S3 is a link too."""

from __future__ import annotations

import io
import os
import time
import zipfile
from base64 import urlsafe_b64decode, urlsafe_b64encode
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from bot.telegram import render
from bot.web.server import build_http_app
from storage.database import Database
from tests.e2e.telegram.conftest import Person, TelegramHarness, free_port, launch
from tests.fakes.s3_server import MotoS3
from tests.fakes.telegram_server import BotCall, FakeTelegram

KEY = urlsafe_b64encode(os.urandom(32)).decode()


async def _imagine(telegram: TelegramHarness, person: Person, text: str) -> BotCall:
    mark = telegram.mark()
    person.say(text)
    return await telegram.result(person.chat.id, after=mark)


async def _press_full(telegram: TelegramHarness, person: Person, result: BotCall) -> BotCall:
    mark = telegram.mark()
    query = person.press(result.result, telegram.button(result, "fr:"))
    await telegram.fake.wait_answer(query)
    return await telegram.fake.wait_call(
        "sendMessage",
        chat_id=person.chat.id,
        after=mark,
        where=lambda c: "reply_markup" in c.params,
    )


async def test_P23_full_resolution_over_s3_is_a_presigned_url_of_the_image(
    sqlite_only: Database,
    tmp_path: Path,
    fake_telegram: FakeTelegram,
    s3_settings: dict[str, Any],
    moto_s3: MotoS3,
) -> None:
    telegram = await launch(sqlite_only, tmp_path, fake_telegram, **s3_settings)
    try:
        fake, core = telegram.fake, telegram.core
        ada = await telegram.person()
        result = await _imagine(telegram, ada, "/imagine a red fox --quality low")
        job = (await core.history.page(ada.actor)).items[0]
        stored = await core.files.read(job.outputs[0].path)

        mark = telegram.mark()
        message = await _press_full(telegram, ada, result)
        assert "1024×1024" in message.text and "15 min" in message.text
        [(label, url)] = message.buttons()
        assert label == "⬇️ Download full resolution"
        assert url.startswith(s3_settings["s3_endpoint_url"] + "/")
        assert not [c for c in fake.calls[mark:] if c.method == "sendDocument"]
        # Short-lived and signed: S3 refuses it once X-Amz-Date + X-Amz-Expires has
        # passed (moto does not check signatures or expiry, so the signed terms are read).
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Expires"] == [str(core.settings.download_link_seconds)]
        signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert abs(signed_at.timestamp() - time.time()) < 120
        assert (
            "X-Amz-Signature" in query and "attachment" in query["response-content-disposition"][0]
        )
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200
            assert await resp.read() == stored
        # The bucket itself grants nobody else anything: no listing, no public objects.
        s3 = moto_s3.client()
        bucket = s3_settings["s3_bucket"]
        for grants in (
            s3.get_bucket_acl(Bucket=bucket)["Grants"],
            s3.get_object_acl(Bucket=bucket, Key="inst/" + job.outputs[0].path)["Grants"],
        ):
            assert all(g["Grantee"].get("Type") == "CanonicalUser" for g in grants), grants

        # Bob presses Ada's button: refused before anything is linked.
        bob = await telegram.person("Bob")
        mark = telegram.mark()
        answer = await fake.wait_answer(bob.press(result.result, telegram.button(result, "fr:")))
        assert answer["show_alert"] is True and answer["text"] == render.not_yours()
        assert [c.method for c in fake.calls[mark:] if c.method != "getUpdates"] == [
            "answerCallbackQuery"
        ]

        # /export over S3 (no public address needed): a presigned link to the same ZIP.
        mark = telegram.mark()
        ada.say("/export")
        link = await fake.wait_call(
            "sendMessage", chat_id=ada.chat.id, after=mark, where=lambda c: "24 hours" in c.text
        )
        export_url = dict(link.buttons())["⬇️ Download my data"]
        assert export_url.startswith(s3_settings["s3_endpoint_url"] + "/")
        assert parse_qs(urlsplit(export_url).query)["X-Amz-Expires"] == ["86400"]
        key = next(k for k in moto_s3.keys(bucket, "inst/") if "/exports/" in k)
        async with aiohttp.ClientSession() as http, http.get(export_url) as resp:
            data = await resp.read()
        assert data == moto_s3.raw(bucket, key)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert "README.txt" in archive.namelist()
        assert not [c for c in fake.calls[mark:] if c.method == "sendDocument"]
    finally:
        await telegram.stop()


async def test_P23_encrypted_local_store_links_to_imagebot_which_streams_it_decrypted(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    telegram = await launch(
        sqlite_only, tmp_path, fake_telegram, encryption_key=KEY, public_url=base
    )
    runner = web.AppRunner(build_http_app(telegram.core), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        core = telegram.core
        ada = await telegram.person()
        result = await _imagine(telegram, ada, "/imagine a heron in fog --quality low")
        job = (await core.history.page(ada.actor)).items[0]
        path = job.outputs[0].path
        assert (tmp_path / "data" / path).read_bytes()[:4] == b"IBE2"  # ciphertext at rest
        stored = await core.files.read(path)

        message = await _press_full(telegram, ada, result)
        [(_, url)] = message.buttons()
        assert url.startswith(f"{base}/files/")
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "image/png"
                assert resp.headers["Content-Length"] == str(len(stored))
                assert resp.headers["Cache-Control"] == "private, no-store"
                assert 'attachment; filename="imagebot-' in resp.headers["Content-Disposition"]
                assert await resp.read() == stored
            # Altered, forged, or pointed at another folder: refused, nothing served.
            token = url.rsplit("/", 1)[1]
            encoded, signature = token.split(".")
            payload = urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            moved = payload.replace(b'"users/', b'"users/9', 1)  # another user's folder
            assert moved != payload
            other = urlsafe_b64encode(moved).decode().rstrip("=")
            for bad in (f"{other}.{signature}", f"{encoded}.{'0' * len(signature)}", "x.y"):
                async with http.get(f"{base}/files/{bad}") as resp:
                    assert resp.status == 403
                    body = await resp.read()
                    assert stored[:64] not in body and b"IBE2" not in body
                    assert b"not valid" in body
            async with http.get(f"{base}/files/") as resp:  # no listing either
                assert resp.status == 404
    finally:
        await runner.cleanup()
        await telegram.stop()


async def test_P23_a_public_address_telegram_refuses_means_an_upload(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    """``localhost`` is no address for a Telegram URL button (BUTTON_URL_INVALID): the
    file comes as a document, as with no public address at all."""
    telegram = await launch(
        sqlite_only, tmp_path, fake_telegram, public_url="http://localhost:8080"
    )
    try:
        fake, core = telegram.fake, telegram.core
        ada = await telegram.person()
        result = await _imagine(telegram, ada, "/imagine a kingfisher --quality low")
        job = (await core.history.page(ada.actor)).items[0]
        mark = telegram.mark()
        await fake.wait_answer(ada.press(result.result, telegram.button(result, "fr:")))
        document = await fake.wait_call("sendDocument", chat_id=ada.chat.id, after=mark)
        assert document.files["document"].data == await core.files.read(job.outputs[0].path)
    finally:
        await telegram.stop()
