"""What ``rank_corr.json`` holds: the pairs, the supernet's tau against the seed mean, the noise
ceiling, one row per predictor, the training-budget and the evaluation-cost curves.

Every coefficient compares "higher is better" vectors: a metric to minimise (a loss) and the
scores that predict it are negated first, so a good predictor has a positive tau whichever
way the metric points, and regrets are >= 0 in the metric's units.
"""

from __future__ import annotations

from typing import Any

from nasplug.rankcorr.plan import RankCorrPlan
from nasplug.rankcorr.scoring import Scores
from nasplug.rankcorr.stats import noise_ceiling, predictor_stats, rank_stats, top_k_agreement


class _Judge:
    """Scores predictors against the standalone reference of one plan."""

    def __init__(self, plan: RankCorrPlan, per_seed: list[list[float]]) -> None:
        self.sign = -1.0 if plan.direction == "minimize" else 1.0
        self.request = plan.request
        n = len(per_seed[0])
        self.reference = [sum(seed[i] for seed in per_seed) / len(per_seed) for i in range(n)]
        self.good = [self.sign * v for v in self.reference]
        self.good_seeds = [[self.sign * v for v in seed] for seed in per_seed]
        self.ceiling = noise_ceiling(self.good_seeds, resamples=self.request.resamples, seed=self.request.seed)

    def __call__(self, values: list[float], higher_is_better: bool) -> dict[str, Any]:
        good = values if higher_is_better else [-v for v in values]
        return predictor_stats(good, self.good, self.good_seeds, self.ceiling["estimate"],
                               resamples=self.request.resamples, seed=self.request.seed)


def result_record(plan: RankCorrPlan, scores: Scores) -> dict[str, Any]:
    """The content of ``rank_corr.json`` but the wall time and the file names."""
    request, metric, n = plan.request, plan.metric, len(scores.archs)
    per_seed = [[f[metric] for f in seed] for seed in scores.per_seed]
    judge = _Judge(plan, per_seed)
    x = [s[metric] for s in scores.supernet]
    rows = [{**row, **judge(row["values"], row["higher_is_better"])} for row in scores.rows]
    space = plan.ctx.space
    pairs = [{"index": i, "arch": scores.texts[i], "arch_dict": scores.archs[i], "supernet": x[i],
              "params": space.metrics(scores.archs[i]).get("params"),
              "standalone": judge.reference[i], "standalone_seeds": [seed[i] for seed in per_seed],
              "supernet_metrics": scores.supernet[i],
              "standalone_metrics": {k: sum(seed[i][k] for seed in scores.per_seed) / len(scores.per_seed)
                                     for k in scores.per_seed[0][i]}}
             for i in range(n)]
    higher = plan.direction == "maximize"
    eval_cost = [{"tag": v["tag"], "description": v["description"],
                  "curve": [{"batches": p["batches"], "seconds_per_arch": p["seconds_per_arch"], "values": p["values"],
                             **judge(p["values"], higher)} for p in v["curve"]]}
                 for v in scores.eval_cost]
    return {
        "run_dir": str(request.run_dir), "metric": metric, "task": plan.ctx.task.name, "archs": n,
        "steps": request.steps, "seed": request.seed, "num_seeds": request.num_seeds,
        "sample": "uniform" if request.stratify is None else f"stratified by {request.stratify}",
        "overrides": list(request.overrides), "train_config": plan.train.model_dump(mode="json"),
        "evaluator": {**plan.evaluator_kwargs, "heldout_batches": scores.heldout_batches},
        "direction": plan.direction, "pairs": pairs,
        **rank_stats(judge.reference, x, resamples=request.resamples, seed=request.seed),
        "top_k": top_k_agreement(judge.good, [judge.sign * v for v in x]),
        "noise_ceiling": judge.ceiling, "supernet_vs_seeds": rows[0]["tau_vs_seeds"],
        "of_ceiling": rows[0]["of_ceiling"], "predictors": rows,
        "budget": _budget(plan, rows) if request.checkpoints else [],
        "eval_cost": eval_cost,
    }


def _budget(plan: RankCorrPlan, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This run's supernet rows by training step: each snapshot, then the final weights."""
    final = plan.ctx.recipe.supernet.steps
    kept = [r for i, r in enumerate(rows) if r["kind"] == "supernet" and (i == 0 or r["step"] is not None)]
    return sorted(({**r, "step": r["step"] if r["step"] is not None else final} for r in kept), key=lambda r: r["step"])
