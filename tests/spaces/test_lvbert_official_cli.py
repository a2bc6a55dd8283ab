"""``nasplug import-official``: converting the golden official checkpoint, and bad input as one
line with exit status 2 (a folder with missing files, a checkpoint that is not LV-BERT, a
truncated data file, a missing vocabulary)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_lvbert_official import DATA, PREFIX, golden, write_checkpoint  # noqa: F401 - golden is a fixture

from nasplug.cli import main

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [c for c in "abcdefghijklmnopqrstuvwxyz"] + [
    f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]


def vocab_file(folder: Path, size: int = 200) -> Path:
    """A BERT vocab.txt with ``size`` entries (the golden model has 200 token ids)."""
    words = VOCAB + [f"w{i}" for i in range(size - len(VOCAB))]
    path = folder / "vocab.txt"
    path.write_text("\n".join(words) + "\n")
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["-q", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasplug: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_import_official_writes_models_and_tokenizer(golden, tmp_path, capsys):  # noqa: F811
    ckpt = tmp_path / "ckpt"
    shutil.copytree(golden / "checkpoint", ckpt)
    vocab_file(ckpt)  # found beside the checkpoint
    code, out, err = cli(capsys, "import-official", str(ckpt / PREFIX), "--out", str(tmp_path / "out"),
                         "--layers", "[0,1,2,0,2,1,1,0]")
    assert code == 0, err
    assert "layers CAFCFAAC" in out
    for part in ("discriminator/config.json", "discriminator/model.safetensors", "generator/config.json",
                 "tokenizer/tokenizer.json", "conversion.json"):
        assert (tmp_path / "out" / part).is_file(), part
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tmp_path / "out" / "tokenizer"))
    assert len(tok) == 200 and tok.model_max_length == 64
    assert 1 in tok("ab", "cd")["token_type_ids"]
    assert json.loads((tmp_path / "out" / "conversion.json").read_text())["step"] == 3
    code, _, err = cli(capsys, "import-official", str(ckpt), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "already exists", "overwrite")


def test_imported_folders_load_without_nasplug_and_are_shareable(golden, tmp_path, capsys,  # noqa: F811
                                                                   python_without_nasplug):
    """Like an exported run's folder: auto_map and the model code, a card (base model named),
    a standard tokenizer; AutoModel* and AutoTokenizer load them where nasplug is not
    installed, with no prompt; files 0644 and folders 0755 under umask 022."""
    import os

    import torch
    from huggingface_hub import ModelCard
    from test_lvbert_export import load_elsewhere

    from nasplug.spaces.lvbert import LVBertForMaskedLM, LVBertForPreTraining

    ckpt = tmp_path / "ckpt"
    shutil.copytree(golden / "checkpoint", ckpt)
    vocab_file(ckpt)
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        code, _, err = cli(capsys, "import-official", str(ckpt / PREFIX), "--out", str(out),
                           "--base-model", "whyu/LV-BERT_models")
    finally:
        os.umask(old)
    assert code == 0, err
    ids = torch.tensor([[2, 7, 9, 11, 3, 0]])
    inputs = {"input_ids": ids, "attention_mask": (ids > 0).long()}
    for role, cls, auto in (("discriminator", LVBertForPreTraining, "AutoModelForPreTraining"),
                            ("generator", LVBertForMaskedLM, "AutoModelForMaskedLM")):
        folder = out / role
        card = ModelCard.load(folder / "README.md").data.to_dict()
        assert card["base_model"] == "whyu/LV-BERT_models" and card["license"] == "unknown"
        assert json.loads((folder / "config.json").read_text())["auto_map"]["AutoConfig"]
        with torch.no_grad():
            ours = cls.from_pretrained(folder).eval()(**inputs).logits
        assert torch.equal(load_elsewhere(python_without_nasplug, folder, auto, inputs), ours)
    assert {oct(p.stat().st_mode & 0o777) for p in out.rglob("*") if p.is_dir()} == {"0o755"}
    assert {oct(p.stat().st_mode & 0o777) for p in out.rglob("*") if p.is_file() and p.suffix != ".pt"} == {"0o644"}
    assert out.stat().st_mode & 0o777 == 0o755
    capsys.readouterr()
    code, _, err = cli(capsys, "import-official", str(ckpt / PREFIX), "--out", str(tmp_path / "o2"),
                       "--base-model", "not a repo")
    assert_one_line_error(code, err, "--base-model")


def test_a_folder_with_missing_files_is_one_line(golden, tmp_path, capsys):  # noqa: F811
    shutil.copy(golden / "checkpoint" / (PREFIX + ".index"), tmp_path)
    code, _, err = cli(capsys, "import-official", str(tmp_path), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, DATA, "missing")
    code, _, err = cli(capsys, "import-official", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "nowhere")
    code, _, err = cli(capsys, "import-official", str(tmp_path), "--out", str(tmp_path / "out"),
                       "--vocab", str(tmp_path / "no-vocab.txt"))
    assert_one_line_error(code, err, "--vocab", "no-vocab.txt")


def test_a_checkpoint_that_is_not_lvbert_is_one_line(tmp_path, capsys):
    prefix = write_checkpoint(tmp_path / "model.ckpt-1", {"dense/kernel": np.ones((3, 2), np.float32)})
    code, _, err = cli(capsys, "import-official", str(prefix), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "not an LV-BERT")
    assert not (tmp_path / "out" / "discriminator").exists()


def test_a_truncated_data_file_is_one_line(golden, tmp_path, capsys):  # noqa: F811
    for name in (PREFIX + ".index", DATA):
        shutil.copy(golden / "checkpoint" / name, tmp_path)
    data = tmp_path / DATA
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    code, _, err = cli(capsys, "import-official", str(tmp_path / PREFIX), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "truncated")
    assert not (tmp_path / "out" / "discriminator").exists()
