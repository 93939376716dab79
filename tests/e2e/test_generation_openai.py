"""The whole pipeline against the OpenAI fake through the real SDK: what the user pays,
sees and gets back in each case the provider can answer with."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from core.app import Core
from core.errors import InvalidImage
from core.types import Delivered, Failed, JobState, PartialImage, Started
from storage.database import Database
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import actor, image_input, make_core, png, request

KEY = "sk-test-pipeline-0123456789"


async def openai_core(
    db: Database, tmp_path: Path, fake: FakeOpenAI, **settings: object
) -> tuple[Core, RecordingNotifier]:
    settings.setdefault("provider_max_retries", 2)
    return await make_core(
        db,
        tmp_path,
        image_provider="openai",
        openai_api_key=KEY,
        openai_base_url=fake.base_url,
        **settings,
    )


async def run(core: Core, notes: RecordingNotifier, job_id: str) -> Delivered | Failed:
    await core.worker.run_until_idle()
    return await notes.wait_final(job_id)


async def test_generation_is_paid_and_delivered(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await openai_core(database, tmp_path, openai_fake)
    try:
        sub = await core.generation.submit(request(size="1536x1024", quality="medium"))
        assert sub.job.cost == 6  # 4 credits a square image, times 1.5 for the area
        final = await run(core, notes, sub.job.id)
        assert isinstance(final, Delivered) and final.cost == 6 and final.balance == 14
        with Image.open(final.absolute_paths[0]) as img:
            assert img.size == (1536, 1024)
        body = openai_fake.image_requests[0].json
        assert body is not None
        assert body["model"] == "gpt-image-2" and body["size"] == "1536x1024"
        assert body["quality"] == "medium" and body["prompt"] == "a red fox in snow"
    finally:
        await core.aclose()


async def test_P24_edit_with_two_references_and_a_mask(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await openai_core(database, tmp_path, openai_fake)
    try:
        first = image_input(png(512, 512, (0, 0, 255)), "first.png")
        second = image_input(png(256, 256, (0, 255, 0)), "second.png")
        mask = image_input(png(512, 512, (0, 0, 0, 0)), "mask.png")
        sub = await core.generation.submit(
            request(prompt="make it watercolor", inputs=(first, second), mask=mask)
        )
        final = await run(core, notes, sub.job.id)
        assert isinstance(final, Delivered)
        sent = openai_fake.image_requests[0]
        assert sent.path.endswith("/images/edits")
        images = sent.files_named("image[]", "image")
        assert len(images) == 2
        with Image.open(io.BytesIO(images[0][3])) as img:
            assert img.size == (512, 512)
        masks = sent.files_named("mask")
        assert len(masks) == 1
        with Image.open(io.BytesIO(masks[0][3])) as img:
            assert img.size == (512, 512) and img.mode == "RGBA"
        view = await core.generation.job(actor(), sub.job.id)
        assert view.kind == "edit" and len(view.inputs) == 3
    finally:
        await core.aclose()


async def test_streaming_partials_reach_the_user_before_the_result(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await openai_core(database, tmp_path, openai_fake, partial_images=2)
    try:
        sub = await core.generation.submit(request())
        final = await run(core, notes, sub.job.id)
        assert isinstance(final, Delivered)
        events = notes.for_job(sub.job.id)
        partials = [e for e in events if isinstance(e, PartialImage)]
        assert [p.index for p in partials] == [0, 1]
        assert events.index(partials[-1]) < events.index(final)
        assert openai_fake.image_requests[0].get("stream") in (True, "true")
    finally:
        await core.aclose()


async def test_rate_limit_with_retry_after_then_success(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await openai_core(database, tmp_path, openai_fake)
    try:
        openai_fake.fail_next(
            429, code="rate_limit_exceeded", type="requests", headers={"retry-after-ms": "20"}
        )
        sub = await core.generation.submit(request())
        final = await run(core, notes, sub.job.id)
        assert isinstance(final, Delivered)
        assert len(openai_fake.image_requests) == 2
        assert openai_fake.image_requests[1].headers.get("x-stainless-retry-count") == "1"
    finally:
        await core.aclose()


async def test_repeated_server_errors_fail_the_job_and_return_the_credits(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await openai_core(database, tmp_path, openai_fake)
    try:
        openai_fake.fail_next(500, headers={"retry-after-ms": "10"}, times=10)
        sub = await core.generation.submit(request())
        assert (await core.credits.balance(1)).held == sub.job.cost
        final = await run(core, notes, sub.job.id)
        assert isinstance(final, Failed)
        assert final.code == "provider_unavailable" and final.refunded == sub.job.cost
        assert "credits were returned" in final.message
        assert len(openai_fake.image_requests) == 3  # the first try and two retries
        balance = await core.credits.balance(1)
        assert (balance.available, balance.held) == (20, 0)
        assert (await core.generation.job(actor(), sub.job.id)).state is JobState.FAILED
    finally:
        await core.aclose()


async def test_moderation_blocked_costs_nothing(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await openai_core(database, tmp_path, openai_fake)
    try:
        openai_fake.refuse_next(categories=("violence",))
        sub = await core.generation.submit(request(prompt="something the provider refuses"))
        final = await run(core, notes, sub.job.id)
        assert isinstance(final, Failed)
        assert final.code == "content_refused" and "violence" in final.message
        assert "Nothing was charged" in final.message
        assert (await core.credits.balance(1)).available == 20
        view = await core.generation.job(actor(), sub.job.id)
        assert view.state is JobState.REJECTED
        assert len(openai_fake.image_requests) == 1  # a refusal is never retried
    finally:
        await core.aclose()


async def test_invalid_request_gets_a_precise_message_and_no_charge(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await openai_core(database, tmp_path, openai_fake)
    try:
        openai_fake.fail_next(
            400,
            code="invalid_value",
            type="invalid_request_error",
            param="quality",
            message="Invalid value for quality.",
        )
        sub = await core.generation.submit(request())
        final = await run(core, notes, sub.job.id)
        assert isinstance(final, Failed) and final.code == "provider_rejected"
        assert "quality" in final.message
        assert (await core.credits.balance(1)).available == 20
    finally:
        await core.aclose()


async def test_unknown_model_is_reported_at_start_up(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, _ = await openai_core(database, tmp_path, openai_fake, image_model="gpt-image-9")
    try:
        warning = await core.model.check()
        assert warning is not None and "gpt-image-9" in warning
    finally:
        await core.aclose()


async def test_P21_provider_sees_a_pseudonymous_hash_never_the_platform_identity(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await openai_core(database, tmp_path, openai_fake)
    who = actor("7771234", "Grace Hopper")
    try:
        a = await core.generation.submit(request(who, "a moth in a relay"))
        b = await core.generation.submit(
            request(who, "make it blue", inputs=(image_input(name="grace-hopper-7771234.png"),))
        )
        await core.worker.run_until_idle()
        await notes.wait_final(a.job.id)
        await notes.wait_final(b.job.id)
        hashes = {r.get("user") for r in openai_fake.image_requests}
        assert len(hashes) == 1
        (user_hash,) = hashes
        assert user_hash and user_hash.startswith("u_") and "7771234" not in user_hash
        for r in openai_fake.image_requests:
            wire = r.body + json.dumps(r.headers).encode()
            for f in r.files:
                wire += f[1].encode()
            assert b"7771234" not in wire and b"Grace" not in wire and b"Hopper" not in wire
        # The same person gets the same hash on every request; another person another one.
        other = await core.generation.submit(request(actor("5"), "a compiler"))
        await core.worker.run_until_idle()
        await notes.wait_final(other.job.id)
        assert openai_fake.image_requests[-1].get("user") != user_hash
    finally:
        await core.aclose()


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("notes.png", b"just some text, not an image\n" * 10, "PNG, JPEG, WebP"),
        ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (21 * 1024 * 1024), "limit"),
    ],
)
async def test_hostile_reference_costs_nothing_and_stores_nothing(
    database: Database,
    tmp_path: Path,
    openai_fake: FakeOpenAI,
    name: str,
    data: bytes,
    words: str,
) -> None:
    core, _ = await openai_core(database, tmp_path, openai_fake)
    try:
        with pytest.raises(InvalidImage) as info:
            await core.generation.submit(
                request(prompt="edit this", inputs=(image_input(data, name),))
            )
        assert words in info.value.user_message
        assert (await core.credits.balance(1)).available == 20
        assert core.files.user_files(1) == []
        assert (await core.history.page(actor())).total == 0
        assert openai_fake.image_requests == []
    finally:
        await core.aclose()


async def test_one_users_fifty_jobs_do_not_starve_another_users_one(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await openai_core(
        database,
        tmp_path,
        openai_fake,
        free_credits=500,
        max_queued_per_user=60,
        worker_concurrency=2,
        per_user_concurrency=2,
    )
    try:
        heavy = [
            await core.generation.submit(request(actor("heavy"), f"job {i}", quality="low"))
            for i in range(50)
        ]
        light = await core.generation.submit(request(actor("light"), "just one", quality="low"))
        assert light.job.queue_position == 2  # behind heavy's first job only
        await core.worker.start(exclusive=core.exclusive_worker)
        await asyncio.wait_for(notes.wait_final(light.job.id), 30)
        # Claim order is what fairness decides (delivery order also depends on timing):
        # the light user's job starts within the first round, not after heavy's fifty.
        started = [e.job_id for _, e in notes.events if isinstance(e, Started)]
        assert light.job.id in started[:3], started.index(light.job.id)
        for sub in heavy:
            await notes.wait_final(sub.job.id, timeout=60)
    finally:
        await core.aclose()
