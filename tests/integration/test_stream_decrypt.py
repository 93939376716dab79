"""Both file stores write the streamable ``IBE2`` form and decrypt it while they stream
(P18, issue #15): a 20 MB object streams with bounded memory and its exact size known
up front; ``IBE1`` files written before stay readable and a key rotation rewrites them as
``IBE2``; a damaged file is refused, never served."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.crypto import BLOB_MAGIC, STREAM_MAGIC, DataCipher
from core.errors import ConfigurationError
from core.types import Conversation
from storage.database import Database
from storage.files import LocalFileStore, S3FileStore
from tests.fakes.s3_server import MotoS3
from tests.helpers import actor, make_core, png

DM = Conversation("test", "dm-1001", is_private=True)

BIG = 20 * 1024 * 1024


def payload() -> bytes:
    block = os.urandom(1024 * 1024)
    return block * (BIG // len(block))


async def test_local_store_streams_20_mb_of_ciphertext_with_bounded_memory(
    tmp_path: Path,
) -> None:
    cipher = DataCipher(os.urandom(32))
    store = LocalFileStore(tmp_path, cipher)
    data = payload()
    digest = hashlib.sha256(data).hexdigest()
    path = await store.write_blob(5, "exports/export-20260101-000000-1.zip", data)
    assert (tmp_path / path).read_bytes()[:4] == STREAM_MAGIC
    assert store.local_path(path) is None  # ciphertext: never opened by an adapter
    del data
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        opened = await store.open(path)
        assert opened.size == BIG
        hasher, total, largest = hashlib.sha256(), 0, 0
        async for chunk in opened.chunks:
            hasher.update(chunk)
            total += len(chunk)
            largest = max(largest, len(chunk))
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert total == BIG and hasher.hexdigest() == digest
    assert largest <= 64 * 1024
    # A raw read chunk (256 KiB), one segment and its copies: far below the object.
    assert peak < 2 * 1024 * 1024, peak


async def test_local_plain_store_names_its_files_and_streams_them(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    item = await store.write_image(5, "jobs/j/out-0", png(20, 10))
    local = store.local_path(item.path)
    assert local is not None and Path(local).read_bytes() == png(20, 10)
    opened = await store.open(item.path)
    assert opened.size == item.size_bytes
    assert b"".join([c async for c in opened.chunks]) == png(20, 10)
    with pytest.raises(FileNotFoundError):
        await store.open("users/5/jobs/j/missing.png")


async def test_local_ibe1_files_stay_readable_and_rotation_makes_them_ibe2(
    tmp_path: Path,
) -> None:
    old_key = os.urandom(32)
    old = DataCipher(old_key)
    legacy = tmp_path / "users/5/jobs/j/out-0.png"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(old.encrypt(png(20, 10)))  # as written before IBE2
    store = LocalFileStore(tmp_path, old)
    rel = "users/5/jobs/j/out-0.png"
    assert await store.read(rel) == png(20, 10)
    opened = await store.open(rel)
    assert opened.size is None  # IBE1: unknown until read whole
    assert b"".join([c async for c in opened.chunks]) == png(20, 10)
    rotated = LocalFileStore(tmp_path, DataCipher(os.urandom(32), (old_key,)))
    assert await rotated.reencrypt_all() == 1
    assert legacy.read_bytes().startswith(STREAM_MAGIC)
    assert await rotated.read(rel) == png(20, 10)
    assert await rotated.reencrypt_all() == 0


async def test_a_damaged_file_is_refused_while_streaming(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path, DataCipher(os.urandom(32)))
    path = await store.write_blob(5, "exports/export-20260101-000000-1.zip", os.urandom(300_000))
    full = tmp_path / path
    raw = bytearray(full.read_bytes())
    raw[200_000] ^= 1
    full.write_bytes(bytes(raw))
    with pytest.raises(ConfigurationError):
        async for _ in store.stream(path):
            pass
    full.write_bytes(bytes(raw[:-100]))  # and a truncated one
    with pytest.raises(ConfigurationError):
        await store.read(path)


async def test_s3_store_streams_ciphertext_segment_by_segment(moto_s3: MotoS3) -> None:
    bucket = moto_s3.new_bucket()
    cipher = DataCipher(os.urandom(32))
    store = S3FileStore(
        bucket, prefix="inst/", endpoint_url=moto_s3.base_url, region="us-east-1", cipher=cipher
    )
    try:
        data = payload()
        path = await store.write_blob(5, "exports/export-20260101-000000-1.zip", data)
        assert moto_s3.raw(bucket, "inst/" + path)[:4] == STREAM_MAGIC
        assert store.local_path(path) is None
        opened = await store.open(path)
        assert opened.size == BIG
        hasher, largest = hashlib.sha256(), 0
        async for chunk in opened.chunks:
            hasher.update(chunk)
            largest = max(largest, len(chunk))
        assert hasher.digest() == hashlib.sha256(data).digest()
        assert largest <= 64 * 1024
        # An IBE1 object written before stays readable, and a rotation rewrites it.
        await store.put("users/5/jobs/j/out-0.png", cipher.encrypt(png(8, 8)), "image/png")
        assert moto_s3.raw(bucket, "inst/users/5/jobs/j/out-0.png").startswith(BLOB_MAGIC)
        assert await store.read("users/5/jobs/j/out-0.png") == png(8, 8)
        legacy = await store.open("users/5/jobs/j/out-0.png")
        assert b"".join([c async for c in legacy.chunks]) == png(8, 8)
        assert await store.reencrypt_all() == 1
        assert moto_s3.raw(bucket, "inst/users/5/jobs/j/out-0.png").startswith(STREAM_MAGIC)
        with pytest.raises(FileNotFoundError):
            await store.open("users/5/jobs/j/missing.png")
    finally:
        await store.aclose()


@pytest.mark.parametrize("store", ["local", "s3"])
async def test_P07_an_export_streams_its_images_into_a_sealed_zip(
    sqlite_only: Database, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """A 12 MB image and a ZIP made of it: streamed from the store into the ZIP and the
    ZIP, sealed, into the store (over S3 a multipart upload of 8 MiB parts whose checksum
    is kept), the process never holding either whole."""
    extra = request.getfixturevalue("s3_settings") if store == "s3" else {}
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    core, _ = await make_core(sqlite_only, tmp_path, encryption_key=key, **extra)
    try:
        who = actor()
        user_id = (await core.users.register(who)).id
        picture = os.urandom(12 * 1024 * 1024)
        image_path = await core.files.write_blob(user_id, "jobs/j1/output-0.png", picture)
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            result = await core.privacy.export(who, DM)
            peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        if store == "local":
            # A few segments and chunks: not 12 MB, let alone twice. (Over S3 the moto
            # server runs in this process and keeps every part: its memory would count.)
            assert peak < 3 * 1024 * 1024, peak
        assert result.size_bytes > len(picture)
        data = await core.files.read(result.path)
        assert len(data) == result.size_bytes
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            assert archive.read("images/jobs/j1/output-0.png") == picture
            assert "README.txt" in archive.namelist()
        if store == "s3":
            s3 = core.files
            assert isinstance(s3, S3FileStore)
            head = await s3.head(result.path)
            raw = await s3.read_raw(result.path)
            assert raw[:4] == STREAM_MAGIC
            assert head is not None and head["sha256"] == hashlib.sha256(raw).hexdigest()
            assert head["content_type"] == "application/octet-stream"
            # 12 MB of ZIP is more than one 8 MiB part: this went as a multipart upload
            # (its ETag is replaced by the copy that sets the checksum), and no upload
            # was left open.
            moto = request.getfixturevalue("moto_s3").client()
            assert not moto.list_multipart_uploads(Bucket=extra["s3_bucket"]).get("Uploads")
        else:
            assert (tmp_path / "data" / result.path).read_bytes()[:4] == STREAM_MAGIC
            leftovers = list((tmp_path / "data").rglob(".tmp-*"))
            assert not leftovers
        assert image_path in await core.files.list_user(user_id)
    finally:
        await core.aclose()


async def test_an_interrupted_streamed_write_leaves_nothing(
    tmp_path: Path, moto_s3: MotoS3
) -> None:
    """A ZIP whose making fails half-way: no object, no temporary file, no open upload."""

    async def failing() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield os.urandom(1024 * 1024)
        raise OSError("the source went away")

    cipher = DataCipher(os.urandom(32))
    bucket = moto_s3.new_bucket()
    s3 = S3FileStore(
        bucket, prefix="inst/", endpoint_url=moto_s3.base_url, region="us-east-1", cipher=cipher
    )
    local = LocalFileStore(tmp_path, cipher)
    name = "exports/export-20260101-000000-3.zip"
    try:
        for store in (s3, local):
            with pytest.raises(OSError, match="went away"):
                await store.write_blob_stream(5, name, failing())
            assert await store.list_user(5) == []
        assert not list(tmp_path.rglob(".tmp-*"))
        assert moto_s3.keys(bucket) == []
        assert not moto_s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads")
    finally:
        await s3.aclose()
