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
from collections.abc import Iterable, Mapping, Sequence

from core.admin.service import UserSummary
from core.billing.offers import Offer
from core.billing.ports import SubscriptionRecord
from core.errors import GENERIC_SORRY, UserFacingError
from core.generation.options import accepted_text
from core.privacy.onboarding import OnboardingStatus
from core.privacy.ports import PrivacyRequestRecord
from core.privacy.service import CONSENT_LABELS, AppealDecision, PrivacyOverview
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
    "/gallery — your private web gallery (in a private chat)\n"
    "/balance — your credits\n"
    "/buy — buy credits · /subscribe — monthly plans · /billing — manage payments\n"
    "/privacy — what is stored and your choices · /export — a copy of your data · "
    "/delete_my_data — erase it (in a private chat)\n"
    "/feedback · /support — reach the operators\n"
    "/help — this text\n\n"
    "Example: <code>/imagine a red fox in snow --ar 3:2 --quality high</code>"
)


def help_text(models: Sequence[tuple[str, str, Mapping[str, int]]] = ()) -> str:
    """The /help answer, with the price table of each model on offer
    (``(name, label, credits per square image by quality)``)."""
    text = HELP.format(options=esc(accepted_text()))
    if models:
        text += "\n\n" + prices_text(models)
    return text


def prices_text(models: Sequence[tuple[str, str, Mapping[str, int]]]) -> str:
    """Credits per 1024x1024 image, by model and quality (larger sizes cost more)."""
    lines = ["<b>Models and prices</b> (credits per 1024×1024 image; larger sizes cost more):"]
    for name, label, row in models:
        prices = " · ".join(f"{esc(q)} {n}" for q, n in row.items())
        title = esc(label) if label == name else f"{esc(label)} (<code>{esc(name)}</code>)"
        lines.append(f"{title}: {prices}")
    if len(models) > 1:
        lines.append("Choose with <code>--model NAME</code> or in /settings.")
    return "\n".join(lines)


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
    model = job.options.get("model")
    return queued_line(what, job.queue_position or 1, job.cost, str(model) if model else "")


def queued_line(what: str, position: int, cost: int, model: str = "") -> str:
    """``⏳ Image queued (position N, cost C credits, model M)``."""
    on = f", {esc(clip(model, 60))}" if model else ""
    return f"⏳ {what} queued (position {position}, cost {credits(cost)}{on})"


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
    model = job.options.get("model")
    on = f" · {esc(clip(str(model), 60))}" if model else ""
    tail = f"\n{when} · {credits(job.cost)}{on}"
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
    "model": "Model",
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
        model = job.options.get("model")
        on = f" · {clip(str(model), 40)}" if model else ""
        prefix = f"{number}. {when}{on}{state} · "
        room = max(budget - utf16_len(prefix), 10)
        lines.append(esc(prefix) + esc(clip(job.prompt.replace("\n", " "), room)))
    return clip("\n".join(lines), MAX_CAPTION)


EMPTY_HISTORY = "No images yet. Try <code>/imagine a red fox in snow</code>."

GALLERY_LINK = (
    "🖼 <b>Your private gallery</b>: every picture you made, to browse, filter, download "
    "or delete.\nThe link below signs you in once, within 15 minutes, and only you: "
    "do not forward it. Send /gallery again for a new one."
)
GALLERY_BUTTON = "🖼 Open my gallery"
GALLERY_MINI_APP_BUTTON = "📱 Open in Telegram"
GALLERY_SHORT = "🖼 Gallery"
GALLERY_SENT = "Your gallery link is below."
GALLERY_PRIVATE_ONLY = "The gallery link is sent only in our private chat: send me /gallery there."


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
ERASE_EXPIRED = "That question has expired: nothing was erased."
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
    "<code>/admin appeal NUMBER grant|deny REASON</code> — decide one; the user is told "
    "the outcome and the reason\n"
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


def admin_appeal_decided(decision: AppealDecision, told: bool) -> str:
    """``/admin appeal``: what was decided and whether the user heard of it."""
    lines = [f"Appeal #{decision.request_id} {decision.decision}. Recorded in the audit log."]
    if decision.receipt is not None:
        lines.append(f"The account was erased (request {decision.receipt.request_id}).")
    if decision.recipient is None:
        lines.append("The account no longer exists: there is nobody to tell.")
    elif told:
        lines.append("The user was told in a direct message.")
    else:
        lines.append("The user could not be reached; the decision is in their /privacy.")
    return esc("\n".join(lines))


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


