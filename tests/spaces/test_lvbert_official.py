"""Official LV-BERT TF1 checkpoints -> nasplug models, checked against the official graph.

The golden fixture (``../shared/fixtures/lvbert-official-tiny``, read-only) was written by the
official code: a checkpoint with every variable of a real pre-training checkpoint, the tensors
as TensorFlow reads them, and the official graph's outputs. Synthetic checkpoints for the other
cases come from :func:`write_checkpoint`, a minimal writer of the same format.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nasplug.errors import NasplugError
from nasplug.spaces.lvbert import (
    LVBertForMaskedLM,
    LVBertForPreTraining,
    arch_from_ints,
    arch_to_layers,
)
from nasplug.spaces.lvbert.official import import_official, load_official
from nasplug.spaces.lvbert.tf_checkpoint import (
    list_tf_checkpoint,
    read_tf_checkpoint,
    resolve_tf_checkpoint,
)
from nasplug.spaces.lvbert.tf_format import crc32c, masked_crc32c

TOL = 1e-5
PREFIX = "model.ckpt-3"
DATA = PREFIX + ".data-00000-of-00001"


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def golden() -> Path:
    root = os.environ.get("NASPLUG_SHARED_FIXTURES")
    base = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
    path = base / "lvbert-official-tiny"
    if not (path / "checkpoint" / (PREFIX + ".index")).is_file():
        message = f"golden fixture not found at {path}; set NASPLUG_SHARED_FIXTURES to the fixtures folder"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def outputs(golden: Path) -> dict[str, np.ndarray]:
    with np.load(golden / "official_outputs.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def models(golden: Path):
    return load_official(golden / "checkpoint")


@pytest.fixture(scope="module")
def models_official_padding(golden: Path):
    return load_official(golden / "checkpoint", conv_sees_padding=True)


def run(disc: LVBertForPreTraining, gen: LVBertForMaskedLM, outputs: dict, rows: list[int]) -> dict[str, np.ndarray]:
    """The five outputs the fixture holds, for the given rows."""
    ids, mask, segs = (torch.from_numpy(outputs[k][rows]).long() for k in ("input_ids", "input_mask", "segment_ids"))
    with torch.no_grad():
        return {
            "disc_embedding_output": disc.lvbert.embed(ids, segs).numpy(),
            "disc_sequence_output": disc.lvbert(ids, mask, segs).last_hidden_state.numpy(),
            "disc_logits": disc(ids, mask, segs).logits.numpy(),
            "gen_sequence_output": gen.lvbert(ids, mask, segs).last_hidden_state.numpy(),
            "gen_logits": gen(ids, mask, segs).logits.numpy(),
        }


def max_diffs(got: dict, outputs: dict, rows: list[int]) -> dict[str, float]:
    return {k: float(np.abs(v - outputs[k][rows]).max()) for k, v in got.items()}


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


# ---------------------------------------------------------------------------- (a) the reader
def test_reader_returns_every_tensor_tensorflow_reads(golden):
    got = read_tf_checkpoint(golden / "checkpoint")
    with np.load(golden / "checkpoint_tensors.npz") as npz:
        expected = {k.removesuffix(":0"): npz[k] for k in npz.files}
    assert len(expected) == 541 and set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        assert np.array_equal(got[name], value), name
    listed = list_tf_checkpoint(golden / "checkpoint")
    assert listed["global_step"] == ("int64", ()) and int(got["global_step"]) == 3
    assert listed["electra/embeddings/word_embeddings"] == ("float32", (200, 32))
    assert set(listed) == set(expected)


def test_every_spelling_of_the_checkpoint_resolves_to_the_prefix(golden, tmp_path):
    folder = golden / "checkpoint"
    for spelling in (folder, folder / PREFIX, folder / (PREFIX + ".index"), folder / DATA):
        assert resolve_tf_checkpoint(spelling) == folder / PREFIX
    shutil.copy(folder / (PREFIX + ".index"), tmp_path)  # no 'checkpoint' file: the only .index
    assert resolve_tf_checkpoint(tmp_path) == tmp_path / PREFIX
    # A downloaded folder whose 'checkpoint' file records the training machine's absolute path.
    (tmp_path / "checkpoint").write_text(f'model_checkpoint_path: "/train/run/{PREFIX}"\n')
    shutil.copy(folder / (PREFIX + ".index"), tmp_path / "model.ckpt-1.index")
    assert resolve_tf_checkpoint(tmp_path) == tmp_path / PREFIX


def test_crc32c_matches_the_reference_value_and_the_bitwise_definition():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value

    def bitwise(data: bytes) -> int:
        crc = 0xFFFFFFFF
        for byte in data:
            crc ^= byte
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF

    data = np.random.default_rng(1).integers(0, 256, 20_011, dtype=np.uint8).tobytes()  # the vectorised path
    assert crc32c(data) == bitwise(data)


def test_reader_handles_the_other_dtypes(tmp_path):
    tensors = {
        "f16": np.arange(6, dtype=np.float16).reshape(2, 3), "f64": np.array([1.5, -2.0]),
        "i32": np.array([[1, -2]], np.int32), "flag": np.array([True, False]), "byte": np.arange(3, dtype=np.uint8),
        "bf16": ("bfloat16", np.array([0x3F80, 0xC000], np.uint16)),  # 1.0, -2.0
        "words": np.array([b"ab", b"", b"xyz"], dtype=object),
    }
    prefix = write_checkpoint(tmp_path / "ckpt", tensors)
    got = read_tf_checkpoint(prefix)
    for name, value in tensors.items():
        if name == "bf16":
            assert got[name].dtype == np.float32 and got[name].tolist() == [1.0, -2.0]
        else:
            assert got[name].dtype == value.dtype and np.array_equal(got[name], value), name
    assert list_tf_checkpoint(prefix)["bf16"] == ("bfloat16", (2,))
    assert list(read_tf_checkpoint(prefix, names=["i32"])) == ["i32"]


# ---------------------------------------------------------------------------- (b) the official outputs
def test_converted_models_reproduce_the_official_graph_on_the_unpadded_row(models, outputs, golden):
    config = json.loads((golden / "config.json").read_text())
    disc, gen = models.discriminator.config, models.generator.config
    assert disc.layers == arch_to_layers(arch_from_ints(config["layers"]))
    assert (disc.vocab_size, disc.hidden_size, disc.num_attention_heads, disc.intermediate_size, disc.embedding_size,
            disc.max_position_embeddings, disc.type_vocab_size) == tuple(config[k] for k in (
                "vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "embedding_size",
                "max_position_embeddings", "type_vocab_size"))
    assert (gen.hidden_size, gen.num_attention_heads, gen.intermediate_size) == (
        config["generator_hidden_size"], config["generator_num_attention_heads"], config["generator_intermediate_size"])
    assert disc.generator_hidden_size == gen.hidden_size and gen.layers == disc.layers
    assert disc.nasplug_source["step"] == 3 and disc.nasplug_source["role"] == "discriminator"
    assert not models.discriminator.training and not models.generator.training
    diffs = max_diffs(run(models.discriminator, models.generator, outputs, [0]), outputs, [0])
    assert max(diffs.values()) < TOL, diffs


def test_padded_rows_match_with_the_official_padding_switch(models, models_official_padding, outputs):
    rows = [1, 2]
    padded = models_official_padding
    assert padded.discriminator.config.conv_sees_padding and not models.discriminator.config.conv_sees_padding
    diffs = max_diffs(run(padded.discriminator, padded.generator, outputs, rows), outputs, rows)
    assert max(diffs.values()) < TOL, diffs
    # nasplug's default masks padding out of the convolution window: real tokens then differ.
    masked = run(models.discriminator, models.generator, outputs, rows)["disc_sequence_output"]
    real = outputs["input_mask"][rows].astype(bool)
    assert np.abs(masked - outputs["disc_sequence_output"][rows])[real].max() > 1e-2


# ---------------------------------------------------------------------------- (c) Hugging Face folders
def test_written_folders_load_back_and_give_the_same_outputs(golden, outputs, tmp_path):
    report = import_official(golden / "checkpoint", tmp_path / "out", layers=[0, 1, 2, 0, 2, 1, 1, 0])
    disc = LVBertForPreTraining.from_pretrained(report["discriminator"]).eval()
    gen = LVBertForMaskedLM.from_pretrained(report["generator"]).eval()
    assert (tmp_path / "out" / "discriminator" / "model.safetensors").is_file()
    assert gen.mlm_head.decoder.weight is gen.lvbert.embeddings.word_embeddings.weight
    assert gen.config.nasplug_source["role"] == "generator" and gen.config.nasplug_source["step"] == 3
    assert json.loads((tmp_path / "out" / "conversion.json").read_text())["layers"] == "CAFCFAAC"
    diffs = max_diffs(run(disc, gen, outputs, [0]), outputs, [0])
    assert max(diffs.values()) < TOL, diffs
    with pytest.raises(NasplugError) as excinfo:
        import_official(golden / "checkpoint", tmp_path / "out")
    one_line_error(excinfo, "discriminator: already exists and is not empty")


# ---------------------------------------------------------------------------- synthetic layouts
def test_multi_head_convolution_follows_the_official_op_order(tmp_path):
    t = synthetic("CA", hidden=32, heads=2)  # 2 heads of 16 channels; hidden/64 would say 1
    models = load_official(write_checkpoint(tmp_path / "model.ckpt-7", t))
    assert models.discriminator.config.num_attention_heads == 2 and models.generator is None
    x = np.random.default_rng(2).standard_normal((2, 12, 32)).astype(np.float32)
    with torch.no_grad():
        got = models.discriminator.lvbert.layers[0](torch.from_numpy(x), None).numpy()
    # The official dynamic_convolution_layer, op for op, in numpy on the TF-layout tensors.
    p = "electra/encoder/layer_0/first_submodule/dynamic_convolution_layer/"
    c, (b, n, k, h) = p + "convolution/", (2, 2, 9, 32)
    gate = x @ t[c + "glu_g/kernel"] + t[c + "glu_g/bias"]
    value = (x @ t[c + "glu_l/kernel"] + t[c + "glu_l/bias"]) / (1 + np.exp(-gate))  # [B, T, H]
    padded = np.pad(value, ((0, 0), (4, 4), (0, 0)))
    depthwise = sum(padded[:, j:j + 12] * t[c + "conv_attn_key/depthwise_kernel"][j, :, 0] for j in range(k))
    span = depthwise @ t[c + "conv_attn_key/pointwise_kernel"][0] + t[c + "conv_attn_key/bias"]
    logits = (span @ t[c + "conv_attn_kernel/kernel"] + t[c + "conv_attn_kernel/bias"]).reshape(b * 12 * n, k, 1)
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    unfold = np.stack([padded[:, i:i + 12] for i in range(k)], -1).reshape(b * 12 * n, h // n, k)
    mixed = (unfold @ weights).reshape(b, 12, h) @ t[p + "output/dense/kernel"] + t[p + "output/dense/bias"] + x
    mean, var = mixed.mean(-1, keepdims=True), mixed.var(-1, keepdims=True)
    expected = (mixed - mean) / np.sqrt(var + 1e-12) * t[p + "output/LayerNorm/gamma"] + t[p + "output/LayerNorm/beta"]
    assert np.abs(got - expected).max() < TOL


def test_electra_checkpoints_convert_as_attention_feed_forward_pairs(tmp_path):
    t = synthetic("AFAF", hidden=64, heads=1, layout="electra")
    models = load_official(write_checkpoint(tmp_path / "model.ckpt-7", t), num_heads=4)
    disc = models.discriminator
    assert disc.config.layers == ["attn", "ffn", "attn", "ffn"] and disc.config.num_attention_heads == 4
    assert models.report["layout"] == "electra" and models.report["step"] == 7
    query = t["electra/encoder/layer_1/attention/self/query/kernel"]
    assert torch.equal(disc.lvbert.layers[2].query.weight, torch.from_numpy(query.T.copy()))
    intermediate = t["electra/encoder/layer_1/intermediate/dense/kernel"]
    assert torch.equal(disc.lvbert.layers[3].intermediate.weight, torch.from_numpy(intermediate.T.copy()))


# ---------------------------------------------------------------------------- (d) bad input
def test_folder_with_only_the_index_names_the_missing_data_shard(golden, tmp_path):
    shutil.copy(golden / "checkpoint" / (PREFIX + ".index"), tmp_path)
    with pytest.raises(NasplugError) as excinfo:
        read_tf_checkpoint(tmp_path)
    one_line_error(excinfo, DATA, ": missing (data shard of")
    with pytest.raises(NasplugError) as excinfo:
        load_official(tmp_path)
    one_line_error(excinfo, DATA, ": missing (data shard of")


def test_missing_paths_and_non_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(NasplugError) as excinfo:
        read_tf_checkpoint(tmp_path / "nowhere" / PREFIX)
    one_line_error(excinfo, "nowhere: no such folder")
    with pytest.raises(NasplugError) as excinfo:
        read_tf_checkpoint(tmp_path)  # an empty folder
    one_line_error(excinfo, f"{tmp_path}: no *.index files")
    (tmp_path / "junk.index").write_bytes(b"not an sstable at all" * 4)
    with pytest.raises(NasplugError) as excinfo:
        list_tf_checkpoint(tmp_path / "junk")
    one_line_error(excinfo, "junk.index: not a TensorFlow checkpoint index")


def test_a_checkpoint_that_is_not_lvbert_is_refused(tmp_path):
    prefix = write_checkpoint(tmp_path / "model.ckpt-1", {"dense/kernel": np.ones((3, 2), np.float32)})
    assert set(read_tf_checkpoint(prefix)) == {"dense/kernel"}  # a valid checkpoint ...
    with pytest.raises(NasplugError) as excinfo:
        load_official(prefix)  # ... but not LV-BERT
    one_line_error(excinfo, "model.ckpt-1.index: not an LV-BERT", "no electra/embeddings/word_embeddings")


def test_truncated_and_corrupt_data_files_are_named(golden, tmp_path):
    for name in (PREFIX + ".index", DATA):
        shutil.copy(golden / "checkpoint" / name, tmp_path)
    data = tmp_path / DATA
    original = data.read_bytes()
    data.write_bytes(original[: len(original) // 2])
    with pytest.raises(NasplugError) as excinfo:
        load_official(tmp_path / PREFIX)
    one_line_error(excinfo, str(data), ": truncated: variable")
    flipped = bytearray(original)
    flipped[len(original) // 3] ^= 0xFF
    data.write_bytes(bytes(flipped))
    with pytest.raises(NasplugError) as excinfo:
        read_tf_checkpoint(tmp_path)
    one_line_error(excinfo, str(data), ": corrupt: checksum mismatch for variable")
    assert len(read_tf_checkpoint(tmp_path, verify=False)) == 541


def test_a_snappy_compressed_index_is_reported(tmp_path):
    prefix = write_checkpoint(tmp_path / "ckpt", {"x": np.zeros(2, np.float32)}, compression=1)
    with pytest.raises(NasplugError) as excinfo:
        list_tf_checkpoint(prefix)
    one_line_error(excinfo, "ckpt.index: the index is snappy-compressed")


def test_unused_variables_layer_and_head_mismatches_are_errors(tmp_path):
    t = synthetic("CA", hidden=32, heads=2)
    t["electra/encoder/extra_scale"] = np.ones(3, np.float32)
    prefix = write_checkpoint(tmp_path / "model.ckpt-7", t)
    with pytest.raises(NasplugError) as excinfo:
        load_official(prefix)
    one_line_error(excinfo, "1 checkpoint variable(s) not used by the conversion", "electra/encoder/extra_scale")
    report = load_official(prefix, ignore=["electra/encoder/extra_*"]).report
    assert report["ignored"]["ignore='electra/encoder/extra_*'"] == 1
    with pytest.raises(NasplugError) as excinfo:
        load_official(prefix, layers="AC", ignore=["electra/encoder/extra_*"])
    one_line_error(excinfo, "layers: AC given", "holds CA")
    with pytest.raises(NasplugError) as excinfo:
        load_official(prefix, num_heads=3, ignore=["electra/encoder/extra_*"])
    one_line_error(excinfo, "conv_attn_kernel/kernel has 18 outputs", "num_heads=3")
    del t["electra/encoder/extra_scale"], t["discriminator_predictions/dense_1/bias"]
    with pytest.raises(NasplugError) as excinfo:
        load_official(write_checkpoint(tmp_path / "model.ckpt-8", t))
    one_line_error(excinfo, "discriminator_predictions/dense_1/bias is missing")
