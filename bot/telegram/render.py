"""Every text the Telegram adapter shows, as Telegram HTML.

Everything that comes from a person (prompts, names) or from core (messages that may
quote what a person typed) is escaped here, and clipped to Telegram's limits (4096
characters for a message, 1024 for a caption, 200 for a callback answer), counted the way
Telegram counts them (UTF-16 code units). Errors are turned into words in one place,
:func:`error_text`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from core.billing import Offer
from core.commands import accepted_text
from core.errors import GENERIC_SORRY, UserFacingError
from core.onboarding import OnboardingStatus
from core.types import (
    BalanceView,
    Delivered,
    Failed,
    HistoryPage,
    JobView,
    PaymentLinkReply,
    UserSettingsView,
)

MAX_MESSAGE = 4096
MAX_CAPTION = 1024
MAX_ALERT = 200


def esc(text: object) -> str:
    """Escape text for Telegram's HTML parse mode."""
    return html.escape(str(text), quote=False)


def credits(amount: int) -> str:
    """``1 credit``, ``5 credits``."""
    return f"{amount} credit" if abs(amount) == 1 else f"{amount} credits"


def utf16_len(text: str) -> int:
    """Length as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-16 units, with an ellipsis when cut."""
    if utf16_len(text) <= limit:
        return text
    out: list[str] = []
    used = 0
    for ch in text:
        size = 2 if ord(ch) > 0xFFFF else 1
        if used + size > limit - 1:
            break
        out.append(ch)
        used += size
    return "".join(out) + "…"


def plain_clip(text: str, limit: int = MAX_ALERT) -> str:
    """Plain text (callback answers take no markup) within ``limit``."""
    return clip(text, limit)


# --- help and onboarding ------------------------------------------------------------------------

HELP = (
    "<b>imagebot</b> makes and edits images with AI, paid with credits.\n\n"
    "/imagine <i>description</i> — make an image\n"
    "   options: {options}\n"
    "   reply to a photo (or an album) with /imagine or /edit to edit it, "
    "or send a photo with the caption /imagine …\n"
    "/settings — your default size, quality, format, number and background\n"
    "/history — your past results, to open, download or delete\n"
    "/balance — your credits\n"
    "/buy — buy credits · /subscribe — monthly plans · /billing — manage payments\n"
    "/help — this text\n\n"
    "Example: <code>/imagine a red fox in snow --ar 3:2 --quality high</code>"
)


def help_text() -> str:
    """The /help answer."""
    return HELP.format(options=esc(accepted_text()))


def terms_text(status: OnboardingStatus) -> str:
    """The terms, the policy version and the age question."""
    policy = status.policy
    link = f' (<a href="{html.escape(policy.url)}">read it</a>)' if policy.url else ""
    intro = (
        "Our privacy policy has changed."
        if status.state == "policy_changed"
        else "Welcome to imagebot!"
    )
    return (
        f"{intro} Before your first image, please read the terms and privacy policy, "
        f"version {esc(policy.version)}, effective {esc(policy.effective_date)}{link}.\n\n"
        "imagebot is for people aged 13 or older. Nothing about you is stored until you "
        "accept."
    )


def accepted_text_for(name: str) -> str:
    """After the terms were accepted."""
    who = f", {esc(clip(name, 64))}" if name else ""
    return f"Thank you{who}, you are all set.\n\n" + help_text()


# --- jobs ----------------------------------------------------------------------------------------

RECEIVED = "⏳ Got it, one moment…"
GENERATING = "🎨 Generating…"


def queued_text(job: JobView, *, created: bool = True) -> str:
    """The status message once the job is in the queue."""
    if not created:
        return f"This request was already received ({esc(job.state.value)})."
    what = "Edit" if job.kind == "edit" else "Image"
    return queued_line(what, job.queue_position or 1, job.cost)


def queued_line(what: str, position: int, cost: int) -> str:
    """``⏳ Image queued (position N, cost C credits)``."""
    return f"⏳ {what} queued (position {position}, cost {credits(cost)})"


