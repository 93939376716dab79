"""Turning job events and replies into lines on the terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace

from core.billing import movements
from core.i18n import format_number, format_when, msg, render, t
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
        return t(
            "console.queued_event",
            job=short,
            position=event.position,
            cost=msg("credits", count=event.cost),
        )
    if isinstance(event, Announcement):
        return f"[message] {event.text}"
    if isinstance(event, Started):
        return t("console.generating", job=short)
    if isinstance(event, PartialImage):
        return t("console.preview", job=short, number=event.index + 1, size=len(event.data) // 1024)
    if isinstance(event, Delivered):
        lines = [
            t(
                "console.done",
                job=short,
                images=msg("images", count=len(event.outputs)),
                cost=msg("credits", count=event.cost),
            )
        ]
        for path, out in zip(event.absolute_paths, event.outputs, strict=True):
            lines.append(f"  {path}  ({out.width}x{out.height})")
        lines.append(t("console.balance_after", credits=msg("credits", count=event.balance)))
        if event.notice:
            lines.append(t("console.note", note=event.notice))
        return "\n".join(lines)
    text = t("console.failed", job=short, message=render(event.text or event.message))
    if event.refunded and event.code not in (
        "provider_unavailable",
        "interrupted",
        "content_refused",
    ):
        text += " " + t("job.returned", count=event.refunded)
    return text


def render_submitted(sub: Submitted) -> str:
    """The acknowledgement of /imagine."""
    job = sub.job
    short = job.id[:8]
    if not sub.created:
        return t("console.already", job=short, state=job.state.value)
    model = job.options.get("model")
    args: dict[str, object] = {
        "job": short,
        "what": msg("console.edit" if job.kind == "edit" else "console.image"),
        "position": job.queue_position or 1,
        "cost": msg("credits", count=job.cost),
        "balance": sub.balance,
    }
    if model:
        return render(msg("tg.console_queued_model", model=str(model), **args))
    return render(msg("console.queued", **args))


def render_models(models: Sequence[tuple[str, str, Mapping[str, int]]]) -> str:
    """The /models answer: each model on offer with its credits per 1024x1024 image."""
    lines = [t("tg.console_models_head")]
    for name, label, row in models:
        prices = ", ".join(f"{q} {n}" for q, n in row.items())
        title = name if label == name else f"{name} ({label})"
        lines.append(f"  {title}: {prices}")
    lines.append(t("tg.console_models_choose"))
    return "\n".join(lines)


def render_balance(view: BalanceView) -> str:
    """The /balance answer, in plain money words (the console sells nothing: no /buy)."""
    lines = [t("balance.title_plain", credits=msg("credits", count=view.available))]
    if view.held:
        lines.append(t("balance.reserved", credits=msg("credits", count=view.held)))
    if view.spending_blocked:
        lines.append(t("balance.paused"))
    shown = movements(view.recent)
    if shown:
        lines.append(t("balance.recent"))
    for line, what in shown:
        sign = "+" if line.amount > 0 else "−"
        amount = sign + format_number(abs(line.amount))
        note = f" ({line.note})" if line.note else ""
        lines.append(
            "  " + t("balance.line", when=line.created_at, what=what, amount=amount) + note
        )
    return "\n".join(lines)


def render_history(page: HistoryPage, data_dir: str) -> str:
    """The /history answer."""
    if not page.items:
        return t("console.history_empty")
    lines = [t("console.history_head", page=page.page, pages=page.pages, total=page.total)]
    for item in page.items:
        when = format_when(item.created_at)
        prompt = item.prompt if len(item.prompt) <= 60 else item.prompt[:59] + "…"
        lines.append(f"  {item.id[:8]}  {when}  {item.state.value:<10} {prompt}")
        for out in item.outputs:
            lines.append(f"      {data_dir}/{out.path}")
    return "\n".join(lines)
