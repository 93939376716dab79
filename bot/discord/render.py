"""The one renderer of the Discord adapter: every text the bot sends, and every error.

Pure functions from core's types to Discord message text (markdown, at most 2000
characters). The words come from the message catalog (``core.i18n``) in the current
language, shared with the other adapters; this module only writes them as Markdown.
Components live in views.py; sending lives in respond.py and notifier.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import discord
from discord import app_commands

from core.admin.service import NotAnOperator, UserSummary
from core.billing import movements
from core.billing.offers import Offer
from core.errors import (
    GENERIC_SORRY_MSG,
    AgeRefused,
    Banned,
    InsufficientCredits,
    NotFound,
    SpendingBlocked,
    TermsRequired,
    UserFacingError,
    message_for,
)
from core.generation import DownloadLink
from core.i18n import LANGUAGE_NAMES, Markup, Msg, Raw, format_when, msg, render
from core.privacy.onboarding import OnboardingStatus
from core.privacy.ports import PrivacyRequestRecord
from core.privacy.service import AppealDecision, ExportResult, PrivacyOverview
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


def _md_code(text: str) -> str:
    return f"`{text.replace('`', 'ˋ')}`"


MARKDOWN = Markup(
    escape=lambda text: discord.utils.escape_markdown(text),
    bold=lambda text: f"**{text}**",
    italic=lambda text: f"*{text}*",
    code=_md_code,
    link=lambda text, url: f"[{text}](<{url}>)",
    literal=lambda text: text,
    code_escape=lambda text: text,
)
"""The catalog's neutral markup written as Discord Markdown."""


def tr(key: str, **args: object) -> str:
    """A catalog message in the current language, as Discord Markdown."""
    return render(Msg(key, args), None, MARKDOWN)


def text_of(message: Msg | str) -> str:
    """A message (or a legacy English sentence, shown as written) as Markdown."""
    if isinstance(message, str):
        return message
    return render(message, None, MARKDOWN)


def words(key: str, **args: object) -> str:
    """A catalog message as plain text (button labels, choice names)."""
    return render(Msg(key, args))


def credits(amount: int) -> str:
    """``1 credit``, ``4 credits`` (in the current language)."""
    return render(msg("credits", count=amount))


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


def help_text(models: Sequence[tuple[str, str, Mapping[str, int]]] = ()) -> str:
    """The /help answer, with the price table of each model on offer
    (``(name, label, credits per square image by quality)``)."""
    text = tr("help.discord")
    if not models:
        return text
    lines = [tr("dc.help.models_title")]
    for name, label, row in models:
        prices = " · ".join(f"{q} {n}" for q, n in row.items())
        code = f"`{name.replace('`', '')[:100]}`"
        title = code if label == name else f"{plain(label, 60)} ({code})"
        lines.append(f"• {title}: {prices}")
    if len(models) > 1:
        lines.append("-# " + tr("dc.help.models_hint"))
    return clip(text + "\n\n" + "\n".join(lines))


def terms_text(status: OnboardingStatus) -> str:
    """The terms, the policy version and the age question."""
    policy = status.policy
    intro = msg("terms.policy_changed" if status.state == "policy_changed" else "terms.welcome")
    args = {"intro": intro, "version": policy.version, "date": policy.effective_date}
    if policy.url:
        return tr("terms.body_link", url=policy.url, **args)
    return tr("terms.body", **args)


def accepted_text(name: str) -> str:
    """After the terms were accepted."""
    thanks = tr("terms.accepted_name", name=clip(name, 64)) if name else tr("terms.accepted")
    return f"{thanks} {tr('terms.imagine_again')}"


def refused_age() -> str:
    """After someone said they are under 13."""
    return f"{text_of(AgeRefused().msg)} {tr('terms.refused_kept')}"


def private_details() -> str:
    """In a channel, when the reason for a refusal went only to its owner."""
    return tr("job.private_details")


# --- jobs -------------------------------------------------------------------------------------


def generating() -> str:
    """The status while the model works."""
    return tr("job.generating")


