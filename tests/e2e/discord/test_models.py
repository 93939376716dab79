"""Choosing a model on Discord (issue 14): the ``model`` option of /imagine and /settings
(choices from the running catalog), the model in the quote and the history, prices in
/help, against the OpenAI fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bot.discord.cogs.imagine import model_choices
from storage.database import Database
from tests.e2e.discord.conftest import GUILD, DiscordHarness, _harness
from tests.e2e.discord.support import actor, job_of, result
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI

ADA = FakeDiscord.user(5151, "Ada")


@pytest_asyncio.fixture
async def models_bot(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> AsyncIterator[DiscordHarness]:
    async for harness in _harness(
        fake,
        sqlite_db,
        tmp_path,
        image_provider="openai",
        openai_api_key="sk-test-discord-models-1",
        openai_base_url=openai_fake.base_url,
        models="gpt-image-2,gpt-image-1-mini",
        provider_max_retries=0,
    ):
        yield harness


async def test_model_option_settings_and_help(
    models_bot: DiscordHarness, fake: FakeDiscord, openai_fake: FakeOpenAI
) -> None:
    core = models_bot.core
    assert core is not None
    [sync] = fake.requests_to("PUT", r"^/applications/\d+/commands$")
    by_name = {c["name"]: c for c in sync.json}
    for command in ("imagine", "edit", "settings"):
        option = {o["name"]: o for o in by_name[command]["options"]}["model"]
        assert option["type"] == 3 and option["autocomplete"] is True
    # The choices follow the running catalog.
    assert [c.value for c in await model_choices(core, "")] == ["gpt-image-2", "gpt-image-1-mini"]
    assert [c.name for c in await model_choices(core, "mini")] == [
        "GPT Image 1 mini (gpt-image-1-mini)"
    ]

    help_ix = await fake.slash("help", user=ADA, guild_id=GUILD)
    await help_ix.wait(lambda i: i.acked)
    assert "GPT Image 1 mini (`gpt-image-1-mini`): low 1 · medium 2" in help_ix.original["content"]

    change = await fake.slash("settings", {"model": "gpt-image-1-mini"}, user=ADA, guild_id=GUILD)
    await change.wait(lambda i: i.original and "defaults" in i.original["content"])
    assert "Model: **gpt-image-1-mini**" in change.original["content"]
    assert "costs 2 credits on gpt-image-1-mini" in change.original["content"]

    ix = await fake.slash("imagine", {"prompt": "a kite"}, user=ADA, guild_id=GUILD)
    message = await result(ix)
    job = await core.generation.job(actor(ADA), job_of(message))
    assert job.options["model"] == "gpt-image-1-mini" and job.cost == 2

    ix = await fake.slash(
        "imagine", {"prompt": "a kite", "model": "gpt-image-2"}, user=ADA, guild_id=GUILD
    )
    message = await result(ix)
    job = await core.generation.job(actor(ADA), job_of(message))
    assert job.options["model"] == "gpt-image-2" and job.cost == 4
    assert [r.get("model") for r in openai_fake.image_requests] == [
        "gpt-image-1-mini",
        "gpt-image-2",
    ]

    history = await fake.slash("history", user=ADA, guild_id=GUILD)
    await history.wait(lambda i: i.original and "History" in (i.original["content"] or ""))
    assert "gpt-image-2" in history.original["content"]
    assert "gpt-image-1-mini" in history.original["content"]

    refused = await fake.slash(
        "imagine", {"prompt": "a kite", "model": "dall-e-9"}, user=ADA, guild_id=GUILD
    )
    await refused.wait(lambda i: i.original and "dall-e-9" in (i.original["content"] or ""))
    assert "gpt-image-2, gpt-image-1-mini" in refused.original["content"]
    assert len(openai_fake.image_requests) == 2


async def test_the_price_table_and_the_chosen_model_speak_the_users_language(
    models_bot: DiscordHarness, fake: FakeDiscord
) -> None:
    olha = FakeDiscord.user(5353, "Olha")
    fake.locales[olha["id"]] = "uk"
    help_ix = await fake.slash("help", user=olha, guild_id=GUILD)
    await help_ix.wait(lambda i: i.acked)
    text = help_ix.original["content"]
    assert "**Моделі та ціни** (кредитів за зображення 1024×1024" in text
    assert "GPT Image 1 mini (`gpt-image-1-mini`): low 1 · medium 2" in text
    assert "-# Оберіть опцією `model` команди `/imagine`" in text
    assert "Models and prices" not in text
    change = await fake.slash("settings", {"model": "gpt-image-1-mini"}, user=olha)
    await change.wait(
        lambda i: i.original and "Модель: **gpt-image-1-mini**" in i.original["content"]
    )
    assert "коштує 2 кредити на моделі gpt-image-1-mini" in change.original["content"]
    made = await result(await fake.slash("imagine", {"prompt": "кіт"}, user=olha))
    assert "gpt-image-1-mini" in made["content"] or made.get("attachments")
