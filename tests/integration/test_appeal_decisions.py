"""Operators decide privacy appeals (P12; issue 18, item 10): audited, told to the user in
a DM, once only; granting an appeal against a refused erasure erases. SQLite and
PostgreSQL; the CLI verb on SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.cli import _operator, _parser
from core.admin.service import NotAnOperator
from core.app import Core
from core.errors import InvalidRequest, NotFound
from core.privacy.service import PrivacyRequestRefused
from core.types import Actor, Announcement, Conversation
from storage.database import Database
from tests.conftest import make_settings
from tests.fakes.notifier import RecordingNotifier
from tests.helpers import actor, make_core

DM = Conversation("test", "dm-1001", is_private=True)
OPERATOR = Actor("test", "999", "Olga")


async def refused_and_appealed(core: Core, database: Database, who: Actor) -> int:
    """An erasure refused during a dispute, then appealed; returns the request number."""
    user_id = (await core.users.register(who)).id
    async with database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE credit_accounts SET frozen = TRUE WHERE user_id = :u"), {"u": user_id}
        )
    with pytest.raises(PrivacyRequestRefused) as info:
        await core.privacy.erase(who, DM)
    await core.privacy.appeal(who, DM, info.value.request_id, "the dispute was my bank's error")
    return info.value.request_id


async def audit_rows(database: Database) -> list[tuple[str, str, str, int | None]]:
    async with database.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT actor, action, reason, subject_user_id FROM audit_log "
                "WHERE action LIKE 'appeal_%' ORDER BY id"
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def dms(notes: RecordingNotifier, user: str = "1001") -> list[str]:
    return [
        e.text
        for t, e in notes.events
        if isinstance(e, Announcement) and t.chat_id == user and t.extra.get("dm") == "1"
    ]


async def test_P12_a_denied_appeal_is_audited_and_told_once(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path, admins="test:999")
    try:
        number = await refused_and_appealed(core, database, actor())
        # Only operators decide; a reason is required; unknown numbers are refused.
        with pytest.raises(NotAnOperator):
            await core.admin.decide_appeal(actor("2"), number, grant=True, reason="why not")
        with pytest.raises(InvalidRequest):
            await core.admin.decide_appeal(OPERATOR, number, grant=False, reason="   ")
        for wrong in (10**12, 2**63, 0, -1):
            with pytest.raises(NotFound):
                await core.admin.decide_appeal(OPERATOR, wrong, grant=False, reason="no such")
            with pytest.raises(InvalidRequest):  # the user's side, the same huge numbers
                await core.privacy.appeal(actor(), DM, wrong, "mine?")
        assert await audit_rows(database) == []

        decision, told = await core.admin.decide_appeal(
            OPERATOR, number, grant=False, reason="The chargeback is still open at the bank."
        )
        assert decision.decision == "denied" and told and decision.receipt is None
        [message] = dms(notes)
        assert f"request {number}" in message and "upheld the refusal" in message
        assert "The chargeback is still open at the bank." in message
        user_id = await core.credits.user_for(actor())
        assert await audit_rows(database) == [
            ("test:999", "appeal_deny", "The chargeback is still open at the bank.", user_id)
        ]
        assert await core.privacy.open_appeals() == []
        [logged] = [r for r in await core.privacy.requests(actor(), DM) if r.id == number]
        assert logged.appeal_status == "denied"

        # A second decision (a double click, another operator) changes nothing.
        with pytest.raises(NotFound):
            await core.admin.decide_appeal(OPERATOR, number, grant=True, reason="changed my mind")
        assert len(dms(notes)) == 1 and len(await audit_rows(database)) == 1
        assert user_id is not None  # still there
    finally:
        await core.aclose()


async def test_P08_P12_a_granted_erasure_appeal_erases_and_says_so(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path, admins="test:999")
    try:
        number = await refused_and_appealed(core, database, actor())
        decision, told = await core.admin.decide_appeal(
            OPERATOR, number, grant=True, reason="The bank confirmed the dispute is withdrawn."
        )
        assert decision.decision == "granted" and told
        assert decision.receipt is not None
        assert await core.credits.user_for(actor()) is None  # erased
        [message] = dms(notes)
        assert "granted" in message and "withdrawn" in message
        assert f"Request number {decision.receipt.request_id}" in message
        [(who, action, _, _subject)] = await audit_rows(database)
        assert (who, action) == ("test:999", "appeal_grant")
        log = await core.privacy.requests(actor(), DM)  # kept, unlinked, after erasure
        assert {r.id: r.appeal_status for r in log}[number] == "granted"
    finally:
        await core.aclose()


async def test_two_operators_deciding_at_once_decide_once(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path, admins="test:999,test:998")
    try:
        number = await refused_and_appealed(core, database, actor())
        results = await asyncio.gather(
            core.admin.decide_appeal(OPERATOR, number, grant=False, reason="first"),
            core.admin.decide_appeal(Actor("test", "998"), number, grant=False, reason="second"),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["NotFound", "tuple"]
        assert len(await audit_rows(database)) == 1 and len(dms(notes)) == 1
    finally:
        await core.aclose()


async def test_the_cli_verb_decides_and_reports(
    sqlite_only: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = sqlite_only
    core, _ = await make_core(database, tmp_path)
    try:
        number = await refused_and_appealed(core, database, actor())
    finally:
        await core.aclose()
    settings = make_settings(tmp_path, database)
    with pytest.raises(SystemExit):
        _parser().parse_args(
            ["appeals", "decide", str(number), "--grant", "--deny", "--reason", "x"]
        )
    args = _parser().parse_args(
        ["appeals", "decide", str(number), "--deny", "--reason", "Still disputed."]
    )
    assert await _operator(settings, args) == 0
    out = capsys.readouterr()
    assert f"appeal #{number} denied" in out.out and "audit log" in out.out
    assert "could not be reached" in out.err  # no platform configured for 'test'
    assert await _operator(settings, args) == 1  # decided already
    assert "no open appeal" in capsys.readouterr().err
    assert await audit_rows(database) == [("cli:" + _user(), "appeal_deny", "Still disputed.", 1)]
    listing = _parser().parse_args(["appeals"])
    assert await _operator(settings, listing) == 0
    assert "no open appeals" in capsys.readouterr().out


def _user() -> str:
    import getpass
    import os

    return os.environ.get("USER") or getpass.getuser()
