"""Gallery tables: the sign-in links issued from the chat and the web sessions they open.

Both name the user with ``ON DELETE CASCADE``, so /delete_my_data (which walks every
reference to ``users.id``) ends every session and voids every unused link. Only keyed
hashes of the secrets are stored: a database dump opens no gallery.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class GallerySignIn(Base):
    """A sign-in link given in the chat; ``used_at`` is set by the one exchange it allows."""

    __tablename__ = "gallery_sign_ins"
    __table_args__ = (Index("ix_gallery_sign_ins_expires", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class GallerySession(Base):
    """A signed-in browser: the hash of its cookie, whose it is, how it came, until when."""

    __tablename__ = "gallery_sessions"
    __table_args__ = (Index("ix_gallery_sessions_expires", "expires_at"),)

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    via: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
