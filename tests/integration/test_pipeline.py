"""The life of a job on real databases with the demo model: submit, run, deliver, pay."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from core.errors import InsufficientCredits, InvalidRequest, NotFound
from core.types import Delivered, Failed, JobState, PartialImage, Started
from storage.database import Database
from tests.helpers import actor, image_input, make_core, png, request


async def test_P02_generation_is_stored_with_prompt_options_and_outputs(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path)
    try:
        sub = await core.generation.submit(request(prompt="a red fox in snow", quality="low"))
        assert sub.created and sub.job.state is JobState.QUEUED
        assert sub.job.queue_position == 1
        await core.worker.run_until_idle()
        final = await notes.wait_final(sub.job.id)
        assert isinstance(final, Delivered)
        kinds = [type(e) for e in notes.for_job(sub.job.id)]
        assert kinds[0] is Started and kinds[-1] is Delivered
        page = await core.history.page(actor())
        assert page.total == 1
        item = page.items[0]
        assert item.state is JobState.SUCCEEDED
        assert item.prompt == "a red fox in snow"
        assert item.options["quality"] == "low" and item.options["size"] == "1024x1024"
        assert len(item.outputs) == 1
        with Image.open(Path(final.absolute_paths[0])) as img:
            assert img.size == (1024, 1024)
        balance = await core.credits.balance(core_user(sub))
        assert balance.available == 20 - sub.job.cost and balance.held == 0
    finally:
        await core.aclose()


def core_user(sub: object) -> int:
    """The stored user id is 1 for the first user of a fresh database."""
    return 1


async def test_P24_edit_with_reference_images_stores_them(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path)
    try:
        refs = (image_input(png(300, 200, (0, 0, 255))), image_input(png(100, 100)))
        sub = await core.generation.submit(request(prompt="make it watercolor", inputs=refs))
        assert sub.job.kind == "edit"
        await core.worker.run_until_idle()
        assert isinstance(await notes.wait_final(sub.job.id), Delivered)
        view = await core.generation.job(actor(), sub.job.id)
        assert [i.width for i in view.inputs] == [300, 100]
        assert len(view.outputs) == 1
    finally:
        await core.aclose()


async def test_redelivered_event_makes_no_second_job(database: Database, tmp_path: Path) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        first = await core.generation.submit(request(key="tg:update:77"))
        again = await core.generation.submit(request(key="tg:update:77"))
        assert first.created and not again.created
        assert again.job.id == first.job.id
        assert again.balance == first.balance
    finally:
        await core.aclose()


async def test_insufficient_credits_refused_without_charge(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path, free_credits=3)
    try:
        with pytest.raises(InsufficientCredits) as info:
            await core.generation.submit(request(n=4))  # the demo costs 1 credit an image
        # The core names the price; each adapter adds how to buy where it sells (not the console).
        assert "This costs" in info.value.user_message and "/buy" not in info.value.user_message
        assert (await core.credits.balance(1)).available == 3
        assert (await core.history.page(actor())).total == 0
    finally:
        await core.aclose()


async def test_invalid_options_name_what_is_accepted(database: Database, tmp_path: Path) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        with pytest.raises(InvalidRequest) as info:
            await core.generation.submit(request(size="999x999"))
        assert "1024x1024" in info.value.user_message
        with pytest.raises(InvalidRequest):
            await core.generation.submit(request(prompt="   \u200b\u202e  "))
    finally:
        await core.aclose()


async def test_another_users_job_is_not_found(database: Database, tmp_path: Path) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        sub = await core.generation.submit(request(actor("1")))
        with pytest.raises(NotFound):
            await core.generation.job(actor("2"), sub.job.id)
        with pytest.raises(NotFound):
            await core.history.download(actor("2"), sub.job.id)
    finally:
        await core.aclose()


async def test_partials_are_streamed_as_progress(database: Database, tmp_path: Path) -> None:
    core, notes = await make_core(database, tmp_path, partial_images=2)
    try:
        sub = await core.generation.submit(request())
        await core.worker.run_until_idle()
        events = notes.for_job(sub.job.id)
        partials = [e for e in events if isinstance(e, PartialImage)]
        assert len(partials) == 2
        assert isinstance(events[-1], Delivered)
    finally:
        await core.aclose()


async def test_failed_job_releases_credits(database: Database, tmp_path: Path) -> None:
    class Broken:
        name = "broken"
        notice = ""

        async def run(self, call):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom with secret text")
            yield  # pragma: no cover

        async def check(self) -> None:
            return None

        async def aclose(self) -> None:
            return None

    core, notes = await make_core(database, tmp_path, model=Broken())
    try:
        sub = await core.generation.submit(request())
        await core.worker.run_until_idle()
        final = await notes.wait_final(sub.job.id)
        assert isinstance(final, Failed)
        assert final.refunded == sub.job.cost
        assert "boom" not in final.message and "secret" not in final.message
        assert (await core.credits.balance(1)).available == 20
        view = await core.generation.job(actor(), sub.job.id)
        assert view.state is JobState.FAILED
    finally:
        await core.aclose()
