"""Acceptance 2: a run killed with SIGKILL and resumed ends bit-for-bit equal to an
uninterrupted run of the same seed (CPU, tiny supernet, real kill of a real process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_helpers import (
    one_thread,  # noqa: F401 (autouse fixture: one torch thread)
    read_metrics,
    step_records,
    tiny_cfg,
    tiny_space,
    tiny_supernet,
    tiny_task,
    weights,
    write_runner,
)

from nasplug.oneshot.checkpoint import latest_checkpoint
from nasplug.oneshot.train import train

CFG = dict(steps=9, checkpoint_every=3, eval_every=4, log_every=1)


def _run_in_process(run_dir: Path, resume: bool = False) -> None:
    # one thread (the one_thread fixture), like the subprocess: same kernels, same sums
    space = tiny_space()
    train(tiny_supernet(space), tiny_task(), tiny_cfg(**CFG), run_dir, space=space, resume=resume, progress=False)


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    runner = write_runner(tmp_path)
    spec = {"run_dir": str(killed), "cfg": CFG, "slow": 0.3}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(runner), json.dumps(spec)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (killed / "metrics.jsonl").exists() and max(step_records(killed), default=0) >= 5:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before it could be killed:\n{proc.stdout.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    last_logged = max(step_records(killed))
    assert not (killed / "model.safetensors").exists()
    ckpt = latest_checkpoint(killed / "checkpoint")
    assert ckpt is not None and ckpt.name == "step-00000003" and last_logged >= 5  # steps 4.. get redone

    _run_in_process(killed, resume=True)
    straight = tmp_path / "straight"
    _run_in_process(straight)

    a, b = weights(killed / "model.safetensors"), weights(straight / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    losses_a = {s: r["loss"] for s, r in step_records(killed).items()}
    losses_b = {s: r["loss"] for s, r in step_records(straight).items()}
    assert losses_a == losses_b
    events = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "resume" and e["step"] == 3 for e in events)


def _crash_at_call(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The n-th loss computation (from now on) raises, as a kill would stop the run there."""
    import nasplug.text.objectives as objectives

    real, calls = objectives.mlm_step, []

    def crashing(*args):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt("killed")
        return real(*args)

    monkeypatch.setattr(objectives, "mlm_step", crashing)


def _steps_logged(run_dir: Path) -> list[int]:
    return [r["step"] for r in read_metrics(run_dir) if "event" not in r]


def test_steps_logged_after_the_last_checkpoint_are_not_logged_twice(tmp_path: Path, monkeypatch) -> None:
    space = tiny_space()
    cfg = tiny_cfg(steps=8, checkpoint_every=4)
    _crash_at_call(monkeypatch, 7)  # steps 5 and 6 are logged after checkpoint 4, then the run dies in step 7
    with pytest.raises(KeyboardInterrupt):
        train(tiny_supernet(space), tiny_task(), cfg, tmp_path / "run", space=space, progress=False)
    assert _steps_logged(tmp_path / "run") == [1, 2, 3, 4, 5, 6]
    monkeypatch.undo()
    train(tiny_supernet(space), tiny_task(), cfg, tmp_path / "run", space=space, resume=True, progress=False)
    assert _steps_logged(tmp_path / "run") == list(range(1, 9))
    events = [
        (r["event"], r["step"]) for r in read_metrics(tmp_path / "run") if r.get("event") in ("start", "resume", "end")
    ]
    assert events == [("start", 0), ("resume", 4), ("end", 8)]
    train(tiny_supernet(space), tiny_task(), cfg, tmp_path / "straight", space=space, progress=False)
    straight = step_records(tmp_path / "straight")
    assert {s: r["loss"] for s, r in step_records(tmp_path / "run").items()} == {
        s: r["loss"] for s, r in straight.items()
    }


def test_a_resume_without_a_checkpoint_starts_a_fresh_log(tmp_path: Path, monkeypatch) -> None:
    space = tiny_space()
    cfg = tiny_cfg(steps=4, checkpoint_every=4)
    _crash_at_call(monkeypatch, 3)  # dies in step 3, before any checkpoint
    with pytest.raises(KeyboardInterrupt):
        train(tiny_supernet(space), tiny_task(), cfg, tmp_path, space=space, progress=False)
    assert _steps_logged(tmp_path) == [1, 2] and not (tmp_path / "checkpoint").exists()
    monkeypatch.undo()
    train(tiny_supernet(space), tiny_task(), cfg, tmp_path, space=space, resume=True, progress=False)
    assert _steps_logged(tmp_path) == [1, 2, 3, 4]
    assert [r["event"] for r in read_metrics(tmp_path) if r.get("event") in ("start", "resume", "end")] == [
        "start",
        "end",
    ]


def test_a_newest_checkpoint_without_its_weights_falls_back_to_the_one_before(tmp_path: Path, caplog) -> None:
    space = tiny_space()
    cfg = tiny_cfg(steps=4, checkpoint_every=2)
    train(tiny_supernet(space), tiny_task(), cfg, tmp_path / "run", space=space, progress=False)
    (tmp_path / "run" / "checkpoint" / "step-00000004" / "model.safetensors").unlink()
    (tmp_path / "run" / "model.safetensors").unlink()
    train(tiny_supernet(space), tiny_task(), cfg, tmp_path / "run", space=space, resume=True, progress=False)
    assert "step-00000004 is incomplete; resuming step 2 instead" in caplog.text
    assert [r["step"] for r in read_metrics(tmp_path / "run") if r.get("event") == "resume"] == [2]
    assert _steps_logged(tmp_path / "run") == [1, 2, 3, 4]
    train(tiny_supernet(space), tiny_task(), cfg, tmp_path / "straight", space=space, progress=False)
    a, b = weights(tmp_path / "run" / "model.safetensors"), weights(tmp_path / "straight" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in b)