# --- Telegram Stars (bot/telegram/payments.py) ---------------------------------------------------

STARS_REFUSALS = {
    "unknown": "This invoice is not valid any more. Please use /buy for a new one.",
    "expired": "This invoice has expired. Please use /buy for a new one.",
    "other_user": "This invoice was made for someone else. Please use /buy for your own.",
    "price_changed": "The price has changed since this invoice was made. Please use /buy again.",
    "banned": "This account cannot make purchases right now. /paysupport explains why.",
    "error": "Payments are not available right now. Please try again in a few minutes.",
}
STARS_UNKNOWN_PAYMENT = (
    "Your payment arrived but does not match an order of ours. Nothing is lost: "
    "please write /paysupport and we will sort it out or refund it."
)
STARS_NOTHING_TO_CANCEL = "You have no plan paid in Stars to cancel."
STARS_CANCELLED_ALERT = "Your plan is cancelled; it runs until the end of the paid month."
STARS_CANCEL_BUTTON = "Cancel my plan"


def stars_offer_label(offer: Offer) -> str:
    """The button of one offer priced in Stars."""
    per = " a month" if offer.kind == "plan" else ""
    return f"{offer.name} · {offer.credits} credits · ⭐ {offer.stars}{per}"


def stars_offers_text(kind: str, offers: Iterable[Offer], *, in_stars: bool) -> str:
    """The /buy or /subscribe message when Stars are on sale."""
    items = list(offers)
    if not in_stars:
        return offers_text(kind, items)
    if not items:
        return "Nothing is on sale right now."
    title = "Monthly plans" if kind == "plan" else "Credit packs"
    lines = [f"⭐ <b>{title}</b>, paid in Telegram Stars"]
    for offer in items:
        per = " a month" if offer.kind == "plan" else ""
        lines.append(f"• {esc(offer.name)}: {offer.credits} credits for ⭐ {offer.stars}{per}")
    return "\n".join(lines)


def stars_invoice(offer: Offer) -> tuple[str, str]:
    """(title, description) of a Stars invoice: 1-32 and 1-255 characters."""
    per = " every month" if offer.kind == "plan" else ""
    description = f"{offer.credits} image credits{per}, added to your balance as soon as you pay."
    return offer.name[:32] or "Credits", description[:255]


def stars_subscription_text(offer: Offer) -> str:
    """The message that carries a plan's subscription link."""
    return (
        f"{esc(offer.name)}: {offer.credits} credits every month for ⭐ {offer.stars}. "
        "Telegram renews it monthly; cancel any time with /billing."
    )


def stars_subscribe_button(offer: Offer) -> str:
    """The button that opens a plan's Stars subscription."""
    return f"Subscribe for ⭐ {offer.stars} a month"


def stars_refusal(reason: str) -> str:
    """Why a payment was stopped before it was charged (shown by Telegram, plain text)."""
    return STARS_REFUSALS.get(reason, STARS_REFUSALS["unknown"])


def paysupport_text() -> str:
    """/paysupport: how to get help with a payment and a refund."""
    return (
        "💬 <b>Help with a payment</b>\n"
        "Write /support followed by what happened (for example: "
        "<code>/support I paid but got no credits</code>). An operator answers here.\n"
        "Credits normally arrive within seconds of paying; /balance shows them.\n"
        "Refunds: if something went wrong, an operator refunds the Stars to your Telegram "
        "account; the credits of that purchase are taken back from your balance.\n"
        "Plans: /billing shows your plan and cancels it."
    )


def stars_no_plan_text() -> str:
    """/billing without a plan."""
    return "You have no monthly plan. /subscribe shows the plans; /balance your credits."


def stars_plan_text(plan: SubscriptionRecord) -> str:
    """/billing with a Stars plan."""
    until = f"{plan.current_period_end:%Y-%m-%d}" if plan.current_period_end else "the month's end"
    if plan.cancel_at_period_end:
        return (
            f"Your plan <b>{esc(plan.plan_name)}</b> is cancelled and ends on {until}. "
            "Your credits stay yours."
        )
    return (
        f"Your plan <b>{esc(plan.plan_name)}</b>: {plan.credits} credits a month, "
        f"paid in Stars, renews on {until}."
    )
