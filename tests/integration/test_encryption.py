"""Encryption at rest (P18) and TLS to every outside service by default."""

from __future__ import annotations

import base64
import io
import os
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text

from core.errors import ConfigurationError
from core.settings import Settings
from core.types import Conversation, Delivered
from storage.database import Database
from storage.files.local import LocalFileStore
from tests.helpers import actor, image_input, make_core, png, request

DM = Conversation("test", "dm", is_private=True)
PROMPT = "okapi-91c sipping tea in a greenhouse"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


async def test_P18_images_and_prompts_are_encrypted_at_rest_and_keys_rotate(
    database: Database, tmp_path: Path
) -> None:
    first_key = new_key()
    core, notes = await make_core(database, tmp_path, encryption_key=first_key)
    try:
        sub = await core.generation.submit(
            request(prompt=PROMPT, inputs=(image_input(png(64, 48)),))
        )
        await core.worker.run_until_idle()
        final = await notes.wait_final(sub.job.id)
        assert isinstance(final, Delivered)
        await core.messages.submit(actor(), "feedback", f"about {PROMPT}")
        # On disk: no image magic, no prompt text.
        data_dir = tmp_path / "data"
        for path in data_dir.rglob("*"):
            if path.is_file():
                raw = path.read_bytes()
                assert raw.startswith(b"IBE2"), path
                assert b"\x89PNG" not in raw[:64] and b"okapi" not in raw
        async with database.engine.connect() as conn:
            stored = (await conn.execute(text("SELECT prompt FROM jobs"))).scalar_one()
            feedback = (await conn.execute(text("SELECT text FROM feedback_messages"))).scalar_one()
        assert stored.startswith("enc1:") and "okapi" not in stored
        assert feedback.startswith("enc1:")
        if database.is_sqlite:
            db_file = Path(database.url.split("///", 1)[1])
            assert b"okapi" not in db_file.read_bytes()
        # Through the service everything reads as plain: history, download, export.
        page = await core.history.page(actor())
        assert page.items[0].prompt == PROMPT
        image, blob = await core.history.download(actor(), sub.job.id)
        assert blob.startswith(b"\x89PNG") and image.width == 1024
        export = await core.privacy.export(actor(), DM)
        assert Path(export.absolute_path).read_bytes().startswith(b"IBE2")
        with zipfile.ZipFile(io.BytesIO(await core.files.read(export.path))) as zf:
            assert any(PROMPT in zf.read(n).decode() for n in zf.namelist() if n.endswith(".json"))
    finally:
        await core.aclose()

    # Rotation: a new key, the old one kept for reading, then everything rewritten.
    second_key = new_key()
    rotating = Settings(
        _env_file=None,
        database_url=database.url,
        data_dir=tmp_path / "data",  # type: ignore[call-arg]
        encryption_key=second_key,
        encryption_old_keys=first_key,
    )
    cipher = rotating.data_cipher()
    assert cipher is not None
    database.engine.dialect.imagebot_cipher = cipher  # type: ignore[attr-defined]
    assert await database.reencrypt() >= 2
    assert await LocalFileStore(tmp_path / "data", cipher).reencrypt_all() >= 3
    core, _ = await make_core(database, tmp_path, encryption_key=second_key)
    try:
        page = await core.history.page(actor())
        assert page.items[0].prompt == PROMPT  # readable without the old key
        _, blob = await core.history.download(actor(), sub.job.id)
        assert blob.startswith(b"\x89PNG")
    finally:
        await core.aclose()
    database.engine.dialect.imagebot_cipher = None  # type: ignore[attr-defined]


def test_P18_a_wrong_key_is_refused_not_silently_misread(tmp_path: Path) -> None:
    store_key = new_key()
    settings = Settings(_env_file=None, encryption_key=store_key)  # type: ignore[call-arg]
    cipher = settings.data_cipher()
    assert cipher is not None
    blob = cipher.encrypt(b"secret image")
    other = Settings(_env_file=None, encryption_key=new_key()).data_cipher()  # type: ignore[call-arg]
    assert other is not None
    with pytest.raises(ConfigurationError):
        other.decrypt(blob)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ConfigurationError):
        cipher.decrypt(tampered)


def test_P18_every_outside_service_defaults_to_tls() -> None:
    """With no base URL configured, every client library talks HTTPS/WSS."""
    import discord.gateway
    import discord.http
    import openai
    import stripe
    import telegram

    assert str(openai.AsyncOpenAI(api_key="sk-test-x").base_url).startswith("https://")
    assert discord.http.Route.BASE.startswith("https://")
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY).startswith("wss://")
    assert stripe.api_base.startswith("https://")
    assert telegram.Bot("123456:" + "A" * 35).base_url.startswith("https://")
