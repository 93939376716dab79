"""Acknowledgements before work (``bot.discord.respond.AcksFirst``): work after a defer
waits while another interaction of the burst still waits for its defer, and goes ahead
once all are answered and the gateway has been quiet; never longer than ``MAX_HOLD``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot.discord import respond


@dataclass
class Arrival:
    """What AcksFirst reads of a discord.py Interaction: its id."""

    id: int


def _as_interaction(arrival: Arrival) -> Any:
    return arrival


async def test_work_waits_for_the_other_defers_then_goes_ahead() -> None:
    acks = respond.AcksFirst()
    first, second = Arrival(1), Arrival(2)
    acks.arrived(_as_interaction(first))
    acks.arrived(_as_interaction(second))
    acks.answered(_as_interaction(first))  # the first deferred; its work may not start yet

    held = asyncio.create_task(acks.hold())
    await asyncio.sleep(respond.QUIET * 2)
    assert not held.done()  # the second still waits for its defer

    acks.answered(_as_interaction(second))
    await asyncio.wait_for(held, respond.MAX_HOLD)


async def test_an_interaction_that_never_defers_holds_no_longer_than_max_hold() -> None:
    acks = respond.AcksFirst()
    acks.arrived(_as_interaction(Arrival(3)))  # failed before its defer: never answered
    await asyncio.wait_for(acks.hold(), respond.MAX_HOLD * 3)


async def test_nothing_waiting_and_a_quiet_gateway_holds_nothing() -> None:
    acks = respond.AcksFirst()
    await asyncio.wait_for(acks.hold(), respond.QUIET)
