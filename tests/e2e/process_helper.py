"""A separate imagebot process for the multi-process tests: ``python -m
tests.e2e.process_helper <verb> <json>`` builds the core from the environment (like
``imagebot run``) and prints one JSON line.

- ``submit {"users": [...], "chat": "g" | null, "count": n, "inputs": bool}``: submit
  ``count`` requests for each user (a reference image when ``inputs``), at once;
  prints accepted and refused counts (refusals by scope).
- ``read {"user": "u"}``: the user's history (every full-resolution image read back) and
  an export; prints what it found.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import zipfile
from dataclasses import replace
from typing import Any

from bot.wiring import build_core
from core.errors import RateLimited
from core.settings import load_settings
from core.types import Conversation
from tests.helpers import actor, image_input, png, request


async def submit(args: dict[str, Any]) -> dict[str, Any]:
    core = await build_core(load_settings(), migrate=False)
    accepted, refused = 0, {"you": 0, "chat": 0}
    try:
        chat = args.get("chat")
        conversation = Conversation("test", chat, is_private=False, group_id=chat) if chat else None

        async def one(user: str, n: int) -> None:
            nonlocal accepted
            inputs = (image_input(png(40, 30)),) if args.get("inputs") else ()
            req = request(actor(user, f"user {user}"), f"a fox {n}", inputs=inputs)
            req = replace(req, idempotency_key=f"{args.get('tag', 'p')}:{user}:{n}")
            if conversation is not None:
                req = replace(req, conversation=conversation)
            try:
                await core.generation.submit(req)
                accepted += 1
            except RateLimited as exc:
                refused["chat" if "this chat" in exc.user_message else "you"] += 1

        await asyncio.gather(*(one(u, n) for u in args["users"] for n in range(int(args["count"]))))
    finally:
        await core.aclose()
    return {"accepted": accepted, "refused": refused}


async def read(args: dict[str, Any]) -> dict[str, Any]:
    core = await build_core(load_settings(), migrate=False)
    try:
        who = actor(args["user"], f"user {args['user']}")
        page = await core.history.page(who)
        images = []
        for item in page.items:
            _, data = await core.history.download(who, item.id, 0)
            images.append(len(data) if data.startswith(b"\x89PNG") else -1)
        dm = Conversation("test", f"dm-{args['user']}", is_private=True)
        result = await core.privacy.export(who, dm)
        with zipfile.ZipFile(io.BytesIO(await core.files.read(result.path))) as zf:
            names = zf.namelist()
    finally:
        await core.aclose()
    return {
        "states": [v.state.value for v in page.items],
        "images": images,
        "export_images": sorted(n for n in names if n.startswith("images/")),
        "export_path": result.path,
    }


def main() -> None:
    verb, raw = sys.argv[1], sys.argv[2]
    handler = {"submit": submit, "read": read}[verb]
    print(json.dumps(asyncio.run(handler(json.loads(raw)))))


if __name__ == "__main__":
    main()
