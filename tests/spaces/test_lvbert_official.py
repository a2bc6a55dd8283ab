"""Official LV-BERT TF1 checkpoints, the reader: every tensor TensorFlow reads, every spelling
of a checkpoint path, CRC-32C, the other dtypes, and damaged or missing checkpoint files as
one-line errors.

The conversion into nasplug models is tested in test_lvbert_official_convert.py; the golden
fixture's folder and the checkpoint writer are in lvbert_official_kit.py
(test_lvbert_official_cli.py imports ``golden``, ``write_checkpoint``, ``PREFIX`` and ``DATA``
from here).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from lvbert_official_kit import DATA, PREFIX, golden_path, one_line_error, write_checkpoint

from nasplug.errors import NasplugError
from nasplug.spaces.lvbert.official import load_official
from nasplug.spaces.lvbert.tf_checkpoint import (
    list_tf_checkpoint,
    read_tf_checkpoint,
    resolve_tf_checkpoint,
)
from nasplug.spaces.lvbert.tf_format import crc32c


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def golden() -> Path:
    return golden_path()


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


# ---------------------------------------------------------------------------- (d) bad checkpoint files
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
