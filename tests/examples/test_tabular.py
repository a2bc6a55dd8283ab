"""The tabular example: a regression MLP from nasplug.nn's blocks with conditional choices,
through every stage; the sandwich sampler (with in-place distillation) resumes exactly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from nasplug.arch import arch_key
from nasplug.oneshot.config import TrainConfig
from nasplug.oneshot.samplers import SandwichSampler, build_sampler
from nasplug.oneshot.train import train
from nasplug.pipeline import run_recipe
from nasplug.recipe import load_recipe
from nasplug.testing import SpaceContract

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "tabular"
sys.path.insert(0, str(EXAMPLE))
sys.path.insert(0, str(REPO / "examples"))

from count_lines import code_lines  # noqa: E402
from tabular_space import TabularSpace  # noqa: E402
from tabular_task import DiabetesTask  # noqa: E402

TINY = ["supernet.steps=12", "supernet.eval_every=6", "supernet.checkpoint_every=6", "supernet.log_every=6",
        "search.budget=24", "search.batch_size=8", "search.strategy.population=8", "search.strategy.parents=2",
        "search.strategy.mutations=3", "search.strategy.crossovers=3", "retrain.steps=10", "retrain.seeds=[0,1]",
        "retrain.checkpoint_every=5", "retrain.log_every=5"]

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def test_the_example_is_short() -> None:
    assert code_lines(EXAMPLE / "tabular_space.py") <= 50  # space + supernet
    assert code_lines(EXAMPLE / "tabular_task.py") <= 30


def test_the_space_counts_models_not_names() -> None:
    space = TabularSpace()
    names = 1
    for options in space.choices().values():
        names *= len(options)
    assert (names, space.size()) == (26_244, 7_380)


class TestTabularContract(SpaceContract):
    @pytest.fixture
    def space(self):
        return TabularSpace(layers=3, widths=(4, 8))


def test_every_stage_runs_and_each_model_is_scored_once(tmp_path: Path) -> None:
    run_recipe(load_recipe(EXAMPLE / "recipe.yaml", TINY), tmp_path / "run", progress=False)
    assert {p.stem for p in (tmp_path / "run" / "stages").glob("*.json")} == {"supernet", "search", "retrain",
                                                                            "report"}
    trials = [json.loads(line) for line in (tmp_path / "run" / "trials.jsonl").read_text().splitlines()]
    space = TabularSpace()
    evaluated = [arch_key(space.canonical(t["arch"])) for t in trials if t["status"] == "ok"]
    assert len(evaluated) == len(set(evaluated)) == 24
    assert "test mse" in (tmp_path / "run" / "report.md").read_text()


def test_the_sandwich_trains_largest_smallest_and_random_archs() -> None:
    space = TabularSpace()
    sampler = build_sampler(load_recipe(EXAMPLE / "recipe.yaml").supernet.sampler, space, 0)
    assert isinstance(sampler, SandwichSampler) and sampler.distill
    archs = sampler(3)
    assert archs[0] == space.largest() and archs[0]["depth"] == 4 and archs[0]["width3"] == 64
    assert archs[1] == space.smallest() == space.canonical({**archs[1], "depth": 1, "width0": 16})
    assert len(archs) == 4 and archs == sampler(3) != sampler(4)


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 6, "batch_size": 16, "lr": 3e-3, "warmup_steps": 1, "eval_batches": 2,
                          "eval_archs": 2, "log_every": 1, "device": "cpu", "seed": 0, **kw})


def _task() -> DiabetesTask:
    task = DiabetesTask()
    task.prepare(None)
    return task


def test_in_place_distillation_changes_the_students_and_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    import nasplug.oneshot.train as loop

    space = TabularSpace()
    cfg = _cfg(checkpoint_every=2)

    def run(folder: str, distill: bool = True, resume: bool = False) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        supernet = space.build_supernet()
        train(supernet, _task(), cfg, tmp_path / folder, space=space, sampler=SandwichSampler(space, 0, 2, distill),
              resume=resume, progress=False)
        return {k: v.clone() for k, v in supernet.state_dict().items()}

    straight = run("a")
    assert any(not torch.equal(straight[k], v) for k, v in run("plain", distill=False).items())
    real = loop._Run._train_step

    def crash_at_5(self, step):  # the process dies in step 5, after the checkpoint of step 4
        if step == 5:
            raise KeyboardInterrupt
        return real(self, step)

    monkeypatch.setattr(loop._Run, "_train_step", crash_at_5)
    with pytest.raises(KeyboardInterrupt):
        run("b")
    monkeypatch.undo()
    resumed = run("b", resume=True)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_distillation_toward_itself_costs_nothing() -> None:
    space, task = TabularSpace(), _task()
    supernet = space.build_supernet()
    batch = tuple(t[:8] for t in task.split("train"))
    counts = {"examples": 8}
    with supernet.using(space.largest()):
        _, _, target = task.teacher_loss(supernet, batch, counts, {})
        loss, stats = task.distill_loss(supernet, batch, counts, {}, target)
    assert float(loss.detach()) == 0.0 and target.shape == (8,) and "mse" in stats
    with supernet.using(space.smallest()):
        loss, _ = task.distill_loss(supernet, batch, counts, {}, target)
    assert float(loss.detach()) > 0.0
