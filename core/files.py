"""The file store port: images kept on disk or in an object store, one prefix per user."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Protocol

from core.types import StoredImage


class FileStore(Protocol):
    """Stores image bytes; paths (``users/<id>/...``) are the same on every store, relative
    to the data folder (local) or to the bucket's prefix (S3)."""

    async def write_image(self, user_id: int, relative_name: str, data: bytes) -> StoredImage:
        """Write atomically under the user's folder; the type is read from the bytes.

        Raises :class:`core.errors.InvalidImage` when the bytes are not an accepted image.
        """
        ...

    async def write_blob(self, user_id: int, relative_name: str, data: bytes) -> str:
        """Write any file (an export) atomically under the user's folder; returns its path."""
        ...

    async def delete_exports_before(self, before: datetime, *, dry_run: bool = False) -> int:
        """Remove (or count) export files made before ``before``."""
        ...

    async def read(self, path: str) -> bytes:
        """The bytes of a stored file."""
        ...

    def stream(self, path: str) -> AsyncIterator[bytes]:
        """The plain bytes of a stored file in chunks (downloads, copies)."""
        ...

    @property
    def encrypted(self) -> bool:
        """True when adapters must read through :meth:`read` rather than open
        :meth:`absolute`: the files are encrypted at rest, or not on this machine's disk."""
        ...

    @property
    def encrypted_at_rest(self) -> bool:
        """True when stored bytes are ciphertext under the operator key."""
        ...

    def absolute(self, path: str) -> str:
        """The absolute path of a stored file (for adapters that upload from disk); for an
        object store, the object's address (then :attr:`encrypted` is True)."""
        ...

    async def download_url(self, path: str, *, filename: str, expires_in: int) -> str | None:
        """A short-lived URL that downloads the file without passing through imagebot
        (a presigned URL of an object store), or None when imagebot must serve it itself
        (a local file, or ciphertext that only imagebot can decrypt)."""
        ...

    async def delete(self, path: str) -> None:
        """Remove one file (missing files are fine)."""
        ...

    async def delete_many(self, paths: list[str]) -> None:
        """Remove files (missing ones are fine) and any folder they leave empty."""
        ...

    async def delete_user(self, user_id: int) -> int:
        """Remove the user's whole folder; return how many files went."""
        ...

    async def list_user(self, user_id: int) -> list[str]:
        """Every stored file of a user, as paths (export and erasure use it)."""
        ...

    def user_files(self, user_id: int) -> list[str]:
        """Every stored file of a user, as relative paths (local store only; prefer
        :meth:`list_user`, which every store has)."""
        ...


Sign = Callable[[str, bytes], Awaitable[str]]
"""(purpose, message) -> an HMAC under the installation's secret (``UserService.sign``)."""


class DownloadLinks:
    """Short-lived links to one stored file of one user, for downloads that do not pass
    through a chat platform (full-resolution images, export ZIPs).

    From an object store holding the file in plain form the link is the store's own
    presigned URL; otherwise (a local file, or ciphertext) it is a link to imagebot's HTTP
    server (``/files/<token>``), signed with the installation's secret, bound to the user
    and the path, and valid until it expires; the server decrypts while it streams.
    """

    def __init__(
        self,
        files: FileStore,
        sign: Sign,
        now: Callable[[], datetime],
        *,
        public_url: str | None,
        ttl_seconds: int = 900,
    ) -> None:
        self.files = files
        self.sign = sign
        self.now = now
        self.public_url = public_url.rstrip("/") if public_url else None
        self.ttl_seconds = ttl_seconds

    async def link(self, user_id: int, path: str, *, filename: str) -> str | None:
        """A download link for ``path`` (which must be the user's), or None when neither
        the store nor imagebot's public address can serve one."""
        if not path.startswith(f"users/{int(user_id)}/") or ".." in path:
            raise ValueError("not the user's file")
        direct = await self.files.download_url(path, filename=filename, expires_in=self.ttl_seconds)
        if direct is not None:
            return direct
        if not self.public_url:
            return None
        expires = int(self.now().timestamp()) + self.ttl_seconds
        payload = json.dumps([int(user_id), path, filename, expires], separators=(",", ":"))
        signature = await self.sign(PURPOSE, payload.encode())
        token = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{self.public_url}/files/{token}.{signature}"

    async def open(self, token: str) -> tuple[str, str]:
        """Check a link's signature and expiry; return (path, file name).

        Raises :class:`LinkRefused` for a forged, altered, expired or foreign link."""
        encoded, _, signature = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            user_id, path, filename, expires = json.loads(payload)
            user_id, expires = int(user_id), int(expires)
            if not isinstance(path, str) or not isinstance(filename, str):
                raise ValueError
        except (ValueError, TypeError, UnicodeDecodeError):
            raise LinkRefused("invalid") from None
        expected = await self.sign(PURPOSE, payload.encode())
        if not hmac.compare_digest(expected, signature):
            raise LinkRefused("invalid")
        if self.now().timestamp() > expires:
            raise LinkRefused("expired")
        if not path.startswith(f"users/{user_id}/") or ".." in path:
            raise LinkRefused("invalid")
        return path, filename


PURPOSE = "file-link"


class LinkRefused(Exception):
    """A download link that is forged, altered, expired or not for that file."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