def preview_caption(index: int) -> str:
    """The caption of a partial preview."""
    return f"🎨 Generating… preview {index + 1}"


def result_caption(prompt: str, *, cost: int, balance: int, count: int, notice: str = "") -> str:
    """The caption (or message) that goes with a finished result."""
    tail = f"\n{credits(cost)} · balance {balance}"
    if count > 1:
        tail = f"\n{count} images · {credits(cost)} · balance {balance}"
    if notice:
        tail += f"\n<i>{esc(clip(notice, 200))}</i>"
    room = MAX_CAPTION - utf16_len(tail) - 10
    return f"<b>{esc(clip(prompt, max(room // 2, 50)))}</b>{tail}"


def delivered_caption(event: Delivered) -> str:
    """:func:`result_caption` for a delivery event."""
    return result_caption(
        event.prompt,
        cost=event.cost,
        balance=event.balance,
        count=len(event.outputs),
        notice=event.notice,
    )


def job_caption(job: JobView) -> str:
    """The caption of a result opened from /history."""
    when = job.created_at.strftime("%Y-%m-%d %H:%M")
    tail = f"\n{when} · {credits(job.cost)}"
    room = MAX_CAPTION - utf16_len(tail) - 10
    return f"<b>{esc(clip(job.prompt, max(room // 2, 50)))}</b>{tail}"


def failed_text(event: Failed) -> str:
    """A job that ended without images."""
    text = f"⚠️ {esc(clip(event.message, 1500))}"
    if event.refunded and "returned" not in event.message:
        text += f"\n{credits(event.refunded)} returned to you."
    return text


def cancelled_text(cost: int) -> str:
    """A job cancelled before it started."""
    return f"Cancelled. {credits(cost)} returned to you."


EDIT_REF = re.compile(r"ref ([0-9a-f]{16})·(\d{1,2})")
"""Finds the job and image in the Edit question a person replied to."""


def edit_prompt_text(job_id: str, index: int, *, mention: tuple[int, str] | None = None) -> str:
    """The question asked by the Edit button (the reference lets the reply find the job).

    In groups the person is mentioned, which is what shows them (only them) the reply box.
    """
    who = ""
    if mention is not None:
        who = f'<a href="tg://user?id={mention[0]}">{esc(clip(mention[1] or "you", 64))}</a>, '
    return (
        f"✏️ {who}reply to this message with what to change in image {index + 1}.\n"
        f"<i>ref {job_id}·{index + 1}</i>"
    )


def full_res_caption(width: int, height: int, size_bytes: int) -> str:
    """The caption of an original file."""
    return f"Original, {width}×{height}, {size_bytes / 1_000_000:.1f} MB"


# --- errors: the one place -----------------------------------------------------------------------


def error_message(exc: BaseException) -> str:
    """The words for any exception: a user-facing error's message, otherwise a generic
    apology (an exception's own text never reaches a user)."""
    if isinstance(exc, UserFacingError):
        return exc.user_message
    return GENERIC_SORRY


def error_text(exc: BaseException) -> str:
    """An error as a chat message (HTML)."""
    return f"⚠️ {esc(clip(error_message(exc), 3000))}"


def error_alert(exc: BaseException) -> str:
    """An error as a callback answer (plain text, at most 200 characters)."""
    return plain_clip(error_message(exc))


NOT_YOURS = "These buttons belong to the person who made this request."
STALE = "This is no longer available."


# --- account -------------------------------------------------------------------------------------


