"""``nasplug rank-corr``: statistics on hand-made vectors, then the whole command on a tiny run
(LV-BERT hidden 32, 3 slots, a synthetic corpus, a 20-step supernet) built by the real pipeline."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from nasplug.arch import arch_key
from nasplug.errors import NasplugError
from nasplug.layout import RankCorrLayout
from nasplug.rankcorr.stats import rank_stats, top_k_agreement
from nasplug.rankcorr.tables import predictors_table
from nasplug.testing import EvaluatorPluginContract

# --------------------------------------------------------------------------- statistics


def test_perfect_and_reversed_order_give_plus_and_minus_one_with_degenerate_intervals() -> None:
    x = [0.1, 0.3, 0.2, 0.5, 0.4, 0.9]
    up = rank_stats(standalone=[2 * v + 1 for v in x], supernet=x, resamples=300, seed=1)
    for coef in ("kendall_tau", "spearman_rho"):
        assert up[coef]["estimate"] == pytest.approx(1.0)
        assert up[coef]["ci_low"] == pytest.approx(1.0) and up[coef]["ci_high"] == pytest.approx(1.0)
    assert up["kendall_tau"]["p_value"] < 0.01
    down = rank_stats(standalone=[-v for v in x], supernet=x, resamples=300, seed=1)
    for coef in ("kendall_tau", "spearman_rho"):
        assert down[coef]["estimate"] == pytest.approx(-1.0)
        assert down[coef]["ci_low"] == pytest.approx(-1.0) and down[coef]["ci_high"] == pytest.approx(-1.0)
    # A resample drawing one pair N times is constant: skipped, and counted.
    assert up["bootstrap"]["used"] + up["bootstrap"]["skipped_constant"] == 300


def test_noisy_scores_match_scipy_and_the_interval_is_seeded() -> None:
    rng = np.random.default_rng(0)
    supernet = rng.random(12)
    standalone = supernet + 0.3 * rng.random(12)
    out = rank_stats(standalone, supernet, resamples=400, seed=3)
    tau, rho = stats.kendalltau(supernet, standalone), stats.spearmanr(supernet, standalone)
    assert out["kendall_tau"]["estimate"] == pytest.approx(tau.statistic)
    assert out["kendall_tau"]["p_value"] == pytest.approx(tau.pvalue)
    assert out["spearman_rho"]["estimate"] == pytest.approx(rho.statistic)
    for coef in ("kendall_tau", "spearman_rho"):
        c = out[coef]
        assert -1 <= c["ci_low"] <= c["estimate"] <= c["ci_high"] <= 1
        assert c["ci_high"] - c["ci_low"] > 0.05  # 12 noisy pairs: a real interval
    assert rank_stats(standalone, supernet, resamples=400, seed=3) == out
    assert (
        rank_stats(standalone, supernet, resamples=400, seed=4)["kendall_tau"]["ci_low"] != out["kendall_tau"]["ci_low"]
    )


def test_constant_scores_give_nan_not_an_error_and_short_inputs_are_refused() -> None:
    out = rank_stats([0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4], resamples=50)
    assert math.isnan(out["kendall_tau"]["estimate"]) and math.isnan(out["kendall_tau"]["ci_low"])
    assert out["bootstrap"]["used"] == 0 and out["bootstrap"]["skipped_constant"] == 50
    with pytest.raises(NasplugError, match="at least 3"):
        rank_stats([0.1, 0.2], [0.3, 0.4])
    with pytest.raises(NasplugError, match="NaN"):
        rank_stats([0.1, 0.2, float("nan")], [0.3, 0.4, 0.5])


def test_budget_plot_and_table_take_a_nan_tau_as_written_to_json(tmp_path: Path) -> None:
    from nasplug.layout import RankCorrLayout
    from nasplug.rankcorr.tables import write_tables

    def tau(estimate: float | None) -> dict[str, Any]:
        return {"estimate": estimate, "ci_low": estimate, "ci_high": estimate, "p_value": None}

    rows = [{"step": s, "kendall_tau": tau(e), "spearman_rho": tau(e), "of_ceiling": e,
             "top_k": {"top1_standalone_rank": 1, "top1_regret": 0.0}, "one_off_s": 1.0}
            for s, e in ((10, None), (20, 0.5))]  # None: a constant score
    result = {"archs": 4, "sample": "uniform", "steps": 8, "num_seeds": 2, "metric": "acc", "predictors": [],
              "evaluator": {"heldout_batches": 2}, "noise_ceiling": tau(None), "budget": rows, "eval_cost": []}
    files = write_tables(result, RankCorrLayout(tmp_path))
    assert Path(files["budget_png"]).stat().st_size > 0
    assert "| 10            | nan" in Path(files["budget_md"]).read_text()


def test_top_k_agreement() -> None:
    standalone = [0.9, 0.1, 0.5, 0.7, 0.3]
    assert top_k_agreement(standalone, [5, 1, 3, 4, 2]) == {
        "top1_match": True, "top1_regret": 0.0, "top1_standalone_rank": 1, "overlap": {"1": 1.0, "3": 1.0}}
    worst = top_k_agreement(standalone, [1, 5, 3, 4, 2])  # the supernet prefers the standalone worst
    assert not worst["top1_match"] and worst["top1_standalone_rank"] == 5
    assert worst["top1_regret"] == pytest.approx(0.8)
    assert worst["overlap"]["3"] == pytest.approx(2 / 3)


def test_a_predictor_that_scores_every_arch_alike_picks_nothing() -> None:
    """A tie-break by position is no pick: all-equal scores give an undefined top pick, not "1 of N"."""
    tied = top_k_agreement([0.9, 0.1, 0.5, 0.7, 0.3], [0.04] * 5)
    assert tied["top1_standalone_rank"] is None and tied["top1_regret"] is None and tied["top1_match"] is None
    none = {"estimate": None, "ci_low": None, "ci_high": None}
    row = {"label": "short:100", "kendall_tau": none, "spearman_rho": {"estimate": None}, "top_k": tied,
           "of_ceiling": None, "seconds_per_arch": 1.0, "one_off_s": None}
    table = predictors_table({"archs": 5, "num_seeds": 1, "noise_ceiling": none, "predictors": [row]})
    assert "undefined (all scores equal)" in table and "1 of 5" not in table


# --------------------------------------------------------------------------- a tiny run (conftest.py)


@pytest.fixture(scope="module")
def trained(tiny_run: tuple[Path, Path]) -> dict:
    """The first rank-corr of the tiny run: 4 archs x 5 steps, compared on the MLM loss."""
    from nasplug.rankcorr import rank_correlation

    run_dir, cache = tiny_run
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASPLUG_CACHE", str(cache))
        return rank_correlation(run_dir, archs=4, steps=5, metric="mlm_loss", resamples=300, progress=False)


def _strict_json(path: Path) -> dict:
    def no_nan(name: str) -> None:
        raise AssertionError(f"{path} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=no_nan)


def test_standalone_scoring_equals_the_supernet_evaluator_on_inherited_weights(tiny_run: tuple[Path, Path]) -> None:
    from nasplug.pipeline import RunContext
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.rankcorr import heldout_sums, load_run_recipe, sample_archs
    from nasplug.recipe import Component, SearchConfig
    from nasplug.task import add_sums

    run_dir, _ = tiny_run
    ctx = RunContext(recipe=load_run_recipe(run_dir), run_dir=run_dir, progress=False)
    plugin = SupernetEvaluator(batches=2, batch_size=8, precision="fp32")  # as heldout_sums scores
    evaluator = plugin.build(ctx)
    assert evaluator.caches[0].keep == 10 and len(evaluator.batches) == 2
    assert plugin.build(ctx, memory_hint=3).caches[0].keep == 3, "keeps as many states as the strategy has parents"
    assert SupernetEvaluator(keep=5).build(ctx, memory_hint=3).caches[0].keep == 5, "evaluator.keep wins"
    ctx.recipe.search = SearchConfig(strategy=Component(name="evolution", parents=3))
    assert plugin.build(ctx).caches[0].keep == 10, "the strategy's settings are not read from the recipe"
    archs = sample_archs(ctx.space, 4, seed=5)
    assert len({ctx.space.format(a) for a in archs}) == 4 and all(ctx.space.is_valid(a) for a in archs)
    per_batch = evaluator.evaluate_sums(archs)
    for arch, expected, parts in zip(archs, evaluator.evaluate_batch(archs), per_batch):
        sums = heldout_sums(ctx.task, evaluator.supernet.extract(arch, head="mlm"), evaluator.batches)
        assert sums == parts, "an extracted model scores what the supernet gives its arch, batch by batch"
        got = ctx.task.figures(add_sums(sums))
        assert got["mlm_acc"] == expected["mlm_acc"] and got["mlm_loss"] == expected["mlm_loss"]


class TestSupernetEvaluatorContract(EvaluatorPluginContract):
    """The evaluator-plugin contract for ``supernet``, on the tiny trained run."""

    @pytest.fixture
    def plugin(self) -> Any:
        from nasplug.pipeline.evaluator_plugin import evaluator_plugin
        from nasplug.recipe import Component

        return evaluator_plugin(Component(name="supernet", batches=2, batch_size=8))

    @pytest.fixture
    def ctx(self, tiny_run: tuple[Path, Path]) -> Any:
        from nasplug.pipeline import RunContext
        from nasplug.rankcorr import load_run_recipe

        return RunContext(recipe=load_run_recipe(tiny_run[0]), run_dir=tiny_run[0], progress=False)


def test_rank_corr_end_to_end(tiny_run: tuple[Path, Path], trained: dict) -> None:
    run_dir, _ = tiny_run
    out = run_dir / "rank_corr"
    data = _strict_json(out / "rank_corr.json")
    assert data["archs"] == 4 and len(data["pairs"]) == 4 and data["metric"] == "mlm_loss"
    assert len({p["arch"] for p in data["pairs"]}) == 4
    assert [p["supernet"] for p in data["pairs"]] == [p["supernet_metrics"]["mlm_loss"] for p in data["pairs"]]
    assert data["train_config"]["steps"] == 5 and data["train_config"]["eval_every"] == 0
    assert data["train_config"]["warmup_steps"] == 1  # 20 of 100 retrain steps, scaled to 5
    for coef in ("kendall_tau", "spearman_rho"):
        c = data[coef]
        assert -1 <= c["estimate"] <= 1
        assert c["ci_low"] <= c["estimate"] + 1e-12 and c["estimate"] <= c["ci_high"] + 1e-12
        assert 0 <= c["p_value"] <= 1
    assert data["bootstrap"]["used"] > 0
    # Top-k on a loss: the best is the lowest; the regret of the supernet's pick is >= 0.
    best_sn = min(data["pairs"], key=lambda p: (p["supernet"], p["index"]))
    assert data["top_k"]["top1_regret"] == pytest.approx(
        best_sn["standalone"] - min(p["standalone"] for p in data["pairs"])
    )
    assert data["top_k"]["top1_regret"] >= 0
    for pair in data["pairs"]:
        folder = RankCorrLayout(out).standalone(arch_key(pair["arch_dict"]), 5, 0)
        assert (folder / "model.safetensors").is_file() and (folder / "score.json").is_file()
        assert not (folder / "checkpoint").exists()  # removed once scored
    assert (out / "rank_corr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "rank_corr.md").read_text()
    assert "Kendall tau" in md and data["pairs"][0]["arch"] in md


def test_resume_skips_trained_archs_and_a_larger_n_trains_only_the_new_ones(
        tiny_run: tuple[Path, Path], trained: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import nasplug.pipeline.standalone
    from nasplug.rankcorr import rank_correlation

    run_dir, _ = tiny_run
    out = run_dir / "rank_corr"
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("standalone/*/*/*/model.safetensors")}

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("an arch was trained again")

    monkeypatch.setattr(nasplug.pipeline.standalone, "train", no_training)
    again = rank_correlation(run_dir, archs=4, steps=5, metric="mlm_loss", resamples=300, progress=False)
    assert [p["standalone"] for p in again["pairs"]] == [p["standalone"] for p in trained["pairs"]]
    # The default metric on the same trained models (the tiny models may tie: NaN -> null).
    acc = rank_correlation(run_dir, archs=4, steps=5, resamples=50, progress=False)
    assert acc["metric"] == "mlm_acc"
    tau = _strict_json(out / "rank_corr.json")["kendall_tau"]
    assert tau["estimate"] is None or -1 <= tau["estimate"] <= 1
    assert {p: p.stat().st_mtime_ns for p in out.glob("standalone/*/*/*/model.safetensors")} == mtimes
    # Other held-out batches (--batches 1, not the recipe's 2): the trained models are scored again, not reused.
    one = rank_correlation(run_dir, archs=4, steps=5, metric="mlm_loss", resamples=50, progress=False, num_batches=1)
    for new, old in zip(one["pairs"], trained["pairs"]):
        assert new["supernet"] != old["supernet"] and new["standalone"] != old["standalone"]
    first = RankCorrLayout(out).standalone(arch_key(trained["pairs"][0]["arch_dict"]), 5, 0)
    assert json.loads((first / "score.json").read_text())["scored_with"]["heldout"]["batches"] == 1
    back = rank_correlation(run_dir, archs=4, steps=5, metric="mlm_loss", resamples=50, progress=False)
    with pytest.raises(NasplugError, match="was trained on other data"):  # other data: refused, not rescored
        rank_correlation(run_dir, archs=4, steps=5, metric="mlm_loss", resamples=50, progress=False,
                         overrides=["task.corpus.synthetic_documents=150"])
    assert [p["standalone"] for p in back["pairs"]] == [p["standalone"] for p in trained["pairs"]]
    assert {p: p.stat().st_mtime_ns for p in out.glob("standalone/*/*/*/model.safetensors")} == mtimes

    monkeypatch.undo()
    calls = []
    real = nasplug.pipeline.standalone.train
    monkeypatch.setattr(nasplug.pipeline.standalone, "train", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    bigger = run_dir / "rank_corr_5"
    shutil.copytree(out, bigger)
    five = rank_correlation(run_dir, archs=5, steps=5, metric="mlm_loss", resamples=50, progress=False, out=bigger)
    new = RankCorrLayout(bigger).standalone(arch_key(five["pairs"][4]["arch_dict"]), 5, 0)
    assert [Path(c) for c in calls] == [new], "only the new arch is trained"
    assert [p["arch"] for p in five["pairs"][:4]] == [p["arch"] for p in trained["pairs"]]


def test_bad_inputs_are_one_line_errors(tiny_run: tuple[Path, Path], trained: dict, tmp_path: Path) -> None:
    from nasplug.rankcorr import rank_correlation

    run_dir, _ = tiny_run
    with pytest.raises(NasplugError, match="no such run directory"):
        rank_correlation(tmp_path / "nope", archs=4, steps=5)
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(NasplugError, match="not a nasplug run directory"):
        rank_correlation(bare, archs=4, steps=5)
    shutil.copy(run_dir / "recipe.yaml", bare / "recipe.yaml")
    with pytest.raises(NasplugError, match="no trained supernet"):
        rank_correlation(bare, archs=4, steps=5)
    with pytest.raises(NasplugError, match="--archs"):
        rank_correlation(run_dir, archs=2, steps=5)
    with pytest.raises(NasplugError, match="--steps"):
        rank_correlation(run_dir, archs=4, steps=0)
    with pytest.raises(NasplugError, match="--metric.*allowed: mlm_acc, mlm_loss"):
        rank_correlation(run_dir, archs=4, steps=5, metric="disc_acc")
    with pytest.raises(NasplugError, match="earlier rank-corr"):
        rank_correlation(run_dir, archs=4, steps=5, resume=False)
    with pytest.raises(NasplugError, match="rank-corr training settings: lr"):
        rank_correlation(run_dir, archs=4, steps=5, train_overrides={"lr": -1})
    # --set reaches the training settings (retrain.lr), and a space unlike the trained one is named.
    with pytest.raises(NasplugError, match="other settings \\(lr differ"):
        rank_correlation(run_dir, archs=4, steps=5, overrides=["retrain.lr=0.01"], progress=False)
    with pytest.raises(NasplugError, match="cannot load weights.*--set space.size=null"):
        rank_correlation(run_dir, archs=4, steps=5, overrides=["space.ffn=128"], progress=False)


def test_cli_prints_the_table_and_errors_are_nasplug_errors(tiny_run: tuple[Path, Path], trained: dict,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from nasplug.rankcorr.cli import add_rank_corr_parser, cmd_rank_corr

    parser = argparse.ArgumentParser(prog="nasplug")
    add_rank_corr_parser(parser.add_subparsers(dest="command"))
    run_dir, _ = tiny_run
    args = parser.parse_args(["rank-corr", str(run_dir), "--archs", "4", "--steps", "5", "--metric", "mlm_loss",
                              "--resamples", "100"])
    args.quiet = True
    assert cmd_rank_corr(args) == 0
    printed = capsys.readouterr().out
    assert "Kendall tau (supernet vs standalone training):" in printed and "supernet mlm_loss" in printed
    assert "rank_corr.md" in printed
    bad = parser.parse_args(["rank-corr", str(run_dir), "--archs", "4", "--steps", "5", "--set", "nonsense"])
    with pytest.raises(NasplugError, match="KEY=VALUE"):
        cmd_rank_corr(bad)


def test_without_a_retrain_section_the_supernet_training_settings_are_used() -> None:
    """A few-shot supernet section (sampler, split) is not a set of training settings: only
    the TrainConfig fields carry over to the standalone runs."""
    from nasplug.rankcorr import standalone_train_config
    from nasplug.recipe import validate_recipe

    recipe = validate_recipe({"name": "r", "space": {"name": "toy", "slots": 4}, "evaluator": {"name": "toy"},
                              "search": {"budget": 5},
                              "supernet": {"steps": 100, "lr": 2e-3, "warmup_steps": 20, "sampler": "fair",
                                           "split": {"choice": "L0", "after": 0.5}}})
    cfg = standalone_train_config(recipe, 10)
    assert (cfg.steps, cfg.lr, cfg.warmup_steps, cfg.eval_every) == (10, 2e-3, 2, 0)
