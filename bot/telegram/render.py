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
from collections.abc import Iterable, Sequence

from core.admin.service import UserSummary
from core.billing.offers import Offer
from core.errors import GENERIC_SORRY, UserFacingError
from core.generation.options import accepted_text
from core.privacy.onboarding import OnboardingStatus
from core.privacy.ports import PrivacyRequestRecord
from core.privacy.service import CONSENT_LABELS, PrivacyOverview
from core.safety.ports import ReviewRecord, Standing
from core.types import (
    BalanceView,
    ConfirmationRequest,
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
    "/privacy — what is stored and your choices · /export — a copy of your data · "
    "/delete_my_data — erase it (in a private chat)\n"
    "/feedback · /support — reach the operators\n"
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
    return queued_line(what, job.queue_position or 1, job.cost, job.eta_seconds)


def eta_phrase(seconds: float | None) -> str:
    """``, ready in about 40 s`` / ``about 3 min``; empty while nothing is measured."""
    if seconds is None:
        return ""
    if seconds < 90:
        return f", ready in about {max(5, round(seconds / 5) * 5)} s"
    return f", ready in about {round(seconds / 60)} min"


def queued_line(what: str, position: int, cost: int, eta: float | None = None) -> str:
    """``⏳ Image queued (position N, ready in about T, cost C credits)``."""
    return f"⏳ {what} queued (position {position}{eta_phrase(eta)}, cost {credits(cost)})"


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


CONSENT_SHORT = {
    "training_opt_in": "Model improvement",
    "product_updates": "Product updates",
    "usage_analytics": "Usage analytics",
}
"""The switches' names on buttons (the full labels are in the /privacy text)."""


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def privacy_text(
    overview: PrivacyOverview,
    requests: Sequence[PrivacyRequestRecord] = (),
    *,
    known: bool = True,
) -> str:
    """The /privacy answer: what is stored and for how long (from the active retention
    policy), the policy, the switches and the recent privacy requests."""
    policy = overview.policy
    link = f' (<a href="{html.escape(policy.url)}">read it</a>)' if policy.url else ""
    lines = [
        "🔒 <b>Your privacy</b>",
        f"Privacy policy version {esc(policy.version)}, effective "
        f"{esc(policy.effective_date)}{link}.",
        "",
        "<b>What we store about you</b>",
        *(f"• {esc(item)}" for item in overview.stored),
    ]
    if known:
        name = esc(clip(overview.display_name, 64)) if overview.display_name else "(none)"
        locale = f", language {esc(overview.locale)}" if overview.locale else ""
        lines.append(f"Your stored name: <b>{name}</b>{locale}")
    else:
        lines.append("Nothing is stored about you yet.")
    lines += ["", "<b>How long we keep it</b>"]
    lines += [f"• {esc(what)}: {esc(period)}" for what, period in overview.retention]
    consents = overview.consents
    lines += [
        "",
        "<b>Your choices</b> (the buttons change them at once)",
        *(
            f"• {esc(label)}: <b>{_on_off(bool(getattr(consents, name)))}</b>"
            for name, label in CONSENT_LABELS.items()
        ),
        "",
        "/export sends you a copy of everything · /delete_my_data erases it",
    ]
    if requests:
        lines += ["", "<b>Your recent privacy requests</b>"]
        for item in list(requests)[:5]:
            when = item.received_at.strftime("%Y-%m-%d %H:%M")
            appeal = f", appeal {esc(item.appeal_status)}" if item.appeal_status else ""
            lines.append(
                f"#{item.id} <code>{when}</code> {esc(item.kind)}: {esc(item.status)}{appeal}"
            )
    return clip("\n".join(lines), MAX_MESSAGE)


def consent_button(name: str, value: bool) -> str:
    """A switch's button: its state, pressed to flip it."""
    mark = "✅" if value else "⬜"
    action = "turn off" if value else "turn on"
    return f"{mark} {CONSENT_SHORT.get(name, name)}: {_on_off(value)} ({action})"


def consent_changed(name: str, value: bool) -> str:
    """The callback answer after a switch was flipped."""
    return plain_clip(f"{CONSENT_SHORT.get(name, name)}: {_on_off(value)}")


EXPORTING = "📦 Preparing your data export…"


def export_caption(size_bytes: int, files: int) -> str:
    """The caption of the export document."""
    return (
        f"📦 Your data: {files} files, {size_bytes / 1_000_000:.1f} MB. README.txt inside "
        "explains each file. Keep it safe: it holds your prompts and images."
    )


def export_link_text(size_bytes: int) -> str:
    """When the export is too large to send here: the link (a button) and its terms."""
    return (
        f"📦 Your data export is {size_bytes / 1_000_000:.1f} MB, more than Telegram lets "
        "a bot send. Download it with the button: the link works only for your export "
        "and expires in 24 hours. Do not share it."
    )


def confirmation_text(request: ConfirmationRequest) -> str:
    """A question with confirm/cancel buttons."""
    return f"⚠️ {esc(request.text)}"


def receipt_text(text: str) -> str:
    """The erasure receipt."""
    return f"🗑 {esc(text)}"


ERASE_KEPT = "Nothing was erased. Your data stays as it was."
PROFILE_REFRESHED = "Name refreshed from Telegram."
PROFILE_CLEARED = "Name cleared."


def message_usage(kind: str) -> str:
    """/feedback or /support without a text."""
    what = "your feedback" if kind == "feedback" else "what you need help with"
    example = "the edit button is great" if kind == "feedback" else "my export did not arrive"
    return f"Write /{esc(kind)} followed by {what}, e.g. <code>/{esc(kind)} {example}</code>."


def message_received(kind: str, ticket_id: int, forwarded: bool) -> str:
    """After /feedback or /support."""
    where = "reached the operators" if forwarded else "was stored for the operators"
    answer = " They answer here." if kind == "support" else ""
    return f"Thank you. Your {esc(kind)} #{ticket_id} {where}.{answer}"


APPEAL_USAGE = (
    "Write /appeal followed by the request number and your reasons, e.g. "
    "<code>/appeal 12 the dispute was settled</code>."
)


def appeal_received(request_id: int) -> str:
    """After /appeal."""
    return (
        f"Your appeal of request #{request_id} was sent to the operators. They review it "
        "and answer here."
    )


# --- /admin (operators only) -------------------------------------------------------------------

ADMIN_HELP = (
    "🛠 <b>Operator tools</b> (every action is written to the audit log)\n"
    "<code>/admin user ID</code> — credits, standing, jobs\n"
    "<code>/admin grant ID AMOUNT REASON</code> · <code>/admin revoke ID AMOUNT REASON</code>\n"
    "<code>/admin ban ID [HOURSh] REASON</code> (without hours: for good) · "
    "<code>/admin unban ID REASON</code>\n"
    "<code>/admin refund JOB REASON</code> — give back a finished job's credits\n"
    "<code>/admin stats</code> · <code>/admin retention [dry]</code>\n"
    "<code>/admin reviews</code> — withheld and flagged items, approve or dismiss\n"
    "<code>/admin appeals</code> — refused privacy requests that were appealed\n"
    "ID is a Telegram user id, or platform:id (discord:123)."
)


def admin_user_text(summary: UserSummary) -> str:
    """``/admin user``."""
    user, balance, standing = summary.user, summary.balance, summary.standing
    if standing.banned_forever:
        ban = "banned for good"
    elif standing.banned_until is not None:
        ban = f"banned until {standing.banned_until:%Y-%m-%d %H:%M} UTC"
    else:
        ban = "not banned"
    reason = f" ({esc(clip(standing.ban_reason, 200))})" if standing.ban_reason else ""
    blocked = " · spending paused" if balance.spending_blocked else ""
    name = esc(clip(user.display_name, 64)) or "(no name)"
    return (
        f"👤 <b>{name}</b> · {esc(user.platform)}:{esc(user.platform_user_id)} "
        f"(user {user.id})\n"
        f"Joined {user.created_at:%Y-%m-%d}, terms version {esc(user.terms_version or '-')}\n"
        f"Credits: {balance.available} available, {balance.held} held{blocked}\n"
        f"Standing: {standing.strikes} strikes, {ban}{reason}\n"
        f"Jobs: {summary.jobs}"
    )


def admin_granted(amount: int, balance: int) -> str:
    """After a grant or revoke."""
    verb = "Granted" if amount > 0 else "Revoked"
    return f"{verb} {credits(abs(amount))}. Balance now {balance}."


def admin_banned(standing: Standing) -> str:
    """After a ban."""
    if standing.banned_forever:
        return "Banned for good."
    until = standing.banned_until
    return f"Banned until {until:%Y-%m-%d %H:%M} UTC." if until else "Banned."


ADMIN_UNBANNED = "Ban lifted, strikes cleared."


def admin_refunded(amount: int) -> str:
    """After a job refund."""
    return f"Refunded {credits(amount)}." if amount else "That job was refunded before."


def admin_counts(title: str, counts: dict[str, int]) -> str:
    """``/admin stats`` and ``/admin retention``."""
    lines = [f"<b>{esc(title)}</b>"]
    lines += [f"{esc(name)}: {value}" for name, value in counts.items()]
    if not counts:
        lines.append("(nothing)")
    return clip("\n".join(lines), MAX_MESSAGE)


def admin_reviews_text(items: Sequence[ReviewRecord]) -> str:
    """``/admin reviews``: the open items, numbered as their buttons are."""
    if not items:
        return "The review queue is empty."
    lines = [f"🔎 <b>Review queue</b> ({len(items)} open)"]
    for item in items:
        flagged = ", ".join(sorted(item.categories)) or "no category"
        lines.append(
            f"#{item.id} {esc(item.kind)} · job <code>{esc(item.job_id)}</code> · user "
            f"{item.user_id} · {esc(clip(flagged, 120))} · {item.created_at:%Y-%m-%d %H:%M}"
        )
    return clip("\n".join(lines), MAX_MESSAGE)


def admin_review_decided(review_id: int, approve: bool) -> str:
    """The callback answer after a review decision."""
    return f"#{review_id} {'approved: delivered' if approve else 'dismissed: deleted'}."


def admin_appeals_text(items: Sequence[PrivacyRequestRecord]) -> str:
    """``/admin appeals``."""
    if not items:
        return "No open appeals."
    lines = [f"📨 <b>Open appeals</b> ({len(items)})"]
    for item in items:
        lines.append(
            f"#{item.id} {esc(item.kind)} {esc(item.status)} on "
            f"{item.received_at:%Y-%m-%d}: {esc(clip(item.reason, 200))}\n"
            f"   appeal: {esc(clip(item.appeal_text or '', 600))}"
        )
    return clip("\n".join(lines), MAX_MESSAGE)


# --- group controls ------------------------------------------------------------------------------


def group_switched(enabled: bool) -> str:
    """After /bot_on or /bot_off in a group."""
    if enabled:
        return "✅ imagebot is on in this group again."
    return (
        "⏸ imagebot is off in this group: /imagine is refused here until an admin sends "
        "/bot_on. Private chats with the bot are not affected."
    )


GROUP_ADMINS_ONLY = "Only the admins of this group can switch imagebot on or off here."
GROUP_ONLY = "/bot_on and /bot_off switch imagebot on or off in a group; send them there."


UNKNOWN_COMMAND = "I do not know that command. /help lists what I can do."
PROMPT_HINT = "To make an image, send <code>/imagine</code> followed by a description."
