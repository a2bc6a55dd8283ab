"""`nasplug run` killed with SIGKILL in every stage in turn, resumed each time: no finished
stage is redone, and the outputs equal an uninterrupted run's."""

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
from safetensors.torch import load_file

RECIPE = Path(__file__).resolve().parents[1] / "data" / "tiny-pipeline.yaml"


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


# (stage being killed, condition that says we are inside it)
KILL_POINTS = [
    ("supernet", lambda d: lines(d / "supernet" / "metrics.jsonl") >= 8),
    ("search", lambda d: lines(d / "trials.jsonl") >= 4),
    ("retrain", lambda d: lines(d / "retrain" / "found" / "metrics.jsonl") >= 3),
    ("glue", lambda d: (d / "glue" / "found" / "RTE.json").is_file()),
]


def run(out: Path, env: dict, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "nasplug", "-q", "run", str(RECIPE), "--out", str(out)] + (
        ["--resume"] if resume else []
    )
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def markers(out: Path) -> dict[str, bytes]:
    return (
        {p.name: p.read_bytes() for p in sorted((out / "stages").glob("*.json"))} if (out / "stages").is_dir() else {}
    )


@pytest.mark.slow
def test_sigkill_in_every_stage_then_resume(tmp_path, shared_data):
    env = {**os.environ, "NASPLUG_DATA_DIR": str(shared_data), "NASPLUG_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    done = run(reference, env, resume=False)
    assert done.wait(timeout=600) == 0, done.stderr.read().decode()

    out = tmp_path / "killed"
    killed_in = []
    for i, (stage, inside) in enumerate(KILL_POINTS):
        before = markers(out)
        proc = run(out, env, resume=i > 0)
        deadline = time.monotonic() + 300
        while proc.poll() is None and not inside(out) and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_in.append(stage)
        proc.wait()
        after = markers(out)
        for name, content in before.items():  # finished stages are never redone (nor rewritten)
            assert after[name] == content, f"stage {name} was redone after resuming"
    assert len(killed_in) >= 3, f"the kills should land inside the stages, they landed in {killed_in}"

    final = run(out, env, resume=True)
    assert final.wait(timeout=600) == 0, final.stderr.read().decode()
    assert set(markers(out)) == {f"{s}.json" for s in ("supernet", "search", "retrain", "glue", "report")}
    # Resumed training, search and fine-tuning are exact: the same results as without kills.
    assert (out / "trials.jsonl").read_bytes() == (reference / "trials.jsonl").read_bytes()
    for name in ("found", "interleaved"):
        got = load_file(str(out / "retrain" / name / "model.safetensors"))
        want = load_file(str(reference / "retrain" / name / "model.safetensors"))
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want), name
        for task in ("RTE", "STS-B"):
            got = json.loads((out / "glue" / name / f"{task}.json").read_text())["median"]
            want = json.loads((reference / "glue" / name / f"{task}.json").read_text())["median"]
            assert got == want
    assert "GLUE dev" in (out / "report.md").read_text()
