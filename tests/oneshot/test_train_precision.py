"""The training loop given ``precision: auto`` directly (no pipeline): it resolves on the
training device, says so once, and a resumed run keeps what its checkpoint trained with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_cfg, tiny_space, tiny_supernet, tiny_task

import nasplug.hardware as hw
from nasplug.oneshot.train import _Run, train

pytestmark = pytest.mark.usefixtures("one_thread")


def start_precision(run_dir: Path) -> list[str]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["config"]["precision"] for r in records if r.get("event") == "start"]


def test_auto_resolves_once_and_a_resume_keeps_it(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(hw, "_cpu_flag", lambda name: name == "_is_amx_tile_supported")
    space = tiny_space()
    cfg = tiny_cfg(steps=4, checkpoint_every=2, precision="auto")
    real_step = _Run._train_step

    def crash_at_3(self, step):
        if step == 3:
            raise KeyboardInterrupt("killed")
        return real_step(self, step)

    monkeypatch.setattr(_Run, "_train_step", crash_at_3)
    with caplog.at_level("INFO", logger="nasplug.oneshot.train"), pytest.raises(KeyboardInterrupt):
        train(tiny_supernet(space), tiny_task(), cfg, tmp_path, space=space, progress=False)
    monkeypatch.setattr(_Run, "_train_step", real_step)
    assert start_precision(tmp_path) == ["bf16"]
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("precision:")] == [
        "precision: bf16 (auto: the CPU has AMX (bf16 tile matrix units))"]

    monkeypatch.setattr(hw, "_cpu_flag", lambda name: False)  # resumed where auto would be fp32
    calls = []
    real = torch.autocast

    def spy(*args, **kwargs):
        if "dtype" in kwargs:  # the train steps' autocast (held-out scoring turns it off for its head)
            calls.append(kwargs.get("enabled", True))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "autocast", spy)
    train(tiny_supernet(space), tiny_task(), cfg, tmp_path, space=space, resume=True, progress=False)
    assert calls and all(calls), "the resumed steps must run under bf16 autocast, as the run started"
    checkpoint = json.loads((tmp_path / "checkpoint" / "latest.json").read_text())
    assert checkpoint["step"] == 4
