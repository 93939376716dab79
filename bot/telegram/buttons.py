"""Inline buttons: check who pressed, make one core call, render, and always answer.

Every callback query is answered exactly once (Telegram's client shows a spinner until
then): with a short note, with an alert when someone other than the owner pressed, or
with "no longer available" for buttons of deleted or unknown results.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import CallbackQuery, Message, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.telegram import admin, keyboards, payments, privacy, render
from bot.telegram import callbacks as cb
from bot.telegram.delivery import Picture, send_download_link, send_original, send_result
from bot.telegram.gallery import gallery_offered, send_gallery_link
from bot.telegram.history_view import show_page
from bot.telegram.outbox import ChatBlocked
from bot.telegram.press import Action, Answer, Press
from bot.telegram.replies import (
    actor_of,
    conversation_of,
    destination,
    edit_markup,
    edit_text,
    log_failure,
    reply,
    show_terms,
    start_job,
    use_language_of,
)
from bot.telegram.runtime import Runtime, runtime
from core.admin.service import NotAnOperator
from core.errors import AgeRefused, NotFound, TermsRequired, UserFacingError
from core.i18n import LANGUAGE_NAMES, Msg, msg
from core.types import ReplyTarget, Submitted

log = logging.getLogger("imagebot.telegram")


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Entry point for every callback query."""
    rt = runtime(context)
    query = update.callback_query
    if query is None:
        return
    answer = Answer()
    try:
        await use_language_of(rt, query.from_user)
        answer = await _dispatch(rt, update, query) or Answer()
    except ChatBlocked:
        pass
    except (TermsRequired, AgeRefused) as exc:
        answer = Answer(render.error_alert(exc), alert=True)
        if isinstance(exc, TermsRequired) and isinstance(query.message, Message):
            state = await rt.core.onboarding.status(actor_of(query.from_user))
            await show_terms(rt, query.message, query.from_user.id, state)
    except (NotFound, NotAnOperator):
        # NotAnOperator: a forged or forwarded operator button says no more than a stale one.
        answer = Answer(render.stale())
    except UserFacingError as exc:
        answer = Answer(render.error_alert(exc), alert=True)
    except Exception as exc:
        log_failure("button", exc, update.update_id)
        answer = Answer(render.error_alert(exc), alert=True)
    finally:
        try:
            await query.answer(answer.text or None, show_alert=answer.alert)
        except BadRequest as exc:  # too old, or already answered
            log.info("callback answer refused reason=%s", exc.message[:60])


async def _dispatch(rt: Runtime, update: Update, query: CallbackQuery) -> Answer | None:
    data = cb.decode(query.data)
    message = query.message
    if data is None or not isinstance(message, Message):
        return Answer(render.stale())
    if not _on_message(message, query.data or ""):
        # A tampered client can send any callback data with any message of the bot: only a
        # button that is really on the pressed message (Telegram sends the message as it
        # stands, keyboard included) may act, so a forged "erase" or "delete" never
        # reaches another message or a question nobody asked.
        return Answer(render.stale())
    if data.owner != query.from_user.id:
        return Answer(render.not_yours(), alert=True)
    return await ACTIONS[data.action](rt, Press(query, message, data, update.update_id))


def _on_message(message: Message, data: str) -> bool:
    """Whether a button with ``data`` is on ``message``'s inline keyboard."""
    markup = message.reply_markup
    if markup is None:
        return False
    return any(button.callback_data == data for row in markup.inline_keyboard for button in row)


# --- onboarding ---------------------------------------------------------------------------------


async def terms_accept(rt: Runtime, press: Press) -> Answer:
    """The person accepted the terms and confirmed they are 13 or older."""
    await rt.core.onboarding.accept(press.actor)
    await edit_text(rt, press.message, render.accepted_text_for(press.query.from_user.first_name))
    return Answer(render.plain_text(Msg("answer.welcome")))


async def terms_refuse(rt: Runtime, press: Press) -> Answer:
    """The person said they are under 13: refused, nothing kept but a marker."""
    await rt.core.onboarding.refuse(press.actor)
    await edit_text(rt, press.message, render.text_of(AgeRefused().msg))
    return Answer()


