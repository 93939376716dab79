"""What handlers and buttons share: who and where, replying, the terms gate, starting a
job with its status message, and the one place where errors become messages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import InlineKeyboardMarkup, Message, Update, User

from bot.telegram import keyboards, render, status
from bot.telegram.delivery import Destination
from bot.telegram.outbox import ChatBlocked
from bot.telegram.runtime import Runtime
from bot.telegram.status import StatusMessage
from core.admin.service import NotAnOperator
from core.errors import AgeRefused, TermsRequired, UserFacingError
from core.i18n import current_language, set_language
from core.privacy.onboarding import OnboardingStatus
from core.types import Actor, Conversation, ReplyTarget, Submitted

log = logging.getLogger("imagebot.telegram")

PLATFORM = "telegram"


def actor_of(user: User) -> Actor:
    """The core's view of a Telegram user."""
    return Actor(
        PLATFORM, str(user.id), display_name=user.full_name[:64], locale=user.language_code or ""
    )


async def use_language_of(rt: Runtime, user: User) -> str:
    """Answer ``user`` in their language for the rest of this update (their
    ``/settings language`` choice, else Telegram's ``language_code``, else the default)."""
    lang = await rt.core.users.language(actor_of(user))
    set_language(lang)
    return lang


def thread_of(message: Message) -> int | None:
    """The forum topic a message belongs to, if any."""
    return message.message_thread_id if message.is_topic_message else None


def conversation_of(message: Message) -> Conversation:
    """The core's view of the chat a message was sent in."""
    thread = thread_of(message)
    return Conversation(
        PLATFORM,
        str(message.chat.id),
        thread_id=str(thread) if thread is not None else None,
        is_private=message.chat.type == "private",
    )


def destination(message: Message, *, quote: bool = True) -> Destination:
    """Answering ``message``: in its chat and topic, replying to it when ``quote``."""
    return Destination(message.chat.id, message.message_id if quote else None, thread_of(message))


async def reply(
    rt: Runtime,
    message: Message,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    *,
    quote: bool | None = None,
) -> Message:
    """Send ``text`` (HTML) in ``message``'s chat; in groups it replies to ``message``."""
    if quote is None:
        quote = message.chat.type != "private"
    dest = destination(message, quote=quote)
    sent = await rt.outbox.call(
        dest.chat_id,
        lambda: rt.bot.send_message(
            dest.chat_id,
            render.clip(text, render.MAX_MESSAGE),
            reply_markup=markup,
            reply_parameters=dest.reply(),
            message_thread_id=dest.thread_id,
        ),
    )
    rt.board.sent(dest.chat_id)
    return sent


async def edit_text(
    rt: Runtime, message: Message, text: str, markup: InlineKeyboardMarkup | None = None
) -> bool:
    """Replace the text (HTML) and buttons of one of the bot's messages."""
    chat_id = message.chat.id
    return await rt.outbox.edit(
        chat_id,
        lambda: rt.bot.edit_message_text(
            render.clip(text, render.MAX_MESSAGE),
            chat_id=chat_id,
            message_id=message.message_id,
            reply_markup=markup,
        ),
    )


async def edit_markup(rt: Runtime, message: Message, markup: InlineKeyboardMarkup | None) -> bool:
    """Replace only the buttons of one of the bot's messages."""
    chat_id = message.chat.id
    return await rt.outbox.edit(
        chat_id,
        lambda: rt.bot.edit_message_reply_markup(
            chat_id=chat_id, message_id=message.message_id, reply_markup=markup
        ),
    )


# --- the terms gate -------------------------------------------------------------------------


async def show_terms(
    rt: Runtime, message: Message, owner: int, state: OnboardingStatus, *, edit: bool = False
) -> None:
    """The terms with the age buttons, as a new message or in place of ``message``."""
    text = render.terms_text(state)
    markup = keyboards.terms(owner)
    if not (edit and await edit_text(rt, message, text, markup)):
        await reply(rt, message, text, markup)


