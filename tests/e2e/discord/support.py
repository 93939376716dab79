"""Small readers of what the fake Discord saw, shared by the Discord tests."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from sqlalchemy import text

from core.types import Actor
from storage.database import Database
from tests.fakes.discord_server import LOADING, FakeDiscord, FakeInteraction

_CUSTOM_ID = re.compile(r"ib:(?P<action>\w+):(?P<job>[0-9a-f]{16}):(?P<index>\d|a):(?P<owner>\d+)")


def settled(message: dict[str, Any] | None) -> bool:
    """True once a response shows a result (files and buttons) or an error."""
    if message is None or int(message["flags"]) & LOADING:
        return False
    if message["content"].startswith("⚠️"):
        return True
    return bool(message["attachments"]) and bool(message["components"])  # not a preview


async def result(interaction: FakeInteraction, timeout: float = 15.0) -> dict[str, Any]:
    """The original response once it shows a result or an error."""
    await interaction.wait(lambda i: settled(i.original), timeout)
    assert interaction.original is not None
    return interaction.original


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """Button label -> custom id (link buttons: label -> url)."""
    found = {}
    for row in message.get("components", []):
        for item in row.get("components", []):
            if item.get("type") == 2:
                found[item.get("label", "")] = item.get("custom_id") or item.get("url", "")
    return found


def job_of(message: dict[str, Any]) -> str:
    """The job id carried by a result's buttons."""
    for custom_id in buttons(message).values():
        match = _CUSTOM_ID.fullmatch(custom_id)
        if match:
            return match["job"]
    raise AssertionError(f"no job button on {message['id']}")


def message_payloads(fake: FakeDiscord) -> list[dict[str, Any]]:
    """Every message body the bot sent (answers, edits, follow-ups, channel posts)."""
    bodies = []
    for request in fake.requests:
        body = request.json
        if not isinstance(body, dict):
            continue
        if "/callback" in request.path:
            body = body.get("data") or {}
        if request.path.startswith(("/webhooks/", "/channels/", "/interactions/")):
            bodies.append(body)
    return bodies


def ephemeral_followups(interaction: FakeInteraction) -> list[dict[str, Any]]:
    """Follow-ups only the user sees."""
    return [m for m in interaction.followups if int(m["flags"]) & 64]


def actor(user: dict[str, Any]) -> Actor:
    """The core actor of a fake Discord user."""
    return Actor("discord", user["id"])


async def finished(core: Any, user: dict[str, Any], job_id: str, timeout: float = 10.0) -> None:
    """Until the job is final in the database (the worker records success just after the
    result was shown, so a press in between finds it still delivering)."""
    async with asyncio.timeout(timeout):
        while not (await core.generation.job(actor(user), job_id)).state.is_final:
            await asyncio.sleep(0.01)


async def answered(interaction: FakeInteraction, timeout: float = 10.0) -> dict[str, Any]:
    """The original response once it shows an answer (not "thinking…")."""

    def done(i: FakeInteraction) -> bool:
        message = i.original
        return bool(
            message is not None
            and not int(message["flags"]) & LOADING
            and (message["content"] or message["attachments"])
        )

    await interaction.wait(done, timeout)
    assert interaction.original is not None
    return interaction.original


async def audit_log(db: Database) -> list[dict[str, Any]]:
    """Every row of the audit log, oldest first (``details`` decoded)."""
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM audit_log ORDER BY id"))).mappings().all()
    found = [dict(r) for r in rows]
    for row in found:
        if isinstance(row["details"], str):  # SQLite returns JSON as text to raw SQL
            row["details"] = json.loads(row["details"])
    return found
