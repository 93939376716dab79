"""Moving an installation's files between stores, and checking a store against the rows.

``copy_files`` copies every file of the local store into an S3 store as it is stored
(ciphertext stays ciphertext: the key never has to be present), file by file, each with
its SHA-256 checked against the copy's and ``Content-MD5`` checked by the store. A file
whose copy already carries the same checksum is skipped, so the copy is resumable after an
interruption and idempotent; it may run while the bot runs, since paths never change and a
second run picks up what was written meanwhile.

``verify_files`` compares the paths the database names with the objects a store holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import select

from core.generation.intake import image_dimensions
from storage.database import Database
from storage.files.local import LocalFileStore
from storage.files.s3 import S3FileStore, sha256_hex
from storage.models import JobImage
from storage.safety.models import ReviewItem

log = logging.getLogger("imagebot.files")

Progress = Callable[["CopyReport"], None]


@dataclass
class CopyReport:
    """What a copy did so far."""

    total: int = 0
    copied: int = 0
    skipped: int = 0
    vanished: int = 0
    bytes_copied: int = 0

    @property
    def done(self) -> int:
        """Files handled so far."""
        return self.copied + self.skipped + self.vanished


@dataclass
class VerifyReport:
    """Rows naming a file that is missing, and files that no row names."""

    rows_without_objects: list[str] = field(default_factory=list)
    objects_without_rows: list[str] = field(default_factory=list)
    exports: int = 0
    objects: int = 0
    rows: int = 0

    @property
    def ok(self) -> bool:
        """True when every row has its file and every file its row."""
        return not self.rows_without_objects and not self.objects_without_rows


def local_paths(store: LocalFileStore) -> list[str]:
    """Every stored file of the local store, as paths (temporary files left out)."""
    users = store.root / "users"
    if not users.exists():
        return []
    return sorted(
        str(p.relative_to(store.root))
        for p in users.rglob("*")
        if p.is_file() and not p.name.startswith(".tmp-")
    )


def _content_type(path: str, stored: bytes) -> str:
    info = image_dimensions(stored)
    if info is not None:
        return info[0]
    return "application/zip" if path.endswith(".zip") else "application/octet-stream"


async def copy_files(
    source: LocalFileStore,
    target: S3FileStore,
    *,
    progress: Progress | None = None,
    concurrency: int = 8,
) -> CopyReport:
    """Copy every local file to ``target`` unless an identical copy is there already."""
    paths = await asyncio.to_thread(local_paths, source)
    report = CopyReport(total=len(paths))
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)

    async def one(path: str) -> None:
        try:
            stored = await asyncio.to_thread((source.root / path).read_bytes)
        except FileNotFoundError:  # deleted by the running bot (erasure, retention)
            report.vanished += 1
            return
        digest = sha256_hex(stored)
        head = await target.head(path)
        if head is not None and head["sha256"] == digest and head["size"] == len(stored):
            report.skipped += 1
            return
        await target.put(path, stored, _content_type(path, stored))
        check = await target.head(path)
        if check is None or check["sha256"] != digest or check["size"] != len(stored):
            raise OSError(f"the copy of {path} does not match its checksum")
        report.copied += 1
        report.bytes_copied += len(stored)
        copied.append(path)

    async def lane() -> None:
        while True:
            try:
                path = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(path)
            if progress is not None:
                progress(report)

    copied: list[str] = []
    try:
        async with asyncio.TaskGroup() as lanes:  # one failure stops every lane
            for _ in range(max(1, concurrency)):
                lanes.create_task(lane())
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None
    # A file erased by the running bot after it was copied must not survive in the copy
    # (erasure, retention): take back every copy whose original has gone meanwhile.
    gone = [p for p in copied if not (source.root / p).exists()]
    if gone:
        await target.delete_many(gone)
        report.vanished += len(gone)
        report.copied -= len(gone)
    log.info(
        "files copied=%s skipped=%s vanished=%s bytes=%s",
        report.copied,
        report.skipped,
        report.vanished,
        report.bytes_copied,
    )
    return report


async def row_paths(db: Database) -> set[str]:
    """Every file path the database names (job images, review items)."""
    async with db.sessions() as session:
        images = (await session.execute(select(JobImage.path))).scalars().all()
        reviews = (
            (await session.execute(select(ReviewItem.path).where(ReviewItem.path.is_not(None))))
            .scalars()
            .all()
        )
    return {p for p in (*images, *reviews) if p}


async def store_paths(store: LocalFileStore | S3FileStore) -> list[str]:
    """Every file a store holds under ``users/``."""
    if isinstance(store, S3FileStore):
        return sorted([p async for p, _, _ in store.list_keys("users/")])
    return await asyncio.to_thread(local_paths, store)


async def verify_files(db: Database, store: LocalFileStore | S3FileStore) -> VerifyReport:
    """Rows without objects and objects without rows (export ZIPs have no rows: counted
    apart)."""
    rows = await row_paths(db)
    objects = await store_paths(store)
    report = VerifyReport(rows=len(rows), objects=len(objects))
    held = set()
    for path in objects:
        if "/exports/" in path:
            report.exports += 1
            continue
        held.add(path)
        if path not in rows:
            report.objects_without_rows.append(path)
    report.rows_without_objects = sorted(rows - held)
    return report


def progress_bar(out: TextIO, width: int = 30) -> Progress:
    """A one-line progress bar (rewritten in place on a terminal, else every 5%)."""
    tty = out.isatty()
    last = [-1]

    def show(report: CopyReport) -> None:
        total = max(report.total, 1)
        share = report.done / total
        step = int(share * 20)
        if not tty and step == last[0] and report.done != report.total:
            return
        last[0] = step
        filled = int(share * width)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {report.done}/{report.total} "
            f"copied {report.copied} skipped {report.skipped}"
        )
        out.write(("\r" + line) if tty else (line + "\n"))
        if tty and report.done == report.total:
            out.write("\n")
        out.flush()

    return show


__all__ = [
    "CopyReport",
    "VerifyReport",
    "copy_files",
    "local_paths",
    "progress_bar",
    "row_paths",
    "verify_files",
]
