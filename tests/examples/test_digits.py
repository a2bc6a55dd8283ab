"""The digits example: a user's CNN space and image task through every one-shot stage.

Everything runs on the real example files (examples/digits) at tiny size through ``--set``
style overrides, so the example itself is what is tested.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nasplug.errors import NasplugError
from nasplug.pipeline import run_recipe
from nasplug.recipe import load_recipe
from nasplug.testing import SpaceContract, check_extract_matches

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "digits"
RECIPE = EXAMPLE / "recipe.yaml"
#: The example recipe at tiny size: seconds, not minutes.
TINY = ["supernet.steps=60", "supernet.eval_every=30", "supernet.checkpoint_every=20", "supernet.log_every=10",
        "supernet.eval_archs=2", "search.budget=16", "search.batch_size=8", "search.strategy.population=8",
        "search.strategy.parents=2", "search.strategy.mutations=3", "search.strategy.crossovers=3",
        "evaluator.recalibrate=2", "retrain.steps=30", "retrain.seeds=[0,1]", "retrain.checkpoint_every=10",
        "retrain.log_every=10", "retrain.eval_batches=2"]


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def tiny(*more: str):
    return load_recipe(RECIPE, [*TINY, *more])


def code_lines(path: Path) -> int:
    """Non-blank, non-comment lines (what the README promises a user writes)."""
    return sum(1 for line in path.read_text().splitlines() if line.strip() and not line.strip().startswith("#"))


def test_the_example_is_short() -> None:
    assert code_lines(EXAMPLE / "digits_space.py") <= 60
    assert code_lines(EXAMPLE / "digits_task.py") <= 40


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("digits") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the CLI runs below (OMP_NUM_THREADS=1): the same kernels, the same bits
    try:
        run_recipe(tiny(), out, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


def test_every_stage_runs_and_the_report_gives_mean_and_std(pipeline: Path) -> None:
    assert {p.stem for p in (pipeline / "stages").glob("*.json")} == {"supernet", "search", "retrain", "report"}
    report = (pipeline / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| hand-picked"))
    assert re.search(r"\d\.\d+ ± \d", row), row  # test accuracy: mean ± std over the 2 seeds
    assert "test acc" in report and "Figures: mean ± std over 2 seeds" in report
    summary = json.loads((pipeline / "retrain" / "found" / "summary.json").read_text())
    assert set(summary["mean"]) >= {"heldout_acc", "test_acc"} and len(summary["runs"]) == 2
    trials = [json.loads(line) for line in (pipeline / "trials.jsonl").read_text().splitlines()]
    scores = [t["score"] for t in trials if t["score"] is not None]
    assert len(scores) == 16 and max(scores) > min(scores) and max(scores) > 0.3  # better than chance (0.1)


def test_metric_loss_without_a_direction_picks_the_lowest_loss(pipeline: Path, tmp_path: Path) -> None:
    """The example recipe with its ``direction:`` line deleted and ``metric: loss``: the task
    declares loss as minimised, so the search minimises it (it used to maximise it)."""
    import shutil

    import yaml

    from nasplug.recipe import apply_override, validate_recipe

    raw = yaml.safe_load(RECIPE.read_text())
    del raw["search"]["direction"]
    raw["search"]["metric"] = "loss"
    for override in TINY:
        apply_override(raw, override)
    recipe = validate_recipe(raw)
    recipe._folder = str(EXAMPLE)
    run = tmp_path / "loss"
    shutil.copytree(pipeline / "supernet", run / "supernet")  # the same tiny supernet, trained once
    shutil.copytree(pipeline / "stages", run / "stages", ignore=lambda d, names: [n for n in names
                                                                                  if n != "supernet.json"])
    run_recipe(recipe, run, resume=True, stages=["search"], progress=False)
    assert yaml.safe_load((run / "recipe.yaml").read_text())["search"]["direction"] == "minimize"
    losses = [json.loads(line)["metrics"]["loss"] for line in (run / "trials.jsonl").read_text().splitlines()]
    top = json.loads((run / "top.json").read_text())
    assert max(losses) > min(losses) and top[0]["score"] == min(losses) and top[0]["metrics"]["loss"] == min(losses)


def test_the_two_objective_recipe_searches_accuracy_against_params(pipeline: Path, tmp_path: Path) -> None:
    """examples/digits/recipe-pareto.yaml: the same supernet as recipe.yaml (so one trained
    supernet serves both), accuracy (the task's) against params (the space's) as its front."""
    import shutil

    import yaml

    from nasplug.objectives import Objective
    from nasplug.pipeline import RunContext

    pareto = load_recipe(EXAMPLE / "recipe-pareto.yaml")
    plain = load_recipe(RECIPE)
    for section in ("space", "task", "supernet", "evaluator", "retrain"):
        assert getattr(pareto, section) == getattr(plain, section), section
    assert RunContext(recipe=pareto, run_dir=tmp_path).objectives == (
        Objective("acc", "maximize"), Objective("params", "minimize"))
    run = tmp_path / "pareto"
    shutil.copytree(pipeline / "supernet", run / "supernet")  # the tiny supernet of the pipeline fixture
    shutil.copytree(pipeline / "stages", run / "stages", ignore=lambda d, names: [n for n in names
                                                                                  if n != "supernet.json"])
    tiny_pareto = load_recipe(EXAMPLE / "recipe-pareto.yaml", [*TINY, "search.budget=24", "search.batch_size=8"])
    run_recipe(tiny_pareto, run, resume=True, stages=["search"], progress=False)
    front = json.loads((run / "pareto.json").read_text())["front"]
    assert front and yaml.safe_load((run / "recipe.yaml").read_text())["search"]["directions"] == {
        "acc": "maximize", "params": "minimize"}
    accs = [e["values"]["acc"] for e in front]
    params = [e["values"]["params"] for e in front]
    assert accs == sorted(accs, reverse=True) and params == sorted(params, reverse=True)  # a trade-off, best first


def test_same_seed_same_search_log(pipeline: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    run_recipe(tiny(), again, stages=["supernet", "search"], progress=False)
    assert (again / "trials.jsonl").read_bytes() == (pipeline / "trials.jsonl").read_bytes()


def test_space_metrics_count_the_extracted_model(pipeline: Path) -> None:
    sys.path.insert(0, str(EXAMPLE))
    from digits_space import DigitsSpace

    space = DigitsSpace()
    supernet = space.build_supernet()
    for arch in ({"op0": "conv5", "op1": "pool", "op2": "skip", "width": 8},
                 {"op0": "conv3", "op1": "conv3", "op2": "conv5", "width": 24}):
        model = supernet.extract(arch)
        assert space.metrics(arch)["params"] == sum(p.numel() for p in model.parameters())


class TestDigitsSpaceContract(SpaceContract):
    @pytest.fixture
    def space(self):
        sys.path.insert(0, str(EXAMPLE))
        from digits_space import DigitsSpace

        return DigitsSpace(cells=2, widths=(4, 8))


def test_extract_that_drops_batchnorm_statistics_fails_the_contract() -> None:
    """A supernet whose extract() builds fresh BatchNorm layers passes on fresh weights but
    not once the statistics are trained: the contract randomises them first."""
    sys.path.insert(0, str(EXAMPLE))
    from digits_space import DigitsSpace, DigitsSupernet

    from nasplug.nn import freeze

    class Forgetful(DigitsSupernet):
        def extract(self, arch):
            model = freeze(self, arch)
            for name, module in list(model.named_modules()):
                if isinstance(module, torch.nn.BatchNorm2d):  # new layer: default statistics, same affine
                    fresh = torch.nn.BatchNorm2d(module.num_features)
                    fresh.load_state_dict({**fresh.state_dict(), "weight": module.weight, "bias": module.bias})
                    parent = model.get_submodule(name.rsplit(".", 1)[0])
                    setattr(parent, name.rsplit(".", 1)[1], fresh)
            model.routable = False
            return model

    class ForgetfulSpace(DigitsSpace):
        def build_supernet(self):
            return Forgetful(self)

    check_extract_matches(DigitsSpace(cells=2, widths=(4, 8)))  # the real one passes
    with pytest.raises(AssertionError, match="BatchNorm"):
        check_extract_matches(ForgetfulSpace(cells=2, widths=(4, 8)))


def test_batchnorm_recalibration_changes_inherited_accuracy(pipeline: Path) -> None:
    from nasplug.pipeline import RunContext, build_evaluator
    from nasplug.rankcorr import load_run_recipe

    recipe = load_run_recipe(pipeline)
    archs = [{"op0": op, "op1": "conv3", "op2": "conv5", "width": 16} for op in ("conv3", "pool", "skip")]
    results = {}
    for recalibrate in (0, 2):
        recipe.evaluator = recipe.evaluator.model_copy(update={"recalibrate": recalibrate})
        ctx = RunContext(recipe=recipe, run_dir=pipeline, progress=False)
        evaluator = build_evaluator(ctx)
        results[recalibrate] = [m["acc"] for m in evaluator.evaluate_batch(archs)]
        before = {k: v.clone() for k, v in evaluator.supernet.state_dict().items()}
        evaluator(archs[0])
        after = evaluator.supernet.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), "recalibration must leave the supernet as it was"
    assert results[0] != results[2]


def test_rank_corr_and_ground_truth_compare_on_the_example(pipeline: Path, tmp_path: Path) -> None:
    from nasplug.compare import compare
    from nasplug.rankcorr import rank_correlation

    result = rank_correlation(pipeline, archs=4, steps=20, resamples=100, progress=False, out=tmp_path / "rc")
    assert result["metric"] == "acc" and len(result["pairs"]) == 4
    assert (tmp_path / "rc" / "rank_corr.png").is_file()
    comparison = compare(tiny(), ["evolution", "random"], 2, 12, tmp_path / "cmp", ground_truth=True,
                         progress=False, from_run=pipeline, batch_size=4)
    truth = comparison.ground_truth
    assert truth is not None and truth.optimum >= max(r["final"] for r in comparison.data["runs"])
    assert len(json.loads((tmp_path / "cmp" / "comparison.json").read_text())["runs"]) == 4


def test_sigkill_in_the_supernet_stage_then_resume_gives_identical_weights(pipeline: Path, tmp_path: Path) -> None:
    """Kill the CLI after a checkpoint of the supernet stage, resume: the same weights as the
    uninterrupted run."""
    out = tmp_path / "killed"
    sets = [arg for item in TINY for arg in ("--set", item)]
    cmd = [sys.executable, "-m", "nasplug", "-q", "run", str(RECIPE), "--out", str(out), *sets,
           "--stages", "supernet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = out / "supernet" / "checkpoint" / "latest.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if latest.is_file() and json.loads(latest.read_text())["step"] >= 20:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (out / "supernet" / "model.safetensors").read_bytes() == \
        (pipeline / "supernet" / "model.safetensors").read_bytes()


# ---------------------------------------------------------------------- bad input, one line each
def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "examples"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nasplug", "-q", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def one_line_error(result: subprocess.CompletedProcess, pattern: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.search(pattern, lines[0]), lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_space_trained_without_a_task_is_one_line(tmp_path: Path) -> None:
    recipe = write(tmp_path / "r.yaml", RECIPE.read_text().replace('task: {name: "digits_task:DigitsTask"', "#"))
    (tmp_path / "digits_space.py").write_text((EXAMPLE / "digits_space.py").read_text())
    one_line_error(cli("run", str(recipe), "--out", str(tmp_path / "run")), r"task: .* names no task")
    assert not (tmp_path / "run").exists(), "nothing is written before the recipe is checked"


def test_task_batches_that_do_not_fit_the_space_are_one_line(tmp_path: Path) -> None:
    recipe = write(tmp_path / "r.yaml", "\n".join([
        "name: misfit",
        "space: {name: lvbert, size: null, hidden: 32, heads: 1, ffn: 64, embedding: 32, slots: 2, vocab_size: 64, "
        "max_positions: 16, seq_len: 16}",
        f"task: {{name: '{'digits_task:DigitsTask'}'}}",
        "supernet: {steps: 2, batch_size: 8, device: cpu}", ""]))
    for name in ("digits_task.py",):
        (tmp_path / name).write_text((EXAMPLE / name).read_text())
    one_line_error(cli("run", str(recipe), "--out", str(tmp_path / "run")),
                   r"task 'digits': .*(do not fit|needs)")


def test_a_space_without_a_supernet_in_a_supernet_recipe_is_one_line(tmp_path: Path) -> None:
    recipe = write(tmp_path / "r.yaml", "\n".join([
        "name: nosupernet", "space: {name: 'my_space:MLPSpace'}",
        f"task: {{name: '{'digits_task:DigitsTask'}'}}", "supernet: {steps: 2, batch_size: 8, device: cpu}", ""]))
    (tmp_path / "digits_task.py").write_text((EXAMPLE / "digits_task.py").read_text())
    one_line_error(cli("run", str(recipe), "--out", str(tmp_path / "run")), r"space 'mlp' has no supernet")


def test_another_recipe_never_writes_into_an_existing_run(pipeline: Path) -> None:
    before = {p: p.read_bytes() for p in pipeline.rglob("*") if p.is_file()}
    sets = [arg for item in TINY for arg in ("--set", item)]
    one_line_error(cli("run", str(RECIPE), "--out", str(pipeline), *sets, "--set", "seed=1", "--resume"),
                   r"--resume: seed differs from the run .* \(which has 0\)")
    one_line_error(cli("run", str(RECIPE), "--out", str(pipeline), "--resume"),
                   r"--resume: evaluator.recalibrate differs from the run")
    one_line_error(cli("run", str(RECIPE), "--out", str(pipeline), "--stages", "retrain"),
                   r"has a run in it already; pass --resume")
    one_line_error(cli("run", str(REPO / "recipes" / "toy-evolution.yaml"), "--out", str(pipeline), "--resume"),
                   r"--resume: .* differs from the run")
    after = {p: p.read_bytes() for p in pipeline.rglob("*") if p.is_file()}
    assert after == before, "a refused command must leave every file of the run as it was"


def test_recipe_errors_before_training(tmp_path: Path) -> None:
    with pytest.raises(NasplugError, match=r"search.strategy.populaton: unknown argument"):
        run_recipe(tiny("search.strategy.populaton=3"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "supernet").exists()