def eta_phrase(seconds: float | None) -> str:
    """``ready in about 40 s`` / ``about 3 min``; empty while nothing is measured."""
    if seconds is None:
        return ""
    if seconds < 90:
        return tr("job.eta_seconds", seconds=max(5, round(seconds / 5) * 5))
    return tr("job.eta_minutes", minutes=round(seconds / 60))


def queued_text(
    position: int,
    cost: int,
    balance: int,
    *,
    edit: bool = False,
    model: str = "",
    eta: float | None = None,
) -> str:
    """The status while a job waits for a worker: place, cost, balance, the honest wait
    when the provider's pace is known, and the model when one is named."""
    key = "job.queued_edit_balance" if edit else "job.queued_image_balance"
    text = tr(key, position=position, cost=msg("credits", count=cost), balance=balance)
    if model:
        text = tr("dc.with_model", text=Raw(text), model=clip(model, 60))
    wait = eta_phrase(eta)
    return f"{text} · {wait}" if wait else text


def submitted_text(sub: Submitted) -> str:
    """The status once the job is in the queue."""
    job = sub.job
    if not sub.created:
        return tr("job.already", state=job.state.value)
    model = str(job.options.get("model") or "")
    return queued_text(
        job.queue_position or 1,
        job.cost,
        sub.balance,
        edit=job.kind == "edit",
        model=model,
        eta=job.eta_seconds,
    )


def preview_text(index: int) -> str:
    """The status while a partial preview is shown."""
    return tr("job.preview", number=index + 1)


def delivered_text(event: Delivered, notes: Iterable[str] = ()) -> str:
    """The message that carries a finished result."""
    count = len(event.outputs)
    size = ""
    if event.outputs:
        size = f"{event.outputs[0].width}×{event.outputs[0].height} · "
    spent = msg("credits", count=event.cost)
    summary = tr(
        "job.result_many", images=msg("images", count=count), cost=spent, balance=event.balance
    )
    tail = f"-# {size}{summary}"
    extra = [f"-# {clip(note, 300)}" for note in (event.notice, *notes) if note]
    room = MAX_CONTENT - len(tail) - sum(len(e) + 1 for e in extra) - 4
    return "\n".join([_quote(event.prompt, max(room, 100)), tail, *extra])


_REFUND_SAID = frozenset({"provider_unavailable", "interrupted", "content_refused"})
"""Failures whose own words already say the credits were returned."""


def failed_text(event: Failed) -> str:
    """A job that ended without images."""
    text = f"⚠️ {clip(text_of(event.text if event.text is not None else event.message), 1500)}"
    if event.refunded and event.code not in _REFUND_SAID:
        text += "\n" + tr("job.returned", count=event.refunded)
    return text


def job_line(number: int, job: JobView) -> str:
    """One line of /history."""
    when = format_when(job.created_at)
    state = "" if job.state.value == "succeeded" else f" · {job.state.value}"
    prompt = clip(" ".join(job.prompt.split()), 90)
    model = job.options.get("model")
    on = f" · {plain(str(model), 40)}" if model else ""
    return f"`{number}.` {when}{on}{state} · {prompt}"


def history_text(page: HistoryPage) -> str:
    """The /history answer: one numbered line per job (its buttons carry the number)."""
    if not page.items:
        return empty_history()
    head = tr("history.head", page=page.page, pages=page.pages, total=page.total)
    lines = [head]
    lines += [job_line(n, job) for n, job in enumerate(page.items, 1)]
    lines.append("-# " + tr("history.download_hint"))
    return clip("\n".join(lines))


def empty_history() -> str:
    """/history with nothing in it."""
    return tr("history.empty_discord")


def not_yours() -> str:
    """A button pressed by someone else than its owner."""
    return tr("job.not_yours")


def stale() -> str:
    """A button whose item is gone."""
    return tr("job.stale_discord")


def deleted() -> str:
    """After a result was deleted."""
    return tr("job.deleted")


def no_images() -> str:
    """ "Edit with imagebot" on a message without images."""
    return tr("job.no_images")


def gallery_link() -> str:
    """/gallery: what the private link opens, and that it is personal."""
    return tr("dc.gallery.link")


def gallery_button() -> str:
    """The link button of /gallery."""
    return words("dc.gallery.button")