# --- results ------------------------------------------------------------------------------------


async def _job_starter(
    rt: Runtime, press: Press, submit: Callable[[ReplyTarget], Awaitable[Submitted]]
) -> None:
    # A result deleted meanwhile answers "no longer available" before any status message.
    await rt.core.generation.job(press.actor, press.data.job_id)
    await start_job(rt, press.message, press.owner, submit, update_id=press.update_id)


async def reroll(rt: Runtime, press: Press) -> Answer:
    """The same prompt and options again: a new job, charged again."""
    conversation = conversation_of(press.message)

    async def submit(target: ReplyTarget) -> Submitted:
        return await rt.core.generation.repeat(
            press.actor,
            press.data.job_id,
            idempotency_key=f"telegram:callback:{press.query.id}",
            conversation=conversation,
            reply_target=target,
        )

    await _job_starter(rt, press, submit)
    return Answer(render.plain_text(Msg("answer.rerolling")))


async def variation(rt: Runtime, press: Press) -> Answer:
    """A variation of one result image."""
    conversation = conversation_of(press.message)

    async def submit(target: ReplyTarget) -> Submitted:
        return await rt.core.generation.derive(
            press.actor,
            press.data.job_id,
            prompt=None,
            index=press.data.index,
            idempotency_key=f"telegram:callback:{press.query.id}",
            conversation=conversation,
            reply_target=target,
        )

    await _job_starter(rt, press, submit)
    return Answer(render.plain_text(Msg("answer.variation")))


async def edit(rt: Runtime, press: Press) -> Answer:
    """Ask for the new instruction, as a reply to a question (answered by
    :func:`bot.telegram.handlers.edit_instruction`)."""
    job = await rt.core.generation.job(press.actor, press.data.job_id)
    if not 0 <= press.data.index < len(job.outputs):
        raise NotFound()
    dest = destination(press.message)
    user = press.query.from_user
    private = press.message.chat.type == "private"
    mention = None if private else (user.id, user.first_name)
    await rt.outbox.call(
        dest.chat_id,
        lambda: rt.bot.send_message(
            dest.chat_id,
            render.edit_prompt_text(job.id, press.data.index, mention=mention),
            reply_markup=keyboards.edit_question(),
            reply_parameters=dest.reply(),
            message_thread_id=dest.thread_id,
        ),
    )
    rt.board.sent(dest.chat_id)
    return Answer(render.plain_text(Msg("answer.reply_change")))


async def full_resolution(rt: Runtime, press: Press) -> Answer:
    """The stored original: a download link when core can give one Telegram takes,
    else the file itself as a document."""
    await send_full_resolution(rt, press, press.data.job_id, press.data.index)
    return Answer()


async def send_full_resolution(rt: Runtime, press: Press, job_id: str, index: int) -> None:
    """One stored output at full resolution for the presser (their own job only: core
    refuses another user's job id): a URL button when a link can be given (an object
    store's presigned URL, or imagebot's signed link at its public address), else an
    upload through the chat."""
    dest = destination(press.message)
    link = await rt.core.history.download_link(press.actor, job_id, index)
    if link is not None and keyboards.url_button_ok(link.url):
        await send_download_link(rt, dest, link)
        return
    image, data = await rt.core.history.download(press.actor, job_id, index)
    await send_original(rt, dest, job_id=job_id, index=index, image=image, data=data)


async def delete_ask(rt: Runtime, press: Press) -> Answer:
    """Ask before deleting."""
    await rt.core.generation.job(press.actor, press.data.job_id)  # still there, still theirs
    await edit_markup(
        rt, press.message, keyboards.confirm_delete(press.owner, press.data.job_id, press.data.arg)
    )
    return Answer()


async def delete_yes(rt: Runtime, press: Press) -> Answer:
    """Delete the result from storage, then its messages from the chat."""
    await rt.core.history.delete(press.actor, press.data.job_id)
    chat_id = press.message.chat.id
    ids = sorted({*keyboards.album_ids(press.data.arg), press.message.message_id})
    await rt.outbox.edit(chat_id, lambda: rt.bot.delete_messages(chat_id, ids))
    return Answer(render.plain_text(Msg("answer.deleted")))


