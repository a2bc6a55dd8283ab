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
