"""Shared by the official LV-BERT checkpoint tests (test_lvbert_official.py: the reader,
test_lvbert_official_convert.py: the conversion; test_lvbert_official_cli.py): the golden
fixture's folder, a minimal writer of TF1 checkpoints, synthetic LV-BERT variables and the
one-line error check.

The golden fixture (``../shared/fixtures/lvbert-official-tiny``, read-only) was written by the
official code: a checkpoint with every variable of a real pre-training checkpoint, the tensors
as TensorFlow reads them, and the official graph's outputs. Synthetic checkpoints for the other
cases come from :func:`write_checkpoint`, a minimal writer of the same format.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from nasplug.spaces.lvbert.tf_format import masked_crc32c

PREFIX = "model.ckpt-3"
DATA = PREFIX + ".data-00000-of-00001"


# ---------------------------------------------------------------------------- the golden fixture
def golden_path() -> Path:
    """The golden fixture's folder (what each test module's ``golden`` fixture returns); skips
    the test without it (fails under CI)."""
    root = os.environ.get("NASPLUG_SHARED_FIXTURES")
    base = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
    path = base / "lvbert-official-tiny"
    if not (path / "checkpoint" / (PREFIX + ".index")).is_file():
        message = f"golden fixture not found at {path}; set NASPLUG_SHARED_FIXTURES to the fixtures folder"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


# ---------------------------------------------------------------------------- a minimal writer
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, wire: int, value: int | bytes) -> bytes:
    tag = _varint(number << 3 | wire)
    if wire == 0:
        return tag + _varint(value)
    if wire == 5:
        return tag + struct.pack("<I", value)
    return tag + _varint(len(value)) + value


def _encode(value) -> tuple[int, tuple[int, ...], bytes, int]:
    """(TF dtype enum, shape, bytes, masked crc) of a test value; ("bfloat16", uint16 array) for bf16."""
    if isinstance(value, tuple):
        array = np.ascontiguousarray(value[1], "<u2")
        return 14, array.shape, array.tobytes(), masked_crc32c(array.tobytes())
    if value.dtype == object:  # strings: varint lengths, masked crc of the uint32 lengths, bytes
        items = [bytes(v) for v in value.ravel()]
        fixed = b"".join(struct.pack("<I", len(v)) for v in items)
        check = struct.pack("<I", masked_crc32c(fixed))
        raw = b"".join(_varint(len(v)) for v in items) + check + b"".join(items)
        return 7, value.shape, raw, masked_crc32c(fixed + check + b"".join(items))
    codes = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int64": 9, "bool": 10, "float16": 19}
    raw = np.ascontiguousarray(value).tobytes()
    return codes[value.dtype.name], value.shape, raw, masked_crc32c(raw)


def _block(pairs: list[tuple[bytes, bytes]], compression: int = 0) -> bytes:
    body = bytearray()
    restarts = []
    for key, value in pairs:  # a restart at every entry: no shared key prefixes
        restarts.append(len(body))
        body += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
    body += b"".join(struct.pack("<I", r) for r in restarts or [0]) + struct.pack("<I", len(restarts or [0]))
    return bytes(body) + bytes([compression]) + struct.pack("<I", masked_crc32c(bytes(body) + bytes([compression])))


def write_checkpoint(prefix: Path, tensors: dict, compression: int = 0) -> Path:
    """Write ``tensors`` in the tf.train.Saver format: one data shard, one index data block."""
    data = bytearray()
    header = _field(1, 0, 1) + _field(3, 2, _field(1, 0, 1))  # one shard, little-endian, version 1
    pairs = [(b"", header)]
    for name in sorted(tensors):
        code, shape, raw, crc = _encode(tensors[name])
        dims = b"".join(_field(2, 2, _field(1, 0, d)) for d in shape)
        entry = _field(1, 0, code) + _field(2, 2, dims) + _field(4, 0, len(data)) + _field(5, 0, len(raw))
        pairs.append((name.encode(), entry + _field(6, 5, crc)))
        data += raw
    block = _block(pairs, compression)
    meta = _block([])
    index = _block([(pairs[-1][0], _varint(0) + _varint(len(block) - 5))])
    handles = _varint(len(block)) + _varint(len(meta) - 5) + _varint(len(block) + len(meta)) + _varint(len(index) - 5)
    footer = handles.ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{prefix}.index").write_bytes(block + meta + index + footer)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    return prefix


def synthetic(layers: str, hidden: int, heads: int, layout: str = "lvbert", emb: int = 16, kernel: int = 9) -> dict:
    """Random tensors under the official variable names (discriminator only, no optimizer)."""
    rng = np.random.default_rng(0)
    t: dict[str, np.ndarray] = {}

    def rnd(*shape: int) -> np.ndarray:
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)

    def dense(scope: str, n_in: int, n_out: int) -> None:
        t[f"{scope}/kernel"], t[f"{scope}/bias"] = rnd(n_in, n_out), rnd(n_out)

    def norm(scope: str, n: int) -> None:
        t[f"{scope}/gamma"], t[f"{scope}/beta"] = 1 + rnd(n), rnd(n)

    e, h = "electra/embeddings", hidden
    for table, rows in (("word", 40), ("position", 32), ("token_type", 2)):
        t[f"{e}/{table}_embeddings"] = rnd(rows, emb)
    norm(f"{e}/LayerNorm", emb)
    if emb != h:
        dense("electra/embeddings_project", emb, h)
    for i, kind in enumerate(layers):
        sub = "" if layout == "electra" else ("first", "second")[i % 2] + "_submodule/"
        p = f"electra/encoder/layer_{i // 2}/{sub}"
        if kind == "A":
            for name in ("self/query", "self/key", "self/value", "output/dense"):
                dense(p + "attention/" + name, h, h)
            norm(p + "attention/output/LayerNorm", h)
        elif kind == "F":
            dense(p + "intermediate/dense", h, 4 * h)
            dense(p + "output/dense", 4 * h, h)
            norm(p + "output/LayerNorm", h)
        else:
            c = p + "dynamic_convolution_layer/"
            dense(c + "convolution/glu_l", h, h)
            dense(c + "convolution/glu_g", h, h)
            t[c + "convolution/conv_attn_key/depthwise_kernel"] = rnd(kernel, h, 1)
            t[c + "convolution/conv_attn_key/pointwise_kernel"] = rnd(1, h, h)
            t[c + "convolution/conv_attn_key/bias"] = rnd(h)
            dense(c + "convolution/conv_attn_kernel", h, heads * kernel)
            dense(c + "output/dense", h, h)
            norm(c + "output/LayerNorm", h)
    dense("discriminator_predictions/dense", h, h)
    dense("discriminator_predictions/dense_1", h, 1)
    t["global_step"] = np.array(7, np.int64)
    return t


def one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message
