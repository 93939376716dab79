"""/gallery through Discord: a link button in an ephemeral reply, the persistent Gallery
button under /history and results (each presser gets a link of their own), and the answer
when the operator has set no public URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.generation import SignInRefused
from core.types import Actor
from storage.database import Database
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import buttons, result
from tests.fakes.discord_server import FakeDiscord

ADA = FakeDiscord.user(4242, "Ada")
BOB = FakeDiscord.user(4343, "Bob")
BASE = "https://bot.example.net"


@pytest_asyncio.fixture
async def served(
    fake: FakeDiscord, database: Database, tmp_path: Path
) -> AsyncIterator[DiscordHarness]:
    harness = DiscordHarness(fake, database, tmp_path, {"public_url": BASE})
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def user_id(harness: DiscordHarness, discord_id: int) -> int:
    assert harness.core is not None
    found = await harness.core.credits.user_for(Actor("discord", str(discord_id)))
    assert found is not None
    return found


async def test_gallery_link_is_ephemeral_and_signs_in_its_owner_once(
    fake: FakeDiscord, served: DiscordHarness
) -> None:
    assert served.core is not None
    ix = await fake.slash("gallery", user=ADA, guild_id=GUILD)
    await ix.wait(lambda i: i.original is not None and "private gallery" in i.original["content"])
    assert ix.ephemeral and ix.original is not None
    url = buttons(ix.original)["Open my gallery"]
    assert url.startswith(f"{BASE}/gallery/signin/") and len(url) <= 512
    token = url.rsplit("/", 1)[1]
    grant = await served.core.gallery_access.exchange_link(token)
    assert grant.user_id == await user_id(served, ADA["id"]) and grant.via == "link"
    with pytest.raises(SignInRefused):
        await served.core.gallery_access.exchange_link(token)
    assert "gallery" in {c["name"] for c in fake.commands[None]}


async def test_gallery_buttons_under_results_and_history(
    fake: FakeDiscord, served: DiscordHarness
) -> None:
    assert served.core is not None
    made = await result(await fake.slash("imagine", {"prompt": "a fox"}, user=ADA, guild_id=GUILD))
    assert "Gallery" in buttons(made)
    # Bob presses the button under Ada's result: he gets a link to his own gallery.
    press = await fake.press(made, buttons(made)["Gallery"], user=BOB)
    await press.wait(
        lambda i: i.original is not None and "private gallery" in i.original["content"]
    )
    assert press.ephemeral and press.original is not None
    token = buttons(press.original)["Open my gallery"].rsplit("/", 1)[1]
    grant = await served.core.gallery_access.exchange_link(token)
    assert grant.user_id == await user_id(served, BOB["id"])

    history = await fake.slash("history", user=ADA, guild_id=GUILD)
    await history.wait(lambda i: i.original is not None and "History" in i.original["content"])
    assert history.original is not None and "Gallery" in buttons(history.original)


async def test_without_a_public_url_gallery_says_what_to_set(
    fake: FakeDiscord, bot: DiscordHarness
) -> None:
    made = await result(await fake.slash("imagine", {"prompt": "a fox"}, user=ADA, guild_id=GUILD))
    assert "Gallery" not in buttons(made)
    ix = await fake.slash("gallery", user=ADA, guild_id=GUILD)
    await ix.wait(
        lambda i: i.original is not None and "IMAGEBOT_PUBLIC_URL" in i.original["content"]
    )
    assert ix.original is not None and not buttons(ix.original)


async def test_a_spanish_user_gets_the_gallery_link_and_buttons_in_spanish(
    fake: FakeDiscord, served: DiscordHarness
) -> None:
    fake.locales[BOB["id"]] = "es-ES"
    ix = await fake.slash("gallery", user=BOB, guild_id=GUILD)
    await ix.wait(lambda i: i.original is not None and "galería privada" in i.original["content"])
    assert ix.original is not None and "**Tu galería privada**" in ix.original["content"]
    assert "`/gallery`" in ix.original["content"]  # the command stays as typed
    assert buttons(ix.original)["Abrir mi galería"].startswith(f"{BASE}/gallery/signin/")
    made = await result(await fake.slash("imagine", {"prompt": "un zorro"}, user=BOB))
    assert "Galería" in buttons(made) and "Gallery" not in buttons(made)
