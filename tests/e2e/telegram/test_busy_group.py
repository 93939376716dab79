"""A busy Telegram group is served, not refused: 60 members' /imagine within the group's
window all get their image, and the bot never posts more than Telegram's per-group rate
(the fake counts every message and edit per group and refuses the excess with a 429).

Time is scaled twenty-fold so the test takes seconds, not minutes: the fake allows 20
messages per 3 s in one group (Telegram: about 20 a minute) and the bot's pacer is given
the same window; the requests all arrive within that window (Telegram: within a minute).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storage.database import Database
from tests.e2e.telegram.conftest import launch
from tests.fakes.telegram_server import FakeTelegram

pytestmark = pytest.mark.slow

LIMIT, WINDOW = 20, 3.0
MEMBERS = 60


async def test_60_requests_in_one_group_all_delivered_within_the_group_rate(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    fake = fake_telegram
    fake.enforce_group_rate(LIMIT, WINDOW)
    telegram = await launch(database, tmp_path, fake, telegram_rate_limit=True, require_terms=False)
    try:
        pacer = telegram.adapter.runtime.outbox.pacer
        assert pacer is not None and pacer.limit == 20 and pacer.window == 60
        pacer.window = WINDOW
        group = fake.group("Busy artists")
        people = [await telegram.person(f"m{i}", accepted=False) for i in range(MEMBERS)]
        for i, person in enumerate(people):  # a burst: all of them at once
            person.say(f"/imagine a fox number {i} --quality low", chat=group)

        def results() -> list[object]:
            return [
                c
                for c in fake.calls
                if c.chat_id == group.id
                and c.ok
                and c.method == "sendPhoto"
                and any(data.startswith("rr:") for _, data in c.buttons())
            ]

        await fake.wait_for(
            lambda: True if len(results()) >= MEMBERS else None,
            timeout=MEMBERS * 3 * WINDOW / LIMIT + 60,
            what="60 results",
        )
        # None refused: no rate-limit answer, no error text, every member has a result.
        texts = [c.text for c in fake.calls if c.chat_id == group.id and c.ok]
        assert not any("Slow down" in t or "Sorry" in t for t in texts)
        assert len(results()) == MEMBERS
        for person in people:  # the job is marked done just after its result went out
            for _ in range(100):
                page = await telegram.core.history.page(person.actor)
                if [v.state.value for v in page.items] == ["succeeded"]:
                    break
                await asyncio.sleep(0.05)
            assert [v.state.value for v in page.items] == ["succeeded"]
        # Never above the group's rate, and Telegram never had to refuse anything.
        assert fake.group_refusals == []
        assert fake.max_group_sends(group.id, WINDOW) <= LIMIT
        assert pacer.waited > 0  # the pacer did hold messages back
    finally:
        await telegram.stop()
