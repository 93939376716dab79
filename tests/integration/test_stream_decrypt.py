"""Both file stores write the streamable ``IBE2`` form and decrypt it while they stream
(P18, issue #15): a 20 MB object streams with bounded memory and its exact size known
up front; ``IBE1`` files written before stay readable and a key rotation rewrites them as
``IBE2``; a damaged file is refused, never served."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from core.crypto import BLOB_MAGIC, STREAM_MAGIC, DataCipher
from core.errors import ConfigurationError
from storage.files import LocalFileStore, S3FileStore
from tests.fakes.s3_server import MotoS3
from tests.helpers import png

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
