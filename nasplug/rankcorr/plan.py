"""What a ``nasplug rank-corr`` call will do, decided and checked before anything is trained.

:func:`plan_rank_corr` reads the run (its recipe, with ``--set`` overrides), checks every
argument and folder, and returns a :class:`RankCorrPlan`; nothing is written and no data is
prepared, so a bad argument costs nothing. :func:`nasplug.rankcorr.scoring.score_plan` then
carries the plan out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.layout import RankCorrLayout, RunLayout
from nasplug.rankcorr.predictors import Predictor, parse_predictors
from nasplug.rankcorr.sampling import sample_archs, stratified_archs
from nasplug.rankcorr.standalone import standalone_train_config


@dataclass(frozen=True)
class RankCorrRequest:
    """The arguments of :func:`nasplug.rankcorr.rank_correlation` (see its docstring)."""

    run_dir: Path
    archs: int
    steps: int
    seed: int = 0
    num_batches: int | None = None
    resume: bool = True
    progress: bool = True
    train_overrides: dict[str, Any] | None = None
    metric: str | None = None
    out: Path | None = None
    resamples: int = 2000
    keep_checkpoints: bool = False
    overrides: tuple[str, ...] = ()
    models: Path | None = None
    num_seeds: int = 1
    predictors: tuple[str, ...] = ()
    checkpoints: bool = False
    compare: tuple[Path, ...] = ()
    eval_cost: bool = False
    stratify: str | None = None
    jobs: int = 1


@dataclass(frozen=True)
class SupernetSource:
    """One supernet the archs are scored with: ``label`` in the tables, its run, and the
    weights folder (None: the run's final ``supernet/``), ``step`` for a snapshot."""

    label: str
    ctx: Any
    folder: Path | None = None
    step: int | None = None


@dataclass
class RankCorrPlan:
    """A checked rank-corr call: the run's context, the compared metric, the standalone
    training settings, the archs, the predictors and where everything goes."""

    request: RankCorrRequest
    ctx: Any  # the run's RunContext (its space and task; the supernet is loaded by the evaluator)
    metric: str
    direction: str
    train: Any  # TrainConfig of each standalone model
    out_dir: Path
    models_dir: Path
    evaluator_kwargs: dict[str, Any] = field(default_factory=dict)
    archs: list[Arch] = field(default_factory=list)
    supernets: list[SupernetSource] = field(default_factory=list)  # this run's first, then snapshots, then --compare
    predictors: list[Predictor] = field(default_factory=list)  # the cheaper predictors (--predictors)

    @property
    def layout(self) -> RankCorrLayout:
        return RankCorrLayout(self.out_dir, self.models_dir)


def load_run_recipe(run_dir: Path, overrides: Sequence[str] = ()) -> Any:
    """The validated ``Recipe`` of a run directory (its ``recipe.yaml``), with ``--set``
    overrides (``a.b=value``) applied, e.g. ``retrain.lr=0.001``."""
    from nasplug.recipe import apply_override, validate_recipe
    from nasplug.report import load_run

    if not run_dir.is_dir():
        raise NasplugError(f"RUN_DIR: no such run directory: {run_dir}")
    raw, _ = load_run(run_dir)
    for override in overrides:
        apply_override(raw, override)
    return validate_recipe(raw, source=str(RunLayout(run_dir).recipe))


def evaluator_kwargs(recipe: Any, num_batches: int | None) -> dict[str, Any]:
    """The run's ``supernet`` evaluator settings (recipe keys), with ``num_batches`` as ``batches``
    (``--batches``) when given, checked against the evaluator's signature (nothing built);
    NasplugError for another evaluator or a bad setting."""
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.registry import EVALUATORS, check_kwargs

    spec = recipe.evaluator
    kwargs: dict[str, Any] = {}
    if spec is not None:
        if EVALUATORS.get(spec.name) is not SupernetEvaluator:
            raise NasplugError(
                f"evaluator: rank-corr compares against the 'supernet' evaluator; the run uses {spec.name!r}"
            )
        kwargs = spec.kwargs()
    if num_batches is not None:
        kwargs["batches"] = num_batches
    check_kwargs(SupernetEvaluator, kwargs, field="evaluator")
    return kwargs


def _check_numbers(request: RankCorrRequest) -> None:
    if not 1 <= request.jobs <= 256:
        raise NasplugError(f"--jobs: must be between 1 and 256, got {request.jobs}")
    if not 1 <= request.num_seeds <= 100:
        raise NasplugError(f"--seeds: must be between 1 and 100, got {request.num_seeds}")
    if not 3 <= request.archs <= 10_000:
        raise NasplugError(f"--archs: rank correlation needs between 3 and 10,000 archs, got {request.archs}")
    if not 1 <= request.steps <= 10**9:
        raise NasplugError(f"--steps: must be between 1 and 1,000,000,000, got {request.steps}")
    if not 10 <= request.resamples <= 10**6:
        raise NasplugError(f"--resamples: must be between 10 and 1,000,000, got {request.resamples}")


def compared_metric(ctx: Any, task: Any, metric: str | None, field: str = "--metric") -> str:
    """``--metric``, else the search's first objective the task measures, else the task's primary one."""
    if metric is None:
        objectives = ctx.objectives if ctx.recipe.search is not None else ()
        metric = next((o.metric for o in objectives if o.metric in task.metrics), task.primary_metric())
    if metric not in task.metrics:
        raise NasplugError(f"{field}: {metric!r} is not measured by task {task.name!r}; "
                           f"allowed: {', '.join(task.metrics)}")
    return metric


def plan_rank_corr(request: RankCorrRequest) -> RankCorrPlan:
    """Check the request against the run and decide everything; writes nothing.

    Raises:
        NasplugError: no run directory, no trained supernet, N < 3, S < 1, a metric the
            task does not measure, an unknown predictor, a --compare run of another space or
            task, or an output folder that holds another experiment.
    """
    from nasplug.pipeline.identity import check_out_path

    _check_numbers(request)
    ctx = _run_context(request.run_dir, request.overrides, request.progress)
    recipe = ctx.recipe
    metric = compared_metric(ctx, ctx.task, request.metric)
    train = standalone_train_config(recipe, request.steps, request.train_overrides)
    train = train.model_copy(update={"precision": ctx.machine.precision_for(train.precision)})  # the run's auto
    out_dir = request.out if request.out is not None else ctx.layout.rank_corr
    models_dir = request.models if request.models is not None else out_dir
    check_out_path(out_dir, "--out")
    check_out_path(models_dir, "--models")
    if not request.resume and RankCorrLayout(out_dir, models_dir).has_models():
        raise NasplugError(f"{models_dir}: holds models of an earlier rank-corr; resume it or pass another --out")
    predictors = parse_predictors(request.predictors, ctx.space, request.steps)
    supernets = [SupernetSource("supernet", ctx), *_snapshots(ctx, request.checkpoints),
                 *(_compared(path, ctx, request) for path in request.compare)]
    if request.stratify is None:
        archs = sample_archs(ctx.space, request.archs, request.seed)
    else:
        archs = stratified_archs(ctx.space, request.archs, request.seed, request.stratify)
    return RankCorrPlan(request, ctx, metric, ctx.task.metrics[metric], train, out_dir, models_dir,
                        evaluator_kwargs(recipe, request.num_batches), archs, supernets, predictors)


def _run_context(run_dir: Path, overrides: Sequence[str], progress: bool) -> Any:
    """The context of a run whose supernet stage has finished (its recipe with ``overrides``)."""
    from nasplug.pipeline import RunContext

    recipe = load_run_recipe(run_dir, overrides)
    if recipe.supernet is None:
        raise NasplugError(f"{run_dir}: the run's recipe has no supernet section; nothing to rank-correlate")
    weights = RunLayout(run_dir).supernet_weights
    if not weights.is_file():
        raise NasplugError(f"{run_dir}: no trained supernet ({weights} is missing); run the supernet stage first")
    return RunContext(recipe=recipe, run_dir=run_dir, resume=True, progress=progress)


def _snapshots(ctx: Any, wanted: bool) -> list[SupernetSource]:
    """The run's kept supernet snapshots before its last step (``--checkpoints``)."""
    if not wanted:
        return []
    final = ctx.recipe.supernet.steps
    found = {step: folder for step, folder in ctx.layout.supernet_snapshots().items() if step < final}
    if not found:
        raise NasplugError(f"--checkpoints: {ctx.run_dir} kept no supernet snapshots before step {final}; train the "
                           "supernet with supernet.snapshots (e.g. [250, 500]) to get a training-budget curve")
    return [SupernetSource(f"supernet@{step}", ctx, folder, step) for step, folder in sorted(found.items())]


def _compared(path: Path, ctx: Any, request: RankCorrRequest) -> SupernetSource:
    """Another run's trained supernet (``--compare``): same space and task, scored with this
    run's evaluator settings on the same held-out batches."""
    other = _run_context(path, (), request.progress)
    for key in ("space", "task"):
        mine, theirs = getattr(ctx.recipe, key), getattr(other.recipe, key)
        if (mine.model_dump() if mine else None) != (theirs.model_dump() if theirs else None):
            raise NasplugError(f"--compare: {path} has another {key} than {ctx.run_dir}; its supernet cannot be "
                               "judged against the same standalone models")
    return SupernetSource(f"{path.name} ({_describe_training(other.recipe.supernet)})", other)


def _describe_training(cfg: Any) -> str:
    """``uniform, 1000 steps`` / ``fair, 333 steps`` / ``uniform, split L00 after 0.5, 1000 steps``."""
    split = f", split {cfg.split.choice} after {cfg.split.after:g}" if cfg.split is not None else ""
    return f"{cfg.sampler}{split}, {cfg.steps} steps"
