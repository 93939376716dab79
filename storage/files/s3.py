"""Images in an S3-compatible object store (AWS S3, MinIO, R2, B2, Wasabi, Ceph).

Keys mirror the local store's paths under an optional prefix: ``<prefix>users/<id>/...``,
so the paths the database holds are the same on either store (``imagebot files migrate``
copies objects without touching a row) and one ``ListObjectsV2`` under a user's prefix
finds everything stored about them (export, erasure). Objects are encrypted on this side
with the operator key before they leave the process (the store sees only ciphertext);
the content type is read from the bytes. Credentials come from botocore's usual chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and the shared files,
instance roles); none of them is ever logged.

Every object carries its SHA-256 (of the stored bytes) in ``x-amz-meta-sha256`` and each
upload sends ``Content-MD5``, so the store refuses a body damaged on the way and a copy can
be checked without downloading it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from core.crypto import HEADER_SIZE, DataCipher, is_sealed, open_stream, plain_size
from core.errors import InvalidImage
from core.files import OpenedFile
from core.generation.intake import image_dimensions
from core.types import StoredImage

log = logging.getLogger("imagebot.files.s3")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}(/[A-Za-z0-9][A-Za-z0-9._-]{0,120})*$")
_SAFE_PATH = re.compile(
    r"^users/[0-9]{1,20}/[A-Za-z0-9][A-Za-z0-9._-]{0,120}(/[A-Za-z0-9][A-Za-z0-9._-]{0,120})*$"
)
_EXPORT_KEY = re.compile(r"users/[0-9]+/exports/export-(\d{8}-\d{6})-[^/]*\.zip$")
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
CHUNK = 256 * 1024
PART_SIZE = 8 * 1024 * 1024
"""Bytes per part of a multipart upload (S3's minimum is 5 MiB, except the last)."""
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
"""The longest validity SigV4 allows for a presigned URL."""


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (the checksum kept with each object)."""
    return hashlib.sha256(data).hexdigest()


class S3FileStore:
    """The file store port on an S3-compatible bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        cipher: DataCipher | None = None,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        self.endpoint_url = endpoint_url or None
        self.region = region or None
        self.cipher = cipher
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    # --- the client ---------------------------------------------------------------------------

    async def client(self) -> Any:
        """The S3 client, opened on first use and kept (one connection pool)."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = contextlib.AsyncExitStack()
                    config = AioConfig(
                        retries={"max_attempts": 5, "mode": "standard"},
                        max_pool_connections=32,
                        signature_version="s3v4",
                        s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                    )
                    self._client = await stack.enter_async_context(
                        get_session().create_client(
                            "s3",
                            region_name=self.region,
                            endpoint_url=self.endpoint_url,
                            config=config,
                        )
                    )
                    self._stack = stack
        return self._client

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = None
        self._client = None

    async def check(self) -> str | None:
        """Readiness: None when the bucket answers, else a short reason (no secrets)."""
        try:
            await (await self.client()).head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            return f"bucket not reachable ({exc.response.get('Error', {}).get('Code')})"
        except Exception as exc:  # network errors of any kind: report the kind only
            return f"bucket not reachable ({type(exc).__name__})"
        return None

    def key(self, path: str) -> str:
        """The object key of a stored path; refuses anything outside a user's prefix."""
        if not _SAFE_PATH.match(path) or ".." in path:
            raise ValueError("path outside the store")
        return self.prefix + path

    def user_prefix(self, user_id: int) -> str:
        """The key prefix holding everything stored for one user."""
        return f"{self.prefix}users/{int(user_id)}/"

    # --- writing ------------------------------------------------------------------------------

    async def write_image(self, user_id: int, relative_name: str, data: bytes) -> StoredImage:
        """Check the bytes are an image, then upload them; extension from content."""
        info = image_dimensions(data)
        if info is None:
            raise InvalidImage("The image service returned something that is not an image.")
        content_type, width, height = info
        if not _SAFE_NAME.match(relative_name):
            raise ValueError("unsafe file name")
        rel = f"users/{int(user_id)}/{relative_name}.{_EXT[content_type]}"
        await self.put(rel, self._seal(data), content_type)
        return StoredImage(rel, content_type, width, height, len(data))

    async def write_blob(self, user_id: int, relative_name: str, data: bytes) -> str:
        """Upload any file (an export) under the user's prefix."""
        if not _SAFE_NAME.match(relative_name):
            raise ValueError("unsafe file name")
        rel = f"users/{int(user_id)}/{relative_name}"
        content_type = "application/zip" if rel.endswith(".zip") else "application/octet-stream"
        await self.put(rel, self._seal(data), content_type)
        return rel

    async def write_blob_stream(
        self, user_id: int, relative_name: str, chunks: AsyncIterator[bytes]
    ) -> tuple[str, int]:
        """Upload a file made piece by piece (an export ZIP), sealed segment by segment:
        one PUT when it stays under :data:`PART_SIZE`, else a multipart upload of
        :data:`PART_SIZE` parts (each with its Content-MD5), so at most one part is held.
        The object appears whole at the end or not at all (an interrupted upload is
        aborted). Its SHA-256, known only at the end, is then set by a server-side copy
        onto itself."""
        if not _SAFE_NAME.match(relative_name):
            raise ValueError("unsafe file name")
        rel = f"users/{int(user_id)}/{relative_name}"
        key = self.key(rel)
        sealer = self.cipher.sealer() if self.cipher is not None else None
        content_type = (
            "application/octet-stream"
            if sealer is not None or not rel.endswith(".zip")
            else "application/zip"
        )
        encrypted = "1" if sealer is not None else "0"
        client = await self.client()
        buf = bytearray(sealer.header if sealer is not None else b"")
        digest = hashlib.sha256()
        parts: list[dict[str, Any]] = []
        upload_id: str | None = None
        size = 0

        async def send(part: bytes) -> None:
            nonlocal upload_id
            if upload_id is None:
                created = await client.create_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    ContentType=content_type,
                    Metadata={"encrypted": encrypted},
                )
                upload_id = created["UploadId"]
            digest.update(part)
            md5 = base64.b64encode(hashlib.md5(part, usedforsecurity=False).digest()).decode()
            number = len(parts) + 1
            resp = await client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=part,
                ContentMD5=md5,
            )
            parts.append({"ETag": resp["ETag"], "PartNumber": number})

        try:
            async for chunk in chunks:
                size += len(chunk)
                buf += sealer.push(chunk) if sealer is not None else chunk
                while len(buf) >= PART_SIZE:
                    part = bytes(buf[:PART_SIZE])
                    del buf[:PART_SIZE]
                    await send(part)
            if sealer is not None:
                buf += sealer.finish()
            if upload_id is None:  # small: one PUT, checksum and all
                await self.put(rel, bytes(buf), "application/zip")
                return rel, size
            if buf or not parts:
                await send(bytes(buf))
            await client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            raise
        await client.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": key},
            MetadataDirective="REPLACE",
            ContentType=content_type,
            Metadata={"sha256": digest.hexdigest(), "encrypted": encrypted},
        )
        return rel, size

    async def put(self, path: str, stored: bytes, content_type: str) -> str:
        """Upload already-sealed bytes to ``path``; returns their SHA-256.

        One PUT is atomic in S3: readers see the old object or the new one, never a part.
        """
        digest = sha256_hex(stored)
        md5 = base64.b64encode(hashlib.md5(stored, usedforsecurity=False).digest()).decode()
        encrypted = is_sealed(stored)
        await (await self.client()).put_object(
            Bucket=self.bucket,
            Key=self.key(path),
            Body=stored,
            ContentMD5=md5,
            # Ciphertext is not an image: never let a browser or a store guess otherwise.
            ContentType="application/octet-stream" if encrypted else content_type,
            Metadata={"sha256": digest, "encrypted": "1" if encrypted else "0"},
        )
        return digest

    def _seal(self, data: bytes) -> bytes:
        return self.cipher.seal(data) if self.cipher is not None else data

    def local_path(self, path: str) -> str | None:
        """None: objects are never on this machine's disk (read or stream them)."""
        self.key(path)  # a hostile path is refused here too
        return None

    @property
    def encrypted_at_rest(self) -> bool:
        """True when objects are stored as ciphertext under the operator key."""
        return self.cipher is not None

    # --- reading ------------------------------------------------------------------------------

    async def read(self, path: str) -> bytes:
        """The bytes of a stored file (decrypted). Raises FileNotFoundError when missing."""
        raw = await self.read_raw(path)
        return self.cipher.decrypt(raw) if self.cipher is not None else raw

    async def read_raw(self, path: str) -> bytes:
        """The stored bytes, as they are in the bucket."""
        chunks = [c async for c in self._raw_chunks(path)]
        return b"".join(chunks)

    async def _get(self, path: str) -> tuple[int, AsyncGenerator[bytes, None]]:
        try:
            resp = await (await self.client()).get_object(Bucket=self.bucket, Key=self.key(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise FileNotFoundError(path) from None
            raise
        body = resp["Body"]

        async def chunks() -> AsyncGenerator[bytes, None]:
            async with body:
                async for chunk in body.iter_chunks(CHUNK):
                    yield chunk

        return int(resp["ContentLength"]), chunks()

    async def _raw_chunks(self, path: str) -> AsyncIterator[bytes]:
        _, chunks = await self._get(path)
        async for chunk in chunks:
            yield chunk

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        """The plain bytes of a stored file in chunks, decrypted on the fly (see
        :meth:`open`)."""
        opened = await self.open(path)
        async for chunk in opened.chunks:
            yield chunk

    async def open(self, path: str) -> OpenedFile:
        """Start one GET of the object and decrypt it segment by segment as it arrives,
        so memory stays bounded whatever its size (a legacy ``IBE1`` object, one AES-GCM
        message, is the exception: it is read whole). Raises FileNotFoundError at once
        when the object is missing."""
        stored_size, raw = await self._get(path)
        head = b""
        try:
            while len(head) < HEADER_SIZE:
                more = await anext(raw, b"")
                if not more:
                    break
                head += more
        except BaseException:
            await raw.aclose()
            raise

        async def replay() -> AsyncIterator[bytes]:
            try:
                if head:
                    yield head
                async for chunk in raw:
                    yield chunk
            finally:
                await raw.aclose()

        size = plain_size(stored_size, head[:HEADER_SIZE])
        return OpenedFile(size, open_stream(replay(), self.cipher))

    async def head(self, path: str) -> dict[str, Any] | None:
        """Size, checksum and type of a stored object; None when it does not exist."""
        try:
            resp = await (await self.client()).head_object(Bucket=self.bucket, Key=self.key(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return {
            "size": int(resp["ContentLength"]),
            "sha256": resp.get("Metadata", {}).get("sha256"),
            "content_type": resp.get("ContentType"),
        }

    def absolute(self, path: str) -> str:
        """The object's address (``s3://bucket/key``): a name for logs and events, not a
        file to open; adapters read the bytes through :meth:`read` or :meth:`stream`."""
        return f"s3://{self.bucket}/{self.key(path)}"

    async def download_url(self, path: str, *, filename: str, expires_in: int) -> str | None:
        """A presigned GET valid for ``expires_in`` seconds (the caller's choice:
        ``DownloadLinks`` gives images IMAGEBOT_DOWNLOAD_LINK_SECONDS and exports 24 hours;
        at most SigV4's seven days) that downloads the object as ``filename``; None for
        ciphertext, which only imagebot's HTTP server can serve."""
        head = await self.head(path)
        if head is None:
            raise FileNotFoundError(path)
        if self.cipher is not None or head["content_type"] == "application/octet-stream":
            return None
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:120] or "download"
        url: str = await (await self.client()).generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.key(path),
                "ResponseContentDisposition": f'attachment; filename="{safe}"',
                "ResponseCacheControl": "no-store",
            },
            ExpiresIn=max(1, min(int(expires_in), MAX_PRESIGN_SECONDS)),
        )
        return url

    # --- listing ------------------------------------------------------------------------------

    async def list_keys(self, prefix: str) -> AsyncIterator[tuple[str, int, datetime]]:
        """(path, size, last modified) of every object under ``prefix`` (a stored path
        prefix, without the store's own prefix), page by page."""
        paginator = (await self.client()).get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for obj in page.get("Contents", ()):
                yield obj["Key"][len(self.prefix) :], int(obj["Size"]), obj["LastModified"]

    async def list_user(self, user_id: int) -> list[str]:
        """Every stored file of a user, as paths (one listing of the user's prefix)."""
        return sorted([p async for p, _, _ in self.list_keys(f"users/{int(user_id)}/")])

    def user_files(self, user_id: int) -> list[str]:
        """Not available without a network round trip: use :meth:`list_user`."""
        raise NotImplementedError("use 'await list_user(user_id)' with the S3 store")

    # --- deleting -----------------------------------------------------------------------------

    async def delete(self, path: str) -> None:
        """Remove one object (a missing one is fine)."""
        await self.delete_many([path])

    async def delete_many(self, paths: list[str]) -> None:
        """Remove objects, up to 1000 per DeleteObjects call (missing ones are fine)."""
        keys = [self.key(p) for p in paths]
        await self._delete_keys(keys)

    async def _delete_keys(self, keys: list[str]) -> None:
        client = await self.client()
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            resp = await client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            errors = resp.get("Errors") or []
            if errors:
                codes = sorted({e.get("Code", "?") for e in errors})
                raise OSError(f"the store kept {len(errors)} objects ({', '.join(codes)})")

    async def delete_user(self, user_id: int) -> int:
        """Remove every object under the user's prefix, then list it again to prove that
        nothing is left; return how many objects went."""
        count = 0
        for _ in range(5):
            keys = [self.prefix + p async for p, _, _ in self.list_keys(f"users/{int(user_id)}/")]
            if not keys:
                log.info("erased user=%s objects=%s", user_id, count)
                return count
            await self._delete_keys(keys)
            count += len(keys)
        raise OSError(f"objects of user {user_id} remain after erasure")

    async def delete_exports_before(self, before: datetime, *, dry_run: bool = False) -> int:
        """Remove export ZIPs whose name says they were made before ``before``."""
        doomed: list[str] = []
        async for path, _, _ in self.list_keys("users/"):
            match = _EXPORT_KEY.match(path)
            if not match:
                continue
            made = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
            if made < before:
                doomed.append(path)
        if not dry_run:
            await self.delete_many(doomed)
        return len(doomed)

    async def reencrypt_all(self) -> int:
        """Rewrite every object under the current key; returns how many changed."""
        if self.cipher is None:
            raise RuntimeError("no encryption key configured")
        changed = 0
        async for path, _, _ in self.list_keys("users/"):
            raw = await self.read_raw(path)
            if self.cipher.is_current(raw):
                continue
            head = await self.head(path)
            plain = self.cipher.decrypt(raw)
            info = image_dimensions(plain)
            content_type = info[0] if info else (head or {}).get("content_type") or ""
            await self.put(path, self.cipher.seal(plain), content_type)
            changed += 1
        return changed
