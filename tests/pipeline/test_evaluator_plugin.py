"""The evaluator plugin base, the protocols of optional abilities, and bounds declared in signatures.

Recipes here name plugins of this module by path (``test_evaluator_plugin:...``): pytest puts
the test folder on the import path, as a recipe's folder is for a user's own plugins.
"""

from __future__ import annotations

import random
from typing import Annotated, Any

import pytest
from pydantic import Field

from nasplug.errors import NasplugError
from nasplug.evaluate import BatchEvaluator, Closeable, evaluate_batch
from nasplug.pipeline import EvaluatorPlugin, run_recipe
from nasplug.pipeline.evaluator_plugin import CallableEvaluator, evaluator_plugin
from nasplug.recipe import Component, validate_recipe
from nasplug.registry import checked, plugin
from nasplug.spaces.toy import ToyObjective, ToySpace
from nasplug.strategy import Strategy

CALLS: list[Any] = []


class RecordingEvaluator(EvaluatorPlugin):
    """Records when the pipeline calls it; scores with the toy objective."""

    @checked("evaluator")
    def __init__(self, scale: Annotated[float, Field(gt=0, le=100)] = 1.0) -> None:
        CALLS.append(("init", scale))
        self.scale = scale

    def check(self, ctx: Any) -> None:
        CALLS.append(("check", ctx.recipe.search.metric))

    def build(self, ctx: Any, memory_hint: int | None = None) -> Any:
        CALLS.append(("build", memory_hint))
        return Scorer(ctx.space, self.scale)


class Scorer:
    """A batch-capable, closeable evaluator that records what the search calls."""

    def __init__(self, space: ToySpace, scale: float) -> None:
        self.objective, self.scale = ToyObjective(space), scale

    def __call__(self, arch: dict) -> dict[str, float]:
        CALLS.append("call")
        return {"score": self.scale * self.objective(arch)["score"]}

    def evaluate_batch(self, archs: list[dict]) -> list[dict[str, float]]:
        CALLS.append(("evaluate_batch", len(archs)))
        return [{"score": self.scale * self.objective(a)["score"]} for a in archs]

    def close(self) -> None:
        CALLS.append("close")


@plugin("evaluator")
def scaled_toy(space: ToySpace, factor: Annotated[float, Field(ge=0)] = 1.0) -> Any:
    """An evaluator written as a plain function, as a user's module may hold one."""
    objective = ToyObjective(space)
    return lambda arch: {"score": factor * objective(arch)["score"]}


class TodaysStrategy(Strategy):
    """A third-party strategy written to the interface before memory_hint existed."""

    def ask(self, n: int = 1) -> list[dict]:
        return [self.space.sample(self.rng) for _ in range(n)]

    def tell(self, arch: dict, score: float | None) -> None:
        pass


def toy_recipe(evaluator: dict, strategy: dict | None = None, budget: int = 12) -> Any:
    search = {"budget": budget, "batch_size": 4, "metric": "score", "direction": "maximize",
              "strategy": strategy or {"name": "random"}}  # a plugin of the test's own declares no direction
    return validate_recipe({"name": "plugin-test", "seed": 0, "space": {"name": "toy", "slots": 5},
                            "evaluator": evaluator, "search": search})


def test_the_pipeline_calls_init_check_then_build_with_the_strategys_memory_hint(tmp_path):
    CALLS.clear()
    strategy = {"name": "evolution", "population": 6, "parents": 3, "mutations": 2, "crossovers": 2}
    recipe = toy_recipe({"name": "test_evaluator_plugin:RecordingEvaluator", "scale": 2.0}, strategy)
    ctx = run_recipe(recipe, tmp_path / "run", stages=["search"], progress=False)
    assert CALLS[0] == ("init", 2.0), "built with the recipe's keys first"
    calls = [c for c in CALLS if isinstance(c, tuple) and c[0] != "init"]
    assert calls[:2] == [("check", "score"), ("build", 3)], "checked before the run, then built with the hint"
    assert ("evaluate_batch", 4) in CALLS and "call" not in CALLS, "a BatchEvaluator is scored in batches"
    assert CALLS[-1] == "close", "a Closeable evaluator is closed when the search ends"
    assert len(ctx.extras["search"].scored) == 12


def test_a_strategy_without_memory_hint_and_a_plain_function_evaluator_still_work(tmp_path):
    CALLS.clear()
    recipe = toy_recipe({"name": "test_evaluator_plugin:RecordingEvaluator"},
                        {"name": "test_evaluator_plugin:TodaysStrategy"})
    run_recipe(recipe, tmp_path / "a", stages=["search"], progress=False)
    assert ("build", None) in CALLS
    recipe = toy_recipe({"name": "test_evaluator_plugin:scaled_toy", "factor": 0.5})
    ctx = run_recipe(recipe, tmp_path / "b", stages=["search"], progress=False)
    best = ctx.extras["search"].best
    assert best.score == 0.5 * ToyObjective(ctx.space)(best.arch)["score"]
    plain = evaluator_plugin(Component(name="toy", noise=0.1))
    assert isinstance(plain, CallableEvaluator) and not plain.needs_context


