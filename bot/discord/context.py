"""From a Discord interaction to core's boundary types: who, where, and where replies go."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from core.i18n import current_language, set_language
from core.types import Actor, Conversation, ReplyTarget

PLATFORM = "discord"
log = logging.getLogger("imagebot.discord")

# Keys of ReplyTarget.extra (short: they are stored on every job).
APP = "app"  # application id: the webhook id of interaction follow-ups
USER = "user"  # the owner's user id: DM fallback and button ownership
GUILD = "guild"  # guild id, empty in DMs and group DMs
PRIVATE = "private"  # "1" when the answer is ephemeral: never fall back to a channel
ISSUED = "issued"  # when the interaction token was issued (epoch seconds)
LIMIT = "limit"  # the interaction's attachment_size_limit in bytes
WHERE = "where"  # "guild", "dm" or "private_channel" (a group DM or another user's DM)
DM = "dm"  # Announcement targets: chat_id is the user's id
LANG = "lang"  # the requester's language: a result in a channel speaks to them


def actor_of(interaction: discord.Interaction) -> Actor:
    """The person who used a command or pressed a button."""
    user = interaction.user
    return Actor(
        PLATFORM,
        str(user.id),
        display_name=user.display_name,
        locale=str(interaction.locale.value) if interaction.locale else "",
    )


LANGUAGE_LOOKUP_SECONDS = 0.5
"""How long the stored language may take before Discord's locale is used instead: an
interaction must be acknowledged within 3 seconds, and a busy database must not eat them."""

DEFERS_FIRST = "defers_first"
"""Key of a command's ``extras``: its handler defers before anything else, so its user's
stored language is looked up once it is deferred, not before (``respond.defer``)."""

_LOOKUP = "language_lookup"  # interaction.extras: (core, actor) of a lookup not begun


def begin_language(core: Any, interaction: discord.Interaction) -> None:
    """Answer in Discord's ``locale`` (or the default) for now, without asking the
    database: :func:`settle_language`, called once the interaction is deferred, looks up
    the user's own choice."""
    actor = actor_of(interaction)
    interaction.extras[_LOOKUP] = (core, actor)
    set_language(core.users.platform_language(actor))


async def settle_language(interaction: discord.Interaction) -> str:
    """Look up the language :func:`begin_language` put off and answer in it from now on
    (waiting :data:`LANGUAGE_LOOKUP_SECONDS` at most); the current language when nothing
    was put off.

    One lookup per user at a time: a burst of commands asks the database once per
    person, not once per command. A lookup still running at the deadline (a burst on a
    busy database) is not cancelled (that would wait for the database as well): it fills
    the language cache for the next interaction, and Discord's locale stays for this one."""
    pending = interaction.extras.pop(_LOOKUP, None)
    if pending is None:
        return str(current_language())
    core, actor = pending
    fallback = core.users.platform_language(actor)
    loop = asyncio.get_running_loop()
    key = (id(core), actor.platform, actor.user_id)
    lookup = _inflight.get(key)
    if lookup is None or lookup.get_loop() is not loop:
        lookup = asyncio.ensure_future(core.users.language(actor))
        _inflight[key] = lookup
        lookup.add_done_callback(lambda done: _settled(key, done))
    if not lookup.done():
        await asyncio.wait({lookup}, timeout=LANGUAGE_LOOKUP_SECONDS)
    failed = not lookup.done() or lookup.cancelled() or lookup.exception() is not None
    lang = fallback if failed else lookup.result()
    set_language(lang)
    return str(lang)


async def use_language_of(core: Any, interaction: discord.Interaction) -> str:
    """Answer this interaction in its user's language (their ``/settings language``
    choice, else Discord's ``locale``, else the default) for the rest of its handling."""
    begin_language(core, interaction)
    return await settle_language(interaction)


_inflight: dict[tuple[int, str, str], asyncio.Future[str]] = {}


def _settled(key: tuple[int, str, str], lookup: asyncio.Future[str]) -> None:
    if _inflight.get(key) is lookup:
        del _inflight[key]
    if not lookup.cancelled() and lookup.exception() is not None:
        log.warning("language lookup failed: %s", type(lookup.exception()).__name__)


def where(interaction: discord.Interaction) -> str:
    """``guild``, ``dm`` (our DM with the user) or ``private_channel``."""
    if interaction.guild_id is not None:
        return "guild"
    context = interaction.context
    if context.private_channel:
        return "private_channel"
    return "dm"


def is_dm(interaction: discord.Interaction) -> bool:
    """True in the user's direct messages with the bot."""
    return where(interaction) == "dm"


def conversation_of(interaction: discord.Interaction) -> Conversation:
    """The channel a command was used in. In a thread the chat is the thread's parent
    channel and ``thread_id`` the thread (as a Telegram topic is a thread of its group), so
    a server that limits imagebot to a channel allows the threads inside it."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread) and channel.parent_id is not None:
        return Conversation(
            PLATFORM,
            str(channel.parent_id),
            thread_id=str(channel.id),
            is_private=False,
            group_id=str(interaction.guild_id) if interaction.guild_id else None,
        )
    return Conversation(
        PLATFORM,
        str(interaction.channel_id or interaction.user.id),
        is_private=is_dm(interaction),
        group_id=str(interaction.guild_id) if interaction.guild_id else None,
    )


def request_key(interaction: discord.Interaction) -> str:
    """The idempotency key of an interaction: a redelivered event makes no second job."""
    return f"discord:interaction:{interaction.id}"


def reply_target(interaction: discord.Interaction, *, private: bool) -> ReplyTarget:
    """Where a job's progress and result go: the interaction's original response while its
    token is valid, then the channel (or the user's DM for private answers)."""
    return ReplyTarget(
        PLATFORM,
        str(interaction.channel_id or interaction.user.id),
        token=interaction.token,
        extra={
            APP: str(interaction.application_id),
            USER: str(interaction.user.id),
            GUILD: str(interaction.guild_id or ""),
            PRIVATE: "1" if private else "0",
            ISSUED: f"{interaction.created_at.timestamp():.3f}",
            LIMIT: str(interaction.filesize_limit),
            WHERE: where(interaction),
            LANG: current_language(),
        },
    )


def is_ephemeral_message(message: discord.Message | None) -> bool:
    """True for a message only its recipient can see."""
    return bool(message is not None and message.flags.ephemeral)
