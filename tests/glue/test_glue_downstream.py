"""A study's GLUE figures come from the GLUE stage's own task loop (nasplug.glue.runner).

On the same weights and settings they equal what the GLUE stage wrote; a finished task is
read back, never fine-tuned again; and a study keeps a failed task's result (its models must
all be fine-tuned alike) where the stage, named again, fine-tunes it again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nasplug.errors import NasplugError

REPO = Path(__file__).resolve().parents[2]
TINY_PIPELINE = REPO / "tests" / "data" / "tiny-pipeline.yaml"

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """Every stage of the tiny pipeline (GLUE: RTE and STS-B on the shared data's GLUE folder)."""
    from nasplug.pipeline import run_recipe
    from nasplug.recipe import load_recipe

    root = tmp_path_factory.mktemp("glue_downstream")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASPLUG_DATA_DIR", str(shared_data))
        mp.setenv("NASPLUG_CACHE", str(root / "cache"))
        run_recipe(load_recipe(TINY_PIPELINE), root / "run", progress=False)
    return root / "run"


@pytest.fixture
def run(tiny_run: Path, tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the finished run (each test writes GLUE results into it)."""
    monkeypatch.setenv("NASPLUG_DATA_DIR", str(shared_data))
    monkeypatch.setenv("NASPLUG_CACHE", str(tiny_run.parent / "cache"))
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    return copy


def downstream(run: Path) -> tuple[dict[str, float], Path]:
    """The GLUE stage's downstream figures of the run's retrained ``found`` model."""
    from nasplug.glue.stage import GlueStage
    from nasplug.pipeline.context import RunContext
    from nasplug.pipeline.identity import stored_recipe
    from nasplug.pipeline.retrained import retrain_archs

    ctx = RunContext(recipe=stored_recipe(run), run_dir=run, progress=False)
    folder = run / "retrain" / "found"
    return GlueStage().downstream(ctx, retrain_archs(ctx)["found"], folder, 0) or {}, folder / "glue"


def forbid_finetuning(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a finished task was fine-tuned again")

    monkeypatch.setattr("nasplug.glue.finetune", refuse)


def test_the_study_figures_equal_the_stage_results_on_the_same_weights(run: Path) -> None:
    scores, folder = downstream(run)
    stage = {task: json.loads((run / "glue" / "found" / f"{task}.json").read_text()) for task in ("RTE", "STS-B")}
    assert scores["glue_RTE"] == stage["RTE"]["median"]["accuracy"]
    assert scores["glue_STS-B"] == stage["STS-B"]["median"]["spearman"]
    assert scores["glue_avg"] == pytest.approx((scores["glue_RTE"] + scores["glue_STS-B"]) / 2)
    assert sorted(p.name for p in folder.glob("*.json")) == ["RTE.json", "STS-B.json"]


def test_finished_tasks_are_read_back_and_a_failed_one_is_kept(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, folder = downstream(run)
    failed = {"task": "RTE", "status": "failed", "error": "diverged: loss is nan", "median": {}}
    (folder / "RTE.json").write_text(json.dumps(failed))
    forbid_finetuning(monkeypatch)
    again, _ = downstream(run)
    assert again == {"glue_STS-B": first["glue_STS-B"]}  # no average of some of the tasks
    assert json.loads((folder / "RTE.json").read_text()) == failed


def test_the_stage_fine_tunes_a_failed_task_again(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nasplug.glue.stage import run_glue
    from nasplug.pipeline.context import RunContext
    from nasplug.pipeline.identity import stored_recipe

    rte, sts = run / "glue" / "found" / "RTE.json", run / "glue" / "found" / "STS-B.json"
    finished = sts.read_bytes()
    rte.write_text(json.dumps({"task": "RTE", "status": "failed", "error": "diverged: loss is nan"}))
    monkeypatch.setenv("NASPLUG_DATA_DIR", str(run.parent))  # a data folder without GLUE: tried again, "missing"
    summary = run_glue(RunContext(recipe=stored_recipe(run), run_dir=run, progress=False))
    assert json.loads(rte.read_text())["status"] == "missing"  # a kept result would still say "failed"
    assert sts.read_bytes() == finished  # a finished task is read back, not tried again
    assert set(summary) == {"found", "interleaved"}


def test_without_the_glue_folder_a_study_gets_no_glue_figures(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASPLUG_DATA_DIR", str(run.parent))
    scores, folder = downstream(run)
    assert scores == {} and not folder.exists()


def test_a_bad_glue_section_is_one_line() -> None:
    from nasplug.glue.runner import glue_plan

    with pytest.raises(NasplugError, match=r"glue\.epochs"):
        glue_plan({"epochs": 0})
