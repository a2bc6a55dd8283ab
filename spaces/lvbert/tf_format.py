"""Low-level pieces of the TensorFlow checkpoint format, written from the format's description.

Used only by :mod:`nasplug.spaces.lvbert.tf_checkpoint` (the public reader); nothing here
needs TensorFlow or protobuf:

* CRC-32C (Castagnoli) with TensorFlow's "masked" form, vectorised with numpy so that
  checking a 1 GB checkpoint costs seconds, not minutes;
* protobuf wire-format decoding (varints, length-delimited fields) for the two small
  messages a bundle index holds (``BundleHeaderProto``, ``BundleEntryProto``);
* the LevelDB-style SSTable that the ``.index`` file is: a 48-byte footer with two block
  handles and a magic number, an index block pointing at data blocks, and blocks of
  prefix-compressed keys with restart points, each followed by a 5-byte trailer
  (compression type + masked CRC-32C).

Every problem is reported as :class:`~nasplug.errors.NasplugError` whose single line starts
with the file's name, so a user knows which file is broken.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from nasplug.errors import NasplugError

# ------------------------------------------------------------------------------ CRC-32C
_POLY = 0x82F63B78  # Castagnoli polynomial, bit-reflected
_MASK_DELTA = 0xA282EAD8
_SMALL = 4096  # below this many bytes a plain Python loop beats numpy's per-call overhead


def _byte_table() -> np.ndarray:
    table = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (_POLY if c & 1 else 0)
        table[i] = c
    return table


_TABLE = _byte_table()
_TABLE_LIST: list[int] = _TABLE.tolist()


def _update(reg: int, data: bytes | memoryview) -> int:
    """Advance the raw CRC register over ``data`` (no pre/post inversion)."""
    table = _TABLE_LIST
    for byte in bytes(data):
        reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    return reg


# The register update is linear over GF(2), so "feed n zero bytes" is a 32x32 bit matrix. We
# keep a matrix as the images of the 32 unit vectors; it lets independent lanes be joined.
def _apply(op: tuple[int, ...], x: int) -> int:
    out, bit = 0, 0
    while x:
        if x & 1:
            out ^= op[bit]
        x >>= 1
        bit += 1
    return out


def _compose(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(_apply(a, col) for col in b)  # a after b


@lru_cache(maxsize=64)
def _zeros_op(n: int) -> tuple[int, ...]:
    """Matrix that advances the register over ``n`` zero bytes (binary powering)."""
    if n == 1:
        return tuple(_update(1 << j, b"\0") for j in range(32))
    half = _zeros_op(n // 2)
    op = _compose(half, half)
    return _compose(_zeros_op(1), op) if n % 2 else op


@lru_cache(maxsize=64)
def _zeros_tables(n: int) -> np.ndarray:
    """[4, 256] lookup tables applying :func:`_zeros_op` (n) to a uint32 array, byte by byte."""
    op = np.array(_zeros_op(n), np.uint64)
    values = np.arange(256, dtype=np.uint64)
    tables = np.zeros((4, 256), np.uint64)
    for k in range(4):
        for i in range(8):
            tables[k] ^= np.where((values >> np.uint64(i)) & np.uint64(1), op[8 * k + i], np.uint64(0))
    return tables.astype(np.uint32)


def _advance(regs: np.ndarray, n: int) -> np.ndarray:
    t = _zeros_tables(n)
    return t[0][regs & 0xFF] ^ t[1][(regs >> 8) & 0xFF] ^ t[2][(regs >> 16) & 0xFF] ^ t[3][regs >> 24]


def _google_crc32c() -> object | None:
    """``google_crc32c.value`` (C, the ``fast`` extra) when installed and compiled, else None."""
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c.value if getattr(google_crc32c, "implementation", "c") == "c" else None


#: The C CRC-32C when installed (well under a second for a base-size checkpoint); numpy otherwise.
_FAST = _google_crc32c()


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C of ``data``; called for every tensor and index block when checksums are checked:
    ``google-crc32c``'s C code when installed (``pip install 'nasplug[fast]'``), else
    :func:`crc32c_numpy` (the same value)."""
    if _FAST is not None:
        return int(_FAST(data if isinstance(data, bytes) else bytes(data)))  # type: ignore[operator]
    return crc32c_numpy(data)


