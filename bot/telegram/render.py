"""Every text the Telegram adapter shows, as Telegram HTML.

Everything that comes from a person (prompts, names) or from core (messages that may
quote what a person typed) is escaped here, and clipped to Telegram's limits (4096
characters for a message, 1024 for a caption, 200 for a callback answer), counted the way
Telegram counts them (UTF-16 code units). Errors are turned into words in one place,
:func:`error_text`.

The words come from the message catalog (``core.i18n``) in the current language; this
module only writes them as Telegram HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from core.admin.service import UserSummary
from core.billing import movements
from core.billing.offers import Offer
from core.billing.ports import SubscriptionRecord
from core.errors import message_for
from core.generation.options import accepted_text
from core.i18n import Markup, Msg, Raw, format_when, msg, render
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


HTML = Markup(
    escape=esc,
    bold=lambda text: f"<b>{text}</b>",
    italic=lambda text: f"<i>{text}</i>",
    code=lambda text: f"<code>{text}</code>",
    link=lambda text, url: f'<a href="{html.escape(url)}">{text}</a>',
)
"""The catalog's neutral markup written as Telegram HTML."""


def tr(key: str, **args: object) -> str:
    """A catalog message in the current language, as Telegram HTML."""
    return render(Msg(key, args), None, HTML)


def text_of(message: Msg | str) -> str:
    """A message (or a legacy English sentence) as Telegram HTML."""
    return render(message, None, HTML)


def plain_text(message: Msg | str) -> str:
    """A message as plain text (callback answers, button labels)."""
    return render(message)


def credits(amount: int) -> str:
    """``1 credit``, ``5 credits`` (in the current language)."""
    return render(msg("credits", count=amount))


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


def help_text(models: Sequence[tuple[str, str, Mapping[str, int]]] = ()) -> str:
    """The /help answer, with the price table of each model on offer
    (``(name, label, credits per square image by quality)``)."""
    text = tr("help.telegram", options=accepted_text())
    if models:
        text += "\n\n" + prices_text(models)
    return text


def prices_text(models: Sequence[tuple[str, str, Mapping[str, int]]]) -> str:
    """Credits per 1024x1024 image, by model and quality (larger sizes cost more)."""
    lines = [tr("tg.prices_head")]
    for name, label, row in models:
        prices = " · ".join(f"{esc(q)} {n}" for q, n in row.items())
        title = esc(label) if label == name else f"{esc(label)} (<code>{esc(name)}</code>)"
        lines.append(f"{title}: {prices}")
    if len(models) > 1:
        lines.append(tr("tg.prices_choose"))
    return "\n".join(lines)


def terms_text(status: OnboardingStatus) -> str:
    """The terms, the policy version and the age question."""
    policy = status.policy
    intro = msg("terms.policy_changed" if status.state == "policy_changed" else "terms.welcome")
    args = {"intro": intro, "version": policy.version, "date": policy.effective_date}
    if policy.url:
        return tr("terms.body_link", url=policy.url, **args)
    return tr("terms.body", **args)


def accepted_text_for(name: str) -> str:
    """After the terms were accepted."""
    thanks = tr("terms.accepted_name", name=clip(name, 64)) if name else tr("terms.accepted")
    return thanks + "\n\n" + help_text()


# --- jobs ----------------------------------------------------------------------------------------


def received() -> str:
    """The first answer to /imagine, before the job is queued."""
    return tr("job.received")


def generating() -> str:
    """The status while the model works."""
    return tr("job.generating")


def queued_text(job: JobView, *, created: bool = True) -> str:
    """The status message once the job is in the queue."""
    if not created:
        return tr("job.already", state=job.state.value)
    model = job.options.get("model")
    return queued_line(
        job.kind == "edit",
        job.queue_position or 1,
        job.cost,
        str(model) if model else "",
        eta=job.eta_seconds,
    )


def eta_phrase(seconds: float | None) -> str:
    """``ready in about 40 s`` / ``about 3 min``; empty while nothing is measured."""
    if seconds is None:
        return ""
    if seconds < 90:
        return tr("job.eta_seconds", seconds=max(5, round(seconds / 5) * 5))
    return tr("job.eta_minutes", minutes=round(seconds / 60))


