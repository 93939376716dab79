"""Small builders shared by tests."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

from PIL import Image

from bot.wiring import build_core
from core.app import Core
from core.generation.ports import ImageModel
from core.ports import Clock
from core.types import (
    Actor,
    Conversation,
    GenerateOptions,
    GenerateRequest,
    InputImage,
    ReplyTarget,
)
from storage.database import Database
from tests.conftest import make_settings
from tests.fakes.notifier import RecordingNotifier

_keys = itertools.count(1)


def actor(user_id: str = "1001", name: str = "Ada Lovelace") -> Actor:
    """A test user on the 'test' platform."""
    return Actor("test", user_id, display_name=name, locale="en")


def request(
    who: Actor | None = None,
    prompt: str = "a red fox in snow",
    *,
    key: str | None = None,
    inputs: tuple[InputImage, ...] = (),
    mask: InputImage | None = None,
    **options: Any,
) -> GenerateRequest:
    """A generation request from ``who`` with a unique idempotency key unless given."""
    who = who or actor()
    return GenerateRequest(
        actor=who,
        conversation=Conversation("test", f"chat-{who.user_id}"),
        prompt=prompt,
        options=GenerateOptions(**options),
        idempotency_key=key or f"test:{next(_keys)}",
        reply_target=ReplyTarget("test", f"chat-{who.user_id}"),
        inputs=inputs,
        mask=mask,
    )


def png(width: int = 64, height: int = 64, color: tuple[int, ...] = (200, 30, 30)) -> bytes:
    """A small PNG."""
    buf = io.BytesIO()
    mode = "RGBA" if len(color) == 4 else "RGB"
    Image.new(mode, (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def image_input(data: bytes | None = None, name: str = "ref.png") -> InputImage:
    """An attachment as an adapter would hand it to core."""
    return InputImage(data or png(), "image/png", name)


async def make_core(
    db: Database,
    tmp_path: Path,
    *,
    model: ImageModel | None = None,
    clock: Clock | None = None,
    **settings: Any,
) -> tuple[Core, RecordingNotifier]:
    """A core on ``db`` with a recording notifier for the 'test' platform."""
    settings.setdefault("partial_images", 0)
    core = await build_core(
        make_settings(tmp_path, db, **settings),
        model=model,
        clock=clock,
        database=db,
        migrate=False,
        poll_interval=0.05,
    )
    notifier = RecordingNotifier()
    core.notifier.register("test", notifier)
    return core, notifier
