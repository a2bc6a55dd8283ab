"""nasplug study: rows of searched, fixed and random archs, K seeds each, resumable per run.

Runs on the digits example at tiny size (any space and task: the study is generic)."""

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

from nasplug.errors import NasplugError
from nasplug.recipe import load_recipe
from nasplug.study import run_study

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "examples" / "digits" / "recipe.yaml"
HAND = '{"op0": "conv3", "op1": "conv3", "op2": "conv3", "width": 8}'
STUDY = {"seeds": [0, 1], "reference": "hand", "train": {"steps": 20, "checkpoint_every": 5},
         "rows": {"searched": {"search": {}}, "narrow": {"search": {"space": {"widths": [8]}, "budget": 8}},
                  "hand": {"arch": HAND}, "random": {"random": 2, "seed": 3}}}
TINY = ["supernet.steps=40", "supernet.eval_every=0", "supernet.checkpoint_every=20", "supernet.eval_archs=1",
        "search.budget=12", "search.batch_size=6", "search.strategy.population=6", "search.strategy.parents=2",
        "search.strategy.mutations=2", "search.strategy.crossovers=2", "evaluator.recalibrate=0",
        "retrain.eval_batches=2", "retrain.log_every=5", f"study={json.dumps(STUDY)}"]


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def figures(run: Path) -> dict:
    data = json.loads((run / "study" / "study.json").read_text())
    return {name: {k: v["per_seed"] for k, v in row["figures"].items() if not k.endswith("_per_s")}
            for name, row in data["rows"].items()}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("study") / "run"
    torch.set_num_threads(1)
    summary = run_study(load_recipe(RECIPE, TINY), run, progress=False)
    return run, summary


def test_every_row_gets_mean_std_and_a_test_against_the_reference(study) -> None:
    run, summary = study
    assert list(summary["rows"]) == ["searched", "narrow", "hand", "random"]
    for row in summary["rows"].values():
        acc = row["figures"]["heldout_acc"]
        assert len(acc["per_seed"]) == 2 and acc["mean"] is not None and acc["std"] is not None
        assert "test_acc" in row["figures"]
    assert len(summary["rows"]["random"]["archs"]) == 2 and len(summary["rows"]["random"]["arch_means"]) == 2
    assert set(summary["tests"]) == {"searched", "narrow", "random"}
    assert '"width":8' in summary["rows"]["narrow"]["archs"][0]  # searched in the sub-space only
    assert all((run / "study" / f).is_file() for f in ("study.md", "study.json", "study.png"))
    assert "p vs hand (Holm)" in (run / "study" / "study.md").read_text()
    models = sorted((run / "study" / "models").glob("*/*/seed-*"))
    assert len(models) == (1 + 1 + 1 + 2) * 2 and all((m / "result.json").is_file() for m in models)


def test_a_second_call_trains_nothing(study, monkeypatch) -> None:
    run, summary = study
    import nasplug.pipeline.standalone

    def no_training(*args, **kwargs):
        raise AssertionError("a finished (arch, seed) run was trained again")

    monkeypatch.setattr(nasplug.pipeline.standalone, "train", no_training)
    again = run_study(load_recipe(RECIPE, TINY), run, resume=True, progress=False)
    assert again["table"] == summary["table"]


def test_a_resume_may_not_change_how_the_models_train(study) -> None:
    """The learning rate a single run may lower after a divergence would, in a study, mix two
    trainings in one table: refused, naming the key, before anything is written."""
    run, _ = study
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    with pytest.raises(NasplugError, match=r"retrain\.lr"):
        run_study(load_recipe(RECIPE, [*TINY, "retrain.lr=0.5"]), run, resume=True, progress=False)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before


def test_sigkill_then_resume_redoes_no_finished_run(study, tmp_path) -> None:
    reference, _ = study
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "nasplug", "-q", "study", str(RECIPE), "--out", str(out),
           *[a for item in TINY for a in ("--set", item)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    models = out / "study" / "models"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and len(list(models.glob("*/*/seed-*/result.json"))) < 3:
        time.sleep(0.05)
    assert proc.poll() is None, "the study ended before it could be killed: " + proc.stderr.read().decode()[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in models.glob("*/*/seed-*/result.json")}
    assert len(finished) >= 3
    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == finished, "finished runs must not be trained again"
    assert figures(out) == figures(reference)


@pytest.mark.parametrize("study_text, match", [
    ('{"rows": {"a": {"arch": "x", "random": 2}}}', r"study.rows.a: .*exactly one of search, arch, random"),
    ('{"rows": {"a": {"random": 2}}, "reference": "b"}', r"study.reference: 'b' is not a row"),
    ('{"rows": {"a": {"arch": "not an arch"}}}', r"study.rows.a.arch: "),
    ('{"rows": {"a": {"random": 2}}, "train": {"stepz": 3}}', r"study.train.stepz: unknown key"),
    ('{"rows": {"a": {"search": {"budget": 0}}}}', r"study.rows.a.search.budget"),
    ('{"rows": {"a": {"random": 2}}, "metric": "acuracy"}', r"study.metric: 'acuracy' is not measured .*allowed: "),
])
def test_bad_study_settings_are_one_line(tmp_path, study_text, match) -> None:
    recipe = load_recipe(RECIPE, [*TINY, f"study={study_text}"])
    with pytest.raises(NasplugError, match=match):
        run_study(recipe, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists(), "nothing is written before the study's settings are checked"