def queued_line(
    edit: bool, position: int, cost: int, model: str = "", *, eta: float | None = None
) -> str:
    """``⏳ Image queued (position N, cost C credits)``, and the model when one is named,
    then the honest wait when the provider's pace is known."""
    cost_msg = msg("credits", count=cost)
    if model:
        key = "tg.queued_edit_model" if edit else "tg.queued_image_model"
        text = tr(key, position=position, cost=cost_msg, model=clip(model, 60))
    else:
        key = "job.queued_edit" if edit else "job.queued_image"
        text = tr(key, position=position, cost=cost_msg)
    wait = eta_phrase(eta)
    return f"{text} · {wait}" if wait else text


def with_model(text: str, model: object) -> str:
    """``text · model`` (``text`` already HTML; the model's name is escaped here)."""
    return tr("tg.with_model", text=Raw(text), model=clip(str(model), 60)) if model else text


def preview_caption(index: int) -> str:
    """The caption of a partial preview."""
    return tr("job.preview", number=index + 1)


def result_caption(prompt: str, *, cost: int, balance: int, count: int, notice: str = "") -> str:
    """The caption (or message) that goes with a finished result."""
    spent = msg("credits", count=cost)
    if count > 1:
        tail = "\n" + tr(
            "job.result_many", images=msg("images", count=count), cost=spent, balance=balance
        )
    else:
        tail = "\n" + tr("job.result", cost=spent, balance=balance)
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
    when = format_when(job.created_at)
    tail = "\n" + with_model(f"{esc(when)} · {esc(credits(job.cost))}", job.options.get("model"))
    room = MAX_CAPTION - utf16_len(tail) - 10
    return f"<b>{esc(clip(job.prompt, max(room // 2, 50)))}</b>{tail}"


def failed_text(event: Failed) -> str:
    """A job that ended without images."""
    words = render(event.text if event.text is not None else event.message)
    text = f"⚠️ {esc(clip(words, 1500))}"
    if event.refunded and event.code not in _REFUND_SAID:
        text += "\n" + tr("job.returned", count=event.refunded)
    return text


_REFUND_SAID = frozenset({"provider_unavailable", "interrupted", "content_refused"})
"""Failures whose own words already say the credits were returned."""


def cancelled_text(cost: int) -> str:
    """A job cancelled before it started."""
    return tr("job.cancelled", cost=msg("credits", count=cost))


EDIT_REF = re.compile(r"ref ([0-9a-f]{16})·(\d{1,2})")
"""Finds the job and image in the Edit question a person replied to."""


def edit_prompt_text(job_id: str, index: int, *, mention: tuple[int, str] | None = None) -> str:
    """The question asked by the Edit button (the reference lets the reply find the job).

    In groups the person is mentioned, which is what shows them (only them) the reply box.
    """
    if mention is not None:
        link = f'<a href="tg://user?id={mention[0]}">{esc(clip(mention[1] or "@", 64))}</a>'
        question = tr("job.edit_question_mention", mention=Raw(link), number=index + 1)
    else:
        question = tr("job.edit_question", number=index + 1)
    return f"{question}\n<i>ref {job_id}·{index + 1}</i>"


def full_res_caption(width: int, height: int, size_bytes: int) -> str:
    """The caption of an original file."""
    return tr("job.original", width=width, height=height, size=size_bytes / 1_000_000)