def crc32c_numpy(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C of ``data`` in numpy.

    Large inputs are split into ``L`` equal lanes whose registers advance together (one numpy
    step per byte column, [L] uint32), then joined pairwise with the "advance over zeros"
    matrices; the few bytes left over go through the plain loop.
    """
    view = memoryview(data).cast("B")
    n = len(view)
    if n < _SMALL:
        return _update(0xFFFFFFFF, view) ^ 0xFFFFFFFF
    lanes = 1 << min(16, (n // 64).bit_length() - 1)
    width = n // lanes
    columns = np.frombuffer(view, np.uint8, count=lanes * width).reshape(lanes, width).T.copy()  # [width, L]
    regs = np.zeros(lanes, np.uint32)
    for column in columns:
        regs = _TABLE[(regs ^ column) & 0xFF] ^ (regs >> 8)
    regs[0] ^= np.uint32(_apply(_zeros_op(width), 0xFFFFFFFF))  # the initial register, seen by lane 0 only
    span = width
    while len(regs) > 1:  # join neighbours: reg(A+B) = advance(reg(A), len B) ^ reg(B)
        regs = _advance(regs[0::2], span) ^ regs[1::2]
        span *= 2
    return _update(int(regs[0]), view[lanes * width:]) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """The masked CRC-32C that TensorFlow stores (rotate right 15, add a constant)."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


# ------------------------------------------------------------------------------ protobuf
def read_varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; returns (value, next position)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise NasplugError(f"{where}: corrupt (a varint runs past its record)")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def iter_fields(buf: bytes, where: str) -> Iterator[tuple[int, int | bytes]]:
    """Yield ``(field number, value)`` of a serialised protobuf message.

    Varints come back as int, fixed32/fixed64 as int, length-delimited fields as bytes.
    """
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos, where)
        field, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(buf, pos, where)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        elif wire == 2:
            size, pos = read_varint(buf, pos, where)
            value, pos = bytes(buf[pos:pos + size]), pos + size
        else:
            raise NasplugError(f"{where}: corrupt (protobuf wire type {wire})")
        if pos > len(buf):
            raise NasplugError(f"{where}: corrupt (a protobuf field runs past its record)")
        yield field, value


# ------------------------------------------------------------------------------ SSTable
_FOOTER = 48  # two varint block handles padded to 40 bytes, then the 8-byte magic
_MAGIC = 0xDB4775248B80FB57
_TRAILER = 5  # compression type byte + masked CRC-32C of (contents + type)


def _handle(buf: bytes, pos: int, where: str) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos, where)
    size, pos = read_varint(buf, pos, where)
    return offset, size, pos


def _block(table: bytes, offset: int, size: int, where: str, verify: bool) -> bytes:
    """Contents of the block at ``offset`` (``size`` bytes, trailer excluded), checked."""
    if offset + size + _TRAILER > len(table):
        raise NasplugError(f"{where}: truncated or corrupt (a block at byte {offset} runs past the end)")
    contents = table[offset:offset + size]
    kind = table[offset + size]
    if kind == 1:
        raise NasplugError(
            f"{where}: the index is snappy-compressed, which this reader does not support; "
            "re-save the checkpoint with TensorFlow (its default writes uncompressed indexes)"
        )
    if kind != 0:
        raise NasplugError(f"{where}: corrupt (unknown block compression type {kind})")
    if verify:
        (stored,) = struct.unpack_from("<I", table, offset + size + 1)
        if masked_crc32c(table[offset:offset + size + 1]) != stored:
            raise NasplugError(f"{where}: corrupt (checksum mismatch in the block at byte {offset})")
    return contents


def _block_entries(block: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    """Key/value pairs of one block: keys share a prefix with the previous key."""
    if len(block) < 4:
        raise NasplugError(f"{where}: corrupt (a block is shorter than its restart count)")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts  # entries stop where the restart-offset array starts
    if end < 0:
        raise NasplugError(f"{where}: corrupt (bad restart count {restarts})")
    pos, key = 0, b""
    while pos < end:
        shared, pos = read_varint(block, pos, where)
        unshared, pos = read_varint(block, pos, where)
        size, pos = read_varint(block, pos, where)
        if shared > len(key) or pos + unshared + size > end:
            raise NasplugError(f"{where}: corrupt (a block entry runs past its block)")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + size]
        pos += size


def read_table(table: bytes, where: str, verify: bool = True) -> list[tuple[bytes, bytes]]:
    """All key/value pairs of an SSTable held in memory, in key order.

    Called once per checkpoint by the reader on the ``.index`` file's bytes; ``where`` names the
    file in error messages. Raises NasplugError when the bytes are not an SSTable.
    """
    if len(table) < _FOOTER or struct.unpack_from("<Q", table, len(table) - 8)[0] != _MAGIC:
        raise NasplugError(f"{where}: not a TensorFlow checkpoint index (no table footer)")
    footer = table[len(table) - _FOOTER:]
    _, _, pos = _handle(footer, 0, where)  # the metaindex block: empty in checkpoints, unused
    index_offset, index_size, _ = _handle(footer, pos, where)
    entries: list[tuple[bytes, bytes]] = []
    for _, value in _block_entries(_block(table, index_offset, index_size, where, verify), where):
        offset, size, _ = _handle(value, 0, where)
        entries.extend(_block_entries(_block(table, offset, size, where, verify), where))
    return entries
