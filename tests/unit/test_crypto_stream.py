"""The streamable ``IBE2`` form (P18): round trips through the incremental reader with
chunks of any size, every kind of tampering refused (truncation, a dropped tail,
reordering, splicing between objects, an altered header, appended bytes), ``IBE1`` and
plain bytes still read, sizes known from the header, memory bounded while streaming."""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator

import pytest

from core.crypto import (
    BLOB_MAGIC,
    HEADER_SIZE,
    MAX_SEGMENT_SIZE,
    STREAM_MAGIC,
    TAG,
    DataCipher,
    is_sealed,
    open_stream,
    plain_size,
)
from core.errors import ConfigurationError

SEG = 1024  # small segments: many of them in a small test


def cipher() -> DataCipher:
    return DataCipher(os.urandom(32))


def read_all(c: DataCipher | None, blob: bytes, step: int) -> bytes:
    reader = c.reader() if c is not None else DataCipher(os.urandom(32)).reader()
    if c is None:
        reader.cipher = None
    out = []
    for i in range(0, len(blob), step):
        out.extend(reader.feed(blob[i : i + step]))
    out.append(reader.finish())
    return b"".join(out)


def segments(blob: bytes, seg: int = SEG) -> tuple[bytes, list[bytes]]:
    body = blob[HEADER_SIZE:]
    step = seg + TAG
    return blob[:HEADER_SIZE], [body[i : i + step] for i in range(0, len(body), step)]


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, 5 * SEG + 7])
@pytest.mark.parametrize("step", [1, 7, SEG + TAG, 4096, 10**6])
def test_round_trip_any_size_any_chunking(size: int, step: int) -> None:
    c = cipher()
    data = os.urandom(size)
    blob = c.seal(data, segment_size=SEG)
    assert blob.startswith(STREAM_MAGIC + c.current_id.encode()) and is_sealed(blob)
    assert data == read_all(c, blob, step) == c.decrypt(blob)
    assert plain_size(len(blob), blob[:HEADER_SIZE]) == size
    assert c.is_current(blob)


def test_seal_chunks_matches_one_piece_and_streams_a_header_first() -> None:
    c = cipher()
    data = os.urandom(10 * SEG + 3)
    pieces = list(
        c.seal_chunks((data[i : i + 333] for i in range(0, len(data), 333)), segment_size=SEG)
    )
    assert len(pieces[0]) == HEADER_SIZE
    assert all(len(p) == SEG + TAG for p in pieces[1:-1])
    assert c.decrypt(b"".join(pieces)) == data


def tampered(blob: bytes) -> dict[str, bytes]:
    header, segs = segments(blob)
    flipped_header = bytearray(header)
    flipped_header[-1] ^= 1  # the segment size
    return {
        "truncated mid-segment": blob[:-5],
        "dropped tail (segment boundary)": header + b"".join(segs[:-1]),
        "only the header": header,
        "half a header": header[:10],
        "reordered": header + segs[1] + segs[0] + b"".join(segs[2:]),
        "duplicated segment": header + segs[0] + b"".join(segs),
        "appended bytes": blob + b"x",
        "appended segment": blob + segs[1],
        "flipped bit": blob[: HEADER_SIZE + 3]
        + bytes([blob[HEADER_SIZE + 3] ^ 1])
        + blob[HEADER_SIZE + 4 :],
        "altered header": bytes(flipped_header) + b"".join(segs),
        "altered nonce prefix": header[:12] + os.urandom(8) + header[20:] + b"".join(segs),
        "last tag flipped": blob[:-1] + bytes([blob[-1] ^ 1]),
    }


@pytest.mark.parametrize(
    "case",
    list(tampered(DataCipher(os.urandom(32)).seal(os.urandom(4 * SEG + 5), segment_size=SEG))),
)
def test_every_tamper_is_refused(case: str) -> None:
    c = cipher()
    blob = c.seal(os.urandom(4 * SEG + 5), segment_size=SEG)
    bad = tampered(blob)[case]
    with pytest.raises(ConfigurationError):
        read_all(c, bad, 100)
    with pytest.raises(ConfigurationError):
        c.decrypt(bad)