def balance_text(view: BalanceView) -> str:
    """The /balance answer: credits and the newest ledger lines."""
    held = f" ({view.held} held)" if view.held else ""
    lines = [f"💳 <b>{credits(view.available)}</b>{held}"]
    if view.spending_blocked:
        lines.append("Spending is paused on this account.")
    plan = view.plan
    if plan is not None:
        when = plan.renews_at.strftime("%Y-%m-%d") if plan.renews_at else ""
        period = (
            (f", ends {when}" if plan.cancel_at_period_end else f", renews {when}") if when else ""
        )
        lines.append(
            f"Plan: {esc(plan.name)}, {credits(plan.credits_per_period)} a month "
            f"({esc(plan.status)}{period}). /billing manages it."
        )
    if view.recent:
        lines.append("")
        lines.append("Recent:")
    for line in view.recent:
        sign = "+" if line.amount > 0 else ""
        when = line.created_at.strftime("%Y-%m-%d %H:%M")
        note = f" · {esc(clip(line.note, 60))}" if line.note else ""
        lines.append(f"<code>{when}</code> {esc(line.kind)} {sign}{line.amount}{note}")
    lines.append("\n/buy adds credits.")
    return "\n".join(lines)


SETTING_LABELS = {
    "size": "Size",
    "quality": "Quality",
    "output_format": "Format",
    "n": "Images per request",
    "background": "Background",
}


def settings_text(view: UserSettingsView) -> str:
    """The /settings message."""
    lines = ["⚙️ <b>Your defaults</b> (used when /imagine gives no option):"]
    for name, label in SETTING_LABELS.items():
        value = getattr(view, name)
        lines.append(f"{label}: <b>{esc(value) if value is not None else 'default'}</b>")
    return "\n".join(lines)


def setting_choice_text(name: str) -> str:
    """The question when one setting is being changed."""
    return f"⚙️ Choose the default <b>{SETTING_LABELS.get(name, esc(name)).lower()}</b>:"


def history_caption(page: HistoryPage) -> str:
    """The caption of a contact sheet: one line per numbered item."""
    head = f"🖼 History, page {page.page} of {page.pages} ({page.total} in all)"
    lines = [head]
    budget = (MAX_CAPTION - utf16_len(head) - 40) // max(len(page.items), 1)
    for number, job in enumerate(page.items, 1):
        when = job.created_at.strftime("%m-%d %H:%M")
        state = "" if job.state.value == "succeeded" else f" · {job.state.value}"
        prefix = f"{number}. {when}{state} · "
        room = max(budget - utf16_len(prefix), 10)
        lines.append(esc(prefix) + esc(clip(job.prompt.replace("\n", " "), room)))
    return clip("\n".join(lines), MAX_CAPTION)


EMPTY_HISTORY = "No images yet. Try <code>/imagine a red fox in snow</code>."


def offers_text(kind: str, offers: Iterable[Offer]) -> str:
    """The /buy or /subscribe message."""
    items = list(offers)
    if not items:
        return "Nothing is on sale right now."
    title = "Monthly plans" if kind == "plan" else "Credit packs"
    lines = [f"💳 <b>{title}</b>"]
    for offer in items:
        per = " a month" if offer.kind == "plan" else ""
        lines.append(
            f"• {esc(offer.name)}: {offer.credits} credits for {esc(offer.price_text)}{per}"
        )
    return "\n".join(lines)


def offer_label(offer: Offer) -> str:
    """The button of one offer."""
    return f"{offer.name} · {offer.credits} credits · {offer.price_text}"


def payment_text(reply: PaymentLinkReply) -> str:
    """A checkout or portal link message (the link itself is a button)."""
    return esc(clip(reply.text, 1000))


def private_only_text(what: str) -> str:
    """In a group: where to go instead."""
    return f"{esc(what)} works in a private chat with me, so that only you see it."


def privacy_text(status: OnboardingStatus) -> str:
    """The privacy policy's facts (until the privacy commands are wired to core.privacy)."""
    policy = status.policy
    link = f'\n<a href="{html.escape(policy.url)}">Read the policy</a>' if policy.url else ""
    return (
        f"🔒 Privacy policy version {esc(policy.version)}, effective "
        f"{esc(policy.effective_date)}. It says what is stored about you, for how long, and "
        f"how to get a copy of your data or have it erased.{link}"
    )


UNKNOWN_COMMAND = "I do not know that command. /help lists what I can do."
PROMPT_HINT = "To make an image, send <code>/imagine</code> followed by a description."
