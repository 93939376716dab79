"""One button press and its answer: what every button action takes and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import CallbackQuery, Message

from bot.telegram import callbacks as cb
from bot.telegram.replies import actor_of, conversation_of
from bot.telegram.runtime import Runtime
from core.types import Actor, Conversation


@dataclass(frozen=True, slots=True)
class Answer:
    """What the callback query is answered with."""

    text: str = ""
    alert: bool = False


@dataclass(frozen=True, slots=True)
class Press:
    """One button press: who, on which message, with what data."""

    query: CallbackQuery
    message: Message
    data: cb.Callback
    update_id: int

    @property
    def actor(self) -> Actor:
        """The person who pressed."""
        return actor_of(self.query.from_user)

    @property
    def owner(self) -> int:
        """The Telegram id the button belongs to."""
        return self.data.owner

    @property
    def conversation(self) -> Conversation:
        """The chat of the message the button is on."""
        return conversation_of(self.message)


Action = Callable[[Runtime, Press], Awaitable[Answer | None]]