def test_splicing_segments_between_objects_is_refused() -> None:
    c = cipher()
    one = c.seal(b"a" * (3 * SEG), segment_size=SEG)
    two = c.seal(b"b" * (3 * SEG), segment_size=SEG)
    h1, s1 = segments(one)
    _, s2 = segments(two)
    for spliced in (h1 + s1[0] + s2[1] + s1[2], h1 + s2[0] + s2[1] + s2[2]):
        with pytest.raises(ConfigurationError):
            c.decrypt(spliced)


def test_a_released_segment_was_authenticated_before_release() -> None:
    """Altering segment 2 releases segments 0 and 1 (authentic) and stops there."""
    c = cipher()
    data = os.urandom(4 * SEG)
    blob = bytearray(c.seal(data, segment_size=SEG))
    blob[HEADER_SIZE + 2 * (SEG + TAG) + 5] ^= 1
    reader = c.reader()
    released: list[bytes] = []
    with pytest.raises(ConfigurationError):
        for i in range(0, len(blob), 100):
            released.extend(reader.feed(bytes(blob[i : i + 100])))
        reader.finish()
    assert b"".join(released) == data[: 2 * SEG]


def test_a_hostile_segment_size_is_refused_before_buffering() -> None:
    c = cipher()
    blob = c.seal(b"x" * 10, segment_size=SEG)
    huge = blob[:20] + struct.pack(">I", MAX_SEGMENT_SIZE + 1) + blob[24:]
    with pytest.raises(ConfigurationError):
        c.reader().feed(huge)
    assert plain_size(len(huge), huge[:HEADER_SIZE]) is None
    with pytest.raises(ValueError):
        c.seal(b"x", segment_size=0)


def test_ibe1_and_plain_bytes_are_still_read() -> None:
    c = cipher()
    old = c.encrypt(b"an old image")
    assert old.startswith(BLOB_MAGIC) and is_sealed(old)
    assert not c.is_current(old)  # a rotation rewrites IBE1 files as IBE2
    assert read_all(c, old, 3) == b"an old image" == c.decrypt(old)
    assert plain_size(len(old), old[:HEADER_SIZE]) is None
    assert read_all(c, b"\x89PNG plain", 2) == b"\x89PNG plain"
    assert read_all(c, b"ab", 1) == b"ab"  # shorter than a magic
    assert plain_size(11, b"\x89PNG plain") == 11
    assert c.decrypt_text(c.encrypt_text("prompt")) == "prompt"


def test_wrong_key_and_no_key_are_refused() -> None:
    blob = cipher().seal(b"secret", segment_size=SEG)
    with pytest.raises(ConfigurationError, match="not configured"):
        read_all(cipher(), blob, 50)
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEY"):
        read_all(None, blob, 50)


def test_older_keys_still_read_ibe2() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    blob = DataCipher(old_key).seal(b"kept", segment_size=SEG)
    rotated = DataCipher(new_key, (old_key,))
    assert rotated.decrypt(blob) == b"kept" and not rotated.is_current(blob)


async def test_open_stream_holds_a_bounded_amount() -> None:
    """20 MB through the async reader in 256 KiB chunks: no plaintext chunk larger than
    a raw chunk, and the reader never buffers more than one segment plus one chunk."""
    c = cipher()
    size, raw_chunk = 20 * 1024 * 1024, 256 * 1024
    block = os.urandom(1024 * 1024)
    blob = b"".join(c.seal_chunks(block for _ in range(size // len(block))))
    largest_buffer = 0
    reader_seen: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(blob), raw_chunk):
            yield blob[i : i + raw_chunk]

    total = 0
    stream = open_stream(chunks(), c)
    async for plain in stream:
        assert len(plain) <= 64 * 1024
        assert plain == block[total % len(block) : total % len(block) + len(plain)]
        total += len(plain)
        frame = stream.ag_frame
        if frame is not None:
            reader = frame.f_locals["reader"]
            largest_buffer = max(largest_buffer, len(reader._buf))
            reader_seen.append(1)
    assert total == size
    assert reader_seen and largest_buffer <= raw_chunk + 64 * 1024 + TAG
