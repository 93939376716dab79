"""Authenticated encryption at rest (P18): AES-256-GCM under the operator's key.

Each ciphertext names the key that made it (the first 8 hex digits of the key's SHA-256),
so older keys can still be read during a rotation and ``imagebot keys rotate`` can
re-encrypt everything under the current key. Values written before a key was configured
stay readable as they are.

Two forms. ``IBE1`` (database values, and files written before ``IBE2``) is one AES-GCM
message: it must be read whole before any byte of it can be trusted. ``IBE2`` (every file
written now) is segmented so that it can be decrypted while it streams, in the manner of
the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015) that Tink's streaming
AEAD and age use::

    header  = b"IBE2" | key id (8 ASCII) | nonce prefix (8 random bytes) | segment size (u32 BE)
    segment = AES-256-GCM(key, nonce = prefix | index (u32 BE),
                          plaintext (segment size bytes; the last one 0..size),
                          aad = header | index (u32 BE) | last flag (1 byte))

The header in every segment's AAD binds each segment to its object (splicing between
objects fails), the index to its place (reordering fails), and the last flag to the end
(a dropped tail, a truncation at a segment boundary or anything appended fails). Each
released plaintext segment has been authenticated; the end of the object is known to be
the true end only when the final segment has been.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ConfigurationError

BLOB_MAGIC = b"IBE1"
STREAM_MAGIC = b"IBE2"
TEXT_PREFIX = "enc1:"
SEGMENT_SIZE = 64 * 1024
"""Plaintext bytes per ``IBE2`` segment: large enough that the 16-byte tags cost 0.02 %,
small enough that a streamed download holds only a few of them."""
MAX_SEGMENT_SIZE = 4 * 1024 * 1024
"""The largest segment size a reader accepts (a hostile header cannot make it buffer more)."""
TAG = 16
HEADER_SIZE = 4 + 8 + 8 + 4


def is_sealed(blob: bytes) -> bool:
    """True when ``blob`` (or its first bytes) is ciphertext of either form."""
    return blob[:4] in (BLOB_MAGIC, STREAM_MAGIC)


def plain_size(stored_size: int, head: bytes) -> int | None:
    """The plaintext size of a stored object from its size and first bytes (at least
    :data:`HEADER_SIZE` of them): exact for plain and ``IBE2`` objects, None for ``IBE1``
    or a malformed header."""
    if head[:4] == BLOB_MAGIC:
        return None
    if head[:4] != STREAM_MAGIC:
        return stored_size
    if len(head) < HEADER_SIZE:
        return None
    (segment,) = struct.unpack(">I", head[20:24])
    if not 0 < segment <= MAX_SEGMENT_SIZE:
        return None
    body = stored_size - HEADER_SIZE
    segments = max(1, -(-body // (segment + TAG)))
    size = body - segments * TAG
    return size if size >= 0 else None


def key_id(key: bytes) -> str:
    """Short public name of a key."""
    return hashlib.sha256(key).hexdigest()[:8]


def decode_key(text: str) -> bytes:
    """A key from its URL-safe base64 form (32 bytes)."""
    raw = base64.urlsafe_b64decode(text.strip().encode())
    if len(raw) != 32:
        raise ConfigurationError("an encryption key is 32 random bytes in URL-safe base64")
    return raw


class DataCipher:
    """Encrypts with the current key; decrypts with any known key."""

    def __init__(self, current: bytes, older: tuple[bytes, ...] = ()) -> None:
        self.current_id = key_id(current)
        self._keys = {key_id(k): AESGCM(k) for k in (current, *older)}
        self._current = self._keys[self.current_id]

    def encrypt(self, data: bytes) -> bytes:
        """``IBE1`` + key id + nonce + ciphertext and tag."""
        nonce = os.urandom(12)
        return (
            BLOB_MAGIC
            + self.current_id.encode()
            + nonce
            + self._current.encrypt(nonce, data, BLOB_MAGIC)
        )

    def seal(self, data: bytes, *, segment_size: int = SEGMENT_SIZE) -> bytes:
        """``data`` in the streamable ``IBE2`` form under the current key (files)."""
        return b"".join(self.seal_chunks((data,), segment_size=segment_size))

    def seal_chunks(
        self, chunks: Iterable[bytes], *, segment_size: int = SEGMENT_SIZE
    ) -> Iterable[bytes]:
        """The ``IBE2`` form of the concatenated ``chunks``, produced piece by piece
        (the header, then one sealed segment at a time)."""
        sealer = self.sealer(segment_size=segment_size)
        yield sealer.header
        for chunk in chunks:
            sealed = sealer.push(chunk)
            if sealed:
                yield sealed
        yield sealer.finish()

    def sealer(self, *, segment_size: int = SEGMENT_SIZE) -> StreamSealer:
        """An incremental encryptor into the ``IBE2`` form under the current key."""
        return StreamSealer(self._current, self.current_id, segment_size)

    def reader(self) -> StreamReader:
        """An incremental decryptor for one stored object (either form, or plain)."""
        return StreamReader(self)

    def aead_for(self, kid: str) -> AESGCM:
        """The AES-GCM instance of a configured key; ConfigurationError otherwise."""
        aead = self._keys.get(kid)
        if aead is None:
            raise ConfigurationError(
                f"data was encrypted with key {kid}, which is not configured "
                "(IMAGEBOT_ENCRYPTION_KEY or IMAGEBOT_ENCRYPTION_OLD_KEYS)"
            )
        return aead

    def decrypt(self, blob: bytes) -> bytes:
        """Plain bytes pass through; ciphertext of either form is verified and decrypted."""
        if blob.startswith(STREAM_MAGIC):
            reader = self.reader()
            return b"".join([*reader.feed(blob), reader.finish()])
        if not blob.startswith(BLOB_MAGIC):
            return blob
        kid = blob[4:12].decode()
        aead = self.aead_for(kid)
        try:
            return aead.decrypt(blob[12:24], blob[24:], BLOB_MAGIC)
        except InvalidTag:
            raise ConfigurationError(f"stored data failed authentication (key {kid})") from None

    def encrypt_text(self, text: str) -> str:
        """Text form for database columns."""
        return TEXT_PREFIX + base64.b64encode(self.encrypt(text.encode())).decode()

    def decrypt_text(self, value: str) -> str:
        """Inverse of :meth:`encrypt_text`; plain text passes through."""
        if not value.startswith(TEXT_PREFIX):
            return value
        return self.decrypt(base64.b64decode(value[len(TEXT_PREFIX) :])).decode()

    def is_current(self, blob: bytes) -> bool:
        """True when a stored file (or its first bytes) is in the ``IBE2`` form under the
        current key: ``IBE1`` files are rewritten by a rotation even under the current key."""
        return blob.startswith(STREAM_MAGIC + self.current_id.encode())


def _seal_segment(
    aead: AESGCM, header: bytes, prefix: bytes, index: int, plain: bytes, *, last: bool
) -> bytes:
    counter = struct.pack(">I", index)
    return aead.encrypt(prefix + counter, plain, header + counter + (b"\x01" if last else b"\x00"))


class StreamSealer:
    """Plaintext pushed in pieces of any size comes out as the ``IBE2`` form: first
    :attr:`header`, then whole sealed segments from :meth:`push`, then the last segment
    from :meth:`finish`. Holds at most one segment of plaintext."""

    def __init__(self, aead: AESGCM, kid: str, segment_size: int = SEGMENT_SIZE) -> None:
        if not 0 < segment_size <= MAX_SEGMENT_SIZE:
            raise ValueError("segment size out of range")
        self.header = STREAM_MAGIC + kid.encode() + os.urandom(8) + struct.pack(">I", segment_size)
        self._aead = aead
        self._segment = segment_size
        self._pending = bytearray()
        self._index = 0
        self._done = False

    def push(self, data: bytes) -> bytes:
        """The segments completed by ``data`` (possibly none), sealed."""
        if self._done:
            raise ValueError("sealer already finished")
        self._pending += data
        out = []
        # Hold back at least one byte: a segment is sealed as last only at the end.
        while len(self._pending) > self._segment:
            part = bytes(self._pending[: self._segment])
            del self._pending[: self._segment]
            out.append(self._seal(part, last=False))
        return b"".join(out)

    def finish(self) -> bytes:
        """The last segment (possibly of no plaintext), sealed as the last."""
        if self._done:
            raise ValueError("sealer already finished")
        self._done = True
        part, self._pending = bytes(self._pending), bytearray()
        return self._seal(part, last=True)

    def _seal(self, part: bytes, *, last: bool) -> bytes:
        sealed = _seal_segment(
            self._aead, self.header, self.header[12:20], self._index, part, last=last
        )
        self._index += 1
        return sealed


class StreamReader:
    """Turns the stored bytes of one object, fed in chunks of any size, into plaintext
    chunks, holding at most one segment (plus the chunk being fed) at a time.

    ``IBE2`` is released segment by segment, each authenticated; ``IBE1`` (legacy, one
    AES-GCM message) is buffered whole and released at :meth:`finish`; plain bytes pass
    through. Any failure raises :class:`ConfigurationError` (never the plaintext of a
    failed segment).
    """

    def __init__(self, cipher: DataCipher | None) -> None:
        self.cipher = cipher
        self._buf = bytearray()
        self._mode: str | None = None  # "plain", "v1" or "v2", known after 4 bytes
        self._header = b""
        self._aead: AESGCM | None = None
        self._segment = 0
        self._index = 0
        self._done = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Plaintext now releasable after ``chunk`` (possibly none)."""
        if self._done:
            raise ConfigurationError("stored data continues after its end")
        if self._mode == "plain":
            return [chunk] if chunk else []
        self._buf += chunk
        if self._mode is None:
            if len(self._buf) < 4:
                return []
            magic = bytes(self._buf[:4])
            self._mode = "v2" if magic == STREAM_MAGIC else "v1" if magic == BLOB_MAGIC else "plain"
            if self._mode != "plain" and self.cipher is None:
                raise ConfigurationError("encrypted data needs IMAGEBOT_ENCRYPTION_KEY")
            if self._mode == "plain":
                passed, self._buf = bytes(self._buf), bytearray()
                return [passed]
        if self._mode == "v1":
            return []
        if self._aead is None:
            if len(self._buf) < HEADER_SIZE:
                return []
            self._open_header()
        out = []
        step = self._segment + TAG
        # Strictly more than one segment buffered: the one at the front is not the last.
        while len(self._buf) > step:
            out.append(self._open_segment(bytes(self._buf[:step]), last=False))
            del self._buf[:step]
        return out

    def finish(self) -> bytes:
        """The final plaintext; raises when the object ended early or was altered."""
        if self._done:
            return b""
        self._done = True
        if self._mode in (None, "plain"):
            out, self._buf = bytes(self._buf), bytearray()
            return out
        assert self.cipher is not None
        if self._mode == "v1":
            blob, self._buf = bytes(self._buf), bytearray()
            return self.cipher.decrypt(blob)
        if self._aead is None:
            raise ConfigurationError("stored data is truncated (incomplete header)")
        tail, self._buf = bytes(self._buf), bytearray()
        return self._open_segment(tail, last=True)

    def _open_header(self) -> None:
        assert self.cipher is not None
        header = bytes(self._buf[:HEADER_SIZE])
        (segment,) = struct.unpack(">I", header[20:24])
        if not 0 < segment <= MAX_SEGMENT_SIZE:
            raise ConfigurationError("stored data has an invalid header")
        self._aead = self.cipher.aead_for(header[4:12].decode("ascii", "replace"))
        self._header, self._segment = header, segment
        del self._buf[:HEADER_SIZE]

    def _open_segment(self, sealed: bytes, *, last: bool) -> bytes:
        assert self._aead is not None
        counter = struct.pack(">I", self._index)
        aad = self._header + counter + (b"\x01" if last else b"\x00")
        try:
            plain = self._aead.decrypt(self._header[12:20] + counter, sealed, aad)
        except (InvalidTag, ValueError):
            raise ConfigurationError(
                f"stored data failed authentication (key {self._header[4:12].decode()}, "
                f"segment {self._index})"
            ) from None
        self._index += 1
        return plain


async def open_stream(
    chunks: AsyncIterator[bytes], cipher: DataCipher | None
) -> AsyncGenerator[bytes, None]:
    """The plaintext of a stored object whose bytes arrive as ``chunks``, decrypted on
    the fly (see :class:`StreamReader`)."""
    reader = StreamReader(cipher)
    async for chunk in chunks:
        for plain in reader.feed(chunk):
            yield plain
    last = reader.finish()
    if last:
        yield last