def download_link_text(width: int, height: int, size_bytes: int, expires_in: int) -> str:
    """Above a Download full resolution button: what it downloads, and for how long."""
    return (
        full_res_caption(width, height, size_bytes)
        + "\n"
        + tr("download.link_terms", minutes=max(1, expires_in // 60))
    )


def export_ready_text(size_bytes: int) -> str:
    """Above the export's download button."""
    return tr("download.export", size=size_bytes / 1_000_000)


# --- errors: the one place -----------------------------------------------------------------------


def error_message(exc: BaseException) -> str:
    """The words for any exception, as plain text in the current language: a user-facing
    error's message, otherwise a generic apology (an exception's own text never reaches a
    user)."""
    text = render(message_for(exc))
    if getattr(exc, "code", "") == "insufficient_credits":
        text += " " + render(msg("error.buy_hint"))
    return text


def error_text(exc: BaseException) -> str:
    """An error as a chat message (HTML)."""
    return f"⚠️ {esc(clip(error_message(exc), 3000))}"


def error_alert(exc: BaseException) -> str:
    """An error as a callback answer (plain text, at most 200 characters)."""
    return plain_clip(error_message(exc))


def not_yours() -> str:
    """A button pressed by someone else than its owner."""
    return tr("job.not_yours")


def stale() -> str:
    """A button whose item is gone."""
    return tr("job.stale")


# --- account -------------------------------------------------------------------------------------


def signed(amount: int) -> str:
    """``+100``, ``−10``, ``0`` with the locale's digits."""
    number = render(msg("balance.amount", value=abs(amount)))
    return ("+" if amount > 0 else "−" if amount < 0 else "") + number


def balance_text(view: BalanceView) -> str:
    """The /balance answer: the balance, what running jobs reserve, the plan and the last
    movements, in words a customer understands."""
    lines = [tr("balance.title", credits=msg("credits", count=view.available))]
    if view.held:
        lines.append(tr("balance.reserved", credits=msg("credits", count=view.held)))
    if view.spending_blocked:
        lines.append(tr("balance.paused"))
    plan = view.plan
    if plan is not None:
        lines.append(plan_line(view) + " " + tr("balance.plan_hint"))
    shown = movements(view.recent)
    if shown:
        lines.append("")
        lines.append(tr("balance.recent"))
    for line, words in shown:
        lines.append(
            tr(
                "balance.line",
                when=line.created_at,
                what=words,
                amount=Raw(esc(signed(line.amount))),
            )
        )
    lines.append("\n" + tr("balance.buy_hint"))
    return "\n".join(lines)


def plan_line(view: BalanceView) -> str:
    """The monthly plan sentence of /balance."""
    plan = view.plan
    assert plan is not None
    args: dict[str, object] = {
        "name": plan.name,
        "credits": msg("credits", count=plan.credits_per_period),
    }
    if plan.renews_at is not None:
        key = "balance.plan_ends" if plan.cancel_at_period_end else "balance.plan_renews"
        text = tr(key, date=plan.renews_at.date(), **args)
    else:
        text = tr("balance.plan", **args)
    if plan.status not in ("active", "trialing"):
        text += " " + tr("balance.plan_status", status=plan.status)
    return text


SETTING_LABELS = {
    "size": "setting.size",
    "quality": "setting.quality",
    "output_format": "setting.output_format",
    "n": "setting.n",
    "background": "setting.background",
    "model": "setting.model",
}


def setting_label(name: str) -> str:
    """A setting's name in the current language (plain)."""
    return render(Msg(SETTING_LABELS.get(name, "setting." + name)))


def settings_text(view: UserSettingsView, language: str = "") -> str:
    """The /settings message."""
    lines = [tr("settings.title")]
    for name, key in SETTING_LABELS.items():
        value = getattr(view, name)
        shown: object = value if value is not None else msg("word.default")
        lines.append(tr("settings.line", label=Msg(key), value=shown))
    if language:
        lines.append(tr("settings.line", label=Msg("setting.language"), value=language))
    return "\n".join(lines)


def setting_choice_text(name: str) -> str:
    """The question when one setting is being changed."""
    return tr("settings.choose", label=setting_label(name).lower())


def language_choice_text() -> str:
    """The question of ``/settings language``."""
    return tr("language.choose")


def language_set_text(name: str) -> str:
    """After the language was chosen (already in the new language)."""
    return tr("language.set", language=name)


def history_caption(page: HistoryPage) -> str:
    """The caption of a contact sheet: one line per numbered item."""
    head = tr("history.head", page=page.page, pages=page.pages, total=page.total)
    lines = [head]
    budget = (MAX_CAPTION - utf16_len(head) - 40) // max(len(page.items), 1)
    for number, job in enumerate(page.items, 1):
        when = format_when(job.created_at)
        state = "" if job.state.value == "succeeded" else f" · {job.state.value}"
        model = job.options.get("model")
        dated = with_model(esc(f"{number}. {when}"), clip(str(model), 40) if model else "")
        prefix = f"{dated}{esc(state)} · "
        room = max(budget - utf16_len(html.unescape(prefix)), 10)
        lines.append(prefix + esc(clip(job.prompt.replace("\n", " "), room)))
    return clip("\n".join(lines), MAX_CAPTION)


def empty_history() -> str:
    """/history with nothing in it."""
    return tr("history.empty")


def gallery_link_text() -> str:
    """The message that carries the gallery's sign-in link (a button)."""
    return tr("tg.gallery_link")


def gallery_button() -> str:
    """The button that opens the gallery in the browser."""
    return render(msg("tg.gallery_button"))


def gallery_mini_app_button() -> str:
    """The button that opens the gallery as a Telegram Mini App."""
    return render(msg("tg.gallery_mini_app_button"))


def gallery_short() -> str:
    """The Gallery button under results and /history."""
    return render(msg("tg.gallery_short"))


def gallery_sent() -> str:
    """The callback answer after the gallery link was sent."""
    return render(msg("tg.gallery_sent"))


def gallery_private_only() -> str:
    """The Gallery button pressed in a group (an alert)."""
    return render(msg("tg.gallery_private_only"))


def offers_text(kind: str, offers: Iterable[Offer]) -> str:
    """The /buy or /subscribe message."""
    items = list(offers)
    if not items:
        return tr("offers.none")
    title = tr("offers.plans" if kind == "plan" else "offers.packs")
    lines = [f"💳 <b>{title}</b>"]
    for offer in items:
        key = "offers.plan_line" if offer.kind == "plan" else "offers.pack_line"
        lines.append(
            "• "
            + tr(
                key,
                name=offer.name,
                credits=msg("credits", count=offer.credits),
                price=offer.price_text,
            )
        )
    return "\n".join(lines)


def offer_label(offer: Offer) -> str:
    """The button of one offer."""
    return render(
        msg(
            "offers.button",
            name=offer.name,
            credits=msg("credits", count=offer.credits),
            price=offer.price_text,
        )
    )


def payment_text(reply: PaymentLinkReply) -> str:
    """A checkout or portal link message (the link itself is a button)."""
    return esc(clip(reply.text, 1000))


def private_only_text(what: str) -> str:
    """In a group: where to go instead."""
    return tr("private.only", what=what)


CONSENT_SHORT = {name: f"consent_short.{name}" for name in CONSENT_LABELS}
"""The switches' names on buttons (the full labels are in the /privacy text)."""


def _on_off(value: bool) -> Msg:
    return Msg("word.on" if value else "word.off")


def privacy_text(
    overview: PrivacyOverview,
    requests: Sequence[PrivacyRequestRecord] = (),
    *,
    known: bool = True,
) -> str:
    """The /privacy answer: what is stored and for how long (from the active retention
    policy), the policy, the switches and the recent privacy requests."""
    policy = overview.policy
    args = {"version": policy.version, "date": policy.effective_date}
    lines = [
        tr("privacy.title"),
        tr("privacy.policy_link", url=policy.url, **args)
        if policy.url
        else tr("privacy.policy", **args),
        "",
        tr("privacy.stored_head"),
        *(f"• {text_of(item)}" for item in overview.stored_messages),
    ]
    if known:
        name = clip(overview.display_name, 64) if overview.display_name else msg("privacy.no_name")
        language = overview.locale or msg("word.none")
        lines.append(tr("privacy.name", name=name, language=language))
    else:
        lines.append(tr("privacy.nothing"))
    lines += ["", tr("privacy.retention_head")]
    rows: Sequence[tuple[Msg | str, Msg | str]] = overview.retention_messages or overview.retention
    lines += [f"• {tr('privacy.row', what=what, period=period)}" for what, period in rows]
    consents = overview.consents
    lines += [
        "",
        tr("privacy.choices_head"),
        *(
            "• "
            + tr(
                "privacy.switch",
                label=Msg(f"consent.{name}"),
                state=_on_off(bool(getattr(consents, name))),
            )
            for name in CONSENT_LABELS
        ),
        "",
        tr("privacy.commands"),
    ]
    if requests:
        lines += ["", tr("privacy.requests_head")]
        for item in list(requests)[:5]:
            row: dict[str, object] = {
                "request_id": item.id,
                "when": item.received_at,
                "kind": item.kind,
                "status": item.status,
            }
            if item.appeal_status:
                lines.append(tr("tg.privacy_request_appeal", appeal=item.appeal_status, **row))
            else:
                lines.append(tr("tg.privacy_request", **row))
    return clip("\n".join(lines), MAX_MESSAGE)


def consent_button(name: str, value: bool) -> str:
    """A switch's button: its state, pressed to flip it."""
    short = Msg(CONSENT_SHORT.get(name, "consent_short." + name))
    return render(msg("consent.button_on" if value else "consent.button_off", name=short))


def consent_changed(name: str, value: bool) -> str:
    """The callback answer after a switch was flipped."""
    short = Msg(CONSENT_SHORT.get(name, "consent_short." + name))
    return plain_clip(render(msg("consent.changed", name=short, state=_on_off(value))))


def exporting() -> str:
    """While the export is being made."""
    return tr("export.preparing")


def export_caption(size_bytes: int, files: int) -> str:
    """The caption of the export document."""
    return tr("export.caption", files=msg("files", count=files), size=size_bytes / 1_000_000)


def confirmation_text(request: ConfirmationRequest) -> str:
    """A question with confirm/cancel buttons."""
    return f"⚠️ {text_of(request.text)}"


def receipt_text(receipt: Msg | str) -> str:
    """The erasure receipt."""
    return f"🗑 {text_of(receipt)}"


def erase_kept() -> str:
    """The erasure was cancelled."""
    return tr("erase.kept")


def profile_refreshed() -> str:
    """After the name was refreshed from Telegram."""
    return tr("profile.refreshed", platform="Telegram")


def profile_cleared() -> str:
    """After the name was cleared."""
    return tr("profile.cleared")


def erase_expired() -> str:
    """An erasure question answered after it expired (a callback answer, plain)."""
    return render(msg("tg.erase_expired"))


def message_usage(kind: str) -> str:
    """/feedback or /support without a text."""
    return tr("ticket.usage_feedback" if kind == "feedback" else "ticket.usage_support")


def message_received(kind: str, ticket_id: int, forwarded: bool) -> str:
    """After /feedback or /support."""
    what = "feedback" if kind == "feedback" else "support"
    return tr(f"ticket.{what}_{'sent' if forwarded else 'stored'}", ticket_id=ticket_id)


def appeal_usage() -> str:
    """/appeal without a number and reasons."""
    return tr("appeal.usage")


def appeal_received(request_id: int) -> str:
    """After /appeal."""
    return tr("appeal.received", request_id=request_id)


# --- /admin (operators only) -------------------------------------------------------------------


def admin_help() -> str:
    """``/admin`` without a subcommand: the operator tools."""
    return tr("tg.admin.help")


def _utc(moment: datetime) -> Msg:
    return msg("tg.admin.utc", when=moment)


def admin_user_text(summary: UserSummary) -> str:
    """``/admin user``."""
    user, balance, standing = summary.user, summary.balance, summary.standing
    ban: Msg
    if standing.banned_forever:
        ban = msg("tg.admin.banned_forever")
    elif standing.banned_until is not None:
        ban = msg("tg.admin.banned_until", when=_utc(standing.banned_until))
    else:
        ban = msg("tg.admin.not_banned")
    if standing.ban_reason:
        ban = msg("tg.admin.with_reason", text=ban, reason=clip(standing.ban_reason, 200))
    credits_line = msg("tg.admin.user_credits", available=balance.available, held=balance.held)
    if balance.spending_blocked:
        credits_line = msg("tg.admin.spending_paused", text=credits_line)
    name: object = clip(user.display_name, 64) if user.display_name else msg("tg.admin.no_name")
    return tr(
        "tg.admin.user",
        name=name,
        platform=user.platform,
        platform_id=user.platform_user_id,
        user_id=user.id,
        joined=user.created_at.date(),
        terms=user.terms_version or "-",
        credits=credits_line,
        strikes=standing.strikes,
        ban=ban,
        jobs=summary.jobs,
    )


def admin_granted(amount: int, balance: int) -> str:
    """After a grant or revoke."""
    key = "tg.admin.granted" if amount > 0 else "tg.admin.revoked"
    return tr(key, credits=msg("credits", count=abs(amount)), balance=balance)


def admin_banned(standing: Standing) -> str:
    """After a ban."""
    if standing.banned_forever:
        return tr("tg.admin.banned_forever_done")
    until = standing.banned_until
    return tr("tg.admin.banned_until_done", when=_utc(until)) if until else tr("tg.admin.banned")


def admin_unbanned() -> str:
    """After an unban."""
    return tr("tg.admin.unbanned")


def admin_refunded(amount: int) -> str:
    """After a job refund."""
    if amount:
        return tr("tg.admin.refunded", credits=msg("credits", count=amount))
    return tr("tg.admin.refunded_before")


def admin_counts(title: Msg, counts: dict[str, int]) -> str:
    """``/admin stats`` and ``/admin retention`` (the counters keep their own names)."""
    lines = [f"<b>{text_of(title)}</b>"]
    lines += [f"{esc(name)}: {value}" for name, value in counts.items()]
    if not counts:
        lines.append(tr("tg.admin.nothing"))
    return clip("\n".join(lines), MAX_MESSAGE)


def admin_reviews_text(items: Sequence[ReviewRecord]) -> str:
    """``/admin reviews``: the open items, numbered as their buttons are."""
    if not items:
        return tr("tg.admin.reviews_empty")
    lines = [tr("tg.admin.reviews_head", count=len(items))]
    for item in items:
        flagged: object = ", ".join(sorted(item.categories)) or msg("tg.admin.no_category")
        lines.append(
            tr(
                "tg.admin.review_line",
                review_id=item.id,
                kind=item.kind,
                job=item.job_id,
                user_id=item.user_id,
                flagged=clip(flagged, 120) if isinstance(flagged, str) else flagged,
                when=_utc(item.created_at),
            )
        )
    return clip("\n".join(lines), MAX_MESSAGE)


def admin_review_decided(review_id: int, approve: bool) -> str:
    """The callback answer after a review decision."""
    key = "tg.admin.review_approved" if approve else "tg.admin.review_dismissed"
    return render(msg(key, review_id=review_id))


def admin_appeals_text(items: Sequence[PrivacyRequestRecord]) -> str:
    """``/admin appeals``."""
    if not items:
        return tr("tg.admin.appeals_empty")
    lines = [tr("tg.admin.appeals_head", count=len(items))]
    for item in items:
        lines.append(
            tr(
                "tg.admin.appeal_line",
                request_id=item.id,
                kind=item.kind,
                status=item.status,
                date=item.received_at.date(),
                reason=clip(item.reason, 200),
                appeal=clip(item.appeal_text or "", 600),
            )
        )
    return clip("\n".join(lines), MAX_MESSAGE)


def admin_appeal_decided(decision: AppealDecision, told: bool) -> str:
    """``/admin appeal``: what was decided and whether the user heard of it."""
    key = "tg.admin.appeal_granted" if decision.decision == "granted" else "tg.admin.appeal_denied"
    lines = [tr(key, request_id=decision.request_id)]
    if decision.receipt is not None:
        lines.append(tr("tg.admin.appeal_erased", request_id=decision.receipt.request_id))
    if decision.recipient is None:
        lines.append(tr("tg.admin.appeal_nobody"))
    elif told:
        lines.append(tr("tg.admin.appeal_told"))
    else:
        lines.append(tr("tg.admin.appeal_not_told"))
    return "\n".join(lines)


# --- group controls ------------------------------------------------------------------------------


def group_switched(enabled: bool) -> str:
    """After /bot_on or /bot_off in a group."""
    return tr("group.on" if enabled else "group.off")


def group_admins_only() -> str:
    """/bot_on or /bot_off from someone who is not an admin."""
    return tr("group.admins_only")


def group_only() -> str:
    """/bot_on or /bot_off in a private chat."""
    return tr("group.only")


def unknown_command() -> str:
    """A command this bot does not have."""
    return tr("error.unknown_command")


def prompt_hint() -> str:
    """A private message that is not a command."""
    return tr("job.prompt_hint")


# --- Telegram Stars (bot/telegram/payments.py) ---------------------------------------------------

STARS_REFUSALS = frozenset({"unknown", "expired", "other_user", "price_changed", "banned", "error"})
"""Reasons a payment is stopped before it is charged (each a ``tg.stars_refusal.*`` message)."""


def stars_unknown_payment() -> str:
    """A Stars payment that matches no order of ours."""
    return tr("tg.stars_unknown_payment")


def stars_nothing_to_cancel() -> Msg:
    """/billing's Cancel pressed without a Stars plan (an error's message)."""
    return msg("tg.stars_nothing_to_cancel")


def stars_cancelled_alert() -> str:
    """The callback answer after a Stars plan was cancelled."""
    return render(msg("tg.stars_cancelled_alert"))


def stars_cancel_button() -> str:
    """The button that cancels a Stars plan."""
    return render(msg("tg.stars_cancel_button"))


def stars_offer_label(offer: Offer) -> str:
    """The button of one offer priced in Stars."""
    key = "tg.stars_label_plan" if offer.kind == "plan" else "tg.stars_label_pack"
    return render(
        msg(key, name=offer.name, credits=msg("credits", count=offer.credits), stars=offer.stars)
    )


def stars_offers_text(kind: str, offers: Iterable[Offer], *, in_stars: bool) -> str:
    """The /buy or /subscribe message when Stars are on sale."""
    items = list(offers)
    if not in_stars:
        return offers_text(kind, items)
    if not items:
        return tr("offers.none")
    title = msg("offers.plans" if kind == "plan" else "offers.packs")
    lines = [tr("tg.stars_offers_head", title=title)]
    for offer in items:
        key = "tg.stars_plan_line" if offer.kind == "plan" else "tg.stars_pack_line"
        lines.append(
            "• "
            + tr(
                key, name=offer.name, credits=msg("credits", count=offer.credits), stars=offer.stars
            )
        )
    return "\n".join(lines)


def stars_invoice(offer: Offer) -> tuple[str, str]:
    """(title, description) of a Stars invoice: 1-32 and 1-255 characters."""
    key = "tg.stars_invoice_plan" if offer.kind == "plan" else "tg.stars_invoice_pack"
    description = render(msg(key, count=offer.credits))
    title = offer.name[:32] or render(msg("tg.stars_invoice_title"))[:32]
    return title, description[:255]


def stars_subscription_text(offer: Offer) -> str:
    """The message that carries a plan's subscription link."""
    return tr(
        "tg.stars_subscription",
        name=offer.name,
        credits=msg("credits", count=offer.credits),
        stars=offer.stars,
    )


def stars_subscribe_button(offer: Offer) -> str:
    """The button that opens a plan's Stars subscription."""
    return render(msg("tg.stars_subscribe_button", stars=offer.stars))


def stars_refusal(reason: str) -> str:
    """Why a payment was stopped before it was charged (shown by Telegram, plain text)."""
    return render(msg(f"tg.stars_refusal.{reason if reason in STARS_REFUSALS else 'unknown'}"))


def paysupport_text() -> str:
    """/paysupport: how to get help with a payment and a refund."""
    return tr("tg.paysupport")


def stars_no_plan_text() -> str:
    """/billing without a plan."""
    return tr("tg.stars_no_plan")


def stars_plan_text(plan: SubscriptionRecord) -> str:
    """/billing with a Stars plan."""
    end = plan.current_period_end
    until: object = end.date() if end is not None else msg("tg.month_end")
    if plan.cancel_at_period_end:
        return tr("tg.stars_plan_cancelled", name=plan.plan_name, date=until)
    return tr(
        "tg.stars_plan",
        name=plan.plan_name,
        credits=msg("credits", count=plan.credits),
        date=until,
    )
