"""Authenticated encryption at rest (P18): AES-256-GCM under the operator's key.

Each ciphertext names the key that made it (the first 8 hex digits of the key's SHA-256),
so older keys can still be read during a rotation and ``imagebot keys rotate`` can
re-encrypt everything under the current key. Values written before a key was configured
stay readable as they are.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ConfigurationError

BLOB_MAGIC = b"IBE1"
TEXT_PREFIX = "enc1:"


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

    def decrypt(self, blob: bytes) -> bytes:
        """Plain bytes pass through; ciphertext is verified and decrypted."""
        if not blob.startswith(BLOB_MAGIC):
            return blob
        kid = blob[4:12].decode()
        aead = self._keys.get(kid)
        if aead is None:
            raise ConfigurationError(
                f"data was encrypted with key {kid}, which is not configured "
                "(IMAGEBOT_ENCRYPTION_KEY or IMAGEBOT_ENCRYPTION_OLD_KEYS)"
            )
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
        """True when ``blob`` is encrypted under the current key."""
        return blob.startswith(BLOB_MAGIC + self.current_id.encode())
