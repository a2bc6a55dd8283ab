"""Read TensorFlow 1 checkpoints (``tf.train.Saver`` tensor bundles) without TensorFlow.

A checkpoint ``model.ckpt-N`` is a *prefix*: ``model.ckpt-N.index`` (an SSTable mapping each
variable name to a ``BundleEntryProto``: dtype, shape, data shard, offset, size, CRC-32C;
the empty key holds the ``BundleHeaderProto``: shard count and byte order) plus
``model.ckpt-N.data-0000i-of-0000n`` shards holding the raw tensor bytes at those offsets.

Public functions:

* :func:`resolve_tf_checkpoint` -- a prefix, an ``.index`` / ``.data`` file, or a folder
  (its ``checkpoint`` file, or its only ``*.index``) -> the prefix;
* :func:`list_tf_checkpoint` -- ``{name: (dtype, shape)}`` from the index alone;
* :func:`read_tf_checkpoint` -- ``{name: numpy array}``, every entry checked to lie inside its
  shard, CRC-32C checked by default.

Every problem a user can cause raises :class:`~nasplug.errors.NasplugError` with one line that
names the file and what is wrong. Partitioned variables and variant tensors (not present in
``tf.train.Saver`` checkpoints of BERT-like models) are rejected with such a line.
"""

from __future__ import annotations

import glob
import io
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasplug.errors import NasplugError
from nasplug.spaces.lvbert.tf_format import iter_fields, masked_crc32c, read_table, read_varint

# TensorFlow DataType enum (types.proto) -> (name, numpy dtype of the stored bytes).
_DTYPES: dict[int, tuple[str, str]] = {
    1: ("float32", "f4"), 2: ("float64", "f8"), 3: ("int32", "i4"), 4: ("uint8", "u1"),
    5: ("int16", "i2"), 6: ("int8", "i1"), 7: ("string", "O"), 8: ("complex64", "c8"),
    9: ("int64", "i8"), 10: ("bool", "?"), 14: ("bfloat16", "u2"), 17: ("uint16", "u2"),
    18: ("complex128", "c16"), 19: ("float16", "f2"), 22: ("uint32", "u4"), 23: ("uint64", "u8"),
}
_DTYPES_BY_NAME = dict(_DTYPES.values())


@dataclass(frozen=True)
class TFTensorEntry:
    """Where one variable's bytes lie (decoded ``BundleEntryProto``)."""

    name: str
    dtype: str  # one of the names of _DTYPES ("float32", "bfloat16", "string", ...)
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None


def resolve_tf_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Turn what a user passes into the checkpoint prefix (``.../model.ckpt-3``).

    Called first by every reader function. Accepts the prefix, its ``.index`` or a ``.data``
    shard, or a folder holding a TF ``checkpoint`` state file (its ``model_checkpoint_path``,
    looked up next to the file when the recorded absolute path is elsewhere, as after a
    download) or exactly one ``*.index``.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            match = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', state.read_text(errors="replace"), re.M)
            if not match:
                raise NasplugError(f"{state}: no model_checkpoint_path line; pass the checkpoint prefix instead")
            recorded = Path(match.group(1))
            prefix = recorded if recorded.is_absolute() else path / recorded
            if not _index(prefix).is_file():
                prefix = path / recorded.name
            if not _index(prefix).is_file():
                raise NasplugError(f"{_index(prefix)}: missing (named by {state})")
            return prefix
        indexes = sorted(path.glob("*.index"))
        if len(indexes) != 1:
            found = "no" if not indexes else f"{len(indexes)}"
            raise NasplugError(
                f"{path}: {found} *.index files and no 'checkpoint' file; pass the checkpoint prefix "
                "(e.g. .../model.ckpt-1000000)"
            )
        return indexes[0].with_suffix("")
    if path.suffix == ".index":
        path = path.with_suffix("")
    elif re.fullmatch(r"\.data-\d{5}-of-\d{5}", path.suffix):
        path = path.with_suffix("")
    if not _index(path).is_file():
        if not path.parent.is_dir():
            raise NasplugError(f"{path.parent}: no such folder")
        if not any(path.parent.glob(glob.escape(path.name) + ".*")):
            raise NasplugError(f"{path}: no such checkpoint (neither a folder nor a prefix with a .index file)")
        raise NasplugError(f"{_index(path)}: missing (the index file of checkpoint {path.name})")
    return path


