"""``/admin`` for operators (P17, P19), and /bot_off, /bot_on for group admins.

``/admin`` works only for the operators in ``IMAGEBOT_ADMINS``, in a private chat; to
anyone else, and anywhere else, it is answered exactly like a command the bot does not
have, before any of its arguments is read. Each subcommand is one call to core's
``AdminService``, which checks the operator again and writes the audit log (who, what,
whom, when, why). The command is in the menu of the operators' own chats only.

Group admins (status ``administrator`` or ``creator``, asked of Telegram with
getChatMember) switch the bot off and on in their group.
"""

from __future__ import annotations

import re
from typing import Any

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.telegram import callbacks as cb
from bot.telegram import keyboards, render
from bot.telegram.handlers import guarded, split_command
from bot.telegram.press import Action, Answer, Press
from bot.telegram.replies import PLATFORM, actor_of, answer_unknown, edit_text, reply
from bot.telegram.runtime import Runtime
from core.errors import InvalidRequest
from core.i18n import msg
from core.types import Actor

Context = ContextTypes.DEFAULT_TYPE

REVIEWS_SHOWN = 20
"""Open review items shown at once (two buttons each, within Telegram's keyboard limits)."""
GROUP_ADMIN_STATUSES = frozenset({"administrator", "creator"})

_TELEGRAM_ID = re.compile(r"\d{1,20}", re.ASCII)
_QUALIFIED = re.compile(r"(?P<platform>[a-z]{1,20}):(?P<id>[\w-]{1,64})", re.ASCII)
_HOURS = re.compile(r"(\d{1,5}(?:\.\d{1,2})?)h", re.ASCII)

USAGE = {
    "user": "/admin user ID",
    "grant": "/admin grant ID AMOUNT REASON",
    "revoke": "/admin revoke ID AMOUNT REASON",
    "ban": "/admin ban ID [HOURSh] REASON",
    "unban": "/admin unban ID REASON",
    "refund": "/admin refund JOB REASON",
    "appeal": "/admin appeal NUMBER grant|deny REASON",
}


def parse_user(text: str) -> tuple[str, str]:
    """An operator's way of naming a user -> (platform, platform user id)."""
    if _TELEGRAM_ID.fullmatch(text):
        return PLATFORM, text
    qualified = _QUALIFIED.fullmatch(text)
    if qualified:
        return qualified["platform"], qualified["id"]
    raise InvalidRequest(msg("tg.admin.target_help"))


def _need(words: list[str], count: int, sub: str) -> None:
    if len(words) < count:
        raise InvalidRequest(msg("tg.admin.use", usage=USAGE[sub]))


