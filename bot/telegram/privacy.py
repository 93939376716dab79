"""Privacy self-service and messages to the operators: /privacy, /export, /delete_my_data,
/appeal, /feedback and /support, and the buttons of /privacy and /delete_my_data.

The privacy commands answer only in a private chat with the account itself (P12); in a
group they point there and nothing is logged. Each is one call to ``core.privacy``, which
logs the request with its time and outcome; errors go through
:func:`bot.telegram.replies.answer_error` like every other command's.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from telegram import InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.telegram import callbacks as cb
from bot.telegram import keyboards, render
from bot.telegram.handlers import guarded, private_pointer, split_command
from bot.telegram.press import Action, Answer, Press
from bot.telegram.replies import (
    actor_of,
    answer_error,
    conversation_of,
    edit_text,
    gate,
    reply,
)
from bot.telegram.runtime import Runtime
from core.errors import InvalidRequest
from core.i18n import Msg
from core.privacy import CONSENT_LABELS, ConfirmationExpired, PrivacyRequestRefused
from core.types import Actor, Conversation

Context = ContextTypes.DEFAULT_TYPE


def _parts(update: Update) -> tuple[Message, int, str, str]:
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    command, _, text = split_command(message.text or "")
    return message, user.id, command, text


async def _overview(
    rt: Runtime, actor: Actor, conversation: Conversation, owner: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The /privacy text and its switches, as they stand now."""
    overview = await rt.core.privacy.overview(actor, conversation)
    requests = await rt.core.privacy.requests(actor, conversation)
    known = await rt.core.credits.user_for(actor) is not None
    text = render.privacy_text(overview, requests, known=known)
    # Nothing is stored before the terms are accepted, so there is nothing to switch yet.
    markup = keyboards.privacy(owner, overview.consents) if known else None
    return text, markup


# --- commands ------------------------------------------------------------------------------------


@guarded
async def privacy_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/privacy``: what is stored and for how long, the policy, the switches."""
    message, owner, command, _ = _parts(update)
    if message.chat.type != "private":
        await private_pointer(rt, message, f"/{command}")
        return
    assert update.effective_user is not None
    text, markup = await _overview(
        rt, actor_of(update.effective_user), conversation_of(message), owner
    )
    await reply(rt, message, text, markup)


@guarded
async def export_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/export``: a ZIP of everything stored, as a download link when core can give
    one (an object store's presigned URL, or imagebot's signed link); else as a document,
    within what a bot may send."""
    message, _, command, _ = _parts(update)
    if message.chat.type != "private":
        await private_pointer(rt, message, f"/{command}")
        return
    assert update.effective_user is not None
    actor = actor_of(update.effective_user)
    chat_id = message.chat.id
    await rt.outbox.edit(
        chat_id, lambda: rt.bot.send_chat_action(chat_id, ChatAction.UPLOAD_DOCUMENT)
    )
    result = await rt.core.privacy.export(actor, conversation_of(message))
    try:
        url: str | None = await rt.core.privacy.export_link(actor, result)
    except InvalidRequest:  # no public address and no presigned URL: upload it
        url = None
    if url is not None and keyboards.url_button_ok(url):
        # The ZIP goes from the store (or imagebot's HTTP server) to the person: it is
        # never read into this process for the chat.
        await reply(
            rt,
            message,
            render.export_ready_text(result.size_bytes),
            keyboards.link(render.plain_text(Msg("button.download_data")), url),
        )
        return
    if result.size_bytes > rt.document_limit:
        raise InvalidRequest(Msg("export.no_address"))
    data = await rt.core.files.read(result.path)
    name = f"imagebot-data-{result.created_at.astimezone(UTC):%Y%m%d-%H%M%S}.zip"
    caption = render.export_caption(result.size_bytes, result.files)
    async with rt.uploads:
        await rt.outbox.call(
            chat_id,
            lambda: rt.bot.send_document(
                chat_id,
                InputFile(data, filename=name),
                caption=caption,
                disable_content_type_detection=True,
            ),
        )
    rt.board.sent(chat_id)