def gallery_short() -> str:
    """The Gallery button under /history and results."""
    return words("dc.gallery.short")


def full_res_text(count: int, notes: Iterable[str] = ()) -> str:
    """The message that carries original files."""
    text = tr("job.originals", count=count)
    return clip("\n".join([text, *(f"-# {n}" for n in notes)]))


def download_links_text(links: Sequence[DownloadLink]) -> str:
    """Above the Download full resolution buttons: what each downloads, and for how long."""
    lines = [
        (f"{link.index + 1}. " if len(links) > 1 else "")
        + tr(
            "job.original",
            width=link.image.width,
            height=link.image.height,
            size=link.image.size_bytes / 1_000_000,
        )
        for link in links
    ]
    minutes = max(1, min(link.expires_in for link in links) // 60)
    return clip("\n".join([*lines, tr("download.link_terms", minutes=minutes)]))


def export_ready_text(result: ExportResult) -> str:
    """Above the export's download button."""
    return tr("download.export", size=result.size_bytes / 1_000_000)


def converted_note(original_type: str, size_bytes: int, limit: int, new_type: str) -> str:
    """Why an image arrives as JPEG or WebP instead of the original file."""
    return tr(
        "job.converted",
        new=_kind(new_type),
        original=_kind(original_type),
        size=size_text(size_bytes, up=True),
        limit=size_text(limit),
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


def signed(amount: int) -> str:
    """``+100``, ``−10`` with the locale's digits."""
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
    if view.plan is not None:
        lines.append(plan_text(view))
    shown = movements(view.recent)
    if shown:
        lines.append("\n" + tr("balance.recent"))
    for line, words in shown:
        lines.append(
            tr("balance.line", when=line.created_at, what=words, amount=signed(line.amount))
        )
    lines.append("\n" + tr("balance.buy_hint_discord"))
    return clip("\n".join(lines))


def plan_text(view: BalanceView) -> str:
    """The monthly plan line of /balance."""
    plan = view.plan
    assert plan is not None
    args: dict[str, object] = {
        "name": plain(plan.name, 80),
        "credits": msg("credits", count=plan.credits_per_period),
    }
    if plan.renews_at is not None:
        key = "balance.plan_ends" if plan.cancel_at_period_end else "balance.plan_renews"
        text = tr(key, date=plan.renews_at.date(), **args)
    else:
        text = tr("balance.plan", **args)
    if plan.status not in ("active", "trialing"):
        text += " " + tr("balance.plan_status", status=plain(plan.status, 30))
    return f"{text} {tr('balance.plan_hint_discord')}"


SETTING_LABELS = {
    "size": "setting.size",
    "quality": "setting.quality",
    "output_format": "setting.output_format",
    "n": "setting.n",
    "background": "setting.background",
    "model": "setting.model",
}


def settings_text(view: UserSettingsView, price: int, language: str = "", model: str = "") -> str:
    """The /settings answer (``model``: the one these defaults use now)."""
    lines = [tr("settings.title_discord")]
    for name, key in SETTING_LABELS.items():
        value = getattr(view, name)
        shown: object = value if value is not None else msg("word.default")
        lines.append(tr("settings.line", label=Msg(key), value=shown))
    if language:
        lines.append(tr("settings.line", label=Msg("setting.language"), value=language))
    cost = msg("credits", count=price)
    if model:
        lines.append(tr("dc.settings.price_model", credits=cost, model=clip(model, 60)))
    else:
        lines.append(tr("settings.price", credits=cost))
    lines.append("-# " + tr("settings.discord_hint"))
    return "\n".join(lines)


def language_set_text(name: str) -> str:
    """After the language was chosen (already in the new language)."""
    return tr("language.set", language=name)


def offers_text(kind: str, offers: Iterable[Offer]) -> str:
    """The /buy or /subscribe answer."""
    items = list(offers)
    if not items:
        return tr("offers.none")
    title = tr("offers.plans" if kind == "plan" else "offers.packs")
    lines = [f"💳 **{title}**"]
    for offer in items:
        key = "offers.plan_line" if offer.kind == "plan" else "offers.pack_line"
        count = msg("credits", count=offer.credits)
        lines.append("• " + tr(key, name=offer.name, credits=count, price=offer.price_text))
    return "\n".join(lines)


def offer_label(offer: Offer) -> str:
    """The button of one offer (at most 80 characters)."""
    count = msg("credits", count=offer.credits)
    label = words("offers.button", name=offer.name, credits=count, price=offer.price_text)
    return clip(label, 80)


def payment_text(reply: PaymentLinkReply, *, link_in_button: bool) -> str:
    """A link (checkout, portal, export); the link goes in a button when it fits one."""
    text = clip(reply.text, 1000)
    return text if link_in_button else f"{text}\n<{reply.url}>"


def private_only_text(command: str) -> str:
    """Outside a DM: where to go instead."""
    return tr("private.only_discord", command=command)


CONSENT_LABELS = {
    "training_opt_in": "consent.training_opt_in",
    "product_updates": "consent.product_updates",
    "usage_analytics": "consent.usage_analytics",
}


def consent_label(name: str) -> str:
    """A switch's full name, plain (for buttons)."""
    return words(CONSENT_LABELS.get(name, "consent." + name))


def privacy_text(overview: PrivacyOverview) -> str:
    """The /privacy answer: the policy, what is stored, for how long, and the switches."""
    policy = overview.policy
    args = {"version": policy.version, "date": policy.effective_date}
    policy_line = (
        tr("privacy.policy_link", url=policy.url, **args)
        if policy.url
        else tr("privacy.policy", **args)
    )
    lines = [f"🔒 {policy_line}"]
    lines.append("\n" + tr("privacy.stored_head"))
    lines += [f"• {text_of(item)}" for item in overview.stored_messages]
    lines.append("\n" + tr("privacy.retention_head"))
    rows: Sequence[tuple[Msg | str, Msg | str]] = overview.retention_messages or overview.retention
    lines += [f"• {tr('privacy.row', what=what, period=period)}" for what, period in rows]
    name = clip(overview.display_name, 64) if overview.display_name else msg("privacy.no_name")
    language = clip(overview.locale, 16) if overview.locale else msg("word.none")
    lines.append("\n" + tr("privacy.profile_discord", name=name, language=language))
    lines.append("\n" + tr("privacy.switches_discord"))
    for key, label in CONSENT_LABELS.items():
        state = Msg("word.on" if getattr(overview.consents, key, False) else "word.off")
        lines.append("• " + tr("privacy.switch", label=Msg(label), state=state))
    lines.append("\n" + tr("privacy.commands_discord"))
    return clip("\n".join(lines))


def requests_text(records: Iterable[PrivacyRequestRecord]) -> str:
    """The privacy requests log of one person (P12), newest first."""
    items = list(records)
    if not items:
        return tr("requests.none")
    lines = [tr("requests.head")]
    for r in items[:20]:
        done = f", completed {r.completed_at:%Y-%m-%d %H:%M}" if r.completed_at else ""
        why = f": {plain(r.reason, 120)}" if r.reason else ""
        line = f"`#{r.id}` {r.received_at:%Y-%m-%d %H:%M} UTC · {plain(r.kind, 40)} · {r.status}"
        line += f"{why}{done}"
        if r.appeal_status:
            line += f" · appeal {r.appeal_status}"
        elif r.status == "refused":
            line += f" · `/appeal request:{r.id}`"
        lines.append(line)
    if len(items) > 20:
        lines.append("-# " + tr("requests.more", count=len(items) - 20))
    return clip("\n".join(lines))


def appeal_filed_text(request_id: int) -> str:
    """After /appeal."""
    return tr("appeal.filed_discord", request_id=request_id)


def profile_refreshed() -> str:
    """After the name and language were refreshed from Discord."""
    return tr("profile.refreshed", platform="Discord")


def profile_cleared() -> str:
    """After the name was cleared."""
    return tr("profile.cleared")


def export_text(result: ExportResult) -> str:
    """The message that carries an export."""
    return tr(
        "export.caption_discord",
        files=msg("files", count=result.files),
        size=size_text(result.size_bytes, up=True),
    )


def export_link_reply(result: ExportResult, url: str) -> PaymentLinkReply:
    """An export too large for the chat: a private download link (valid for a day)."""
    return PaymentLinkReply(
        tr("export.link_discord", size=size_text(result.size_bytes, up=True)), url
    )


def ticket_text(kind: str, number: int) -> str:
    """After /feedback or /support."""
    return tr(
        "ticket.sent_discord_" + ("feedback" if kind == "feedback" else "support"), ticket_id=number
    )


def erase_kept() -> str:
    """The erasure was cancelled."""
    return tr("erase.kept")


def outdated_command() -> str:
    """A command whose signature changed since the Discord app loaded it."""
    return tr("error.outdated_command")


def not_available() -> str:
    """A feature the operator did not set up."""
    return tr("error.not_available")


# --- operators: /admin ---------------------------------------------------------------------


def admin_dm_only() -> Msg:
    """/admin outside a DM with the bot."""
    return msg("dc.admin.dm_only")


def target_help() -> Msg:
    """How an operator names a user."""
    return msg("dc.admin.target_help")


def audited() -> str:
    """The footnote of every audited operator action."""
    return "-# " + tr("dc.admin.audited")


def _short(text: str, limit: int) -> str:
    """User-given text for a catalog argument: one line, shortened (escaped by ``tr``)."""
    return clip(" ".join(text.split()), limit)


def _stamp(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M}"


def who(platform: str, user_id: str) -> str:
    """A user as operators name them: ``discord:123``."""
    return f"`{platform}:{plain(user_id, 40)}`"


def standing_text(standing: Standing, now: datetime) -> str:
    """Strikes and the ban, in words."""
    strikes = tr("dc.admin.strikes", count=standing.strikes)
    banned = True
    if standing.banned_forever:
        ban = tr("dc.admin.banned_forever")
    elif standing.banned_until is not None and standing.banned_until > now:
        ban = tr("dc.admin.banned_until", until=_stamp(standing.banned_until))
    else:
        ban, banned = tr("dc.admin.not_banned"), False
    reason = ""
    if banned and standing.ban_reason:
        reason = f" ({plain(standing.ban_reason, 200)})"
    return f"{strikes}, {ban}{reason}"


def admin_user_text(summary: UserSummary, now: datetime) -> str:
    """What /admin user shows about one user."""
    user, balance = summary.user, summary.balance
    terms = (
        msg("dc.admin.terms_version", version=_short(user.terms_version, 32))
        if user.terms_version
        else msg("dc.admin.terms_none")
    )
    credit_line = tr("dc.admin.user_credits", available=str(balance.available))
    if balance.held:
        credit_line += " " + tr("dc.admin.held", held=str(balance.held))
    if balance.spending_blocked:
        credit_line += " · " + tr("dc.admin.paused")
    lines = [
        "👤 "
        + tr(
            "dc.admin.user_head",
            who=Raw(who(user.platform, user.platform_user_id)),
            user_id=user.id,
        ),
        tr(
            "dc.admin.user_facts",
            name=_short(user.display_name, 64) or msg("dc.admin.none_stored"),
            language=_short(user.locale, 16) or msg("dc.admin.none"),
            since=f"{user.created_at:%Y-%m-%d}",
            terms=terms,
        ),
        credit_line,
        tr(
            "dc.admin.jobs",
            jobs=str(summary.jobs),
            standing=Raw(standing_text(summary.standing, now)),
        ),
    ]
    if balance.plan is not None:
        lines.append(plan_text(balance))
    for line in balance.recent[:5]:
        sign = "+" if line.amount > 0 else ""
        note = f" · {plain(line.note, 60)}" if line.note else ""
        lines.append(f"`{line.created_at:%Y-%m-%d %H:%M}` {line.kind} {sign}{line.amount}{note}")
    lines.append(audited())
    return clip("\n".join(lines))


def admin_grant_text(target: str, amount: int, balance: int) -> str:
    """After /admin grant or revoke."""
    key = "dc.admin.granted" if amount > 0 else "dc.admin.revoked"
    text = tr(
        key, credits=msg("credits", count=abs(amount)), target=Raw(target), balance=str(balance)
    )
    return f"✅ {text}\n{audited()}"


def admin_ban_text(target: str, standing: Standing, now: datetime) -> str:
    """After /admin ban."""
    return f"🚫 {target}: {standing_text(standing, now)}.\n{audited()}"


def admin_unban_text(target: str) -> str:
    """After /admin unban."""
    return f"✅ {tr('dc.admin.unbanned', target=Raw(target))}\n{audited()}"


def admin_refund_text(job_id: str, refunded: int) -> str:
    """After /admin refund."""
    job = _short(job_id, 40)
    if not refunded:
        return tr("dc.admin.already_refunded", job=job)
    text = tr("dc.admin.refunded", credits=msg("credits", count=refunded), job=job)
    return f"✅ {text}\n{audited()}"


def admin_stats_text(stats: Mapping[str, int]) -> str:
    """/admin stats."""
    lines = ["📊 " + tr("dc.admin.stats_title")]
    lines += [f"• {name.replace('_', ' ')}: {value}" for name, value in stats.items()]
    return clip("\n".join(lines))


def admin_retention_text(counts: Mapping[str, int], *, dry_run: bool) -> str:
    """/admin retention."""
    key = "dc.admin.would_delete" if dry_run else "dc.admin.deleted"
    lines = ["🧹 " + tr("dc.admin.retention_dry" if dry_run else "dc.admin.retention_title")]
    lines += [
        "• " + tr(key, name=name.replace("_", " "), total=str(count))
        for name, count in counts.items()
    ]
    lines.append(audited())
    return clip("\n".join(lines))


REVIEWS_SHOWN = 5
"""Review items shown at once, each with a row of buttons (Discord allows five rows)."""


def admin_reviews_text(items: Iterable[ReviewRecord], note: str = "") -> str:
    """/admin reviews: the open items of the review queue, oldest first."""
    items = list(items)
    lines = [note] if note else []
    if not items:
        lines.append(tr("dc.admin.reviews_empty"))
        return "\n".join(lines)
    lines.append("🛡 " + tr("dc.admin.reviews_head", open=str(len(items))))
    for item in items[:REVIEWS_SHOWN]:
        categories = ", ".join(_short(str(c), 40) for c in item.categories)
        lines.append(
            tr(
                "dc.admin.review_line",
                review_id=item.id,
                when=_stamp(item.created_at),
                kind=_short(item.kind, 20),
                job=_short(item.job_id, 20),
                user_id=item.user_id,
                categories=categories or msg("dc.admin.unspecified"),
            )
        )
    if len(items) > REVIEWS_SHOWN:
        lines.append("-# " + tr("dc.admin.more_after", more=str(len(items) - REVIEWS_SHOWN)))
    lines.append("-# " + tr("dc.admin.reviews_legend"))
    return clip("\n".join(lines))


def review_decided_text(review_id: int, *, approved: bool) -> str:
    """The line above the queue after a decision."""
    audit = tr("dc.admin.audited")
    if approved:
        return f"✅ {tr('dc.admin.review_approved', review_id=review_id)} {audit}"
    return f"🗑 {tr('dc.admin.review_dismissed', review_id=review_id)} {audit}"


def admin_appeals_text(items: Iterable[PrivacyRequestRecord]) -> str:
    """/admin appeals: privacy appeals waiting for an operator."""
    items = list(items)
    if not items:
        return tr("dc.admin.appeals_none")
    lines = ["⚖️ " + tr("dc.admin.appeals_head", open=str(len(items)))]
    for a in items[:15]:
        head = tr(
            "dc.admin.appeal_line",
            request_id=a.id,
            kind=_short(a.kind, 30),
            when=_stamp(a.received_at),
            reason=_short(a.reason, 200),
        )
        lines.append(f"{head}\n> {plain(a.appeal_text or '', 400)}")
    if len(items) > 15:
        lines.append("-# " + tr("dc.admin.more", more=str(len(items) - 15)))
    return clip("\n".join(lines))


def admin_appeal_decided(decision: AppealDecision, told: bool) -> str:
    """/admin appeal: what was decided and whether the user heard of it."""
    key = "dc.admin.appeal_granted" if decision.decision == "granted" else "dc.admin.appeal_denied"
    lines = [f"⚖️ {tr(key, request_id=decision.request_id)} {tr('dc.admin.audited')}"]
    if decision.receipt is not None:
        lines.append(tr("dc.admin.erased", request_id=decision.receipt.request_id))
    if decision.recipient is None:
        lines.append(tr("dc.admin.nobody"))
    elif told:
        lines.append(tr("dc.admin.told"))
    else:
        lines.append(tr("dc.admin.not_told"))
    return clip("\n".join(lines))


# --- server controls: /server ---------------------------------------------------------------


def server_text(control: ChatControlRecord, changed: bool = False) -> str:
    """What /server shows: on or off, the channels, the daily cap, the language."""
    channels: object = (
        Raw(", ".join(f"<#{c}>" for c in control.allowed_channels))
        if control.allowed_channels
        else msg("server.every_channel")
    )
    cap = control.daily_cap_per_member
    rate = control.requests_per_minute
    language = LANGUAGE_NAMES.get(control.language or "", "") or msg("server.default_language")
    lines = [
        tr("server.title_saved" if changed else "server.title"),
        tr("server.status", state=msg("word.on" if control.enabled else "word.off")),
        tr("server.channels", channels=channels),
        tr("server.cap", cap=msg("server.no_cap") if cap is None else cap),
        tr("server.language", language=language),
        tr("dc.server.rate", rate=msg("server.no_cap") if rate is None else rate),
        "-# " + tr("server.footer"),
    ]
    return clip("\n".join(lines))


# --- errors: the one place --------------------------------------------------------------------


class CheckRefused(app_commands.CheckFailure):
    """A command's check said no; ``error`` carries the words (an unknown command for
    /admin used by anyone but an operator, Manage Server for /server)."""

    def __init__(self, error: UserFacingError) -> None:
        super().__init__(error.user_message)
        self.error = error


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
        return ErrorView("unknown_command", f"⚠️ {text_of(NotAnOperator().msg)}", private=True)
    if isinstance(exc, NotFound) and exc.msg == Msg(NotFound.default_key):
        return ErrorView(exc.code, f"⚠️ {stale()}", private=False)
    if isinstance(exc, UserFacingError):
        text = text_of(message_for(exc))
        if isinstance(exc, InsufficientCredits):
            text += " " + tr("error.buy_hint")
        return ErrorView(
            exc.code,
            f"⚠️ {clip(text, 1900)}",
            private=isinstance(exc, _PRIVATE_ERRORS),
            terms=isinstance(exc, TermsRequired),
        )
    if isinstance(exc, app_commands.TransformerError):
        return ErrorView("invalid_request", f"⚠️ {tr('error.option_invalid')}", private=False)
    if isinstance(exc, app_commands.CommandSignatureMismatch):
        # Discord still shows an older version of the commands (they sync on start-up).
        return ErrorView("outdated_command", f"⚠️ {outdated_command()}", private=False)
    return ErrorView("internal", f"⚠️ {text_of(GENERIC_SORRY_MSG)}", private=False)


# --- Discord premium (bot/discord/premium.py) ----------------------------------------------------


def premium_billing() -> str:
    """/billing when purchases go through Discord: Discord manages them."""
    return tr("dc.premium.billing")


def premium_offers_text(kind: str, premium: Iterable[Offer], cards: Iterable[Offer]) -> str:
    """The /buy or /subscribe answer when offers are sold through Discord's checkout."""
    head = "dc.premium.plans_head" if kind == "plan" else "dc.premium.packs_head"
    lines = [f"💎 {tr(head)}"]
    for offer in premium:
        key = "dc.premium.plan_line" if offer.kind == "plan" else "dc.premium.pack_line"
        lines.append("• " + tr(key, name=offer.name, credits=msg("credits", count=offer.credits)))
    rest = list(cards)
    if rest:
        lines.append(tr("dc.premium.or_card"))
        for offer in rest:
            key = "offers.plan_line" if offer.kind == "plan" else "offers.pack_line"
            count = msg("credits", count=offer.credits)
            lines.append("• " + tr(key, name=offer.name, credits=count, price=offer.price_text))
    lines.append(tr("dc.premium.arrive"))
    return "\n".join(lines)
