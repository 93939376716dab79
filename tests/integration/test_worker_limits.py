"""The worker pool's global and per-user limits, and the file store's guarantees."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import InvalidImage
from core.generation.ports import ModelCall, ModelEvent, ModelImage
from storage.database import Database
from storage.files.local import LocalFileStore
from tests.helpers import actor, make_core, png, request


class CountingModel:
    """Records how many calls run at once, overall and per user hash."""

    name = "counting"
    notice = ""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.now: Counter[str] = Counter()
        self.peak_total = 0
        self.peak_user: Counter[str] = Counter()

    async def run(self, call: ModelCall) -> AsyncIterator[ModelEvent]:
        self.now[call.user_hash] += 1
        self.peak_total = max(self.peak_total, sum(self.now.values()))
        self.peak_user[call.user_hash] = max(
            self.peak_user[call.user_hash], self.now[call.user_hash]
        )
        try:
            await asyncio.sleep(self.delay)
            yield ModelImage(png(32, 32), "image/png")
        finally:
            self.now[call.user_hash] -= 1

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def test_global_and_per_user_concurrency_limits_hold(
    database: Database, tmp_path: Path
) -> None:
    model = CountingModel()
    core, notes = await make_core(
        database,
        tmp_path,
        model=model,
        worker_concurrency=3,
        per_user_concurrency=1,
        free_credits=100,
    )
    try:
        subs = []
        for who in ("a", "b", "c", "d"):
            for i in range(4):
                subs.append(await core.generation.submit(request(actor(who), f"{who}{i}")))
        await core.worker.start(exclusive=core.exclusive_worker)
        for sub in subs:
            await notes.wait_final(sub.job.id, timeout=30)
        assert model.peak_total == 3
        assert max(model.peak_user.values()) == 1
    finally:
        await core.aclose()


async def test_file_store_keeps_one_folder_per_user_and_checks_content(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "data")
    item = await store.write_image(7, "jobs/abc/output-0", png(40, 30))
    assert item.path == "users/7/jobs/abc/output-0.png"
    assert (item.width, item.height, item.content_type) == (40, 30, "image/png")
    assert store.user_files(7) == [item.path]
    assert not list((tmp_path / "data" / "users" / "7" / "jobs" / "abc").glob(".tmp-*"))
    with pytest.raises(InvalidImage):
        await store.write_image(7, "jobs/abc/output-1", b"<html>not an image</html>")
    with pytest.raises(ValueError):
        await store.write_image(7, "../../etc/passwd", png())
    with pytest.raises(ValueError):
        await store.read("../outside.txt")
    assert await store.delete_user(7) == 1
    assert store.user_files(7) == []