@guarded
async def delete_my_data_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/delete_my_data``: the question, with a confirmation button (P08). No terms gate:
    it works for anyone, banned or in debt included (P25)."""
    message, owner, command, _ = _parts(update)
    if message.chat.type != "private":
        await private_pointer(rt, message, f"/{command}")
        return
    question = rt.core.privacy.erasure_confirmation(conversation_of(message))
    await reply(
        rt, message, render.confirmation_text(question), keyboards.confirm_erase(owner, question)
    )


@guarded
async def appeal_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/appeal <request number> <reasons>``: a refused privacy request goes to the
    operators."""
    message, _, command, text = _parts(update)
    if message.chat.type != "private":
        await private_pointer(rt, message, f"/{command}")
        return
    number, _, reasons = text.strip().partition(" ")
    if not number.isdigit() or not reasons.strip() or len(number) > 12:
        await reply(rt, message, render.appeal_usage())
        return
    assert update.effective_user is not None
    await rt.core.privacy.appeal(
        actor_of(update.effective_user), conversation_of(message), int(number), reasons
    )
    await reply(rt, message, render.appeal_received(int(number)))


@guarded
async def message_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/feedback <text>`` and ``/support <text>``: stored and forwarded to the
    operators' chat (P26)."""
    message, _, command, text = _parts(update)
    if not text.strip():
        await reply(rt, message, render.message_usage(command))
        return
    if not await gate(rt, update):
        return
    assert update.effective_user is not None
    ticket = await rt.core.messages.submit(actor_of(update.effective_user), command, text)
    await reply(rt, message, render.message_received(command, ticket.id, ticket.forwarded))


# --- buttons -------------------------------------------------------------------------------------


async def consent(rt: Runtime, press: Press) -> Answer:
    """Flip one switch of /privacy; it takes effect at once (P10, P11)."""
    name, _, value = press.data.arg.partition("=")
    if name not in CONSENT_LABELS or value not in ("0", "1"):
        return Answer(render.stale())
    if await rt.core.credits.user_for(press.actor) is None:
        return Answer(render.stale())  # erased meanwhile: nothing to switch
    records = await rt.core.privacy.set_consent(press.actor, press.conversation, name, value == "1")
    text, markup = await _overview(rt, press.actor, press.conversation, press.owner)
    await edit_text(rt, press.message, text, markup)
    return Answer(render.consent_changed(name, bool(getattr(records, name))))


async def profile(rt: Runtime, press: Press) -> Answer:
    """Refresh the stored name from Telegram, or clear it (P09)."""
    if press.data.arg not in ("refresh", "clear"):
        return Answer(render.stale())
    if await rt.core.credits.user_for(press.actor) is None:
        return Answer(render.stale())
    clear = press.data.arg == "clear"
    await rt.core.privacy.correct_profile(press.actor, press.conversation, clear=clear)
    text, markup = await _overview(rt, press.actor, press.conversation, press.owner)
    await edit_text(rt, press.message, text, markup)
    return Answer(render.profile_cleared() if clear else render.profile_refreshed())


async def erase_yes(rt: Runtime, press: Press) -> Answer:
    """Erase everything, then show the receipt in place of the question (P08)."""
    try:
        # The question's age is the time Telegram says the message was sent: an old
        # question, or a press replayed on it much later, erases nothing.
        receipt = await rt.core.privacy.erase(
            press.actor, press.conversation, asked_at=press.message.date
        )
    except ConfirmationExpired as exc:
        rt.board.close(press.message.chat.id, press.message.message_id)
        await edit_text(rt, press.message, render.esc(exc.user_message))
        return Answer(render.erase_expired())
    except PrivacyRequestRefused as exc:
        # The reason and how to appeal are too long for an alert: they replace the question.
        await answer_error(rt, press.message, press.owner, exc, status_message=press.message)
        return Answer()
    rt.board.close(press.message.chat.id, press.message.message_id)
    await edit_text(rt, press.message, render.receipt_text(receipt.message))
    return Answer(render.plain_text(Msg("answer.erased")))


async def erase_no(rt: Runtime, press: Press) -> Answer:
    """Keep everything."""
    await edit_text(rt, press.message, render.erase_kept())
    return Answer()


BUTTONS: dict[str, Action] = {
    cb.CONSENT: consent,
    cb.PROFILE: profile,
    cb.ERASE_YES: erase_yes,
    cb.ERASE_NO: erase_no,
}

COMMANDS: dict[str, Any] = {
    "privacy": privacy_command,
    "export": export_command,
    "delete_my_data": delete_my_data_command,
    "appeal": appeal_command,
    "feedback": message_command,
    "support": message_command,
}
"""Command name -> handler, registered by :func:`bot.telegram.app.register_handlers`."""

__all__ = ["BUTTONS", "COMMANDS"]