@pytest.mark.parametrize("settings, message", [
    ({"batches": 0}, r"^evaluator\.batches: Input should be greater than or equal to 1 \(got 0\)$"),
    ({"batches": 10**7}, r"^evaluator\.batches: Input should be less than or equal to 1000000"),
    ({"batches": True}, r"^evaluator\.batches: expected a number, not True"),
    ({"batch_size": 0}, r"^evaluator\.batch_size: Input should be greater than or equal to 1"),
    ({"keep": -1}, r"^evaluator\.keep: Input should be greater than or equal to 0"),
    ({"cache_mb": float("inf")}, r"^evaluator\.cache_mb: Input should be a finite number"),
    ({"recalibrate": 10**5}, r"^evaluator\.recalibrate: Input should be less than or equal to 10000"),
    ({"recalibrate_batch_size": 0}, r"^evaluator\.recalibrate_batch_size: Input should be greater"),
    ({"precision": "fp16"}, r"^evaluator\.precision: Input should be 'auto', 'fp32' or 'bf16'"),
    ({"batchez": 3}, r"^evaluator\.batchez: unknown argument; allowed: batches, batch_size"),
])
def test_supernet_evaluator_settings_out_of_range_name_the_field(settings, message):
    with pytest.raises(NasplugError, match=message):
        evaluator_plugin(Component(name="supernet", **settings))


def test_a_recipe_with_a_bad_setting_fails_before_any_stage_runs(tmp_path):
    recipe = toy_recipe({"name": "test_evaluator_plugin:RecordingEvaluator", "scale": 0})
    with pytest.raises(NasplugError, match=r"^evaluator\.scale: Input should be greater than 0 \(got 0\)$"):
        run_recipe(recipe, tmp_path / "run", stages=["search"], progress=False)
    assert not (tmp_path / "run" / "trials.jsonl").exists()
    with pytest.raises(NasplugError, match=r"^evaluator\.factor: Input should be greater than or equal to 0"):
        run_recipe(toy_recipe({"name": "test_evaluator_plugin:scaled_toy", "factor": -1}), tmp_path / "b",
                   stages=["search"], progress=False)


def test_python_callers_meet_the_same_bounds_and_values_pass_unchanged():
    from nasplug.oneshot.samplers import FairSampler
    from nasplug.strategies.evolution import Evolution

    with pytest.raises(NasplugError, match=r"^sampler\.max_tries: Input should be greater than or equal to 1"):
        FairSampler(ToySpace(slots=3), seed=0, max_tries=0)
    with pytest.raises(NasplugError, match=r"^space\.slots: Input should be less than or equal to 32 \(got 33\)$"):
        ToySpace(slots=33)
    with pytest.raises(NasplugError, match=r"^evaluator\.scale: Input should be less than or equal to 100"):
        RecordingEvaluator(scale=101)
    evolution = Evolution(ToySpace(), mutation_prob=1)
    assert evolution.mutation_prob == 1 and type(evolution.mutation_prob) is int  # checked, not converted


def test_the_protocols_declare_the_optional_abilities():
    space = ToySpace(slots=4)
    archs = [space.sample(random.Random(s)) for s in range(3)]
    plain = ToyObjective(space)
    assert not isinstance(plain, BatchEvaluator) and not isinstance(plain, Closeable)
    scorer = Scorer(space, 1.0)
    assert isinstance(scorer, BatchEvaluator) and isinstance(scorer, Closeable)
    CALLS.clear()
    assert evaluate_batch(scorer, archs) == [{"score": m["score"]} for m in evaluate_batch(plain, archs)]
    assert CALLS == [("evaluate_batch", 3)], "a BatchEvaluator scores the batch in one call"

    class Hidden(Scorer):
        evaluate_batch = None  # a subclass may hide an ability its parent has

    assert not isinstance(Hidden(space, 1.0), BatchEvaluator)


def test_the_model_and_task_protocols_match_what_they_declare():
    from torch import nn
    from train_helpers import tiny_space

    from nasplug.oneshot.evaluator import LayeredSupernet, PrefixLaneTask
    from nasplug.oneshot.fewshot import FewShotSupernet
    from nasplug.oneshot.optim import CompilesInParts
    from nasplug.search import ReclaimingCache
    from nasplug.task import Task
    from nasplug.text import objectives as obj
    from nasplug.text.interface import ElectraModel, TextModel
    from nasplug.text.tasks import ElectraTask, MLMTask

    space = tiny_space(slots=2)
    supernet = space.build_supernet()
    assert isinstance(supernet, LayeredSupernet) and isinstance(supernet, CompilesInParts)
    assert isinstance(supernet, ElectraModel) and isinstance(supernet, TextModel)  # the text-model interface
    assert isinstance(supernet, obj.ConfiguredModel)
    few = FewShotSupernet(supernet, "L00", list(space.choices()["L00"]))
    assert not isinstance(few, LayeredSupernet), "the few-shot split hides its layers (no shared embedding)"
    assert not isinstance(ToySpace(slots=2).build_supernet(), LayeredSupernet)
    assert isinstance(MLMTask(), PrefixLaneTask) and isinstance(ElectraTask(), PrefixLaneTask)
    assert not isinstance(Task(), PrefixLaneTask)
    assert not isinstance(nn.Linear(2, 2), CompilesInParts) and not isinstance({}, ReclaimingCache)


def test_a_compare_runs_cache_view_reclaims_and_a_plain_dict_does_not(tmp_path):
    from nasplug.compare.cache import JsonlCache, RunCache
    from nasplug.search import ReclaimingCache

    shared = JsonlCache(tmp_path / "cache.jsonl")
    RunCache(shared, "random/seed0")["k"] = {"score": 1.0}
    view = RunCache(shared, "random/seed0")  # the run resumed with a log that lost the trial
    assert isinstance(view, ReclaimingCache) and view.reclaimable("k") and not view.reclaimable("k")


def test_asking_for_more_heldout_batches_than_exist_is_said_not_silent(caplog):
    import torch

    from nasplug.task import Task

    task = Task()
    task.splits = {"heldout": (torch.arange(10.0),)}
    with caplog.at_level("WARNING", logger="nasplug.task"):
        assert len(task.heldout_batches(batch_size=4, num_batches=9)) == 3
    assert "only 3 heldout batches of 4 examples exist; 9 were asked for" in caplog.text
