"""Commands and messages: parse, make one core call, render, acknowledge.

Every handler is wrapped by :func:`guarded`, which sends any error through
:func:`bot.telegram.replies.answer_error` (the one place errors become messages).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal

from telegram import Message, Update, User
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.telegram import keyboards, payments, render
from bot.telegram.gallery import send_gallery_link
from bot.telegram.history_view import send_history
from bot.telegram.media import attachments_of, download, referenced
from bot.telegram.outbox import ChatBlocked
from bot.telegram.replies import (
    actor_of,
    answer_error,
    answer_unknown,
    conversation_of,
    gate,
    log_failure,
    reply,
    start_job,
    use_language_of,
)
from bot.telegram.runtime import Runtime, runtime
from core.billing.offers import BillingDisabled
from core.errors import InvalidRequest
from core.generation.options import parse_options
from core.i18n import LANGUAGE_NAMES, Msg, current_language
from core.types import GenerateRequest, InputImage, ReplyTarget, Submitted

Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Runtime, Update, Context], Awaitable[None]]

_COMMAND = re.compile(r"^/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?:\s+|$)")
PRIVACY_COMMANDS_READY = True
"""The privacy commands answer through ``core.privacy`` (bot/telegram/privacy.py), so they
are listed in the private chats' command menu."""
SETTING_NAMES = {
    "size": "size",
    "quality": "quality",
    "format": "output_format",
    "n": "n",
    "background": "background",
    "model": "model",
}


def guarded(handler: Handler) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """Run ``handler`` with the runtime; route every error to the one renderer."""

    @functools.wraps(handler)
    async def wrapper(update: Update, context: Context) -> None:
        rt = runtime(context)
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        try:
            await use_language_of(rt, user)
            await handler(rt, update, context)
        except ChatBlocked:
            return
        except Exception as exc:
            try:
                await answer_error(rt, message, user.id, exc, update_id=update.update_id)
            except Exception as again:
                log_failure("error reply", again, update.update_id)

    return wrapper


def split_command(text: str) -> tuple[str, str | None, str]:
    """``"/imagine@bot a fox --n 2"`` -> ``("imagine", "bot", "a fox --n 2")``."""
    match = _COMMAND.match(text)
    if not match:
        return "", None, text
    return match.group(1).lower(), match.group(2), text[match.end() :]


def _message(update: Update) -> Message:
    message = update.effective_message
    assert message is not None
    return message


def _user(update: Update) -> User:
    user = update.effective_user
    assert user is not None
    return user


def _owner(update: Update) -> int:
    return _user(update).id


# --- updates before any handler ---------------------------------------------------------------


async def screen_update(update: Update, context: Context) -> None:
    """Runs first for every update: drop redelivered ones (same ``update_id``), note that
    the chat takes messages again, remember album members."""
    rt = runtime(context)
    if not rt.seen.first_time(update.update_id):
        raise ApplicationHandlerStop()
    if update.effective_chat is not None:
        rt.outbox.unblock(update.effective_chat.id)
    if update.message is not None and update.message.media_group_id:
        rt.albums.remember(update.message)


# --- onboarding and help -------------------------------------------------------------------------


@guarded
async def start_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/start``: the terms for a new person, the help for one who accepted."""
    if await gate(rt, update):
        await reply(rt, _message(update), render.help_text(rt.core.generation.model_prices()))


@guarded
async def help_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/help``."""
    await reply(rt, _message(update), render.help_text(rt.core.generation.model_prices()))


# --- generation ----------------------------------------------------------------------------------


@guarded
async def imagine_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/imagine`` and ``/edit``, typed or as the caption of a photo, document or album;
    with images attached or replied to, an edit of those images."""
    message = _message(update)
    owner = _owner(update)
    command, addressed, text = split_command(message.text or message.caption or "")
    if addressed and rt.username and addressed.lower() != rt.username.lower():
        return  # a captioned command for another bot
    parsed = parse_options(text, rt.spec)
    if message.media_group_id and attachments_of(message):
        await rt.albums.settle(message.media_group_id, wait=rt.album_wait)
    items = referenced(message, rt.albums)
    if command == "edit" and not items:
        raise InvalidRequest(Msg("edit.needs_images"))
    actor = actor_of(_user(update))
    conversation = conversation_of(message)
    limit = rt.core.settings.max_input_bytes

    async def submit(target: ReplyTarget) -> Submitted:
        inputs: list[InputImage] = []
        for item in items:
            inputs.append(await download(rt.bot, item, max_bytes=limit))
        return await rt.core.generation.submit(
            GenerateRequest(
                actor=actor,
                conversation=conversation,
                prompt=parsed.prompt,
                options=parsed.options,
                idempotency_key=f"telegram:update:{update.update_id}",
                reply_target=target,
                inputs=tuple(inputs),
            )
        )

    await start_job(rt, message, owner, submit, update_id=update.update_id)


@guarded
async def edit_instruction(rt: Runtime, update: Update, context: Context) -> None:
    """A text reply to the question asked by a result's Edit button: edit that image."""
    message = _message(update)
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != rt.bot.id:
        return
    match = render.EDIT_REF.search(replied.text or "")
    if not match:
        return
    job_id, index = match.group(1), int(match.group(2)) - 1
    actor = actor_of(_user(update))
    conversation = conversation_of(message)
    instruction = message.text or ""

    async def submit(target: ReplyTarget) -> Submitted:
        return await rt.core.generation.derive(
            actor,
            job_id,
            prompt=instruction,
            index=index,
            idempotency_key=f"telegram:update:{update.update_id}",
            conversation=conversation,
            reply_target=target,
        )

    await start_job(rt, message, _owner(update), submit, update_id=update.update_id)


