"""Acceptance 3: a 2-process gloo run (torchrun) gives the same losses as a 1-process run
with the same global batch. Dropout is 0: dropout masks are drawn per rank, so they (and only
they) differ between the two layouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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

from nasplug.oneshot.train import train

CFG = dict(steps=4, batch_size=8, grad_accum=1, eval_every=2, log_every=1)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    runner = write_runner(tmp_path)
    two = tmp_path / "two"
    spec = {"run_dir": str(two), "cfg": CFG, "dropout": 0.0}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(runner),
         json.dumps(spec)], env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    one = tmp_path / "one"
    space = tiny_space()
    train(tiny_supernet(space, dropout=0.0), tiny_task(), tiny_cfg(**CFG), one, space=space, progress=False)

    rec1, rec2 = step_records(one), step_records(two)
    assert sorted(rec1) == sorted(rec2) == [1, 2, 3, 4]
    assert len([r for r in read_metrics(two) if "event" not in r]) == 4  # only rank 0 writes
    for step in rec1:
        assert rec2[step]["arch"] == rec1[step]["arch"]
        assert rec2[step]["loss"] == pytest.approx(rec1[step]["loss"], rel=1e-5)
        assert rec2[step]["mlm_acc"] == rec1[step]["mlm_acc"]
        assert rec2[step]["grad_norm"] == pytest.approx(rec1[step]["grad_norm"], rel=1e-4)
    start2 = next(r for r in read_metrics(two) if r.get("event") == "start")
    assert start2["world"] == 2
    evals = [[r for r in read_metrics(d) if r.get("event") == "eval"] for d in (one, two)]
    for e1, e2 in zip(*evals, strict=True):
        assert e2["heldout_mlm_loss"] == pytest.approx(e1["heldout_mlm_loss"], rel=1e-5)
    w1, w2 = weights(one / "model.safetensors"), weights(two / "model.safetensors")
    for key in w1:
        torch.testing.assert_close(w2[key], w1[key], rtol=1e-4, atol=1e-5)


def test_init_outside_torchrun_is_a_world_of_one(monkeypatch) -> None:
    from nasplug import distributed
    from nasplug.errors import NasplugError

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init() == distributed.init() == distributed.DistInfo(0, 1, 0)
    assert distributed.is_main() and not distributed.is_distributed()
    grad = torch.ones(3)
    param = torch.nn.Parameter(torch.zeros(3))
    param.grad = grad.clone()
    distributed.sum_gradients([param])  # no-op
    assert torch.equal(param.grad, grad)
    assert distributed.sum_dict({"a": torch.tensor(2.0)}) == {"a": 2.0}
    assert distributed.device_for("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(NasplugError, match="device: 'cuda'"):
            distributed.device_for("cuda")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(NasplugError, match="WORLD_SIZE"):
        distributed.init()


def test_a_normal_end_meets_every_rank_before_leaving_and_a_failure_does_not(monkeypatch) -> None:
    """gloo can abort a rank whose peer tears its connections down while they still talk, so a
    run that ended well waits for every rank before leaving; one that failed must not wait."""
    import torch.distributed as dist

    from nasplug import distributed

    calls: list[str] = []
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append("destroy"))
    distributed.destroy(wait_for_all=True)
    assert calls == ["barrier", "destroy"]
    calls.clear()
    distributed.destroy()
    assert calls == ["destroy"]


@pytest.mark.slow
def test_a_failure_of_rank_0_alone_stops_every_rank(tmp_path: Path) -> None:
    """Resuming with a damaged metrics.jsonl: rank 0 reads the log and fails; rank 1 must fail
    with it instead of waiting in the next collective until the 30-minute timeout."""
    runner = write_runner(tmp_path)
    run_dir = tmp_path / "run"
    cfg = {**CFG, "checkpoint_every": 2}
    space = tiny_space()
    train(tiny_supernet(space), tiny_task(), tiny_cfg(**cfg), run_dir, space=space, progress=False)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    spec = {"run_dir": str(run_dir), "cfg": cfg, "resume": True}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(runner),
         json.dumps(spec)], env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    errors = [(run_dir / f"error-rank{r}.txt").read_text() for r in (0, 1)]
    assert all("metrics.jsonl:2: not a metrics record" in e for e in errors), errors
    assert errors[1].endswith("(on rank 0)"), errors
