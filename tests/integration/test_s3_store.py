"""The S3 file store against a real S3 wire server on loopback (moto in server mode),
through the production client code (aiobotocore): every guarantee of the local store."""

from __future__ import annotations

import base64
import io
import os
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.crypto import STREAM_MAGIC, DataCipher
from core.errors import InvalidImage
from core.types import Conversation, Delivered
from storage.database import Database
from storage.files import S3FileStore
from tests.fakes.s3_server import MotoS3
from tests.helpers import actor, image_input, make_core, png, request

DM = Conversation("test", "dm-1001", is_private=True)


def cipher() -> DataCipher:
    return DataCipher(os.urandom(32))


def store(moto_s3: MotoS3, bucket: str, **kw: Any) -> S3FileStore:
    return S3FileStore(
        bucket, prefix="inst/", endpoint_url=moto_s3.base_url, region="us-east-1", **kw
    )


async def test_write_read_list_delete(moto_s3: MotoS3) -> None:
    bucket = moto_s3.new_bucket()
    s = store(moto_s3, bucket)
    try:
        item = await s.write_image(7, "jobs/j1/out-0", png(30, 20))
        assert item.path == "users/7/jobs/j1/out-0.png"
        assert (item.content_type, item.width, item.height) == ("image/png", 30, 20)
        assert await s.read(item.path) == png(30, 20)
        assert moto_s3.keys(bucket) == ["inst/users/7/jobs/j1/out-0.png"]
        head = await s.head(item.path)
        assert head is not None and head["content_type"] == "image/png"
        blob = await s.write_blob(7, "exports/export-20260101-000000-1.zip", b"PK zip")
        assert await s.list_user(7) == [blob, item.path]
        assert await s.list_user(8) == []
        await s.delete(item.path)
        await s.delete(item.path)  # a missing object is fine
        assert await s.list_user(7) == [blob]
        with pytest.raises(FileNotFoundError):
            await s.read(item.path)
        assert await s.check() is None
    finally:
        await s.aclose()


async def test_content_type_is_read_from_the_bytes_not_the_name(moto_s3: MotoS3) -> None:
    s = store(moto_s3, moto_s3.new_bucket())
    try:
        with pytest.raises(InvalidImage):
            await s.write_image(7, "jobs/j1/out-0", b"<html>not an image</html>")
        jpeg = io.BytesIO()
        from PIL import Image

        Image.new("RGB", (8, 8)).save(jpeg, "JPEG")
        item = await s.write_image(7, "jobs/j1/out-0.png", jpeg.getvalue())
        assert item.path.endswith(".png.jpg") and item.content_type == "image/jpeg"
    finally:
        await s.aclose()


@pytest.mark.parametrize(
    "path", ["../users/1/x.png", "users/1/../2/x.png", "users/abc/x.png", "/etc/passwd", "x"]
)
async def test_hostile_paths_are_refused(moto_s3: MotoS3, path: str) -> None:
    s = store(moto_s3, moto_s3.new_bucket())
    try:
        with pytest.raises(ValueError):
            await s.read(path)
        with pytest.raises(ValueError):
            await s.delete(path)
        with pytest.raises(ValueError):
            await s.write_blob(1, "../2/x", b"x")
    finally:
        await s.aclose()


async def test_P18_objects_are_ciphertext_in_the_bucket(moto_s3: MotoS3) -> None:
    bucket = moto_s3.new_bucket()
    s = store(moto_s3, bucket, cipher=cipher())
    try:
        picture = png(40, 40, (1, 2, 3))
        item = await s.write_image(7, "jobs/j1/out-0", picture)
        raw = moto_s3.raw(bucket, "inst/" + item.path)
        assert raw.startswith(STREAM_MAGIC) and picture not in raw and b"PNG" not in raw
        assert await s.read(item.path) == picture
        assert b"".join([c async for c in s.stream(item.path)]) == picture
        head = moto_s3.client().head_object(Bucket=bucket, Key="inst/" + item.path)
        assert head["ContentType"] == "application/octet-stream"
        assert head["Metadata"]["encrypted"] == "1"
        # Ciphertext is never handed out as a presigned URL: only imagebot can decrypt it.
        assert await s.download_url(item.path, filename="a.png", expires_in=60) is None
        # A wrong key is refused, not misread.
        other = store(moto_s3, bucket, cipher=cipher())
        try:
            with pytest.raises(Exception, match="not configured"):
                await other.read(item.path)
        finally:
            await other.aclose()
    finally:
        await s.aclose()


async def test_reencrypt_all_rewrites_under_the_new_key(moto_s3: MotoS3) -> None:
    bucket = moto_s3.new_bucket()
    old_key, new_key = os.urandom(32), os.urandom(32)
    s = store(moto_s3, bucket, cipher=DataCipher(old_key))
    item = await s.write_image(7, "jobs/j1/out-0", png())
    await s.aclose()
    s = store(moto_s3, bucket, cipher=DataCipher(new_key, (old_key,)))
    try:
        assert await s.reencrypt_all() == 1
        assert await s.reencrypt_all() == 0
        only_new = store(moto_s3, bucket, cipher=DataCipher(new_key))
        assert await only_new.read(item.path) == png()
        await only_new.aclose()
    finally:
        await s.aclose()


