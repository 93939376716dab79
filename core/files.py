"""The file store port: images kept on disk or in an object store, one prefix per user."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
