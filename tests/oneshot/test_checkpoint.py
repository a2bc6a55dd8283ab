"""Checkpoints: weights-only state, tied weights, atomic commit, resume config checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_helpers import (
    one_thread,  # noqa: F401 (autouse fixture: one torch thread)
    tiny_cfg,
    tiny_space,
    tiny_supernet,
)

import nasplug.oneshot.checkpoint as ckpt
from nasplug.errors import NasplugError


def _pair(seed: int) -> torch.nn.ModuleDict:
    space = tiny_space()
    model = tiny_supernet(space, seed=seed)
    return torch.nn.ModuleDict({"model": model, "generator": model.generator(seed=seed + 1)})


def _state(step: int) -> dict:
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    return {"optimizer": opt.state_dict(), "scheduler": {}, "config": {}, "rng": ckpt.rng_state(),
            "data": {"epoch": 0, "index": step},
            "arch": {"L00": "attn"}, "arch_rng": [3, [step, 1, 2], None]}  # keys older versions wrote: still read


def test_round_trip_keeps_ties_and_state_loads_weights_only(tmp_path: Path) -> None:
    src, dst = _pair(0), _pair(1)
    path = ckpt.save_checkpoint(tmp_path, 5, src, _state(5))
    assert ckpt.latest_checkpoint(tmp_path) == path
    state = ckpt.load_checkpoint(path, dst)
    assert state["step"] == 5 and state["data"]["index"] == 5 and state["arch"] == {"L00": "attn"}
    torch.load(path / ckpt.STATE, weights_only=True)  # plain data only
    for (name, a), b in zip(src.state_dict().items(), dst.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    emb = dst["model"].embeddings.word_embeddings.weight
    assert dst["generator"].embeddings.word_embeddings.weight is emb and dst["model"].mlm_head.decoder.weight is emb


def test_a_crash_while_writing_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    module = _pair(0)
    ckpt.save_checkpoint(tmp_path, 2, module, _state(2))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "atomic_write", boom)  # dies after the weights, before the state
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, 4, module, _state(4))
    latest = ckpt.latest_checkpoint(tmp_path)
    assert latest.name == "step-00000002"
    assert ckpt.load_checkpoint(latest, _pair(1))["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step-00000002"]
    monkeypatch.undo()
    ckpt.save_checkpoint(tmp_path, 4, module, _state(4))  # the next save cleans up and commits
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step-00000002", "step-00000004"]
    again = ckpt.save_checkpoint(tmp_path, 4, module, _state(4))  # same step: a new folder, then commit
    assert ckpt.latest_checkpoint(tmp_path) == again and again.name.startswith("step-00000004-")
    assert len(list(tmp_path.iterdir())) == 3  # the index, the newest and the one before it


def test_no_checkpoint_and_incomplete_checkpoint(tmp_path: Path) -> None:
    assert ckpt.latest_checkpoint(tmp_path) is None
    ckpt.save_checkpoint(tmp_path, 1, _pair(0), _state(1))
    (tmp_path / "step-00000001" / ckpt.STATE).unlink()
    with pytest.raises(NasplugError, match="incomplete"):
        ckpt.latest_checkpoint(tmp_path)


def test_resume_config_check_names_the_field() -> None:
    saved = tiny_cfg().model_dump(mode="json")
    ckpt.check_resume_config(saved, tiny_cfg(eval_every=5, lr=1e-4, precision="bf16"))  # allowed changes
    with pytest.raises(NasplugError, match="seed: the checkpoint was trained with 0, this run has 3"):
        ckpt.check_resume_config(saved, tiny_cfg(seed=3))


def test_a_damaged_newest_checkpoint_resumes_from_the_one_before(tmp_path: Path, caplog) -> None:
    module = _pair(0)
    ckpt.save_checkpoint(tmp_path, 2, module, _state(2))
    ckpt.save_checkpoint(tmp_path, 4, module, _state(4))
    weights = tmp_path / "step-00000004" / ckpt.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    path, state = ckpt.resume_point(tmp_path, _pair(1))
    assert path.name == "step-00000002" and state["step"] == 2
    assert "cannot load weights" in caplog.text
    (tmp_path / "step-00000002" / ckpt.STATE).write_bytes(b"garbage")
    with pytest.raises(NasplugError, match="no checkpoint .* can be resumed .*delete the checkpoint folder"):
        ckpt.resume_point(tmp_path, _pair(1))


@pytest.mark.parametrize("content", [b"", b"[]", b"{garbage", b'{"step": 1, "dir": "../../etc"}', b"\xff\xfe"])
def test_a_damaged_index_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    ckpt.save_checkpoint(tmp_path, 1, _pair(0), _state(1))
    (tmp_path / ckpt.LATEST).write_bytes(content)
    with pytest.raises(NasplugError, match="latest.json (is unreadable|is not a checkpoint index|has a malformed)"):
        ckpt.resume_point(tmp_path, _pair(1))


def test_unhealthy_checkpoints_are_passed_over_and_kept_apart(tmp_path: Path) -> None:
    module = _pair(0)
    ckpt.save_checkpoint(tmp_path, 2, module, _state(2))
    for step in (4, 6, 8):
        ckpt.save_checkpoint(tmp_path, step, module, _state(step), healthy=False)
    assert ckpt.last_good(tmp_path)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step-00000002", "step-00000006",
                                                          "step-00000008"]
    path, state = ckpt.resume_point(tmp_path, _pair(1))
    assert state["step"] == 2