async def test_stream_reads_in_chunks_and_presigned_url_downloads(moto_s3: MotoS3) -> None:
    bucket = moto_s3.new_bucket()
    s = store(moto_s3, bucket)
    try:
        big = os.urandom(700 * 1024)
        path = await s.write_blob(7, "exports/export-20260101-000000-1.zip", big)
        chunks = [c async for c in s.stream(path)]
        assert len(chunks) >= 2 and b"".join(chunks) == big
        url = await s.download_url(path, filename="export.zip", expires_in=60)
        assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200
            assert await resp.read() == big
            assert 'filename="export.zip"' in resp.headers["Content-Disposition"]
        # Never public: neither the bucket nor an object grants anything to AllUsers
        # (moto does not check signatures unless IAM is set up, so check the grants).
        client = moto_s3.client()
        grants = client.get_bucket_acl(Bucket=bucket)["Grants"]
        grants += client.get_object_acl(Bucket=bucket, Key="inst/" + path)["Grants"]
        assert all("AllUsers" not in str(g.get("Grantee")) for g in grants)
        assert all("AuthenticatedUsers" not in str(g.get("Grantee")) for g in grants)
        with pytest.raises(FileNotFoundError):
            await s.download_url("users/7/nothing.zip", filename="x", expires_in=60)
    finally:
        await s.aclose()


async def test_erasure_leaves_zero_objects_under_the_users_prefix(moto_s3: MotoS3) -> None:
    bucket = moto_s3.new_bucket()
    s = store(moto_s3, bucket, cipher=cipher())
    try:
        for i in range(1105):  # more than one page of ListObjectsV2 and of DeleteObjects
            await s.write_blob(7, f"jobs/j{i}/ref-0", b"x")
        await s.write_image(70, "jobs/k/out-0", png())  # a user whose id shares a prefix
        assert await s.delete_user(7) == 1105
        assert moto_s3.keys(bucket, "inst/users/7/") == []
        assert moto_s3.keys(bucket) == ["inst/users/70/jobs/k/out-0.png"]
        assert await s.delete_user(7) == 0
    finally:
        await s.aclose()


async def test_P13_retention_deletes_old_exports_and_lists_to_prove_it(moto_s3: MotoS3) -> None:
    bucket = moto_s3.new_bucket()
    s = store(moto_s3, bucket)
    try:
        old = await s.write_blob(7, "exports/export-20260101-000000-1.zip", b"old")
        new = await s.write_blob(7, "exports/export-20260301-000000-2.zip", b"new")
        keep = await s.write_blob(7, "jobs/j/notes.zip", b"not an export")
        cutoff = datetime(2026, 2, 1, tzinfo=UTC)
        assert await s.delete_exports_before(cutoff, dry_run=True) == 1
        assert await s.list_user(7) == [old, new, keep]
        assert await s.delete_exports_before(cutoff) == 1
        assert await s.list_user(7) == [new, keep]
        await s.delete_many([new, keep])
        assert moto_s3.keys(bucket) == []
    finally:
        await s.aclose()


async def test_P07_P08_export_and_erasure_through_the_core_on_s3(
    database: Database, tmp_path: Path, s3_settings: dict[str, Any], moto_s3: MotoS3
) -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    core, notes = await make_core(database, tmp_path, encryption_key=key, **s3_settings)
    bucket = s3_settings["s3_bucket"]
    try:
        who = actor()
        first = await core.generation.submit(request(who, "a fox"))
        edit = await core.generation.submit(
            request(who, "a fox, watercolor", inputs=(image_input(png(80, 60)),))
        )
        await core.worker.run_until_idle()
        for sub in (first, edit):
            assert isinstance(await notes.wait_final(sub.job.id), Delivered)
        assert not (tmp_path / "data" / "users").exists()  # nothing on the local disk
        stored = await core.files.list_user(1)
        assert len(stored) >= 3 and all(p.startswith("users/1/") for p in stored)
        for k in moto_s3.keys(bucket):
            assert moto_s3.raw(bucket, k).startswith(STREAM_MAGIC)
        # History reads the full-resolution image back from the bucket.
        page = await core.history.page(who)
        _, data = await core.history.download(who, page.items[0].id, 0)
        assert data.startswith(b"\x89PNG")
        result = await core.privacy.export(who, DM)
        assert result.absolute_path.startswith(f"s3://{bucket}/inst/users/1/exports/")
        with zipfile.ZipFile(io.BytesIO(await core.files.read(result.path))) as zf:
            names = set(zf.namelist())
        for path in stored:
            assert "images/" + path.removeprefix("users/1/") in names, path
        receipt = await core.privacy.erase(who, DM)
        assert receipt.files == len(stored) + 1
        assert moto_s3.keys(bucket, "inst/users/1/") == []
    finally:
        await core.aclose()


async def test_export_link_on_plain_s3_is_a_presigned_url(
    database: Database, tmp_path: Path, s3_settings: dict[str, Any]
) -> None:
    core, notes = await make_core(
        database, tmp_path, public_url="https://bot.example", **s3_settings
    )
    try:
        who = actor()
        sub = await core.generation.submit(request(who, "a fox"))
        await core.worker.run_until_idle()
        await notes.wait_final(sub.job.id)
        result = await core.privacy.export(who, DM)
        link = await core.privacy.export_link(who, result)
        assert link.startswith(s3_settings["s3_endpoint_url"]) and "X-Amz-Signature" in link
        assert "X-Amz-Expires=86400" in link  # an export's link lasts a day
        async with aiohttp.ClientSession() as http, http.get(link) as resp:
            assert resp.status == 200
            with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
                assert "README.txt" in zf.namelist()
        # Another user's export is never signed.
        with pytest.raises(Exception, match="not yours"):
            await core.privacy.export_link(actor("2", "Eve"), result)
        _ = timedelta
    finally:
        await core.aclose()
