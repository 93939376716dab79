"""The file store port: images kept on disk, one folder per user."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from core.types import StoredImage


class FileStore(Protocol):
    """Stores image bytes under the data folder; paths are relative to it."""

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

    @property
    def encrypted(self) -> bool:
        """True when files on disk are encrypted (read them through :meth:`read`)."""
        ...

    def absolute(self, path: str) -> str:
        """The absolute path of a stored file (for adapters that upload from disk)."""
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

    def user_files(self, user_id: int) -> list[str]:
        """Every stored file of a user, as relative paths."""
        ...