# --- account -------------------------------------------------------------------------------------


@guarded
async def settings_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/settings``, or ``/settings size 1536x1024`` to change one directly."""
    message = _message(update)
    if not await gate(rt, update):
        return
    actor = actor_of(_user(update))
    _, _, text = split_command(message.text or "")
    words = text.split()
    owner = _owner(update)
    if words and words[0].lower() == "language":
        if len(words) == 1:
            await reply(rt, message, render.language_choice_text(), keyboards.languages(owner))
            return
        if len(words) != 2:
            raise InvalidRequest(Msg("settings.usage"))
        await rt.core.users.set_language(actor, words[1])
        lang = await use_language_of(rt, _user(update))
        await reply(rt, message, render.language_set_text(LANGUAGE_NAMES[lang]))
        return
    if words:
        name = SETTING_NAMES.get(words[0].lower())
        if name is None or len(words) != 2:
            raise InvalidRequest(Msg("settings.usage"))
        value: object = int(words[1]) if name == "n" and words[1].isdigit() else words[1]
        view = await rt.core.users.update_settings(actor, **{name: value})
    else:
        view = await rt.core.users.settings(actor)
    language = LANGUAGE_NAMES[current_language()]
    await reply(
        rt,
        message,
        render.settings_text(view, language),
        keyboards.settings_main(owner, choose_model=rt.choose_model),
    )


@guarded
async def balance_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/balance``: credits and the newest ledger lines."""
    if not await gate(rt, update):
        return
    user = await rt.core.users.register(actor_of(_user(update)))
    view = await rt.core.credits.balance(user.id)
    await reply(rt, _message(update), render.balance_text(view))


@guarded
async def history_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/history [page]``: a contact sheet of past results with buttons."""
    message = _message(update)
    if not await gate(rt, update):
        return
    _, _, text = split_command(message.text or "")
    number = int(text.strip()) if text.strip().isdigit() else 1
    page = await rt.core.history.page(actor_of(_user(update)), number)
    await send_history(rt, message, _owner(update), page)


@guarded
async def gallery_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/gallery``: a one-time sign-in link to the private web gallery (and its Mini App);
    in a group, a pointer to the private chat, since the link must reach only its owner."""
    message = _message(update)
    if not await gate(rt, update):
        return
    if message.chat.type != "private":
        await private_pointer(rt, message, "/gallery")
        return
    await send_gallery_link(rt, message, actor_of(_user(update)))


# --- billing -------------------------------------------------------------------------------------


async def private_pointer(rt: Runtime, message: Message, what: str) -> None:
    """In a group: the command ``what`` works in a private chat; a button opens it."""
    username = rt.username
    markup = (
        keyboards.link(render.plain_text(Msg("button.open_private")), f"https://t.me/{username}")
        if username
        else None
    )
    await reply(rt, message, render.private_only_text(what), markup)


@guarded
async def offers_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/buy`` (credit packs) and ``/subscribe`` (monthly plans), in a private chat."""
    message = _message(update)
    command, _, _ = split_command(message.text or "")
    if message.chat.type != "private":
        await private_pointer(rt, message, f"/{command}")
        return
    if payments.sells_stars(rt):
        await payments.guarded_offers(rt, update, message, command)
        return
    if not await gate(rt, update):
        return
    if not rt.core.billing.enabled:
        raise BillingDisabled()
    kind: Literal["pack", "plan"] = "plan" if command == "subscribe" else "pack"
    offers = rt.core.billing.offers(kind)
    await reply(
        rt, message, render.offers_text(kind, offers), keyboards.offers(_owner(update), offers)
    )


@guarded
async def billing_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/billing``: a link to manage plans, invoices and payment methods."""
    message = _message(update)
    if message.chat.type != "private":
        await private_pointer(rt, message, "/billing")
        return
    if not await gate(rt, update):
        return
    if payments.sells_stars(rt) and await payments.stars_billing(rt, update, message):
        return
    link = await rt.core.billing.portal_link(actor_of(_user(update)))
    await reply(
        rt,
        message,
        render.payment_text(link),
        keyboards.link(render.plain_text(Msg("button.manage_billing")), link.url),
    )


# --- everything else -----------------------------------------------------------------------------


@guarded
async def paysupport_command(rt: Runtime, update: Update, context: Context) -> None:
    """``/paysupport``: help with payments (Telegram asks payment bots to answer it)."""
    await payments.paysupport_command(update, context)


@guarded
async def unknown_command(rt: Runtime, update: Update, context: Context) -> None:
    """A command this bot does not have (answered in private chats only)."""
    await answer_unknown(rt, _message(update))


@guarded
async def plain_text(rt: Runtime, update: Update, context: Context) -> None:
    """Text without a command in a private chat: how to make an image."""
    await reply(rt, _message(update), render.prompt_hint())


__all__ = [
    "balance_command",
    "billing_command",
    "edit_instruction",
    "gallery_command",
    "help_command",
    "history_command",
    "imagine_command",
    "offers_command",
    "paysupport_command",
    "plain_text",
    "private_pointer",
    "screen_update",
    "settings_command",
    "start_command",
    "unknown_command",
]
