"""rank-corr's noise ceiling, cached scores and their settings, the supernet snapshots, the
evaluation-cost curve, the cheaper predictors, stratified draws and the ``rank_corr`` stage,
on the tiny run of conftest.py (each test in folders of its own)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from nasplug.arch import arch_key
from nasplug.errors import NasplugError
from nasplug.layout import RankCorrLayout

pytestmark = pytest.mark.usefixtures("one_thread")


def _ctx(run_dir: Path) -> Any:
    from nasplug.pipeline import RunContext
    from nasplug.rankcorr import load_run_recipe

    return RunContext(recipe=load_run_recipe(run_dir), run_dir=run_dir, progress=False)


def _figures(folder: Path, task: Any) -> dict[str, float]:
    """A model's figures from its stored score.json (the per-batch sums added up)."""
    from nasplug.task import add_sums

    return task.figures(add_sums(json.loads((folder / "score.json").read_text())["per_batch"]))


def test_noise_ceiling_equals_a_direct_computation_from_the_stored_per_seed_figures(
        tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    from nasplug.rankcorr import rank_correlation

    run_dir, _ = tiny_run
    out = tmp_path / "rc"
    result = rank_correlation(run_dir, archs=5, steps=6, num_seeds=3, metric="mlm_loss", resamples=200,
                              progress=False, out=out)
    task = _ctx(run_dir).prepared_task()
    layout = RankCorrLayout(out)
    # a loss ranks the lowest first: every vector is negated before the coefficients
    per_seed = [[-_figures(layout.standalone(arch_key(p["arch_dict"]), 6, k), task)["mlm_loss"]
                 for p in result["pairs"]] for k in range(3)]
    assert per_seed[0] != per_seed[1], "the seeds train different models"
    pairs = [(0, 1), (0, 2), (1, 2)]
    direct = [stats.kendalltau(per_seed[j], per_seed[k]).statistic for j, k in pairs]
    ceiling = result["noise_ceiling"]
    assert ceiling["estimate"] == pytest.approx(np.mean(direct), abs=1e-12)
    assert [p["tau"] for p in ceiling["pairs"]] == pytest.approx(direct, abs=1e-12)
    assert ceiling["ci_low"] <= ceiling["estimate"] <= ceiling["ci_high"]
    space = _ctx(run_dir).space
    table = (out / "rank_corr.md").read_text()
    for i, pair in enumerate(result["pairs"]):  # the reference is the mean over the seeds
        assert pair["params"] == space.metrics(pair["arch_dict"])["params"] > 0
        assert re.search(rf"\|\s*{pair['arch']}\s*\|.*\|\s*{int(pair['params']):,}\s*\|$", table, re.M), "params shown"
        assert pair["standalone_seeds"] == pytest.approx([-s[i] for s in per_seed], abs=0)
        assert pair["standalone"] == pytest.approx(-np.mean([s[i] for s in per_seed]), rel=1e-12)
    supernet = [-p["supernet"] for p in result["pairs"]]
    vs_seeds = np.mean([stats.kendalltau(supernet, s).statistic for s in per_seed])
    assert result["supernet_vs_seeds"] == pytest.approx(vs_seeds, abs=1e-12)
    # six steps of a tiny model: the seeds disagree, and a fraction of a ceiling <= 0 means nothing
    assert ceiling["estimate"] < 0 and np.isnan(result["of_ceiling"])
    assert json.loads((out / "rank_corr.json").read_text())["of_ceiling"] is None
    md = (out / "rank_corr.md").read_text()
    assert "Noise ceiling" in md and f"{ceiling['estimate']:.3f}" in md


def test_a_predictor_is_a_fraction_of_the_ceiling_against_single_seeds() -> None:
    from nasplug.rankcorr.stats import predictor_stats

    seeds = [[1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 3.0, 2.0, 4.0, 5.0]]  # tau between them: 0.8
    predicted = [1.0, 2.0, 3.0, 5.0, float("nan")]  # the unscored arch ranks last
    out = predictor_stats(predicted, [1.0, 2.5, 2.5, 4.0, 5.0], seeds, 0.8, resamples=50)
    last = [1.0, 2.0, 3.0, 5.0, 0.0]
    expected = np.mean([stats.kendalltau(last, s).statistic for s in seeds])
    assert out["unscored"] == 1 and out["tau_vs_seeds"] == pytest.approx(expected)
    assert out["of_ceiling"] == pytest.approx(expected / 0.8)
    assert out["kendall_tau"]["estimate"] == pytest.approx(stats.kendalltau(last, [1.0, 2.5, 2.5, 4.0, 5.0]).statistic)


def test_changing_batches_with_models_rescores_the_supernet_side(tiny_run: tuple[Path, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from nasplug.oneshot.evaluator import InheritedWeights
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.rankcorr import rank_correlation, sample_archs

    run_dir, _ = tiny_run
    models, out = tmp_path / "models", tmp_path / "rc"
    args = {"archs": 4, "steps": 3, "resamples": 50, "progress": False, "models": models, "out": out,
            "metric": "mlm_loss"}  # (the tiny supernet predicts no masked token right: its accuracy is 0)
    one = rank_correlation(run_dir, num_batches=1, **args)
    scores = out / "scores" / "supernet.json"
    assert json.loads(scores.read_text())["settings"]["evaluator"]["batches"] == 1
    used = {"precision": _ctx(run_dir).machine.evaluator_precision("auto"), "scoring": 3}
    assert json.loads(scores.read_text())["settings"]["used"] == used, "what auto meant and how scores are made"
    # the same settings: read back, nothing evaluated
    real = InheritedWeights.evaluate_sums
    monkeypatch.setattr(InheritedWeights, "evaluate_sums", lambda *a: pytest.fail("scored again"))
    assert rank_correlation(run_dir, num_batches=1, **args)["pairs"] == one["pairs"]
    monkeypatch.setattr(InheritedWeights, "evaluate_sums", real)
    two = rank_correlation(run_dir, num_batches=2, **args)  # --batches 2 with the same --models
    assert json.loads(scores.read_text())["settings"]["evaluator"]["batches"] == 2
    ctx = _ctx(run_dir)
    fresh = SupernetEvaluator(batches=2, batch_size=8).build(ctx).evaluate_batch(sample_archs(ctx.space, 4, 0))
    assert [p["supernet"] for p in two["pairs"]] == [f["mlm_loss"] for f in fresh]
    assert [p["supernet"] for p in two["pairs"]] != [p["supernet"] for p in one["pairs"]]
    # the standalone models were reused (loaded and scored again), not retrained
    assert len(list(models.glob("standalone/*/steps-3/seed-0/model.safetensors"))) == 4
    # other weights (a supernet trained again): the digest differs, so the archs are scored again
    settings = json.loads(scores.read_text())
    settings["settings"]["weights"]["model.safetensors"] = "0" * 64
    scores.write_text(json.dumps(settings))
    monkeypatch.setattr(InheritedWeights, "evaluate_sums", lambda *a: pytest.fail("scored again"))
    with pytest.raises(pytest.fail.Exception, match="scored again"):
        rank_correlation(run_dir, num_batches=2, **args)


def test_the_budget_curve_ranks_with_each_kept_snapshot(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    from nasplug.layout import RunLayout
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.rankcorr import rank_correlation, sample_archs

    run_dir, _ = tiny_run
    out = tmp_path / "rc"
    result = rank_correlation(run_dir, archs=4, steps=3, checkpoints=True, resamples=50, progress=False, out=out,
                              metric="mlm_loss")
    assert [r["step"] for r in result["budget"]] == [10, 20]
    ctx = _ctx(run_dir)
    archs = sample_archs(ctx.space, 4, 0)
    snapshot = SupernetEvaluator(batches=2, batch_size=8).build(ctx, folder=RunLayout(run_dir).supernet_snapshot(10))
    assert result["budget"][0]["values"] == [m["mlm_loss"] for m in snapshot.evaluate_batch(archs)]
    assert result["budget"][1]["values"] == [p["supernet"] for p in result["pairs"]]
    assert result["budget"][0]["values"] != result["budget"][1]["values"], "the snapshot holds earlier weights"
    assert (out / "budget.png").read_bytes()[:4] == b"\x89PNG" and "| 10 " in (out / "budget.md").read_text()
    with pytest.raises(NasplugError, match="--checkpoints: .* kept no supernet snapshots"):
        rank_correlation(run_dir, archs=4, steps=3, checkpoints=True, progress=False, out=tmp_path / "x",
                         overrides=["supernet.steps=10"])


def test_the_eval_cost_curve_comes_from_one_evaluation_per_variant(tiny_run: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.rankcorr import rank_correlation, sample_archs

    run_dir, _ = tiny_run
    out = tmp_path / "rc"
    result = rank_correlation(run_dir, archs=4, steps=3, eval_cost=True, resamples=50, progress=False, out=out,
                              metric="mlm_loss")
    variants = {v["tag"]: v for v in result["eval_cost"]}
    as_run = _ctx(run_dir).machine.precision_for("auto")  # the evaluator's default: the run's auto
    other = "bf16" if as_run == "fp32" else "fp32"
    assert set(variants) == {"as-run", other}, "LV-BERT has no BatchNorm: no recalibration variant"
    assert variants["as-run"]["description"].startswith(as_run) and variants[other]["description"].startswith(other)
    curve = variants["as-run"]["curve"]
    assert [p["batches"] for p in curve] == [1, 2]
    assert curve[-1]["values"] == [p["supernet"] for p in result["pairs"]], "all batches: the supernet's score"
    ctx = _ctx(run_dir)
    first = SupernetEvaluator(batches=1, batch_size=8).build(ctx).evaluate_batch(sample_archs(ctx.space, 4, 0))
    assert curve[0]["values"] == [m["mlm_loss"] for m in first], "the first batch alone, from the same evaluation"
    assert 0 < curve[0]["seconds_per_arch"] <= curve[1]["seconds_per_arch"]
    flipped = SupernetEvaluator(batches=2, batch_size=8, precision=other).build(ctx).evaluate_batch(
        sample_archs(ctx.space, 4, 0))
    assert variants[other]["curve"][-1]["values"] == [m["mlm_loss"] for m in flipped]
    assert variants[other]["curve"][-1]["values"] != curve[-1]["values"]
    assert (out / "eval_cost.png").is_file() and "bf16" in (out / "eval_cost.md").read_text()


def test_predictors_are_ranked_against_the_same_models_and_cached_with_their_settings(
        tiny_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nasplug.zerocost.evaluators as zc
    from nasplug.rankcorr import rank_correlation

    run_dir, _ = tiny_run
    out = tmp_path / "rc"
    args = {"archs": 4, "steps": 4, "resamples": 50, "progress": False, "out": out, "metric": "mlm_loss"}
    result = rank_correlation(run_dir, predictors=["params,synflow", "jacov", "short:2"], **args)
    rows = {r["label"]: r for r in result["predictors"]}
    assert list(rows) == ["supernet", "params", "synflow", "jacov", "short training (2 steps)"]
    ctx = _ctx(run_dir)
    assert rows["params"]["values"] == [ctx.space.metrics(p["arch_dict"])["params"] for p in result["pairs"]]
    for row in rows.values():
        assert -1 <= row["kendall_tau"]["estimate"] <= 1 and row["seconds_per_arch"] >= 0
    short = [RankCorrLayout(out).standalone(arch_key(p["arch_dict"]), 2, 0) for p in result["pairs"]]
    assert all((f / "model.safetensors").is_file() for f in short), "short training: standalone models of 2 steps"
    assert rows["short training (2 steps)"]["values"] == [_figures(f, ctx.prepared_task())["mlm_loss"] for f in short]
    assert not rows["short training (2 steps)"]["higher_is_better"] and rows["synflow"]["higher_is_better"]
    cache = json.loads((out / "predictors" / "synflow.json").read_text())
    assert cache["settings"]["proxy"] == "synflow" and len(cache["scores"]) == 4
    assert "| synflow " in (out / "predictors.md").read_text()
    monkeypatch.setattr(zc.ProxyScore, "__call__", lambda *a: pytest.fail("computed again"))
    again = rank_correlation(run_dir, predictors=["synflow"], **args)
    assert again["predictors"][1]["values"] == rows["synflow"]["values"]
    with pytest.raises(NasplugError, match="--predictors: 'nope' is not a predictor; allowed: params"):
        rank_correlation(run_dir, predictors=["nope"], **args)
    with pytest.raises(NasplugError, match="--predictors: 'short:4': N must"):
        rank_correlation(run_dir, predictors=["short:4"], **args)


def test_all_names_every_predictor_and_keeps_an_explicit_short_training(tiny_run: tuple[Path, Path]) -> None:
    from nasplug.rankcorr.predictors import PROXIES, parse_predictors

    space = _ctx(tiny_run[0]).space
    default = parse_predictors(["all"], space, steps=16)
    assert [p.name for p in default if p.kind == "proxy"] == list(PROXIES)
    assert [(p.kind, p.steps) for p in default if p.kind == "short"] == [("short", 2)]  # S / 8
    explicit = parse_predictors(["all", "short:4"], space, steps=16)
    assert [(p.kind, p.steps) for p in explicit if p.kind == "short"] == [("short", 4)]
    assert [p.name for p in explicit if p.kind != "short"] == [p.name for p in default if p.kind != "short"]
    with pytest.raises(NasplugError, match="--predictors: short training is named twice"):
        parse_predictors(["short:4", "short:2"], space, steps=16)


def test_stratified_draws_span_the_metric(tiny_run: tuple[Path, Path]) -> None:
    from nasplug.rankcorr import sample_archs, stratified_archs

    space = _ctx(tiny_run[0]).space
    uniform = sample_archs(space, 100, 0, exhausted_ok=True)  # the 27 archs of 3 slots, in draw order
    params = sorted(space.metrics(a)["params"] for a in uniform)
    picked = stratified_archs(space, 3, 0, "params")
    assert stratified_archs(space, 3, 0, "params") == picked
    values = [space.metrics(a)["params"] for a in picked]
    assert values == sorted(values), "one arch per bin, bins in the metric's order"
    third = len(params) // 3
    assert values[0] <= params[third - 1] and values[2] >= params[2 * third], "the extreme bins are drawn from"
    with pytest.raises(NasplugError, match="--stratify: 'mlm_acc' is not an analytic metric .* allowed: params"):
        stratified_archs(space, 3, 0, "mlm_acc")


def test_models_trained_in_two_processes_equal_the_serial_ones(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    from nasplug.rankcorr import rank_correlation

    run_dir, _ = tiny_run
    args = {"archs": 3, "steps": 4, "num_seeds": 2, "resamples": 50, "progress": False, "metric": "mlm_loss",
            "predictors": ["short:2"]}
    serial = rank_correlation(run_dir, out=tmp_path / "serial", **args)
    parallel = rank_correlation(run_dir, out=tmp_path / "parallel", jobs=2, **args)
    assert [p["standalone_seeds"] for p in parallel["pairs"]] == [p["standalone_seeds"] for p in serial["pairs"]]
    weights = sorted((tmp_path / "serial").glob("standalone/*/*/*/model.safetensors"))
    assert len(weights) == 3 * 2 + 3
    for path in weights:
        twin = tmp_path / "parallel" / path.relative_to(tmp_path / "serial")
        assert twin.read_bytes() == path.read_bytes(), "the same weights, bit for bit"


def test_the_rank_corr_stage_runs_from_the_recipe_section(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    import yaml

    from nasplug.layout import RunLayout
    from nasplug.pipeline import run_recipe
    from nasplug.pipeline.stage import get_stage
    from nasplug.recipe import validate_recipe

    run = tmp_path / "run"
    shutil.copytree(tiny_run[0], run, ignore=shutil.ignore_patterns("rank_corr*"))
    raw = yaml.safe_load((run / "recipe.yaml").read_text())
    raw["rank_corr"] = {"archs": 3, "steps": 2, "seeds": 2, "metric": "mlm_loss", "predictors": ["params"],
                        "checkpoints": True, "resamples": 50}
    run_recipe(validate_recipe(raw), run, resume=True, stages=["rank_corr"], progress=False)
    result = json.loads((run / "rank_corr" / "rank_corr.json").read_text())
    assert result["num_seeds"] == 2 and [r["step"] for r in result["budget"]] == [10, 20]
    assert [r["label"] for r in result["predictors"]] == ["supernet", "supernet@10", "params"]
    summary = RunLayout(run).read_stage("rank_corr")["summary"]
    assert summary["kendall_tau"]["estimate"] == result["kendall_tau"]["estimate"]
    from nasplug.rankcorr.stage import stage_summary

    tied = {**result, "predictors": [*result["predictors"], {"label": "short", "kendall_tau": {"estimate": math.nan}}]}
    strict = json.dumps(stage_summary(tied), allow_nan=False)  # ValueError on a NaN
    assert json.loads(strict)["predictors"]["short"] is None
    lines, table = get_stage("rank_corr").report(_view(run))
    assert any("Noise ceiling" in line for line in lines) and "| params " in table

    def refused(section: dict, match: str) -> None:
        with pytest.raises(NasplugError, match=match):
            run_recipe(validate_recipe({**raw, "rank_corr": section}), run, resume=True, stages=["rank_corr"],
                       progress=False)

    refused({"archs": 2, "steps": 2}, r"rank_corr\.archs")
    refused({"archs": 3, "steps": 2, "predictors": ["nope"]}, r"rank_corr\.predictors: 'nope'")
    refused({"archs": 3, "steps": 2, "stratify": "mlm_acc"}, r"rank_corr\.stratify: 'mlm_acc'")
    refused({"archs": 3, "steps": 2, "metric": "disc_acc"}, r"rank_corr\.metric: 'disc_acc'")
    refused({"archs": 3, "steps": 2, "colour": "red"}, r"rank_corr\.colour: unknown key")
    no_snapshots = {**raw, "supernet": {**raw["supernet"], "snapshots": []}}
    with pytest.raises(NasplugError, match=r"rank_corr\.checkpoints: the supernet keeps no snapshots"):
        run_recipe(validate_recipe(no_snapshots), run, resume=True, stages=["rank_corr"], progress=False)


def _view(run: Path) -> Any:
    import yaml

    from nasplug.pipeline.stage import RunView

    return RunView(run, yaml.safe_load((run / "recipe.yaml").read_text()))


def test_supernet_snapshots_are_checked_in_the_recipe() -> None:
    from nasplug.recipe import validate_recipe

    base = {"name": "r", "space": {"name": "toy", "slots": 4}, "evaluator": {"name": "toy"}}
    for snapshots, match in (([0], r"supernet\.snapshots: step 0 is not one of the supernet's steps \(1\.\.100\)"),
                             ([101], r"supernet\.snapshots: step 101"), ([5, 5], r"supernet\.snapshots: .*twice"),
                             (["5"], r"supernet\.snapshots\.0")):
        with pytest.raises(NasplugError, match=match):
            validate_recipe({**base, "supernet": {"steps": 100, "snapshots": snapshots}})
    with pytest.raises(NasplugError, match=r"supernet\.snapshots: not available with a few-shot split"):
        validate_recipe({**base, "supernet": {"steps": 100, "snapshots": [50], "split": {"choice": "L0"}}})
    assert validate_recipe({**base, "supernet": {"steps": 100, "snapshots": [60, 20]}}).supernet.snapshots == [20, 60]


@pytest.mark.parametrize("recorded", ["fp32", "bf16"])
def test_standalone_models_train_in_the_runs_recorded_precision(tiny_run: tuple[Path, Path], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, recorded: str) -> None:
    import shutil

    import nasplug.hardware as hw
    from nasplug.layout import RankCorrLayout
    from nasplug.rankcorr.standalone import StandaloneModels

    run = tmp_path / "run"
    shutil.copytree(tiny_run[0], run, ignore=shutil.ignore_patterns("rank_corr*", "supernet"))
    info = json.loads((run / "run.json").read_text())
    info["machine"]["precision"]["auto"] = recorded
    (run / "run.json").write_text(json.dumps(info))
    monkeypatch.setattr(hw, "_cpu_flag", lambda name: name == "_is_avx512_bf16_supported")
    monkeypatch.setattr(hw, "cpu_bf16_speedup", lambda: 3.0 if recorded == "fp32" else 0.5)  # this process disagrees
    models = StandaloneModels(_ctx(run), RankCorrLayout(tmp_path / "rc", tmp_path / "rc"), None, [], {})
    assert models.config(3, 1).precision == recorded, "a worker process trains in the run's precision"
