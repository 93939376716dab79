"""Busy servers are served: a chat-wide request cap only where the chat's admins or the
operator choose one; the per-group sending budget (Telegram's rate) never exceeded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.clock import ManualClock
from core.errors import InvalidRequest, RateLimited
from core.types import Conversation
from storage.database import Database
from tests.helpers import actor, make_core, request


async def test_P17_group_request_cap_only_where_chosen_and_send_slots_shared(
    database: Database, tmp_path: Path
) -> None:
    """A busy group is served by default; the operator's platform cap and the chat's own
    cap refuse; send slots keep any sliding minute within the platform's per-group rate."""
    clock = ManualClock()
    core, _ = await make_core(
        database, tmp_path, clock=clock, rate_chat_burst=3, rate_chat_per_minute=3
    )
    group = Conversation("test", "g-1", is_private=False, group_id="g-1")
    try:
        for i in range(10):  # ten members, no chat cap by default
            who = actor(str(2000 + i), f"m{i}")
            await core.generation.submit(replace(request(who), conversation=group))
        await core.safety.set_chat_control("test", "g-1", by="test:op", requests_per_minute=2)
        with pytest.raises(RateLimited) as info:
            for i in range(3):
                await core.generation.submit(
                    replace(request(actor(str(3000 + i), f"n{i}")), conversation=group)
                )
        assert "this chat has" in info.value.user_message
        for bad in (0, -1, 10_001):
            with pytest.raises(InvalidRequest):
                await core.safety.set_chat_control(
                    "test", "g-1", by="test:op", requests_per_minute=bad
                )
        # The operator's cap for a platform (IMAGEBOT_RATE_CHAT_PLATFORMS).
        core.safety.config = replace(core.safety.config, chat_platforms=frozenset({"test"}))
        other = Conversation("test", "g-2", is_private=False, group_id="g-2")
        with pytest.raises(RateLimited):
            for i in range(4):
                await core.generation.submit(
                    replace(request(actor(str(4000 + i), f"o{i}")), conversation=other)
                )
        # Send slots: 20 a minute at most in any sliding minute.
        sent: list[float] = []
        t = 0.0
        while t < 180:
            if await core.safety.send_slot("telegram", "-100", limit=20) == 0:
                sent.append(t)
            clock.advance(seconds=0.5)
            t += 0.5
        assert len(sent) >= 50
        for i, start in enumerate(sent):
            assert len([s for s in sent[i:] if s < start + 60]) <= 20
    finally:
        await core.aclose()
