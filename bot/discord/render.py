"""The one renderer of the Discord adapter: every text the bot sends, and every error.

Pure functions from core's types to Discord message text (markdown, at most 2000
characters). Words follow the Telegram adapter's, so both platforms answer the same cases
the same way. Components live in views.py; sending lives in respond.py and notifier.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import discord
from discord import app_commands

from core.billing import Offer
from core.errors import (
    GENERIC_SORRY,
    AgeRefused,
    Banned,
    InsufficientCredits,
    NotFound,
    SpendingBlocked,
    TermsRequired,
    UserFacingError,
)
from core.onboarding import OnboardingStatus
from core.privacy import ExportResult, PrivacyOverview
from core.types import (
    BalanceView,
    Delivered,
    Failed,
    HistoryPage,
    JobView,
    PaymentLinkReply,
    Submitted,
    UserSettingsView,
)

MAX_CONTENT = 2000
NO_MENTIONS = discord.AllowedMentions.none()
"""Every message: a prompt saying ``@everyone`` must not ping anybody."""


def credits(amount: int) -> str:
    """``1 credit``, ``4 credits``."""
    return f"{amount} credit{'' if abs(amount) == 1 else 's'}"


def clip(text: str, limit: int = MAX_CONTENT) -> str:
    """``text`` shortened to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(text: str, limit: int) -> str:
    """User text as a block quote (markdown in it stays harmless inside the quote)."""
    lines = clip(text, limit).splitlines() or [""]
    return "\n".join(f"> {line}" for line in lines)


# --- help and onboarding --------------------------------------------------------------------

HELP = """**imagebot** makes and edits images with AI, paid with credits.

`/imagine prompt:` make an image; options for size, quality, number, format, transparent \
background and `private` (only you see the answer). Attach up to four images to edit them.
`/edit prompt: image1:` edit images (up to four).
Right-click a message → **Apps → Edit with imagebot** to edit the images of any message.
`/settings` your defaults · `/history` past results, to download
`/feedback` and `/support` reach the operators
`/balance` your credits · `/buy` credit packs · `/subscribe` monthly plans · \
`/billing` manage payments
`/privacy` what is kept about you · `/export` a copy of your data · \
`/delete_my_data` erase it (these three in a DM with me)
Buttons under each result: Reroll, Edit, Variation, Full resolution, Delete."""


def help_text() -> str:
    """The /help answer."""
    return HELP


def terms_text(status: OnboardingStatus) -> str:
    """The terms, the policy version and the age question."""
    policy = status.policy
    link = f" ([read it](<{policy.url}>))" if policy.url else ""
    intro = (
        "Our privacy policy has changed."
        if status.state == "policy_changed"
        else "Welcome to imagebot!"
    )
    return (
        f"{intro} Before your first image, please read the terms and privacy policy, "
        f"version {policy.version}, effective {policy.effective_date}{link}.\n\n"
        "imagebot is for people aged 13 or older. Nothing about you is stored until you "
        "accept."
    )


def accepted_text(name: str) -> str:
    """After the terms were accepted."""
    who = f", {clip(name, 64)}" if name else ""
    return f"Thank you{who}, you are all set. Use `/imagine` again to make your image."


REFUSED_AGE = AgeRefused.default_message + " Nothing about you was kept."
PRIVATE_DETAILS = "⚠️ This did not start. The details were sent only to you."


# --- jobs -------------------------------------------------------------------------------------

GENERATING = "🎨 Generating…"


def queued_text(position: int, cost: int, balance: int, *, edit: bool = False) -> str:
    """The status while a job waits for a worker."""
    what = "Edit" if edit else "Image"
    return f"⏳ {what} queued (position {position}, cost {credits(cost)}, balance {balance})"


def submitted_text(sub: Submitted) -> str:
    """The status once the job is in the queue."""
    job = sub.job
    if not sub.created:
        return f"This request was already received ({job.state.value})."
    return queued_text(job.queue_position or 1, job.cost, sub.balance, edit=job.kind == "edit")


def preview_text(index: int) -> str:
    """The status while a partial preview is shown."""
    return f"🎨 Generating… preview {index + 1}"


def delivered_text(event: Delivered, notes: Iterable[str] = ()) -> str:
    """The message that carries a finished result."""
    count = len(event.outputs)
    size = ""
    if event.outputs:
        size = f"{event.outputs[0].width}×{event.outputs[0].height} · "
    tail = f"-# {size}{count} image{'s' if count != 1 else ''} · {credits(event.cost)} · "
    tail += f"balance {event.balance}"
    extra = [f"-# {clip(note, 300)}" for note in (event.notice, *notes) if note]
    room = MAX_CONTENT - len(tail) - sum(len(e) + 1 for e in extra) - 4
    return "\n".join([_quote(event.prompt, max(room, 100)), tail, *extra])


