"""Promises proven through Telegram that the other Telegram tests do not name: a minimal
profile (P01), training material only from those who opted in (P03), logs without
prompts or tokens (P14), and data encrypted at rest behind a working bot (P18)."""

from __future__ import annotations

import base64
import io
import logging
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import String, Text, select, text

from bot.logs import configure_logging
from storage.database import Database
from storage.schema import Base
from tests.e2e.telegram.conftest import TOKEN, launch
from tests.e2e.telegram.test_privacy import _button
from tests.fakes.telegram_server import FakeTelegram


async def _imagine(telegram, person, prompt: str) -> None:  # type: ignore[no-untyped-def]
    mark = telegram.mark()
    person.say(f"/imagine {prompt} --quality low")
    await telegram.result(person.chat.id, after=mark)


async def test_P01_a_telegram_user_is_stored_with_a_minimal_profile(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram = await launch(database, tmp_path, fake_telegram)
    try:
        ada = await telegram.person("Ada")
        await _imagine(telegram, ada, "a paper boat")
        async with database.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM users"))).mappings().one()
            texts = []
            for table in Base.metadata.sorted_tables:
                columns = [c for c in table.columns if isinstance(c.type, String | Text)]
                if columns:
                    for values in (await conn.execute(select(*columns))).all():
                        texts += [v for v in values if isinstance(v, str)]
        assert row["platform"] == "telegram" and row["platform_user_id"] == str(ada.id)
        assert row["display_name"] == "Ada" and row["locale"] == "en"
        # The Telegram username, the chat's details and the token are stored nowhere.
        assert ada.user.username and not any(ada.user.username in t for t in texts)
        assert not any(TOKEN in t for t in texts)
    finally:
        await telegram.stop()


async def test_P03_training_material_comes_only_from_users_who_opted_in(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram = await launch(database, tmp_path, fake_telegram)
    try:
        fake, core = telegram.fake, telegram.core
        ada, bob = await telegram.person("Ada"), await telegram.person("Bob")
        await _imagine(telegram, ada, "a kite over dunes")
        await _imagine(telegram, bob, "a private sketch")
        mark = telegram.mark()
        ada.say("/privacy")
        answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        current = fake.message(ada.chat.id, answer.result["message_id"])
        assert current is not None
        await fake.wait_answer(ada.press(current, _button(current, "⬜ Model improvement")))
        material = await core.privacy.training_material()
        assert [prompt for _, prompt, _ in material] == ["a kite over dunes"]
    finally:
        await telegram.stop()


async def test_P14_logs_of_a_telegram_session_carry_ids_not_prompts_or_tokens(
    database: Database,
    tmp_path: Path,
    fake_telegram: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    telegram = await launch(database, tmp_path, fake_telegram)
    try:
        ada = await telegram.person("Ada")
        await _imagine(telegram, ada, "quokka-55e selfie at noon")
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "job=" in logged
        assert "quokka" not in logged and TOKEN not in logged and "Ada" not in logged
    finally:
        await telegram.stop()


async def test_P18_with_a_key_a_telegram_bot_stores_only_ciphertext(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    telegram = await launch(database, tmp_path, fake_telegram, encryption_key=key)
    try:
        fake = telegram.fake
        ada = await telegram.person("Ada")
        mark = telegram.mark()
        ada.say("/imagine heron-7c1 in fog --quality low")
        result = await telegram.result(ada.chat.id, after=mark)
        # The user got a real image, decrypted on the way out...
        uploads = [f.data for f in result.files.values() if f.data]
        assert uploads and not any(u[:4] in (b"IBE1", b"IBE2") for u in uploads)
        with Image.open(io.BytesIO(uploads[0])) as image:
            image.verify()
        # ...while the disk and the database hold only ciphertext.
        for path in (tmp_path / "data").rglob("*"):
            if path.is_file():
                assert path.read_bytes().startswith(b"IBE2"), path
        async with database.engine.connect() as conn:
            prompt = (await conn.execute(text("SELECT prompt FROM jobs"))).scalar_one()
        assert prompt.startswith("enc1:") and "heron" not in prompt
        # The export the user downloads is readable.
        mark = telegram.mark()
        ada.say("/export")
        document = await fake.wait_call("sendDocument", chat_id=ada.chat.id, after=mark)
        with zipfile.ZipFile(io.BytesIO(document.files["document"].data or b"")) as archive:
            assert "heron-7c1" in archive.read("jobs.json").decode()
    finally:
        await telegram.stop()
