"""A busy Discord server is served, not refused: 100 members of one server, each in their
own channel, send /imagine at once; each is acknowledged within Discord's 3 seconds and
each gets an image, with the operator's default limits (a chat-wide request cap is the
server's own choice: /server rate)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from storage.database import Database
from tests.e2e.discord.conftest import GUILD, DiscordHarness, _harness
from tests.e2e.discord.support import result
from tests.fakes.discord_server import FakeDiscord

pytestmark = pytest.mark.slow

MEMBERS = 100


@pytest_asyncio.fixture
async def busy_bot(
    fake: FakeDiscord, database: Database, tmp_path: Path
) -> AsyncIterator[DiscordHarness]:
    """The Discord adapter with the shipped defaults of the chat limits (the test settings
    otherwise lift them) and enough credits."""
    async for harness in _harness(
        fake, database, tmp_path, rate_chat_burst=20, rate_chat_per_minute=30.0
    ):
        yield harness


async def test_100_members_of_one_server_all_acknowledged_in_time_and_delivered(
    busy_bot: DiscordHarness, fake: FakeDiscord
) -> None:
    members = [FakeDiscord.user(6_000_000 + i, f"member{i}") for i in range(MEMBERS)]
    interactions = await asyncio.gather(
        *(
            fake.slash(
                "imagine",
                {"prompt": f"a fox number {i}"},
                user=member,
                guild_id=GUILD,
                channel_id=str(910_000_000_000_000_000 + i),
            )
            for i, member in enumerate(members)
        )
    )
    finals = await asyncio.gather(*(result(ix, timeout=180) for ix in interactions))
    late = [
        (ix.id, ix.acked_at and ix.acked_at - ix.dispatched_at)
        for ix in interactions
        if ix.acked_at is None or ix.acked_at - ix.dispatched_at >= 3.0
    ]
    assert late == []
    refused = [m["content"] for m in finals if m["content"].startswith("⚠️")]
    assert refused == []
    assert all(m["attachments"] for m in finals)
