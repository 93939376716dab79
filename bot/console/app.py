"""``imagebot console``: the real core in the terminal, as one local user.

Reads one command per line (a prompt when standard input is a terminal); when input
ends, it waits for the jobs it started and exits, so sessions can be scripted.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.console.render import (
    ConsoleNotifier,
    render_balance,
    render_history,
    render_models,
    render_submitted,
)
from core.app import Core
from core.errors import ConfigurationError, UserFacingError, message_for
from core.generation.options import parse_options
from core.i18n import Msg, msg, render, set_language, t
from core.types import Actor, Conversation, GenerateRequest, InputImage, ReplyTarget


class ConsoleSession:
    """One local user typing commands."""

    def __init__(self, core: Core, *, out: TextIO | None = None) -> None:
        self.core = core
        self.out = out or sys.stdout
        user = getpass.getuser() or "local"
        self.actor = Actor("console", user, display_name=user)
        self.conversation = Conversation("console", "local", is_private=True)
        self.notifier = ConsoleNotifier(self.write, self.plain_copy)
        core.notifier.register("console", self.notifier)
        self.pending: set[str] = set()
        self._counter = 0

    def write(self, text: str) -> None:
        """Print a line and flush (scripts read it at once)."""
        print(text, file=self.out, flush=True)

    async def handle(self, line: str) -> bool:
        """Carry out one command line; False when the user wants to leave."""
        line = line.strip()
        if not line:
            return True
        command, _, rest = line.partition(" ")
        command = command.lower()
        try:
            if command in ("/quit", "/exit"):
                return False
            if command == "/help" or command == "/start":
                self.write(t("tg.console_help"))
            elif command in ("/imagine", "/edit"):
                await self._imagine(rest, require_images=command == "/edit")
            elif command == "/history":
                page = int(rest) if rest.strip().isdigit() else 1
                history = await self.core.history.page(self.actor, page)
                self.write(render_history(history, str(self.core.settings.data_dir)))
            elif command == "/balance":
                user = await self.core.users.register(self.actor)
                self.write(render_balance(await self.core.credits.balance(user.id)))
            elif command == "/settings":
                await self._settings(rest)
            elif command == "/models":
                self.write(render_models(self.core.generation.model_prices()))
            elif command == "/privacy":
                await self._privacy(rest)
            elif command == "/export":
                result = await self.core.privacy.export(self.actor, self.conversation)
                path = await self.plain_copy(result.path)
                self.write(t("console.export", size=result.size_bytes // 1024, path=path))
            elif command == "/delete_my_data":
                await self._erase(rest)
            elif command in ("/feedback", "/support"):
                ticket = await self.core.messages.submit(self.actor, command[1:], rest)
                key = (
                    "ticket.feedback_stored" if command == "/feedback" else "console.support_stored"
                )
                self.write(t(key, ticket_id=ticket.id))
            else:
                self.write(t("console.unknown", command=command[:30]))
        except UserFacingError as exc:
            self.write(t("console.sorry", message=render(exc.msg)))
        except ValueError:
            self.write(t("console.not_right"))
        return True

    async def _imagine(self, text: str, *, require_images: bool) -> None:
        generation = self.core.generation
        spec = generation.catalog.spec(generation.choose_model(None))
        parsed = parse_options(text, spec, extra=("ref", "mask"))
        inputs = tuple(self._read_image(p) for p in parsed.extra.get("ref", []))
        masks = parsed.extra.get("mask", [])
        mask = self._read_image(masks[0]) if masks else None
        if require_images and not inputs:
            self.write(t("console.sorry", message=t("console.edit_needs_ref")))
            return
        self._counter += 1
        request = GenerateRequest(
            actor=self.actor,
            conversation=self.conversation,
            prompt=parsed.prompt,
            options=parsed.options,
            idempotency_key=f"console:{self.actor.user_id}:{asyncio.get_running_loop().time()}:"
            f"{self._counter}",
            reply_target=ReplyTarget("console", "local"),
            inputs=inputs,
            mask=mask,
        )
        submitted = await self.core.generation.submit(request)
        self.pending.add(submitted.job.id)
        self.write(render_submitted(submitted))

    def _read_image(self, path: str) -> InputImage:
        file = Path(path).expanduser()
        try:
            size = file.stat().st_size
        except OSError:
            raise _UserPathError(msg("console.no_file", path=path)) from None
        if size > self.core.settings.max_input_bytes:
            raise _UserPathError(
                msg(
                    "console.file_too_large",
                    path=path,
                    size=size / 1e6,
                    limit=round(self.core.settings.max_input_bytes / 1e6),
                )
            )
        return InputImage(file.read_bytes(), "application/octet-stream", file.name)

    async def _settings(self, rest: str) -> None:
        parts = rest.split()
        names = {
            "format": "output_format",
            "size": "size",
            "quality": "quality",
            "n": "n",
            "background": "background",
            "model": "model",
        }
        if len(parts) == 2 and parts[0].lower() in names:
            value: object = parts[1]
            if names[parts[0].lower()] == "n" and parts[1].isdigit():
                value = int(parts[1])
            await self.core.users.update_settings(self.actor, **{names[parts[0].lower()]: value})
        elif parts:
            self.write(t("tg.console_settings_usage"))
            return
        current = await self.core.users.settings(self.actor)
        values = ", ".join(
            f"{k}={getattr(current, v) if getattr(current, v) is not None else 'default'}"
            for k, v in names.items()
        )
        self.write(t("console.settings", values=values))

    async def _privacy(self, rest: str) -> None:
        parts = rest.split()
        if len(parts) == 2 and parts[1].lower() in ("on", "off"):
            await self.core.privacy.set_consent(
                self.actor, self.conversation, parts[0], parts[1].lower() == "on"
            )
        overview = await self.core.privacy.overview(self.actor, self.conversation)
        policy = overview.policy
        args = {"version": policy.version, "date": policy.effective_date}
        lines = [
            t("privacy.policy_link", url=policy.url, **args)
            if policy.url
            else t("privacy.policy", **args)
        ]
        lines.append(t("privacy.stored_head"))
        lines += [f"  {render(item)}" for item in overview.stored_messages]
        lines.append(t("privacy.retention_head"))
        rows: Sequence[tuple[Msg | str, Msg | str]] = (
            overview.retention_messages or overview.retention
        )
        lines += [f"  {t('privacy.row', what=what, period=period)}" for what, period in rows]
        lines.append(t("console.switches"))
        for name in ("training_opt_in", "product_updates", "usage_analytics"):
            state = t("word.on" if getattr(overview.consents, name) else "word.off")
            lines.append(f"  {name}: {state}")
        self.write("\n".join(lines))

    async def _erase(self, rest: str) -> None:
        question = self.core.privacy.erasure_confirmation(self.conversation)
        if rest.strip().lower() != "confirm":
            self.write(f"{render(question.text)}\n{t('console.erase_confirm')}")
            return
        receipt = await self.core.privacy.erase(self.actor, self.conversation)
        self.pending.clear()
        self.write(render(receipt.message))

    async def plain_copy(self, path: str) -> str:
        """The path the local user can open: the stored file, or a decrypted copy of it
        under the data folder's ``console/`` when there is no plain local file (encrypted at
        rest, or an object store)."""
        local = self.core.files.local_path(path)
        if local is not None:
            return local
        target = Path(self.core.settings.data_dir) / "console" / path.replace("/", "_")
        data = await self.core.files.read(path)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(target.write_bytes, data)
        return str(target.resolve())

    async def wait_for_pending(self, timeout: float = 600.0) -> None:
        """Wait until every job this session started has finished."""
        async with asyncio.timeout(timeout):
            while self.pending - self.notifier.finished:
                self.notifier.changed.clear()
                await self.notifier.changed.wait()


class _UserPathError(UserFacingError):
    code = "invalid_path"


async def run_console(core: Core, *, stdin: TextIO | None = None) -> int:
    """Run the session until /quit or end of input."""
    stdin = stdin or sys.stdin
    set_language(core.users.default_language)  # the operator's language, for every line
    session = ConsoleSession(core)
    interactive = stdin.isatty()
    if core.locks is not None:
        await core.locks.hold_worker_slot()
    await core.worker.start(exclusive=core.exclusive_worker)
    if core.model.name == "demo":
        session.write(t("tg.console_demo"))
    else:
        warning = await core.model.check()
        if warning:
            session.write(t("tg.console_warning", text=warning))
        if core.generation.watch is not None:
            for item in await core.generation.watch.refresh():
                session.write(t("tg.console_warning", text=item.text))
        models = core.generation.offered_models() or ("none",)
        if len(models) > 1:
            session.write(t("tg.console_model_also", model=models[0], others=", ".join(models[1:])))
        else:
            session.write(t("tg.console_model", model=models[0]))
    status = await core.onboarding.status(session.actor)
    if status.state in ("new", "policy_changed"):
        policy = status.policy
        terms = {"version": policy.version, "date": policy.effective_date}
        if policy.url:
            session.write(t("tg.console_terms_link", url=policy.url, **terms))
        else:
            session.write(t("tg.console_terms", **terms))
        await core.onboarding.accept(session.actor)
    session.write(t("tg.console_type_help"))
    try:
        while True:
            if interactive:
                line = await asyncio.to_thread(_prompt_line, stdin)
            else:
                line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            try:
                if not await session.handle(line):
                    break
            except ConfigurationError as exc:
                session.write(str(exc))
            except Exception as exc:  # never a traceback in the user's face
                session.write(t("console.sorry", message=render(message_for(exc))))
        await session.wait_for_pending()
    finally:
        await core.aclose()
    return 0


def _prompt_line(stdin: TextIO) -> str:
    try:
        return input("> ") + "\n"
    except EOFError:
        return ""
