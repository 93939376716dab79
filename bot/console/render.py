"""Turning job events and replies into lines on the terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace

from core.types import (
    Announcement,
    BalanceView,
    Delivered,
    Failed,
    HistoryPage,
    JobEvent,
    PartialImage,
    Queued,
    ReplyTarget,
    Started,
    Submitted,
)


class ConsoleNotifier:
    """The Notifier port for the console: progress and results as printed lines."""

    def __init__(
        self,
        write: Callable[[str], None],
        plain_copy: Callable[[str], Awaitable[str]] | None = None,
    ) -> None:
        self.write = write
        self.plain_copy = plain_copy
        self.finished: set[str] = set()
        self.changed = asyncio.Event()

    async def notify(self, target: ReplyTarget, event: JobEvent) -> None:
        """Print one event."""
        if isinstance(event, Delivered) and self.plain_copy is not None:
            paths = tuple([await self.plain_copy(o.path) for o in event.outputs])
            event = replace(event, absolute_paths=paths)
        self.write(render_event(event))
        if isinstance(event, Delivered | Failed):
            self.finished.add(event.job_id)
            self.changed.set()


def render_event(event: JobEvent) -> str:
    """One or more lines for a job event."""
    short = event.job_id[:8]
    if isinstance(event, Queued):
        return f"[{short}] queued (position {event.position}, cost {event.cost} credits)"
    if isinstance(event, Announcement):
        return f"[message] {event.text}"
    if isinstance(event, Started):
        return f"[{short}] generating…"
    if isinstance(event, PartialImage):
        return f"[{short}] preview {event.index + 1} received ({len(event.data) // 1024} KB)"
    if isinstance(event, Delivered):
        lines = [f"[{short}] done: {len(event.outputs)} image(s), {event.cost} credits"]
        for path, out in zip(event.absolute_paths, event.outputs, strict=True):
            lines.append(f"  {path}  ({out.width}x{out.height})")
        lines.append(f"  balance: {event.balance} credits")
        if event.notice:
            lines.append(f"  note: {event.notice}")
        return "\n".join(lines)
    return f"[{short}] failed: {event.message}" + (
        f" ({event.refunded} credits returned)" if event.refunded else ""
    )


def render_submitted(sub: Submitted) -> str:
    """The acknowledgement of /imagine."""
    job = sub.job
    short = job.id[:8]
    if not sub.created:
        return f"[{short}] already received: {job.state.value}"
    pos = job.queue_position or 1
    what = "edit" if job.kind == "edit" else "image"
    model = job.options.get("model")
    on = f", {model}" if model else ""
    return (
        f"[{short}] {what} queued (position {pos}, cost {job.cost} credits, "
        f"balance {sub.balance}{on})"
    )


def render_models(models: Sequence[tuple[str, str, Mapping[str, int]]]) -> str:
    """The /models answer: each model on offer with its credits per 1024x1024 image."""
    lines = ["Models and prices (credits per 1024x1024 image; larger sizes cost more):"]
    for name, label, row in models:
        prices = ", ".join(f"{q} {n}" for q, n in row.items())
        title = name if label == name else f"{name} ({label})"
        lines.append(f"  {title}: {prices}")
    lines.append("Choose with --model NAME or /settings model NAME.")
    return "\n".join(lines)


def render_balance(view: BalanceView) -> str:
    """The /balance answer."""
    lines = [f"Balance: {view.available} credits" + (f" ({view.held} held)" if view.held else "")]
    if view.spending_blocked:
        lines.append("Spending is paused on this account.")
    for line in view.recent:
        sign = "+" if line.amount > 0 else ""
        when = line.created_at.strftime("%Y-%m-%d %H:%M")
        note = f" {line.note}" if line.note else ""
        lines.append(f"  {when}  {line.kind:<8} {sign}{line.amount}{note}")
    return "\n".join(lines)


def render_history(page: HistoryPage, data_dir: str) -> str:
    """The /history answer."""
    if not page.items:
        return "No images yet. Try: /imagine a red fox in snow"
    lines = [f"History, page {page.page} of {page.pages} ({page.total} jobs):"]
    for item in page.items:
        when = item.created_at.strftime("%Y-%m-%d %H:%M")
        prompt = item.prompt if len(item.prompt) <= 60 else item.prompt[:59] + "…"
        lines.append(f"  {item.id[:8]}  {when}  {item.state.value:<10} {prompt}")
        for out in item.outputs:
            lines.append(f"      {data_dir}/{out.path}")
    return "\n".join(lines)