async def gate(rt: Runtime, update: Update) -> bool:
    """True when the sender may use the bot; otherwise the terms (or the refusal) were
    shown and nothing was stored."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    state = await rt.core.onboarding.status(actor_of(user))
    if state.state == "refused":
        raise AgeRefused()
    if state.may_generate:
        return True
    await show_terms(rt, message, user.id, state)
    return False


# --- errors: the one place ---------------------------------------------------------------------


def log_failure(where: str, exc: BaseException, update_id: int | None) -> None:
    """Log an unexpected exception with ids only (its text may quote user content or a
    URL with the token, so the details go to the debug level)."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    at = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?"
    log.error("%s failed update=%s error=%s at=%s", where, update_id, type(exc).__name__, at)
    log.debug("%s failure details", where, exc_info=exc)


async def answer_error(
    rt: Runtime,
    message: Message,
    owner: int,
    exc: BaseException,
    *,
    status_message: Message | None = None,
    update_id: int | None = None,
) -> None:
    """Show ``exc`` to the person: in the status message when there is one, else as a
    reply. The terms get their buttons; anything not meant for users is logged and
    answered with a generic apology."""
    if isinstance(exc, ChatBlocked):
        return
    if isinstance(exc, NotAnOperator):
        await answer_unknown(rt, message)
        return
    if isinstance(exc, TermsRequired):
        state = await rt.core.onboarding.status(Actor(PLATFORM, str(owner)))
        target = status_message or message
        await show_terms(rt, target, owner, state, edit=status_message is not None)
        return
    if not isinstance(exc, UserFacingError):
        log_failure("command", exc, update_id)
    text = render.error_text(exc)
    if status_message is not None and await edit_text(rt, status_message, text):
        return
    await reply(rt, message, text)


async def answer_unknown(rt: Runtime, message: Message) -> None:
    """The answer to a command this bot does not have (in private chats only); also what
    anyone but an operator gets for /admin, so nothing about it is revealed."""
    if message.chat.type == "private":
        await reply(rt, message, render.unknown_command())


# --- starting a job ------------------------------------------------------------------------------

Submit = Callable[[ReplyTarget], Awaitable[Submitted]]


async def start_job(
    rt: Runtime,
    anchor: Message,
    owner: int,
    submit: Submit,
    *,
    update_id: int | None = None,
) -> None:
    """Send the status message (the first answer), then ``submit`` the job with it as the
    reply target, then show its place in the queue and its cost (paced per chat)."""
    dest = destination(anchor)
    with rt.first_answers.answering():
        status_message = await rt.outbox.call(
            dest.chat_id,
            lambda: rt.bot.send_message(
                dest.chat_id,
                render.received(),
                reply_parameters=dest.reply(),
                message_thread_id=dest.thread_id,
            ),
        )
    rt.board.sent(dest.chat_id)
    status_id = status_message.message_id
    target = ReplyTarget(
        PLATFORM,
        str(dest.chat_id),
        thread_id=str(dest.thread_id) if dest.thread_id is not None else None,
        message_id=str(status_id),
        reply_to_message_id=str(anchor.message_id),
        extra={"owner": str(owner), "lang": current_language()},
    )
    try:
        # The status message above is the first answer and goes out at once; the work
        # behind it (downloads, the submit transaction) waits until the other commands had
        # theirs, then for a free slot: under a burst everyone hears back first.
        await rt.first_answers.wait()
        async with rt.submits:
            submitted = await submit(target)
    except Exception as exc:
        rt.board.close(dest.chat_id, status_id)
        await answer_error(
            rt, anchor, owner, exc, status_message=status_message, update_id=update_id
        )
        return
    job = submitted.job
    text = render.queued_text(job, created=submitted.created)
    markup = (
        keyboards.cancel(owner, job.id)
        if submitted.created and job.state.value == "queued"
        else None
    )

    async def queued(state: StatusMessage) -> None:
        await rt.outbox.edit(
            dest.chat_id,
            lambda: rt.bot.edit_message_text(
                text, chat_id=dest.chat_id, message_id=state.message_id, reply_markup=markup
            ),
            progress=True,
        )

    await rt.board.progress(dest.chat_id, status_id, status.QUEUED, queued)