def _amount(text: str, sub: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 1_000_000:
        raise InvalidRequest(msg("tg.admin.use_amount", usage=USAGE[sub]))
    return int(text)


async def _run(rt: Runtime, op: Actor, words: list[str], update_id: int) -> str:
    """One subcommand; returns the answer (HTML)."""
    admin = rt.core.admin
    sub = words[0].lower()
    if sub == "user":
        _need(words, 2, sub)
        summary = await admin.lookup(op, *parse_user(words[1]))
        return render.admin_user_text(summary)
    if sub in ("grant", "revoke"):
        _need(words, 4, sub)
        platform, uid = parse_user(words[1])
        amount = _amount(words[2], sub) * (1 if sub == "grant" else -1)
        balance = await admin.grant(
            op,
            platform,
            uid,
            amount,
            reason=" ".join(words[3:]),
            # The update id: Telegram redelivering this command grants nothing twice.
            action_id=f"telegram:update:{update_id}",
        )
        return render.admin_granted(amount, balance)
    if sub == "ban":
        _need(words, 3, sub)
        platform, uid = parse_user(words[1])
        hours_match = _HOURS.fullmatch(words[2].lower())
        hours = float(hours_match[1]) if hours_match else None
        reason = " ".join(words[3:] if hours_match else words[2:])
        if hours is not None and hours <= 0:
            raise InvalidRequest(msg("tg.admin.use_hours", usage=USAGE[sub]))
        standing = await admin.ban(op, platform, uid, reason=reason, hours=hours)
        return render.admin_banned(standing)
    if sub == "unban":
        _need(words, 3, sub)
        await admin.unban(op, *parse_user(words[1]), reason=" ".join(words[2:]))
        return render.admin_unbanned()
    if sub == "refund":
        _need(words, 3, sub)
        refunded = await admin.refund_job(op, words[1], reason=" ".join(words[2:]))
        return render.admin_refunded(refunded)
    if sub == "stats":
        return render.admin_counts(msg("tg.admin.stats"), await admin.stats(op))
    if sub == "retention":
        dry = len(words) > 1 and words[1].lower() in ("dry", "dry-run", "--dry-run")
        done = await admin.run_retention(op, dry_run=dry)
        title = msg("tg.admin.retention_dry" if dry else "tg.admin.retention_run")
        return render.admin_counts(title, done)
    if sub == "appeals":
        return render.admin_appeals_text(await admin.appeals(op))
    if sub == "appeal":
        _need(words, 4, sub)
        verdict = words[2].lower()
        if not words[1].isdigit() or len(words[1]) > 12 or verdict not in ("grant", "deny"):
            raise InvalidRequest(msg("tg.admin.use", usage=USAGE[sub]))
        decision, told = await admin.decide_appeal(
            op, int(words[1]), grant=verdict == "grant", reason=" ".join(words[3:])
        )
        return render.admin_appeal_decided(decision, told)
    return render.admin_help()


@guarded
async def admin_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/admin <subcommand> …``: operators only, in a private chat."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    op = actor_of(user)
    # Nothing is read or revealed before this check: to everyone else, /admin does not exist.
    if message.chat.type != "private" or not rt.core.admin.is_operator(op):
        await answer_unknown(rt, message)
        return
    _, _, text = split_command(message.text or "")
    words = text.split()
    if words and words[0].lower() == "reviews":
        await _send_reviews(rt, message, op, user.id)
        return
    answer = await _run(rt, op, words, update.update_id) if words else render.admin_help()
    await reply(rt, message, answer)


async def _send_reviews(rt: Runtime, message: Message, op: Actor, owner: int) -> None:
    items = (await rt.core.admin.reviews(op))[:REVIEWS_SHOWN]
    await reply(rt, message, render.admin_reviews_text(items), keyboards.reviews(owner, items))


async def review_decision(rt: Runtime, press: Press) -> Answer:
    """Approve (the withheld output is delivered, free) or dismiss (its file is deleted);
    the queue is redrawn in place."""
    if not press.data.arg.isdigit():
        return Answer(render.stale())
    review_id = int(press.data.arg)
    approve = press.data.action == cb.REVIEW_APPROVE
    await rt.core.admin.decide_review(press.actor, review_id, approve=approve)
    items = (await rt.core.admin.reviews(press.actor))[:REVIEWS_SHOWN]
    await edit_text(
        rt, press.message, render.admin_reviews_text(items), keyboards.reviews(press.owner, items)
    )
    return Answer(render.admin_review_decided(review_id, approve))


# --- group controls ------------------------------------------------------------------------------


@guarded
async def group_switch_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/bot_off`` and ``/bot_on`` in a group, by its admins: /imagine is refused there
    while off (core's ``ChatDisabled``)."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    command, _, _ = split_command(message.text or "")
    if message.chat.type not in ("group", "supergroup"):
        await reply(rt, message, render.group_only())
        return
    chat_id = message.chat.id
    member = await rt.outbox.call(chat_id, lambda: rt.bot.get_chat_member(chat_id, user.id))
    if member.status not in GROUP_ADMIN_STATUSES:
        await reply(rt, message, render.group_admins_only())
        return
    enabled = command == "bot_on"
    await rt.core.safety.set_chat_control(
        PLATFORM, str(chat_id), by=f"{PLATFORM}:{user.id}", enabled=enabled
    )
    await reply(rt, message, render.group_switched(enabled))


BUTTONS: dict[str, Action] = {
    cb.REVIEW_APPROVE: review_decision,
    cb.REVIEW_DISMISS: review_decision,
}

COMMANDS: dict[str, Any] = {
    "admin": admin_command,
    "bot_off": group_switch_command,
    "bot_on": group_switch_command,
}
"""Command name -> handler, registered by :func:`bot.telegram.app.register_handlers`."""

__all__ = ["BUTTONS", "COMMANDS", "parse_user"]
