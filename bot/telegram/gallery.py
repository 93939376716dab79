"""/gallery on Telegram: a one-time sign-in link to the private web gallery, and the same
gallery as a Mini App (a ``web_app`` button) where Telegram allows one."""

from __future__ import annotations

from telegram import Message

from bot.telegram import keyboards, render
from bot.telegram.runtime import Runtime
from core.types import Actor


def gallery_offered(rt: Runtime, chat_id: int | str) -> bool:
    """True when a Gallery button belongs under results and /history in this chat: the
    gallery is served, and the chat is private (a sign-in link is never posted to a group)."""
    try:
        private = int(chat_id) > 0
    except (TypeError, ValueError):
        private = False
    return rt.core.gallery_access.enabled and private


async def send_gallery_link(rt: Runtime, message: Message, actor: Actor) -> Message:
    """The sign-in link (and the Mini App button when the public URL is https: Telegram
    opens Mini Apps only from https, and only in private chats) as a new message.

    Raises :class:`core.generation.GalleryNotConfigured` without IMAGEBOT_PUBLIC_URL.
    """
    # replies imports delivery, which imports this module for gallery_offered.
    from bot.telegram.replies import reply

    access = rt.core.gallery_access
    link = await access.sign_in_link(actor)
    mini_app = access.mini_app_url() if access.secure else None
    return await reply(rt, message, render.gallery_link_text(), keyboards.gallery(link, mini_app))
