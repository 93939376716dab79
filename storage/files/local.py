"""Images on the local disk under the data folder, one folder per user.

Writes are atomic (a temporary file in the same folder, fsync, then rename), so a crash
never leaves half an image behind a path the database names. The content type is read
from the bytes, never from a name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from core.crypto import HEADER_SIZE, DataCipher, open_stream, plain_size
from core.errors import InvalidImage
from core.files import OpenedFile
from core.generation.intake import image_dimensions
from core.types import StoredImage

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}(/[A-Za-z0-9][A-Za-z0-9._-]{0,120})*$")
_EXPORT_STAMP = re.compile(r"^export-(\d{8}-\d{6})-")
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
CHUNK = 256 * 1024


def _flush_close(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


class LocalFileStore:
    """The file store port on a local folder."""

    def __init__(self, root: Path, cipher: DataCipher | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.cipher = cipher

    def user_dir(self, user_id: int) -> Path:
        """The folder holding everything stored for one user."""
        return self.root / "users" / str(int(user_id))

    async def write_image(self, user_id: int, relative_name: str, data: bytes) -> StoredImage:
        """Check the bytes are an image, then write them atomically; extension from content."""
        info = image_dimensions(data)
        if info is None:
            raise InvalidImage("The image service returned something that is not an image.")
        content_type, width, height = info
        if not _SAFE_NAME.match(relative_name):
            raise ValueError("unsafe file name")
        rel = f"users/{int(user_id)}/{relative_name}.{_EXT[content_type]}"
        await asyncio.to_thread(self._write_atomic, self.root / rel, self._seal(data))
        return StoredImage(rel, content_type, width, height, len(data))

    async def write_blob(self, user_id: int, relative_name: str, data: bytes) -> str:
        """Write any file (an export) atomically under the user's folder."""
        if not _SAFE_NAME.match(relative_name):
            raise ValueError("unsafe file name")
        rel = f"users/{int(user_id)}/{relative_name}"
        await asyncio.to_thread(self._write_atomic, self.root / rel, self._seal(data))
        return rel

    async def write_blob_stream(
        self, user_id: int, relative_name: str, chunks: AsyncIterator[bytes]
    ) -> tuple[str, int]:
        """Write a file made piece by piece under the user's folder: sealed segment by
        segment into a temporary file beside the target, fsync, then rename (atomic;
        only ciphertext ever reaches the disk when a key is configured)."""
        if not _SAFE_NAME.match(relative_name):
            raise ValueError("unsafe file name")
        rel = f"users/{int(user_id)}/{relative_name}"
        target = self.root / rel
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        fh = os.fdopen(fd, "wb")
        sealer = self.cipher.sealer() if self.cipher is not None else None
        size = 0
        try:
            if sealer is not None:
                await asyncio.to_thread(fh.write, sealer.header)
            async for chunk in chunks:
                size += len(chunk)
                out = sealer.push(chunk) if sealer is not None else chunk
                if out:
                    await asyncio.to_thread(fh.write, out)
            if sealer is not None:
                await asyncio.to_thread(fh.write, sealer.finish())
            await asyncio.to_thread(_flush_close, fh)
            os.replace(tmp, target)
        except BaseException:
            fh.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # no await here: this runs on cancellation too
            raise
        return rel, size

    def _seal(self, data: bytes) -> bytes:
        return self.cipher.seal(data) if self.cipher is not None else data

    def local_path(self, path: str) -> str | None:
        """The file's absolute path when it can be read as it is (no key configured:
        stored bytes are the plain bytes); None when it is ciphertext."""
        return None if self.cipher is not None else str(self._resolve(path))

    @property
    def encrypted_at_rest(self) -> bool:
        """True when files are ciphertext under the operator key."""
        return self.cipher is not None

    async def download_url(self, path: str, *, filename: str, expires_in: int) -> str | None:
        """None: local files are served by imagebot's HTTP server under a signed link."""
        return None

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        """The plain bytes in chunks, decrypted on the fly (see :meth:`open`)."""
        opened = await self.open(path)
        async for chunk in opened.chunks:
            yield chunk

    async def open(self, path: str) -> OpenedFile:
        """Open a stored file for streaming: read 256 KiB at a time and decrypted segment
        by segment, so memory stays bounded whatever the file's size. Raises
        FileNotFoundError at once when the file is missing."""
        fh = await asyncio.to_thread(self._resolve(path).open, "rb")
        try:
            stored_size = os.fstat(fh.fileno()).st_size
            first = await asyncio.to_thread(fh.read, CHUNK)
        except BaseException:
            fh.close()
            raise

        async def raw() -> AsyncIterator[bytes]:
            try:
                chunk = first
                while chunk:
                    yield chunk
                    chunk = await asyncio.to_thread(fh.read, CHUNK)
            finally:
                fh.close()

        size = plain_size(stored_size, first[:HEADER_SIZE])
        return OpenedFile(size, open_stream(raw(), self.cipher))

    async def list_user(self, user_id: int) -> list[str]:
        """Every stored file of a user (a walk of the user's folder, in a thread)."""
        return await asyncio.to_thread(self.user_files, user_id)

    async def reencrypt_all(self) -> int:
        """Rewrite every stored file under the current key; returns how many changed."""
        if self.cipher is None:
            raise RuntimeError("no encryption key configured")
        changed = 0
        users = self.root / "users"
        for path in users.rglob("*") if users.exists() else ():
            if not path.is_file() or path.name.startswith(".tmp-"):
                continue
            raw = await asyncio.to_thread(path.read_bytes)
            if self.cipher.is_current(raw):
                continue
            plain = self.cipher.decrypt(raw)
            await asyncio.to_thread(self._write_atomic, path, self.cipher.seal(plain))
            changed += 1
        return changed

    async def delete_exports_before(self, before: datetime, *, dry_run: bool = False) -> int:
        """Remove export ZIPs whose name says they were made before ``before``."""
        count = 0
        for path in (self.root / "users").glob("*/exports/export-*.zip"):
            match = _EXPORT_STAMP.match(path.name)
            if not match:
                continue
            made = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
            if made < before:
                count += 1
                if not dry_run:
                    path.unlink(missing_ok=True)
        return count

    @staticmethod
    def _write_atomic(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _resolve(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root):
            raise ValueError("path outside the data folder")
        return full

    async def read(self, path: str) -> bytes:
        """The plain bytes of a stored file (decrypted)."""
        raw = await asyncio.to_thread(self._resolve(path).read_bytes)
        return self.cipher.decrypt(raw) if self.cipher is not None else raw

    def absolute(self, path: str) -> str:
        """Absolute path of a stored file (a name for logs and events; open it only
        through :meth:`local_path`, which says whether its bytes are plain)."""
        return str(self._resolve(path))

    async def delete(self, path: str) -> None:
        """Remove one file."""
        await self.delete_many([path])

    async def delete_many(self, paths: list[str]) -> None:
        """Remove files in one trip to a thread, then the job folders they leave empty
        (a folder's name would still say who had a job, and when)."""
        await asyncio.to_thread(self._delete_many, paths)

    def _delete_many(self, paths: list[str]) -> None:
        folders = set()
        for path in paths:
            full = self._resolve(path)
            full.unlink(missing_ok=True)
            folders.add(full.parent)
        users = self.root / "users"
        for folder in folders:
            # Only a job's own folder (users/<id>/jobs/<job>), and only when empty.
            if folder.is_relative_to(users) and len(folder.relative_to(users).parts) >= 3:
                with contextlib.suppress(OSError):
                    folder.rmdir()

    async def delete_user(self, user_id: int) -> int:
        """Remove the user's folder."""
        folder = self.user_dir(user_id)
        count = len(self.user_files(user_id))
        await asyncio.to_thread(shutil.rmtree, folder, True)
        return count

    def user_files(self, user_id: int) -> list[str]:
        """Every stored file of a user, relative to the data folder."""
        folder = self.user_dir(user_id)
        if not folder.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in folder.rglob("*") if p.is_file())
