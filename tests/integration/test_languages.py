"""The language choice is stored like every other setting: per user, in /export, erased
with the rest (P07, P08); a server language is stored with the server's controls; nothing
is stored for someone who has not started."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from core.errors import InvalidRequest
from core.types import Actor, Conversation
from storage.database import Database
from tests.helpers import actor, make_core

DM = Conversation("test", "dm-1001", is_private=True)


async def test_P07_P08_the_chosen_language_is_exported_and_erased(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        who = actor()
        assert await core.users.language(Actor("test", "1001", locale="pt-br")) == "pt-BR"
        assert await core.users.set_language(who, "UK") == "uk"
        await core.users.update_settings(who, quality="high")  # keeps the language
        assert (await core.users.settings(who)).language == "uk"
        assert await core.users.language(Actor("test", "1001", locale="es")) == "uk"

        result = await core.privacy.export(who, DM)
        with zipfile.ZipFile(io.BytesIO(Path(result.absolute_path).read_bytes())) as zf:
            settings = json.loads(zf.read("settings.json"))
        assert settings[0]["language"] == "uk"

        await core.privacy.erase(who, DM)
        back = Actor("test", "1001", locale="es")
        assert await core.users.language(back) == "es"
        assert (await core.users.settings(back)).language is None
    finally:
        await core.aclose()


async def test_languages_the_bot_lacks_are_refused_and_nothing_is_stored_before_start(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path, default_language="de")
    try:
        stranger = Actor("test", "777", locale="zz")
        assert await core.users.language(stranger) == "de"  # IMAGEBOT_DEFAULT_LANGUAGE
        assert await core.credits.user_for(stranger) is None  # looking up stores nothing
        for forged in ("klingon", "../../etc", "x" * 5000, "pt-BR; DROP TABLE users"):
            with pytest.raises(InvalidRequest) as info:
                await core.users.set_language(actor(), forged)
            assert "pt-BR" in info.value.user_message
        assert await core.users.set_language(actor(), "default") is None
    finally:
        await core.aclose()


async def test_a_server_language_is_kept_with_the_server_controls(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        control = await core.safety.set_chat_control("test", "guild-1", by="test:9", language="fr")
        assert control.language == "fr"
        control = await core.safety.set_chat_control("test", "guild-1", by="test:9", enabled=False)
        assert control.language == "fr" and not control.enabled  # other switches keep it
        assert (await core.safety.chat_control("test", "guild-1")).language == "fr"
        with pytest.raises(InvalidRequest):
            await core.safety.set_chat_control("test", "guild-1", by="test:9", language="xx")
        control = await core.safety.set_chat_control("test", "guild-1", by="test:9", language=None)
        assert control.language is None
    finally:
        await core.aclose()
