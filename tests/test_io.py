"""Atomic writes and append-only JSONL logs: torn tails are dropped, and repaired for the next append."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasplug.io import JsonlLineError, append_jsonl, read_jsonl


def test_a_torn_last_line_is_dropped_and_cut_on_repair(tmp_path: Path, caplog) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2}\n{"a":')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert path.read_bytes().endswith(b'{"a":'), "a plain read changes nothing"
    assert "torn last line" in caplog.text
    assert read_jsonl(path, repair=True) == [{"a": 1}, {"a": 2}]
    assert path.read_bytes() == b'{"a":1}\n{"a":2}\n'


def test_a_record_cut_just_before_its_newline_gets_it_back(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2}')  # the crash fell between the record and its "\n"
    assert read_jsonl(path, repair=True) == [{"a": 1}, {"a": 2}]
    assert path.read_bytes() == b'{"a":1}\n{"a":2}\n'
    append_jsonl(path, {"a": 3})
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_blank_lines_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a":1}\n\n{"a":2}\n\n\n')
    with pytest.raises(JsonlLineError) as info:
        read_jsonl(path)
    assert info.value.lineno == 2 and info.value.cause is None
    assert read_jsonl(path, blank_lines=True, repair=True) == [{"a": 1}, {"a": 2}]
    assert path.read_bytes() == b'{"a":1}\n\n{"a":2}\n', "blank lines after the last record are cut"
    path.write_bytes(b'{"a":1}\nnot json\n{"a":2}\n')
    with pytest.raises(JsonlLineError) as info:
        read_jsonl(path)
    assert info.value.lineno == 2 and isinstance(info.value.cause, ValueError)


def test_parse_checks_each_record_and_a_torn_one_that_fails_is_dropped(tmp_path: Path) -> None:
    def parse(record, index):
        if record["n"] != index:
            raise ValueError(f"n is {record['n']}, expected {index}")
        return record["n"]

    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"n":0}\n{"n":1}\n{"n":')
    assert read_jsonl(path, parse) == [0, 1]
    path.write_bytes(b'{"n":0}\n{"n":5}\n{"n":2}\n')
    with pytest.raises(JsonlLineError, match="n is 5, expected 1") as info:
        read_jsonl(path, parse)
    assert info.value.lineno == 2
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_full_disk_is_one_clear_error_that_is_still_an_oserror(tmp_path: Path, monkeypatch) -> None:
    import os

    import torch
    from safetensors import SafetensorError

    from nasplug.errors import NasplugError, WriteFailed
    from nasplug.io import atomic_write_json
    from nasplug.oneshot import checkpoint

    monkeypatch.setattr(os, "fsync", _disk_full)
    for write, path in ((lambda p: atomic_write_json(p, {"a": 1}), tmp_path / "a.json"),
                        (lambda p: append_jsonl(p, {"a": 1}), tmp_path / "log.jsonl")):
        with pytest.raises(WriteFailed) as err:
            write(path)
        assert isinstance(err.value, NasplugError) and isinstance(err.value, OSError)
        assert str(err.value).startswith(f"{path}: cannot write it (No space left on device)")
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"], "no temp file is left behind"
    monkeypatch.undo()

    def safetensors_full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: File too large (os error 27)")

    monkeypatch.setattr(checkpoint, "save_model", safetensors_full)
    with pytest.raises(WriteFailed, match="model.safetensors: cannot write it .*File too large"):
        checkpoint.save_weights(torch.nn.Linear(2, 2), tmp_path / "model.safetensors")
    assert not [p for p in tmp_path.iterdir() if "safetensors" in p.name], "no temp file is left behind"


@pytest.fixture
def umask():
    """Set the process umask for a test, restoring it afterwards."""
    import os

    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                        (0o002, 0o664, 0o775)])
def test_written_files_and_folders_get_the_umask_modes(tmp_path: Path, umask, mask, file_mode, dir_mode) -> None:
    """tempfile makes 0600 files and 0700 folders: what nasplug writes through it (atomic writes,
    weights, checkpoints, tokenizers) gets the modes open() and mkdir() would have given."""
    import torch

    from nasplug.io import atomic_write_text, make_temp_dir
    from nasplug.oneshot.checkpoint import save_checkpoint, save_weights
    from nasplug.text.tokenizer import save_tokenizer, train_tokenizer

    umask(mask)
    assert atomic_write_text(tmp_path / "a.json", "{}").stat().st_mode & 0o777 == file_mode
    assert make_temp_dir(tmp_path, prefix=".x.").stat().st_mode & 0o777 == dir_mode
    layer = torch.nn.Linear(2, 2)
    assert save_weights(layer, tmp_path / "w.safetensors").stat().st_mode & 0o777 == file_mode
    folder = save_checkpoint(tmp_path / "ckpt", 1, layer, {"optimizer": {}})
    assert folder.stat().st_mode & 0o777 == dir_mode
    assert all(p.stat().st_mode & 0o777 == file_mode for p in folder.iterdir())
    tok = train_tokenizer(["the cat sat on the mat", "a dog ran"] * 20, 60)
    saved = save_tokenizer(tok, tmp_path / "tok")
    assert saved.stat().st_mode & 0o777 == dir_mode
    assert all(p.stat().st_mode & 0o777 == file_mode for p in saved.iterdir())