async def delete_no(rt: Runtime, press: Press) -> Answer:
    """Keep it: the result buttons come back."""
    job = await rt.core.generation.job(press.actor, press.data.job_id)
    await edit_markup(
        rt,
        press.message,
        keyboards.result(
            press.owner,
            job.id,
            max(len(job.outputs), 1),
            press.data.arg,
            gallery=gallery_offered(rt, press.message.chat.id),
        ),
    )
    return Answer()


async def cancel(rt: Runtime, press: Press) -> Answer:
    """Cancel a job still waiting in the queue; its credits come back."""
    if not await rt.core.generation.cancel(press.actor, press.data.job_id):
        return Answer(render.plain_text(Msg("answer.too_late")))
    job = await rt.core.generation.job(press.actor, press.data.job_id)
    rt.board.close(press.message.chat.id, press.message.message_id)
    await edit_text(rt, press.message, render.cancelled_text(job.cost))
    return Answer(render.plain_text(Msg("answer.cancelled")))


# --- /history ------------------------------------------------------------------------------------


def _page_number(press: Press) -> int:
    return int(press.data.arg) if press.data.arg.isdigit() else 1


async def history_page(rt: Runtime, press: Press) -> Answer:
    """Another page of the contact sheet, in place."""
    page = await rt.core.history.page(press.actor, _page_number(press))
    await show_page(rt, press.message, press.owner, page)
    return Answer()


async def history_keep(rt: Runtime, press: Press) -> Answer:
    """Deletion not confirmed: the page's buttons come back."""
    page = await rt.core.history.page(press.actor, _page_number(press))
    await edit_markup(
        rt,
        press.message,
        keyboards.history(press.owner, page, gallery=gallery_offered(rt, press.message.chat.id)),
    )
    return Answer()


async def history_open(rt: Runtime, press: Press) -> Answer:
    """Send one past result again, with its buttons."""
    job = await rt.core.generation.job(press.actor, press.data.job_id)
    if not job.outputs:
        detail = job.error_message or render.plain_text(
            msg("answer.no_image", state=job.state.value)
        )
        return Answer(render.plain_clip(detail), alert=True)
    pictures = [Picture(rt.core.files.absolute(o.path), o, rt.core.files) for o in job.outputs]
    await send_result(
        rt,
        destination(press.message),
        owner=press.owner,
        job_id=job.id,
        pictures=pictures,
        caption=render.job_caption(job),
    )
    return Answer()


async def history_file(rt: Runtime, press: Press) -> Answer:
    """Every image of one past result at full resolution (links, or documents)."""
    job = await rt.core.generation.job(press.actor, press.data.job_id)
    for index in range(len(job.outputs)):
        await send_full_resolution(rt, press, job.id, index)
    return Answer()


async def history_delete_ask(rt: Runtime, press: Press) -> Answer:
    """Ask before deleting an item of the page."""
    page = await rt.core.history.page(press.actor, _page_number(press))
    if press.data.job_id not in {job.id for job in page.items}:
        raise NotFound()
    await edit_markup(
        rt,
        press.message,
        keyboards.history(
            press.owner,
            page,
            press.data.job_id,
            gallery=gallery_offered(rt, press.message.chat.id),
        ),
    )
    return Answer()


async def history_delete_yes(rt: Runtime, press: Press) -> Answer:
    """Delete the item (files included) and redraw the page."""
    await rt.core.history.delete(press.actor, press.data.job_id)
    page = await rt.core.history.page(press.actor, _page_number(press))
    await show_page(rt, press.message, press.owner, page)
    return Answer(render.plain_text(Msg("answer.deleted")))


# --- /settings -----------------------------------------------------------------------------------


async def settings_open(rt: Runtime, press: Press) -> Answer:
    """The choices of one setting."""
    name = press.data.arg
    if name == "language":
        await edit_text(
            rt, press.message, render.language_choice_text(), keyboards.languages(press.owner)
        )
        return Answer()
    if name not in keyboards.SETTING_FIELDS:
        return Answer(render.stale())
    await edit_text(
        rt,
        press.message,
        render.setting_choice_text(name),
        keyboards.settings_choices(press.owner, name, rt.spec, rt.core.generation.offered_models()),
    )
    return Answer()