def failed_text(event: Failed) -> str:
    """A job that ended without images."""
    text = f"⚠️ {clip(event.message, 1500)}"
    if event.refunded and "returned" not in event.message:
        verb = "was" if event.refunded == 1 else "were"
        text += f"\n{credits(event.refunded)} {verb} returned to you."
    return text


def job_line(number: int, job: JobView) -> str:
    """One line of /history."""
    when = job.created_at.strftime("%Y-%m-%d %H:%M")
    state = "" if job.state.value == "succeeded" else f" · {job.state.value}"
    prompt = clip(" ".join(job.prompt.split()), 90)
    return f"`{number}.` {when}{state} · {prompt}"


def history_text(page: HistoryPage) -> str:
    """The /history answer: one numbered line per job (its buttons carry the number)."""
    if not page.items:
        return EMPTY_HISTORY
    lines = [f"🖼 **History**, page {page.page} of {page.pages} ({page.total} in all)"]
    lines += [job_line(n, job) for n, job in enumerate(page.items, 1)]
    lines.append("-# ⬇ downloads the full-resolution files of that line.")
    return clip("\n".join(lines))


EMPTY_HISTORY = "No images yet. Try `/imagine prompt: a red fox in snow`."
NOT_YOURS = "These buttons belong to the person who made this request."
STALE = "This is no longer available: it was deleted, or it is older than what we keep."
DELETED = "🗑 Deleted: the images and the prompt are gone."
NO_IMAGES = "That message has no images to edit. PNG, JPEG, WebP or GIF attachments work."


def full_res_text(count: int, notes: Iterable[str] = ()) -> str:
    """The message that carries original files."""
    text = "Original file" + ("s" if count != 1 else "") + ", full resolution."
    return clip("\n".join([text, *(f"-# {n}" for n in notes)]))


def converted_note(original_type: str, size_bytes: int, limit: int, new_type: str) -> str:
    """Why an image arrives as JPEG or WebP instead of the original file."""
    return (
        f"Sent as {_kind(new_type)}: the original {_kind(original_type)} "
        f"({size_text(size_bytes, up=True)}) is over this chat's {size_text(limit)} upload limit."
    )


def _kind(content_type: str) -> str:
    return content_type.rsplit("/", 1)[-1].upper()


def size_text(size: int, *, up: bool = False) -> str:
    """Bytes as core words them: MB (of 1024 KB) with one decimal, a whole number for a
    round limit; ``up`` rounds a file's size up so it never reads as equal to the limit."""
    mib = 1024 * 1024
    if size < mib:
        return f"{math.ceil(size / 1024) if up else round(size / 1024)} KB"
    value = size / mib
    if value == int(value) and not up:
        return f"{int(value)} MB"
    return f"{(math.ceil(value * 10) / 10) if up else round(value, 1):.1f} MB"


# --- account ---------------------------------------------------------------------------------


def balance_text(view: BalanceView) -> str:
    """The /balance answer: credits and the newest ledger lines."""
    lines = [f"💳 **{credits(view.available)}**" + (f" ({view.held} held)" if view.held else "")]
    if view.spending_blocked:
        lines.append("Spending is paused on this account.")
    if view.recent:
        lines.append("\nRecent:")
    for line in view.recent:
        sign = "+" if line.amount > 0 else ""
        when = line.created_at.strftime("%Y-%m-%d %H:%M")
        note = f" · {clip(line.note, 60)}" if line.note else ""
        lines.append(f"`{when}` {line.kind} {sign}{line.amount}{note}")
    lines.append("\n`/buy` adds credits.")
    return clip("\n".join(lines))


SETTING_LABELS = {
    "size": "Size",
    "quality": "Quality",
    "output_format": "Format",
    "n": "Images per request",
    "background": "Background",
}


def settings_text(view: UserSettingsView, price: int) -> str:
    """The /settings answer."""
    lines = ["⚙️ **Your defaults** (used when `/imagine` gives no option):"]
    for name, label in SETTING_LABELS.items():
        value = getattr(view, name)
        lines.append(f"{label}: **{value if value is not None else 'default'}**")
    lines.append(f"An image with these defaults costs {credits(price)}.")
    lines.append("-# Change them with the options of `/settings`; `default` resets one.")
    return "\n".join(lines)


