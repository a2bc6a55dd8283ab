"""The ``rank_corr`` stage: ``nasplug rank-corr`` as a stage of a run, set by the recipe's
``rank_corr:`` section, so one recipe trains a supernet and judges it::

    rank_corr:
      archs: 16            # N distinct archs
      steps: 800           # S standalone steps per arch
      seeds: 2             # K seeds per arch (>= 2: the noise ceiling)
      predictors: [params, synflow, grad_norm, snip, jacov, "short:100"]
      checkpoints: true    # every supernet.snapshots step: the training-budget curve
      eval_cost: true      # tau against held-out batches, precision, recalibration
      stratify: params     # archs stratified over an analytic metric (default: uniform draws)
      jobs: 2              # standalone models trained in 2 processes

The keys are :func:`nasplug.rankcorr.rank_correlation`'s arguments (``batches`` is its
``num_batches``). It runs after the supernet stage and writes ``rank_corr/`` in the run.
Every setting may change on ``--resume`` (``--stages rank_corr`` runs it again): trained
models and scores are kept with the settings they were made with and reused where those match.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nasplug.errors import NasplugError
from nasplug.pipeline.stage import RunView, Section, Stage


class RankCorrConfig(BaseModel):
    """The ``rank_corr:`` section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)

    archs: int = Field(ge=3, le=10_000)
    steps: int = Field(ge=1, le=10**9)
    num_seeds: int = Field(1, ge=1, le=100, alias="seeds")  # the recipe key seeds: a count (glossary)
    seed: int = Field(0, ge=0, lt=2**63)
    batches: int | None = Field(None, ge=1, le=10**6)
    metric: str | None = Field(None, min_length=1, max_length=200)
    predictors: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list,
                                                                                   max_length=100)
    checkpoints: bool = False
    compare: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(default_factory=list, max_length=100)
    eval_cost: bool = False
    stratify: str | None = Field(None, min_length=1, max_length=200)
    resamples: int = Field(2000, ge=10, le=10**6)
    models: str | None = Field(None, min_length=1, max_length=4096)
    jobs: int = Field(1, ge=1, le=256)


def rank_corr_config(raw: Any) -> RankCorrConfig:
    """The validated ``rank_corr:`` section; NasplugError naming the key."""
    from nasplug.recipe import describe_error

    try:
        return RankCorrConfig.model_validate(raw)
    except ValidationError as exc:
        raise NasplugError(f"rank_corr.{describe_error(exc)}") from None


class RankCorrStage(Stage):
    """Ranks archs with the run's trained supernet and with standalone training (and the
    predictors the section names); writes ``rank_corr/``."""

    name = "rank_corr"
    position = 15.0  # after the supernet stage, before the search: it needs the supernet only
    outputs = ("rank_corr",)
    incremental = True  # named in --stages it runs again, reusing what its settings still match
    may_change = ("rank_corr",)  # every cached model and score names the settings it was made with
    section = True

    def applies(self, recipe: Any) -> bool:
        return recipe.section("rank_corr") is not None and recipe.supernet is not None and recipe.arch is None

    def check(self, ctx: Any) -> None:
        """The section's keys, and what they name in the recipe: the metric, the predictors,
        the stratifying metric, snapshots to rank with, the supernet evaluator."""
        from nasplug.rankcorr.plan import compared_metric, evaluator_kwargs
        from nasplug.rankcorr.predictors import parse_predictors

        cfg = rank_corr_config(ctx.recipe.section("rank_corr"))
        compared_metric(ctx, ctx.task, cfg.metric, field="rank_corr.metric")
        parse_predictors(cfg.predictors, ctx.space, cfg.steps, field="rank_corr.predictors")
        evaluator_kwargs(ctx.recipe, cfg.batches)
        if cfg.checkpoints and not ctx.recipe.supernet.snapshots:
            raise NasplugError("rank_corr.checkpoints: the supernet keeps no snapshots; set supernet.snapshots "
                               "(e.g. [250, 500]) or leave checkpoints out")
        if cfg.stratify is not None:
            import random

            from nasplug.rankcorr.sampling import check_stratify

            check_stratify(ctx.space, cfg.stratify, ctx.space.sample(random.Random(0)), field="rank_corr.stratify")

    def run(self, ctx: Any) -> dict[str, Any]:
        from nasplug.rankcorr import rank_correlation

        cfg = rank_corr_config(ctx.recipe.section("rank_corr"))
        result = rank_correlation(ctx.run_dir, cfg.archs, cfg.steps, seed=cfg.seed, num_batches=cfg.batches,
                                  progress=ctx.progress, metric=cfg.metric, resamples=cfg.resamples,
                                  models=cfg.models, num_seeds=cfg.num_seeds, predictors=cfg.predictors,
                                  checkpoints=cfg.checkpoints, compare=cfg.compare, eval_cost=cfg.eval_cost,
                                  stratify=cfg.stratify, jobs=cfg.jobs)
        return stage_summary(result)

    def report(self, view: RunView) -> Section:
        from nasplug.layout import RankCorrLayout
        from nasplug.rankcorr.outputs import summary_lines
        from nasplug.rankcorr.tables import predictors_table
        from nasplug.runfiles import read_json

        result = read_json(RankCorrLayout(view.layout.rank_corr).output("rank_corr", "json"))
        if not isinstance(result, dict) or "kendall_tau" not in result:
            return [], ""
        lines = ["## Can the supernet be trusted? (rank correlation)", ""]
        lines += [f"- {line}" for line in summary_lines(result)]
        table = predictors_table(result) if len(result.get("predictors") or []) > 1 else ""
        return [*lines, "", table, "", "Details: `rank_corr/rank_corr.md`.", ""], table


def stage_summary(result: dict[str, Any]) -> dict[str, Any]:
    """What ``stages/rank_corr.json`` keeps of a result: the headline figures, as strict JSON
    (an undefined tau, e.g. of a predictor scoring every arch alike, is null, not NaN)."""
    from nasplug.rankcorr.outputs import clean_json

    return clean_json({"kendall_tau": result["kendall_tau"],
                       "noise_ceiling": {k: result["noise_ceiling"][k] for k in ("estimate", "ci_low", "ci_high")},
                       "of_ceiling": result["of_ceiling"],
                       "predictors": {r["label"]: r["kendall_tau"]["estimate"] for r in result["predictors"]}})
