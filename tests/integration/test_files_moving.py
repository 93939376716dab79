"""``imagebot files migrate --to s3`` and ``imagebot files verify`` against a real S3 wire
server (moto) and real databases: checksummed, interrupted and resumed, idempotent."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from core.types import Conversation, Delivered
from storage.database import Database
from storage.files import LocalFileStore, S3FileStore
from storage.files.moving import CopyReport, copy_files, local_paths, verify_files
from tests.fakes.s3_server import MotoS3
from tests.helpers import actor, image_input, make_core, png, request

DM = Conversation("test", "dm-1001", is_private=True)


class Interrupted(Exception):
    pass


async def local_installation(database: Database, tmp_path: Path, key: str) -> None:
    core, notes = await make_core(database, tmp_path, encryption_key=key)
    try:
        for i in range(4):
            who = actor(str(1000 + i), f"user {i}")
            sub = await core.generation.submit(
                request(who, f"a fox {i}", inputs=(image_input(png(50, 40)),))
            )
            await core.worker.run_until_idle()
            assert isinstance(await notes.wait_final(sub.job.id), Delivered)
        await core.privacy.export(actor("1000", "user 0"), DM)
    finally:
        await core.aclose()


async def test_migrate_interrupted_resumed_idempotent_then_served_from_s3(
    database: Database, tmp_path: Path, moto_s3: MotoS3, s3_settings: dict[str, Any]
) -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    await local_installation(database, tmp_path, key)
    source = LocalFileStore(tmp_path / "data")
    paths = local_paths(source)
    assert len(paths) >= 9
    bucket = s3_settings["s3_bucket"]
    target = S3FileStore(bucket, prefix="inst/", endpoint_url=moto_s3.base_url, region="us-east-1")
    try:

        def stop_after_three(report: CopyReport) -> None:
            if report.done >= 3:
                raise Interrupted

        with pytest.raises(Interrupted):
            await copy_files(source, target, progress=stop_after_three, concurrency=1)
        assert 3 <= len(moto_s3.keys(bucket)) < len(paths)
        # A copy damaged in the store is found by its checksum and copied again.
        first = moto_s3.keys(bucket)[0]
        moto_s3.client().put_object(Bucket=bucket, Key=first, Body=b"damaged")
        seen: list[int] = []
        report = await copy_files(source, target, progress=lambda r: seen.append(r.done))
        assert report.total == len(paths) and report.skipped == 2
        assert report.copied == len(paths) - 2 and seen[-1] == len(paths)
        again = await copy_files(source, target)
        assert (again.copied, again.skipped) == (0, len(paths))
        assert moto_s3.keys(bucket) == sorted("inst/" + p for p in paths)
        for path in paths:  # byte for byte as stored (ciphertext stays ciphertext)
            assert moto_s3.raw(bucket, "inst/" + path) == (source.root / path).read_bytes()
        verified = await verify_files(database, target)
        assert verified.ok and verified.exports == 1
    finally:
        await target.aclose()
    # The installation now runs on S3 with no local folder: history reads from the bucket.
    core, _ = await make_core(database, tmp_path / "elsewhere", encryption_key=key, **s3_settings)
    try:
        page = await core.history.page(actor("1001", "user 1"))
        assert page.items
        _, data = await core.history.download(actor("1001", "user 1"), page.items[0].id, 0)
        assert data.startswith(b"\x89PNG")
    finally:
        await core.aclose()


async def test_verify_reports_rows_without_objects_and_objects_without_rows(
    database: Database, tmp_path: Path, moto_s3: MotoS3, s3_settings: dict[str, Any]
) -> None:
    core, notes = await make_core(database, tmp_path, **s3_settings)
    bucket = s3_settings["s3_bucket"]
    try:
        sub = await core.generation.submit(request(actor(), "a fox"))
        await core.worker.run_until_idle()
        await notes.wait_final(sub.job.id)
        store = core.files
        assert isinstance(store, S3FileStore)
        assert (await verify_files(database, store)).ok
        [output] = await store.list_user(1)
        await store.delete(output)
        await store.write_blob(1, "jobs/stray/out-9.png", b"stray")
        report = await verify_files(database, store)
        assert report.rows_without_objects == [output]
        assert report.objects_without_rows == ["users/1/jobs/stray/out-9.png"]
        assert moto_s3.keys(bucket)  # verify only reports; it deletes nothing
    finally:
        await core.aclose()


async def test_cli_files_migrate_and_verify(
    sqlite_only: Database,
    tmp_path: Path,
    moto_s3: MotoS3,
    s3_settings: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    await local_installation(sqlite_only, tmp_path, key)
    env = {
        "IMAGEBOT_DATABASE_URL": sqlite_only.url,
        "IMAGEBOT_DATA_DIR": str(tmp_path / "data"),
        "IMAGEBOT_ENCRYPTION_KEY": key,
        "IMAGEBOT_S3_BUCKET": s3_settings["s3_bucket"],
        "IMAGEBOT_S3_ENDPOINT_URL": moto_s3.base_url,
        "IMAGEBOT_S3_REGION": "us-east-1",
        "IMAGEBOT_S3_PREFIX": "inst/",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    import asyncio

    def run(*argv: str) -> int:
        return asyncio.get_running_loop().run_in_executor(None, main, list(argv))  # type: ignore[return-value]

    assert await run("files", "migrate", "--to", "s3") == 0
    out = capsys.readouterr()
    assert "copied" in out.out and "[####" in out.err
    assert await run("files", "migrate", "--to", "s3") == 0
    assert "0 copied" in capsys.readouterr().out
    monkeypatch.setenv("IMAGEBOT_FILE_STORE", "s3")
    assert await run("files", "verify") == 0
    assert "0 rows without files, 0 files without rows" in capsys.readouterr().out
    monkeypatch.setenv("IMAGEBOT_FILE_STORE", "local")
    victim = next(p for p in local_paths(LocalFileStore(tmp_path / "data")) if "/jobs/" in p)
    (tmp_path / "data" / victim).unlink()
    assert await run("files", "verify") == 1
    assert f"row without file: {victim}" in capsys.readouterr().out