def list_tf_checkpoint(path: str | os.PathLike[str]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{variable name: (dtype name, shape)}`` read from the ``.index`` alone.

    Called to inspect a checkpoint cheaply (no tensor data is read, data shards need not exist).
    """
    _, entries, _, _ = _read_index(resolve_tf_checkpoint(path), verify=True)
    return {e.name: (e.dtype, e.shape) for e in entries}


def read_tf_checkpoint(
    path: str | os.PathLike[str], names: list[str] | None = None, verify: bool = True
) -> dict[str, np.ndarray]:
    """Every variable (or only ``names``) of a TF1 checkpoint as numpy arrays.

    Called by the LV-BERT importer (:mod:`nasplug.spaces.lvbert.official`) and usable on any
    ``tf.train.Saver`` checkpoint. Arrays have the stored dtype and shape, except ``bfloat16``
    (no numpy dtype) which comes back as float32 (exact) and ``string`` which comes back as an
    object array of ``bytes``.

    Args:
        path: Checkpoint prefix, its ``.index`` / ``.data`` file, or its folder.
        names: Read only these variables (all when None); an unknown name is an error.
        verify: Check each tensor's CRC-32C (about 5 s per GB).
    """
    prefix = resolve_tf_checkpoint(path)
    index, entries, num_shards, big_endian = _read_index(prefix, verify)
    by_name = {e.name: e for e in entries}
    if names is not None:
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise NasplugError(f"{index}: no variable {unknown[0]!r} in this checkpoint")
        entries = [by_name[n] for n in names]
    shards = _shard_files(prefix, num_shards, max((e.shard for e in entries), default=-1) + 1, index)
    out: dict[str, np.ndarray] = {}
    handles: dict[int, io.BufferedReader] = {}
    try:
        for entry in entries:
            shard = shards[entry.shard]
            if entry.shard not in handles:
                handles[entry.shard] = open(shard, "rb")  # closed in the finally below
            out[entry.name] = _read_tensor(handles[entry.shard], shard, entry, big_endian, verify)
    finally:
        for handle in handles.values():
            handle.close()
    return out


# ------------------------------------------------------------------------------ internals
def _index(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")


def _read_index(prefix: Path, verify: bool) -> tuple[Path, list[TFTensorEntry], int, bool]:
    """Parse the ``.index``: its path, entries in key order, shard count, big-endian data?"""
    index = _index(prefix)
    try:
        table = index.read_bytes()
    except OSError as exc:
        raise NasplugError(f"{index}: cannot read ({exc.strerror})") from None
    where = str(index)
    pairs = read_table(table, where, verify)
    if not pairs or pairs[0][0] != b"":
        raise NasplugError(f"{where}: not a TensorFlow checkpoint index (no bundle header entry)")
    header = dict(iter_fields(pairs[0][1], where))
    num_shards, big_endian = int(header.get(1, 0)) or 1, header.get(2, 0) == 1
    entries = []
    for key, value in pairs[1:]:
        if key.startswith(b"\0"):
            continue  # a slice of a partitioned variable: reported at the variable's own entry
        entries.append(_entry(key.decode("utf-8", "replace"), value, where, num_shards))
    return index, entries, num_shards, big_endian


def _entry(name: str, value: bytes, where: str, num_shards: int) -> TFTensorEntry:
    """Decode one ``BundleEntryProto``: dtype = 1, shape = 2, shard_id = 3, offset = 4, size = 5,
    crc32c = 6 (fixed32), slices = 7 (partitioned variables)."""
    where = f"{where} ({name})"
    fields: dict[int, int | bytes] = {}
    shape: list[int] = []
    for field, item in iter_fields(value, where):
        if field == 2:  # TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}; bool unknown_rank = 3
            for sub, dim in iter_fields(_message(item, where), where):
                if sub == 2:
                    shape.append(_number(dict(iter_fields(_message(dim, where), where)).get(1, 0), where))
                elif sub == 3 and dim:
                    raise NasplugError(f"{where}: the variable has an unknown rank")
        else:
            fields[field] = item
    if 7 in fields:
        raise NasplugError(f"{where}: the variable is partitioned, which this reader does not support")
    code = _number(fields.get(1, 0), where)
    if code not in _DTYPES:
        raise NasplugError(f"{where}: unsupported TF dtype enum {code}")
    shard = _number(fields.get(3, 0), where)
    if not 0 <= shard < num_shards:
        raise NasplugError(f"{where}: names data shard {shard} of {num_shards}")
    crc = fields.get(6)
    return TFTensorEntry(name, _DTYPES[code][0], tuple(shape), shard, _number(fields.get(4, 0), where),
                         _number(fields.get(5, 0), where), None if crc is None else _number(crc, where))


def _number(value: int | bytes, where: str) -> int:
    if not isinstance(value, int):
        raise NasplugError(f"{where}: corrupt (a numeric protobuf field holds bytes)")
    return value


def _message(value: int | bytes, where: str) -> bytes:
    if not isinstance(value, bytes):
        raise NasplugError(f"{where}: corrupt (a protobuf message field holds a number)")
    return value


def _shard_files(prefix: Path, num_shards: int, used: int, index: Path) -> list[Path]:
    """Paths of the header's ``num_shards`` data shards; the first ``used`` must exist."""
    shards = [prefix.with_name(f"{prefix.name}.data-{i:05d}-of-{num_shards:05d}") for i in range(num_shards)]
    for shard in shards[:used]:
        if not shard.is_file():
            raise NasplugError(f"{shard}: missing (data shard of {index.name})")
    return shards


def _read_tensor(
    handle: io.BufferedReader, shard: Path, entry: TFTensorEntry, big_endian: bool, verify: bool
) -> np.ndarray:
    numel = int(np.prod(entry.shape, dtype=np.int64))
    end = entry.offset + entry.size
    file_size = os.fstat(handle.fileno()).st_size
    if end > file_size:
        raise NasplugError(
            f"{shard}: truncated: variable {entry.name!r} needs bytes {entry.offset}..{end} "
            f"but the file has {file_size}"
        )
    handle.seek(entry.offset)
    raw = bytearray(entry.size)
    handle.readinto(raw)
    if entry.dtype == "string":
        return _strings(raw, numel, entry, shard, verify and not big_endian).reshape(entry.shape)
    if verify and entry.crc32c is not None and masked_crc32c(raw) != entry.crc32c:
        raise NasplugError(f"{shard}: corrupt: checksum mismatch for variable {entry.name!r}")
    dtype = np.dtype(_DTYPES_BY_NAME[entry.dtype]).newbyteorder(">" if big_endian else "<")
    if entry.size != numel * dtype.itemsize:
        raise NasplugError(
            f"{shard}: corrupt: variable {entry.name!r} has {entry.size} bytes, "
            f"expected {numel * dtype.itemsize} for {entry.dtype}{list(entry.shape)}"
        )
    array = np.frombuffer(raw, dtype).reshape(entry.shape)
    if entry.dtype == "bfloat16":  # the high half of a float32: widen exactly
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _strings(raw: bytearray, numel: int, entry: TFTensorEntry, shard: Path, verify: bool) -> np.ndarray:
    """String tensor layout: numel varint64 lengths, a 4-byte masked checksum of the lengths,
    then the bytes. TF's entry checksum covers the lengths as fixed-width integers (uint32, or
    uint64 past 4 GiB), that checksum, and the bytes."""
    where = f"{shard} ({entry.name})"
    lengths, pos = [], 0
    for _ in range(numel):
        length, pos = read_varint(raw, pos, where)
        lengths.append(length)
    length_checksum = bytes(raw[pos:pos + 4])
    pos += 4
    out = np.empty(numel, dtype=object)
    for i, length in enumerate(lengths):
        if pos + length > len(raw):
            raise NasplugError(f"{where}: corrupt (string bytes run past the entry)")
        out[i] = bytes(raw[pos:pos + length])
        pos += length
    if verify and entry.crc32c is not None:
        fixed = b"".join(struct.pack("<I" if n <= 0xFFFFFFFF else "<Q", n) for n in lengths)
        if masked_crc32c(fixed + length_checksum + b"".join(out)) != entry.crc32c:
            raise NasplugError(f"{shard}: corrupt: checksum mismatch for variable {entry.name!r}")
    return out
