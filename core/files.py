"""The file store port: images kept on disk or in an object store, one prefix per user."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.types import StoredImage


@dataclass(frozen=True, slots=True)
class OpenedFile:
    """A stored file opened for streaming: its plain size when the store knows it
    without reading it all (None for a legacy ``IBE1`` object), and its plain bytes in
    chunks, decrypted as they arrive. Iterate ``chunks`` to the end (or close it)."""

    size: int | None
    chunks: AsyncGenerator[bytes, None]


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

    async def write_blob_stream(
        self, user_id: int, relative_name: str, chunks: AsyncIterator[bytes]
    ) -> tuple[str, int]:
        """Write a file made piece by piece (an export ZIP) under the user's folder,
        sealed segment by segment, never held whole; atomic like :meth:`write_blob`.
        Returns its path and its plain size."""
        ...

    async def delete_exports_before(self, before: datetime, *, dry_run: bool = False) -> int:
        """Remove (or count) export files made before ``before``."""
        ...

    async def read(self, path: str) -> bytes:
        """The bytes of a stored file."""
        ...

    def stream(self, path: str) -> AsyncIterator[bytes]:
        """The plain bytes of a stored file in chunks (downloads, copies), decrypted on
        the fly with bounded memory."""
        ...

    async def open(self, path: str) -> OpenedFile:
        """Open a stored file for streaming (its plain size and chunks); raises
        FileNotFoundError at once when it is missing."""
        ...

    def local_path(self, path: str) -> str | None:
        """A plain file on this machine's disk holding exactly the file's bytes, which an
        adapter may upload from; None when there is none (ciphertext at rest, or an object
        store): then read the bytes with :meth:`read` or :meth:`stream`."""
        ...

    @property
    def encrypted_at_rest(self) -> bool:
        """True when stored bytes are ciphertext under the operator key."""
        ...

    def absolute(self, path: str) -> str:
        """A name for a stored file in logs and events: its absolute path (local store) or
        its object address (``s3://...``). Not a promise that it can be opened: see
        :meth:`local_path`."""
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


EXPORT_LINK_SECONDS = 24 * 3600
"""How long a link to an export ZIP stays valid (the ZIP itself is kept a little longer)."""


class DownloadLinks:
    """Short-lived links to one stored file of one user, for downloads that do not pass
    through a chat platform (full-resolution images, export ZIPs). The one signing scheme
    for downloads: exports use it too, with :data:`EXPORT_LINK_SECONDS`.

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

    @property
    def available(self) -> bool:
        """True when :meth:`link` can give links without asking the store (imagebot has
        a public address); an object store may give presigned links even when False."""
        return self.public_url is not None

    async def link(
        self, user_id: int, path: str, *, filename: str, ttl_seconds: int | None = None
    ) -> str | None:
        """A download link for ``path`` (which must be the user's), valid for
        ``ttl_seconds`` (the installation's short default when None), or None when
        neither the store nor imagebot's public address can serve one."""
        if not path.startswith(f"users/{int(user_id)}/") or ".." in path:
            raise ValueError("not the user's file")
        ttl = self.ttl_seconds if ttl_seconds is None else int(ttl_seconds)
        direct = await self.files.download_url(path, filename=filename, expires_in=ttl)
        if direct is not None:
            return direct
        if not self.public_url:
            return None
        expires = int(self.now().timestamp()) + ttl
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