async def settings_set(rt: Runtime, press: Press) -> Answer:
    """Save one default and show them all again."""
    name, _, value = press.data.arg.partition("=")
    if name == "language":
        return await language_set(rt, press, value)
    if name not in keyboards.SETTING_FIELDS:
        return Answer(render.stale())
    new: object = int(value) if name == "n" and value.isdigit() else value
    view = await rt.core.users.update_settings(press.actor, **{name: new})
    await edit_text(
        rt,
        press.message,
        render.settings_text(view, await _language_name(rt, press)),
        keyboards.settings_main(press.owner, choose_model=rt.choose_model),
    )
    return Answer(f"{render.setting_label(name)}: {value}")


async def language_set(rt: Runtime, press: Press, value: str) -> Answer:
    """A language button: remembered at once, and this very answer is in it."""
    await rt.core.users.set_language(press.actor, value)
    lang = await use_language_of(rt, press.query.from_user)
    view = await rt.core.users.settings(press.actor)
    await edit_text(
        rt,
        press.message,
        render.settings_text(view, LANGUAGE_NAMES[lang]),
        keyboards.settings_main(press.owner),
    )
    return Answer(render.plain_text(msg("language.set", language=LANGUAGE_NAMES[lang])))


async def _language_name(rt: Runtime, press: Press) -> str:
    return LANGUAGE_NAMES[await rt.core.users.language(press.actor)]


async def settings_back(rt: Runtime, press: Press) -> Answer:
    """Back to the overview."""
    view = await rt.core.users.settings(press.actor)
    await edit_text(
        rt,
        press.message,
        render.settings_text(view, await _language_name(rt, press)),
        keyboards.settings_main(press.owner, choose_model=rt.choose_model),
    )
    return Answer()


# --- /buy, /subscribe ----------------------------------------------------------------------------


async def buy(rt: Runtime, press: Press) -> Answer:
    """A checkout link for one offer; pressing twice gives the same checkout."""
    key = f"telegram:{press.message.chat.id}:{press.message.message_id}:{press.data.arg}"
    link = await rt.core.billing.checkout_link(press.actor, press.data.arg, request_key=key)
    await reply(
        rt,
        press.message,
        render.payment_text(link),
        keyboards.link(render.plain_text(Msg("button.pay")), link.url),
    )
    return Answer()


async def gallery_link(rt: Runtime, press: Press) -> Answer:
    """The Gallery button: a fresh one-time link as a new message, in a private chat only."""
    if press.message.chat.type != "private":
        return Answer(render.gallery_private_only(), alert=True)
    await send_gallery_link(rt, press.message, press.actor)
    return Answer(render.gallery_sent())


ACTIONS: dict[str, Action] = {
    cb.GALLERY: gallery_link,
    cb.TERMS_ACCEPT: terms_accept,
    cb.TERMS_REFUSE: terms_refuse,
    cb.REROLL: reroll,
    cb.VARIATION: variation,
    cb.EDIT: edit,
    cb.FULL_RES: full_resolution,
    cb.DELETE_ASK: delete_ask,
    cb.DELETE_YES: delete_yes,
    cb.DELETE_NO: delete_no,
    cb.CANCEL: cancel,
    cb.HISTORY_PAGE: history_page,
    cb.HISTORY_KEEP: history_keep,
    cb.HISTORY_OPEN: history_open,
    cb.HISTORY_FILE: history_file,
    cb.HISTORY_DELETE_ASK: history_delete_ask,
    cb.HISTORY_DELETE_YES: history_delete_yes,
    cb.SETTINGS_OPEN: settings_open,
    cb.SETTINGS_SET: settings_set,
    cb.SETTINGS_BACK: settings_back,
    cb.BUY: buy,
    **payments.BUTTONS,
    **privacy.BUTTONS,
    **admin.BUTTONS,
}

__all__ = ["ACTIONS", "Answer", "on_button"]
