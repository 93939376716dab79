"""Nothing comes before the acknowledgement (issue #17): ``/imagine`` is deferred before
the adapter asks the database anything, its user's stored language included; that
language is looked up after the defer, and the answer still speaks it.

Structural, not timed: every SQL statement is recorded (SQLAlchemy's
``before_cursor_execute`` event on the real engine) with the task that sent it, and none
sent by the interaction's handling may come before the fake Discord received the defer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from discord.gateway import DiscordWebSocket
from sqlalchemy import event

from bot.discord.app import StampedKeepAlive
from core.types import Actor
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import answered, result
from tests.fakes.discord_server import FakeDiscord

OLEG = FakeDiscord.user(5353, "Oleg")


class StatementLog:
    """SQL statements as the engine sends them: when, and from which asyncio task."""

    def __init__(self, harness: DiscordHarness) -> None:
        self.engine = harness.database.engine.sync_engine
        self.sent: list[tuple[float, str]] = []

    def _record(self, *_args: Any) -> None:
        task = asyncio.current_task()
        self.sent.append((time.monotonic(), task.get_name() if task else "?"))

    def __enter__(self) -> StatementLog:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def handler_statements_between(self, start: float, end: float) -> list[str]:
        """Statements in ``[start, end)`` not sent by the job workers (``w-…`` tasks,
        which poll the queue on their own)."""
        return [name for at, name in self.sent if start <= at < end and not name.startswith("w-")]


async def test_imagine_is_deferred_before_any_database_statement_and_speaks_the_stored_language(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    assert bot.core is not None
    fake.locales[OLEG["id"]] = "uk"  # the client says Ukrainian; Oleg chose German
    await answered(await fake.slash("settings", {"language": "de"}, user=OLEG))
    bot.core.users.forget(Actor("discord", OLEG["id"]))  # his choice is only in the database

    with StatementLog(bot) as statements:
        interaction = await fake.slash(
            "imagine", {"prompt": "ein Fuchs"}, user=OLEG, guild_id=GUILD
        )
        made = await result(interaction, timeout=30)

    assert interaction.acked_at is not None
    before_defer = statements.handler_statements_between(
        interaction.dispatched_at, interaction.acked_at
    )
    assert before_defer == []
    # The first call the bot made for this interaction is its acknowledgement.
    mine = [r for r in fake.requests if interaction.token in r.path]
    assert mine[0].path.endswith("/callback")
    assert interaction.ack_type == 5  # deferred ("thinking…")
    # The stored choice was still found (after the defer) and applies to the answer.
    assert "1 Bild · 1 Credit · Guthaben" in made["content"]
    assert any(at > interaction.acked_at for at, _ in statements.sent)


async def test_the_gateway_heartbeat_is_measured_from_its_own_send(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    """A heartbeat ACK read before discord.py's heartbeat thread has run again (a busy
    process) is measured from that heartbeat, not from the previous one: no false
    "Can't keep up, websocket is 41.3s behind"."""
    assert bot.adapter is not None
    keep_alive = bot.adapter.bot._get_websocket(shard_id=0)._keep_alive
    assert isinstance(keep_alive, StampedKeepAlive)
    keep_alive._last_send = time.perf_counter() - 41.25  # the previous heartbeat
    keep_alive.get_payload()  # the thread hands the next one to the loop...
    keep_alive.ack()  # ...and the loop reads its ACK before the thread resumes
    assert keep_alive.latency < 5.0
    # And the gateway reader gives the loop a turn after each event (handlers defer while
    # the rest of a burst is read).
    assert getattr(DiscordWebSocket.poll_event, "yields", False)
