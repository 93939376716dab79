"""Messages between users and operators: /feedback, /support, answers (P26), and
product-update broadcasts that reach only users who opted in (P11)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.errors import InvalidRequest, NotFound
from core.i18n import msg, negotiate, render
from core.notifier import NotifierHub
from core.ports import Clock
from core.repositories import UnitOfWork, UnitOfWorkFactory, UserRecord
from core.text import clean_prompt
from core.types import Actor, Announcement, ReplyTarget
from core.users import UserService

log = logging.getLogger("imagebot.messages")

OPT_OUT = msg("tg.product_updates_opt_out")
"""The line under every product update, in its reader's language."""
MAX_MESSAGE = 4000


def dm_target(platform: str, platform_user_id: str) -> ReplyTarget:
    """Where a direct message to a user goes."""
    return ReplyTarget(platform, platform_user_id, extra={"dm": "1"})


def parse_chat(value: str | None) -> ReplyTarget | None:
    """``telegram:-100123`` -> the operators' chat."""
    if not value or ":" not in value:
        return None
    platform, _, chat_id = value.partition(":")
    return ReplyTarget(platform, chat_id, extra={"operators": "1"})


@dataclass(frozen=True, slots=True)
class Ticket:
    """A stored /feedback or /support message."""

    id: int
    kind: str
    forwarded: bool


class MessageService:
    """The verbs ``messages.submit``, ``messages.reply`` and ``messages.broadcast``."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        users: UserService,
        notifier: NotifierHub,
        clock: Clock,
        *,
        operators_chat: ReplyTarget | None,
    ) -> None:
        self._uow = uow
        self.users = users
        self.notifier = notifier
        self.clock = clock
        self.operators_chat = operators_chat

    async def submit(self, actor: Actor, kind: str, text: str) -> Ticket:
        """Store a feedback or support message and forward it to the operators."""
        if kind not in ("feedback", "support"):
            raise InvalidRequest(msg("tg.feedback_or_support"))
        body = clean_prompt(text, max_chars=MAX_MESSAGE)
        async with self._uow() as uow:
            user, _ = await self.users.ensure(uow, actor)
            message_id = await uow.privacy.add_feedback(user.id, kind, body, self.clock.now())
            await uow.commit()
        forwarded = False
        if self.operators_chat is not None:
            forwarded = await self.notifier.notify(
                self.operators_chat,
                Announcement(
                    render(
                        msg(
                            f"tg.operators_{kind}",
                            message_id=message_id,
                            user_id=user.id,
                            body=body,
                        ),
                        self.users.default_language,
                    )
                ),
                final=True,
            )
        log.info("%s stored id=%s user=%s forwarded=%s", kind, message_id, user.id, forwarded)
        return Ticket(message_id, kind, forwarded)

    async def reply(self, message_id: int, text: str) -> None:
        """An operator answers a message: stored with it and sent to the user as a DM."""
        body = text.strip()
        if not body:
            raise InvalidRequest(msg("tg.answer_empty"))
        async with self._uow() as uow:
            message = await uow.privacy.feedback(message_id)
            if message is None:
                raise NotFound()
            user = await uow.users.get(message.user_id)
            lang = await _language_of(uow, user, self.users.default_language)
            await uow.privacy.reply_feedback(message_id, body, self.clock.now())
            await uow.commit()
        if user is not None:
            await self.notifier.notify(
                dm_target(user.platform, user.platform_user_id),
                Announcement(
                    render(
                        msg(f"tg.answer_to_{message.kind}", message_id=message_id, body=body),
                        lang,
                    )
                ),
                final=True,
            )

    async def broadcast(self, text: str, *, batch: int = 200) -> int:
        """Send a product update to every user who opted in; each says how to opt out."""
        body = text.strip()
        if not body:
            raise InvalidRequest(msg("tg.message_empty"))
        sent = 0
        after = 0
        while True:
            async with self._uow() as uow:
                ids = await uow.privacy.users_with_consent("product_updates", after, batch)
                users = [await uow.users.get(i) for i in ids]
                langs = [await _language_of(uow, u, self.users.default_language) for u in users]
            if not ids:
                break
            after = ids[-1]
            for user, lang in zip(users, langs, strict=True):
                if user is None:
                    continue
                ok = await self.notifier.notify(
                    dm_target(user.platform, user.platform_user_id),
                    Announcement(f"{body}\n\n{render(OPT_OUT, lang)}"),
                )
                sent += int(ok)
        log.info("broadcast sent=%s", sent)
        return sent


async def _language_of(uow: UnitOfWork, user: UserRecord | None, default: str) -> str:
    """The language to tell ``user`` things in: their /settings choice, else their
    platform's, else the operator's default."""
    if user is None:
        return default
    return negotiate((await uow.users.settings(user.id)).language or user.locale, default)
