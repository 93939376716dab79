"""Models come and go (issue 14): several models on several providers, users who choose
theirs, the provider followed (shutdown dates, vanished models), refused options that cost
nothing and are no longer offered, and prices that stay what they were quoted.

Everything runs against loopback OpenAI fakes through the real SDK, on real databases.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.app import Core
from core.clock import ManualClock
from core.errors import InvalidRequest
from core.types import Announcement, Delivered, Failed, GenerateOptions
from storage.database import Database
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import actor, image_input, make_core, request

KEY = "sk-test-models-0123456789"
LOCAL_KEY = "sk-local-server-abcdef0123"

LOCAL_MODEL_TOML = """
[models."local-flux"]
label = "Local Flux"
provider = "openai"
sizes = ["1024x1024", "1536x1024"]
auto_size = false
qualities = ["low", "high"]
backgrounds = ["auto", "opaque"]
streaming = false
max_inputs = 4
moderation = false
defaults = { quality = "low" }
prices = { low = 2, high = 5 }
"""


async def catalog_core(
    db: Database, tmp_path: Path, fake: FakeOpenAI, **settings: object
) -> tuple[Core, RecordingNotifier]:
    settings.setdefault("provider_max_retries", 0)
    return await make_core(
        db,
        tmp_path,
        image_provider="openai",
        openai_api_key=KEY,
        openai_base_url=fake.base_url,
        **settings,
    )


async def finish(core: Core, notes: RecordingNotifier, job_id: str) -> Delivered | Failed:
    await core.worker.run_until_idle()
    return await notes.wait_final(job_id)


async def test_two_models_on_two_providers_used_by_two_users_in_one_run(
    database: Database,
    tmp_path: Path,
    openai_fake: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with FakeOpenAI(known_models=("local-flux",)) as local:
        local.accepted_keys = {LOCAL_KEY}
        openai_fake.accepted_keys = {KEY}
        monkeypatch.setenv("LOCAL_FLUX_KEY", LOCAL_KEY)
        catalog_file = tmp_path / "models.toml"
        catalog_file.write_text(LOCAL_MODEL_TOML)
        enabled = json.dumps(
            [
                "gpt-image-2",
                {
                    "model": "local-flux",
                    "base_url": local.base_url,
                    "api_key_env": "LOCAL_FLUX_KEY",
                },
            ]
        )
        core, notes = await catalog_core(
            database, tmp_path, openai_fake, models=enabled, models_file=catalog_file
        )
        try:
            ada, bob = actor("2001", "Ada"), actor("2002", "Bob")
            assert core.generation.offered_models() == ("gpt-image-2", "local-flux")
            # Bob makes local-flux his default in /settings; Ada keeps the operator's default.
            saved = await core.users.update_settings(bob, model="Local Flux")
            assert saved.model == "local-flux"
            first = await core.generation.submit(request(ada, quality="high"))
            second = await core.generation.submit(request(bob, quality="high"))
            # Ada asks for the other model for one image with --model.
            third = await core.generation.submit(request(ada, model="local-flux"))
            assert first.job.options["model"] == "gpt-image-2" and first.job.cost == 16
            assert second.job.options["model"] == "local-flux" and second.job.cost == 5
            assert third.job.options["model"] == "local-flux"
            assert third.job.options["quality"] == "low" and third.job.cost == 2
            for sub in (first, second, third):
                assert isinstance(await finish(core, notes, sub.job.id), Delivered)
            main_models = [r.get("model") for r in openai_fake.image_requests]
            local_models = [r.get("model") for r in local.image_requests]
            assert main_models == ["gpt-image-2"]
            assert local_models == ["local-flux", "local-flux"]
            # Each provider got its own key, and the catalog's "no moderation field".
            assert all(
                r.headers["Authorization"] == f"Bearer {LOCAL_KEY}" for r in local.image_requests
            )
            assert all(r.get("moderation") is None for r in local.image_requests)
            assert openai_fake.image_requests[0].get("moderation") == "auto"
            # History shows the model each job ran with.
            page = await core.history.page(ada, 1)
            assert sorted(str(j.options["model"]) for j in page.items) == [
                "gpt-image-2",
                "local-flux",
            ]
            # A model that is not enabled is refused, naming those that are.
            with pytest.raises(InvalidRequest) as err:
                await core.generation.submit(request(ada, model="gpt-image-1-mini"))
            assert "gpt-image-2, local-flux" in err.value.user_message
            assert local.errors == []
        finally:
            await core.aclose()


async def test_past_shutdown_date_moves_saved_settings_to_successor_and_is_not_offered(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    clock = ManualClock(datetime(2026, 11, 20, 12, tzinfo=UTC))
    openai_fake.set_models({"gpt-image-2": None, "gpt-image-1.5": "2026-12-01"})
    core, notes = await catalog_core(
        database,
        tmp_path,
        openai_fake,
        clock=clock,
        models="gpt-image-1.5,gpt-image-2",
        admins="test:9000",
    )
    try:
        user = actor("3001", "Cleo")
        await core.users.update_settings(user, model="gpt-image-1.5", quality="high")
        watch = core.generation.watch
        assert watch is not None
        warnings = await watch.refresh()
        assert any("2026-12-01" in w.text for w in warnings)
        # 11 days before: the operators' 14-day notice, once.
        operator_dms = [
            e for t, e in notes.events if isinstance(e, Announcement) and t.chat_id == "9000"
        ]
        assert len(operator_dms) == 1 and "gpt-image-1.5" in operator_dms[0].text
        await watch.refresh()
        assert len([e for t, e in notes.events if t.chat_id == "9000"]) == 1
        metrics = core.metrics.render().decode()  # type: ignore[attr-defined]
        # 2026-12-01T00:00:00Z
        assert 'imagebot_model_shutdown_timestamp_seconds{model="gpt-image-1.5"} 1.7960832e+09' in (
            metrics
        )
        # Still offered before the date; a queued job keeps model and price.
        queued = await core.generation.submit(request(user))
        assert queued.job.options["model"] == "gpt-image-1.5" and queued.job.cost == 14

        clock.advance(days=9)  # 2026-11-29: the 3-day notice, once
        await watch.refresh()
        await watch.refresh()
        operator_dms = [e for t, e in notes.events if t.chat_id == "9000"]
        assert len(operator_dms) == 2 and "in 2 days" in operator_dms[1].text  # type: ignore[union-attr]

        clock.advance(days=3)  # 2026-12-02: past the provider's shutdown date
        openai_fake.set_models({"gpt-image-2": None})  # and then gone from the list
        await asyncio.gather(watch.refresh(), watch.refresh())  # two checks racing
        assert core.generation.offered_models() == ("gpt-image-2",)
        assert (await core.users.settings(user)).model == "gpt-image-2"
        told = [e for t, e in notes.events if isinstance(e, Announcement) and t.chat_id == "3001"]
        assert len(told) == 1 and "gpt-image-2" in told[0].text
        await watch.refresh()  # told once
        assert len([e for t, e in notes.events if t.chat_id == "3001"]) == 1
        with pytest.raises(InvalidRequest):
            await core.generation.submit(request(user, model="gpt-image-1.5-typo"))
        # The job queued before runs on the successor at the price it was quoted.
        final = await finish(core, notes, queued.job.id)
        assert isinstance(final, Delivered) and final.cost == 14
        assert openai_fake.image_requests[-1].get("model") == "gpt-image-2"
        assert core.generation.quote(GenerateOptions(), "gpt-image-1.5") == 4
        new = await core.generation.submit(request(user, quality="low"))
        assert new.job.options["model"] == "gpt-image-2" and new.job.cost == 1
    finally:
        await core.aclose()


async def test_a_model_the_provider_no_longer_knows_is_never_offered(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    openai_fake.set_models({"gpt-image-2": None})
    core, _ = await catalog_core(
        database, tmp_path, openai_fake, models="gpt-image-2,gpt-image-1-mini"
    )
    try:
        assert core.generation.watch is not None
        warnings = await core.generation.watch.refresh()
        assert any("no longer knows" in w.text and "gpt-image-1-mini" in w.text for w in warnings)
        assert core.generation.offered_models() == ("gpt-image-2",)
        with pytest.raises(InvalidRequest):
            await core.generation.submit(request(model="gpt-image-1-mini"))
        with pytest.raises(InvalidRequest):
            await core.users.update_settings(actor(), model="gpt-image-1-mini")
    finally:
        await core.aclose()


async def test_P06_transparent_refused_by_the_provider_costs_nothing_and_is_not_offered_again(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    openai_fake.refuse_option("gpt-image-2", "background", "transparent")
    core, notes = await catalog_core(database, tmp_path, openai_fake)
    try:
        user = actor()
        assert "transparent" in core.generation.catalog.spec("gpt-image-2").backgrounds
        sub = await core.generation.submit(request(user, background="transparent"))
        assert sub.job.cost == 4
        final = await finish(core, notes, sub.job.id)
        assert isinstance(final, Failed) and final.refunded
        assert final.code == "option_refused"
        assert "transparent" in final.message and "background" in final.message
        assert "auto, opaque" in final.message  # what to use instead
        user_id = (await core.users.register(user)).id
        balance = await core.credits.balance(user_id)
        assert balance.available == 20 and balance.held == 0  # zero credits spent
        sent = openai_fake.image_requests[0].json
        assert sent is not None and sent["background"] == "transparent"
        # The running catalog learned it: no longer offered, refused before any charge.
        assert "transparent" not in core.generation.catalog.spec("gpt-image-2").backgrounds
        with pytest.raises(InvalidRequest) as err:
            await core.generation.submit(request(user, background="transparent"))
        assert "auto, opaque" in err.value.user_message
        assert len(openai_fake.image_requests) == 1
        # Other backgrounds still work.
        ok = await core.generation.submit(request(user, background="opaque"))
        assert isinstance(await finish(core, notes, ok.job.id), Delivered)
    finally:
        await core.aclose()


async def test_a_refused_operator_field_is_dropped_for_the_next_job(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    openai_fake.refuse_option("gpt-image-2", "moderation")
    core, notes = await catalog_core(database, tmp_path, openai_fake, image_moderation="low")
    try:
        sub = await core.generation.submit(request())
        final = await finish(core, notes, sub.job.id)
        assert isinstance(final, Failed) and final.refunded and "moderation" in final.message
        again = await core.generation.submit(request())
        assert isinstance(await finish(core, notes, again.job.id), Delivered)
        assert openai_fake.image_requests[0].get("moderation") == "low"
        assert openai_fake.image_requests[1].get("moderation") is None
    finally:
        await core.aclose()


async def test_operator_catalog_file_overrides_a_price(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    catalog_file = tmp_path / "prices.toml"
    catalog_file.write_text('[models."gpt-image-2".prices]\nmedium = 7\n')
    core, notes = await catalog_core(database, tmp_path, openai_fake, models_file=catalog_file)
    try:
        sub = await core.generation.submit(request(quality="medium"))
        assert sub.job.cost == 7
        # The fields not overridden keep the shipped values.
        assert core.generation.quote(GenerateOptions(quality="high")) == 16
        prices = dict((name, row) for name, _, row in core.generation.model_prices())
        assert prices["gpt-image-2"]["medium"] == 7
        final = await finish(core, notes, sub.job.id)
        assert isinstance(final, Delivered) and final.cost == 7
    finally:
        await core.aclose()


async def test_output_compression_and_input_fidelity_only_where_taken(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await catalog_core(
        database,
        tmp_path,
        openai_fake,
        models="gpt-image-2,gpt-image-1.5",
        output_compression=80,
        input_fidelity="high",
    )
    try:
        jpeg = await core.generation.submit(request(prompt="p-jpeg", output_format="jpeg"))
        png_job = await core.generation.submit(request(prompt="p-png", output_format="png"))
        edit2 = await core.generation.submit(request(prompt="p-edit2", inputs=(image_input(),)))
        edit15 = await core.generation.submit(
            request(prompt="p-edit15", inputs=(image_input(),), model="gpt-image-1.5")
        )
        for sub in (jpeg, png_job, edit2, edit15):
            assert isinstance(await finish(core, notes, sub.job.id), Delivered)
        reqs = {r.get("prompt"): r for r in openai_fake.image_requests}
        assert str(reqs["p-jpeg"].get("output_compression")) == "80"
        assert reqs["p-png"].get("output_compression") is None
        assert reqs["p-edit2"].get("input_fidelity") is None  # gpt-image-2 does not take it
        assert reqs["p-edit15"].get("input_fidelity") == "high"
        assert reqs["p-edit2"].get("moderation") is None  # the edit form has no such field
        assert reqs["p-png"].get("moderation") == "auto"
    finally:
        await core.aclose()


async def test_a_queued_job_keeps_its_price_when_the_catalog_changes(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    catalog_file = tmp_path / "prices.toml"
    catalog_file.write_text('[models."gpt-image-2".prices]\nmedium = 3\n')
    core, _ = await catalog_core(database, tmp_path, openai_fake, models_file=catalog_file)
    try:
        sub = await core.generation.submit(request(quality="medium"))
        assert sub.job.cost == 3
    finally:
        await core.aclose()
    # The operator raises the price and restarts while the job is still queued.
    catalog_file.write_text('[models."gpt-image-2".prices]\nmedium = 9\n')
    core, notes = await catalog_core(database, tmp_path, openai_fake, models_file=catalog_file)
    try:
        assert core.generation.quote(GenerateOptions(quality="medium")) == 9
        final = await finish(core, notes, sub.job.id)
        assert isinstance(final, Delivered) and final.cost == 3 and final.balance == 17
    finally:
        await core.aclose()


async def test_hostile_model_choices_are_refused_before_any_charge(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, _ = await catalog_core(database, tmp_path, openai_fake, models="gpt-image-2,demo")
    try:
        user = actor()
        for bad in ("x" * 100_000, "gpt-image-2\u202e", "../../etc/passwd", "gpt-image-1", " "):
            with pytest.raises(InvalidRequest):
                await core.users.update_settings(user, model=bad.strip() or "\u200b")
            with pytest.raises(InvalidRequest):
                await core.generation.submit(request(user, model=bad.strip() or "\u200b"))
        assert (await core.users.settings(user)).model is None
        assert openai_fake.image_requests == []
        # "default" resets the choice.
        await core.users.update_settings(user, model="demo")
        assert (await core.users.settings(user)).model == "demo"
        await core.users.update_settings(user, model="default")
        assert (await core.users.settings(user)).model is None
    finally:
        await core.aclose()
