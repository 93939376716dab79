"""The one renderer of the Discord adapter: every text the bot sends, and every error.

Pure functions from core's types to Discord message text (markdown, at most 2000
characters). Words follow the Telegram adapter's, so both platforms answer the same cases
the same way. Components live in views.py; sending lives in respond.py and notifier.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import discord
from discord import app_commands

from core.admin.service import NotAnOperator, UserSummary
from core.billing.offers import Offer
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
from core.privacy.onboarding import OnboardingStatus
from core.privacy.ports import PrivacyRequestRecord
from core.privacy.service import ExportResult, PrivacyOverview
from core.safety.ports import ChatControlRecord, ReviewRecord, Standing
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


def plain(text: str, limit: int = 200) -> str:
    """User-given text shown inline (a name, a reason): shortened, markdown escaped."""
    return discord.utils.escape_markdown(clip(" ".join(text.split()), limit))


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
`/delete_my_data` erase it · `/appeal` a refused privacy request (these in a DM with me)
`/server` (members with Manage Server) limits imagebot to channels, caps images per \
member, or switches it off in your server
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


def eta_phrase(seconds: float | None) -> str:
    """``, ready in about 40 s`` / ``about 3 min``; empty while nothing is measured."""
    if seconds is None:
        return ""
    if seconds < 90:
        return f", ready in about {max(5, round(seconds / 5) * 5)} s"
    return f", ready in about {round(seconds / 60)} min"


def queued_text(
    position: int, cost: int, balance: int, *, edit: bool = False, eta: float | None = None
) -> str:
    """The status while a job waits for a worker."""
    what = "Edit" if edit else "Image"
    return (
        f"⏳ {what} queued (position {position}{eta_phrase(eta)}, cost {credits(cost)}, "
        f"balance {balance})"
    )


def submitted_text(sub: Submitted) -> str:
    """The status once the job is in the queue."""
    job = sub.job
    if not sub.created:
        return f"This request was already received ({job.state.value})."
    return queued_text(
        job.queue_position or 1,
        job.cost,
        sub.balance,
        edit=job.kind == "edit",
        eta=job.eta_seconds,
    )


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
    if view.plan is not None:
        lines.append(plan_text(view))
    if view.recent:
        lines.append("\nRecent:")
    for line in view.recent:
        sign = "+" if line.amount > 0 else ""
        when = line.created_at.strftime("%Y-%m-%d %H:%M")
        note = f" · {clip(line.note, 60)}" if line.note else ""
        lines.append(f"`{when}` {line.kind} {sign}{line.amount}{note}")
    lines.append("\n`/buy` adds credits.")
    return clip("\n".join(lines))


def plan_text(view: BalanceView) -> str:
    """The monthly plan line of /balance."""
    plan = view.plan
    assert plan is not None
    when = plan.renews_at.strftime("%Y-%m-%d") if plan.renews_at else ""
    period = ""
    if when:
        period = f", ends {when}" if plan.cancel_at_period_end else f", renews {when}"
    return (
        f"Plan: {plain(plan.name, 80)}, {credits(plan.credits_per_period)} a month "
        f"({plain(plan.status, 30)}{period}). `/billing` manages it."
    )


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
    name = plain(overview.display_name, 64) if overview.display_name else "none stored"
    lines.append(
        f"\n**Your profile**: name {name}, language {plain(overview.locale, 16) or 'none'} "
        "(the buttons refresh it from Discord or clear the name)"
    )
    lines.append("\n**Your switches** (the buttons below turn them on or off)")
    for key, label in CONSENT_LABELS.items():
        state = "on" if getattr(overview.consents, key, False) else "off"
        lines.append(f"• {label}: **{state}**")
    lines.append(
        "\n`/export` sends you a copy of everything; `/delete_my_data` erases it; "
        "**My requests** lists your privacy requests."
    )
    return clip("\n".join(lines))


def requests_text(records: Iterable[PrivacyRequestRecord]) -> str:
    """The privacy requests log of one person (P12), newest first."""
    items = list(records)
    if not items:
        return "You have made no privacy requests yet."
    lines = ["📜 **Your privacy requests** (newest first)"]
    for r in items[:20]:
        done = f", completed {r.completed_at:%Y-%m-%d %H:%M}" if r.completed_at else ""
        why = f": {plain(r.reason, 120)}" if r.reason else ""
        line = f"`#{r.id}` {r.received_at:%Y-%m-%d %H:%M} UTC · {plain(r.kind, 40)} · {r.status}"
        line += f"{why}{done}"
        if r.appeal_status:
            line += f" · appeal {r.appeal_status}"
        elif r.status == "refused":
            line += f" · `/appeal request:{r.id}` to contest it"
        lines.append(line)
    if len(items) > 20:
        lines.append(f"-# and {len(items) - 20} older ones (all are in `/export`).")
    return clip("\n".join(lines))


def appeal_filed_text(request_id: int) -> str:
    """After /appeal."""
    return (
        f"Your appeal of request #{request_id} is with the operators and logged with the "
        "request; an operator will review it."
    )


PROFILE_REFRESHED = "Your stored name and language were refreshed from Discord."
PROFILE_CLEARED = "Your stored name was cleared."


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


# --- operators: /admin ---------------------------------------------------------------------

ADMIN_DM_ONLY = "For safety, `/admin` works only in a direct message with me."
TARGET_HELP = (
    "Give the user as a Discord id (e.g. 123456789012345678), a mention, or platform:id "
    "(e.g. telegram:123456)."
)
AUDITED = "-# Recorded in the audit log."


def who(platform: str, user_id: str) -> str:
    """A user as operators name them: ``discord:123``."""
    return f"`{platform}:{plain(user_id, 40)}`"


def standing_text(standing: Standing, now: datetime) -> str:
    """Strikes and the ban, in words."""
    strikes = f"{standing.strikes} strike{'' if standing.strikes == 1 else 's'}"
    if standing.banned_forever:
        ban = "banned permanently"
    elif standing.banned_until is not None and standing.banned_until > now:
        ban = f"banned until {standing.banned_until:%Y-%m-%d %H:%M} UTC"
    else:
        ban = "not banned"
    reason = ""
    if ban != "not banned" and standing.ban_reason:
        reason = f" ({plain(standing.ban_reason, 200)})"
    return f"{strikes}, {ban}{reason}"


def admin_user_text(summary: UserSummary, now: datetime) -> str:
    """What /admin user shows about one user."""
    user, balance = summary.user, summary.balance
    terms = (
        f"terms version {plain(user.terms_version, 32)}"
        if user.terms_version
        else "terms not accepted"
    )
    lines = [
        f"👤 {who(user.platform, user.platform_user_id)} · user #{user.id}",
        f"Name: {plain(user.display_name, 64) or 'none stored'} · language "
        f"{plain(user.locale, 16) or 'none'} · since {user.created_at:%Y-%m-%d} · {terms}",
        f"Credits: **{balance.available}**"
        + (f" ({balance.held} held)" if balance.held else "")
        + (" · spending paused" if balance.spending_blocked else ""),
        f"Jobs: {summary.jobs} · {standing_text(summary.standing, now)}",
    ]
    if balance.plan is not None:
        lines.append(plan_text(balance))
    for line in balance.recent[:5]:
        sign = "+" if line.amount > 0 else ""
        note = f" · {plain(line.note, 60)}" if line.note else ""
        lines.append(f"`{line.created_at:%Y-%m-%d %H:%M}` {line.kind} {sign}{line.amount}{note}")
    lines.append(AUDITED)
    return clip("\n".join(lines))


def admin_grant_text(target: str, amount: int, balance: int) -> str:
    """After /admin grant or revoke."""
    verb = "Granted" if amount > 0 else "Revoked"
    word = "to" if amount > 0 else "from"
    return f"✅ {verb} {credits(abs(amount))} {word} {target}; balance now {balance}.\n{AUDITED}"


def admin_ban_text(target: str, standing: Standing, now: datetime) -> str:
    """After /admin ban."""
    return f"🚫 {target}: {standing_text(standing, now)}.\n{AUDITED}"


def admin_unban_text(target: str) -> str:
    """After /admin unban."""
    return f"✅ {target} may generate again; strikes cleared.\n{AUDITED}"


def admin_refund_text(job_id: str, refunded: int) -> str:
    """After /admin refund."""
    if not refunded:
        return f"Job `{plain(job_id, 40)}` was already refunded; nothing changed."
    return f"✅ Returned {credits(refunded)} of job `{plain(job_id, 40)}` to its owner.\n{AUDITED}"


def admin_stats_text(stats: Mapping[str, int]) -> str:
    """/admin stats."""
    lines = ["📊 **imagebot now**"]
    lines += [f"• {name.replace('_', ' ')}: {value}" for name, value in stats.items()]
    return clip("\n".join(lines))


def admin_retention_text(counts: Mapping[str, int], *, dry_run: bool) -> str:
    """/admin retention."""
    verb = "would delete" if dry_run else "deleted"
    lines = ["🧹 **Retention sweep**" + (" (dry run: nothing deleted)" if dry_run else "")]
    lines += [f"• {name.replace('_', ' ')}: {verb} {count}" for name, count in counts.items()]
    lines.append(AUDITED)
    return clip("\n".join(lines))


REVIEWS_SHOWN = 5
"""Review items shown at once, each with a row of buttons (Discord allows five rows)."""


def admin_reviews_text(items: Iterable[ReviewRecord], note: str = "") -> str:
    """/admin reviews: the open items of the review queue, oldest first."""
    items = list(items)
    lines = [note] if note else []
    if not items:
        lines.append("The review queue is empty.")
        return "\n".join(lines)
    lines.append(f"🛡 **Review queue**: {len(items)} open, oldest first")
    for item in items[:REVIEWS_SHOWN]:
        categories = ", ".join(plain(str(c), 40) for c in item.categories) or "unspecified"
        lines.append(
            f"`#{item.id}` {item.created_at:%Y-%m-%d %H:%M} · {plain(item.kind, 20)} · "
            f"job `{plain(item.job_id, 20)}` · user #{item.user_id} · {categories}"
        )
    if len(items) > REVIEWS_SHOWN:
        lines.append(f"-# {len(items) - REVIEWS_SHOWN} more after these.")
    lines.append("-# ✅ releases a withheld result to its owner (free); 🗑 deletes it; 👁 shows it.")
    return clip("\n".join(lines))


def review_decided_text(review_id: int, *, approved: bool) -> str:
    """The line above the queue after a decision."""
    if approved:
        return f"✅ Review #{review_id} approved: the result went to its owner. {AUDITED[3:]}"
    return f"🗑 Review #{review_id} dismissed: the withheld file was deleted. {AUDITED[3:]}"


def admin_appeals_text(items: Iterable[PrivacyRequestRecord]) -> str:
    """/admin appeals: privacy appeals waiting for an operator."""
    items = list(items)
    if not items:
        return "No open appeals."
    lines = [f"⚖️ **Open appeals**: {len(items)}"]
    for a in items[:15]:
        lines.append(
            f"`#{a.id}` {plain(a.kind, 30)} refused {a.received_at:%Y-%m-%d %H:%M} UTC: "
            f"{plain(a.reason, 200)}\n> {plain(a.appeal_text or '', 400)}"
        )
    if len(items) > 15:
        lines.append(f"-# {len(items) - 15} more.")
    return clip("\n".join(lines))


# --- server controls: /server ---------------------------------------------------------------

MANAGE_SERVER_REQUIRED = (
    "Only members with the Manage Server permission can change imagebot's settings here."
)
SERVER_ONLY = "`/server` changes imagebot's settings for a server: use it in that server."


def server_text(control: ChatControlRecord, changed: bool = False) -> str:
    """What /server shows: on or off, the channels, the daily cap."""
    channels = (
        ", ".join(f"<#{c}>" for c in control.allowed_channels)
        if control.allowed_channels
        else "every channel"
    )
    cap = control.daily_cap_per_member
    lines = [
        "⚙️ **imagebot in this server**" + (" (saved)" if changed else ""),
        f"Status: **{'on' if control.enabled else 'off'}**",
        f"Channels: {channels}",
        f"Images per member a day: {'no cap' if cap is None else cap}",
        "-# Private chats with the bot are not affected. Changes are recorded in the audit log.",
    ]
    return clip("\n".join(lines))


# --- errors: the one place --------------------------------------------------------------------


class CheckRefused(app_commands.CheckFailure):
    """A command's check said no; ``error`` carries the words (an unknown command for
    /admin used by anyone but an operator, Manage Server for /server)."""

    def __init__(self, error: UserFacingError) -> None:
        super().__init__(error.user_message)
        self.error = error


UNKNOWN_COMMAND = NotAnOperator.default_message


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
    if isinstance(exc, CheckRefused):
        exc = exc.error
    if isinstance(exc, NotAnOperator | app_commands.CommandNotFound):
        # Exactly the same answer: /admin does not exist for anyone but an operator.
        return ErrorView("unknown_command", f"⚠️ {UNKNOWN_COMMAND}", private=True)
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
    if isinstance(exc, app_commands.CommandSignatureMismatch):
        # Discord still shows an older version of the commands (they sync on start-up).
        return ErrorView("outdated_command", f"⚠️ {OUTDATED_COMMAND}", private=False)
    return ErrorView("internal", f"⚠️ {GENERIC_SORRY}", private=False)