def offers_text(kind: str, offers: Iterable[Offer]) -> str:
    """The /buy or /subscribe answer."""
    items = list(offers)
    if not items:
        return "Nothing is on sale right now."
    title = "Monthly plans" if kind == "plan" else "Credit packs"
    lines = [f"💳 **{title}**"]
    for offer in items:
        per = " a month" if offer.kind == "plan" else ""
        lines.append(f"• {offer.name}: {credits(offer.credits)} for {offer.price_text}{per}")
    return "\n".join(lines)


def offer_label(offer: Offer) -> str:
    """The button of one offer (at most 80 characters)."""
    return clip(f"{offer.name} · {credits(offer.credits)} · {offer.price_text}", 80)


def payment_text(reply: PaymentLinkReply, *, link_in_button: bool) -> str:
    """A link (checkout, portal, export); the link goes in a button when it fits one."""
    text = clip(reply.text, 1000)
    return text if link_in_button else f"{text}\n<{reply.url}>"


def private_only_text(command: str) -> str:
    """Outside a DM: where to go instead."""
    return (
        f"For your privacy, `/{command}` works only in a direct message with me. "
        "Open a DM with imagebot and use it there."
    )


CONSENT_LABELS = {
    "training_opt_in": "Use my images and prompts to improve models",
    "product_updates": "Product-update messages",
    "usage_analytics": "Usage analytics",
}


def privacy_text(overview: PrivacyOverview) -> str:
    """The /privacy answer: the policy, what is stored, for how long, and the switches."""
    policy = overview.policy
    link = f" ([read it](<{policy.url}>))" if policy.url else ""
    lines = [
        f"🔒 **Privacy policy** version {policy.version}, effective {policy.effective_date}{link}"
    ]
    lines.append("\n**What we store about you**")
    lines += [f"• {item}" for item in overview.stored]
    lines.append("\n**For how long**")
    lines += [f"• {what}: {how_long}" for what, how_long in overview.retention]
    lines.append("\n**Your switches** (the buttons below turn them on or off)")
    for name, label in CONSENT_LABELS.items():
        state = "on" if getattr(overview.consents, name, False) else "off"
        lines.append(f"• {label}: **{state}**")
    lines.append("\n`/export` sends you a copy of everything; `/delete_my_data` erases it.")
    return clip("\n".join(lines))


def export_text(result: ExportResult) -> str:
    """The message that carries an export."""
    return (
        f"📦 Your data: {result.files} files, {size_text(result.size_bytes, up=True)}. "
        "Everything is JSON and images; README.txt explains each file."
    )


def export_link_reply(result: ExportResult, url: str) -> PaymentLinkReply:
    """An export too large for the chat: a private download link (valid for a day)."""
    return PaymentLinkReply(
        f"📦 Your data ({size_text(result.size_bytes, up=True)}) is too large to send here. "
        "This private link downloads it for the next 24 hours.",
        url,
    )


def ticket_text(kind: str, number: int) -> str:
    """After /feedback or /support."""
    return (
        f"Thank you: your {kind} message #{number} is with the operators. "
        "An answer, if one is needed, comes as a direct message from me."
    )


ERASE_KEPT = "Nothing was erased."
OUTDATED_COMMAND = (
    "This command has changed since your Discord app loaded it. Please try again in a "
    "minute, or restart Discord to see the current commands."
)
NOT_AVAILABLE = "This is not available on this bot. Please ask its operator."


# --- errors: the one place --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorView:
    """How an exception is shown: its code, the words, and whether only its owner should
    see them (account matters are not for a whole channel)."""

    code: str
    text: str
    private: bool
    terms: bool = False


_PRIVATE_ERRORS = (TermsRequired, AgeRefused, InsufficientCredits, SpendingBlocked, Banned)


def describe_error(exc: BaseException) -> ErrorView:
    """The words for any exception: a user-facing error's message, otherwise a generic
    apology (an exception's own text never reaches a user)."""
    if isinstance(exc, app_commands.CommandInvokeError):
        exc = exc.original
    if isinstance(exc, NotFound) and exc.user_message == NotFound.default_message:
        return ErrorView(exc.code, f"⚠️ {STALE}", private=False)
    if isinstance(exc, UserFacingError):
        return ErrorView(
            exc.code,
            f"⚠️ {clip(exc.user_message, 1900)}",
            private=isinstance(exc, _PRIVATE_ERRORS),
            terms=isinstance(exc, TermsRequired),
        )
    if isinstance(exc, app_commands.TransformerError):
        return ErrorView("invalid_request", "⚠️ One of the options is not valid.", private=False)
    if isinstance(exc, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
        # Discord still shows an older version of the commands (they sync on start-up).
        return ErrorView("outdated_command", f"⚠️ {OUTDATED_COMMAND}", private=False)
    return ErrorView("internal", f"⚠️ {GENERIC_SORRY}", private=False)
