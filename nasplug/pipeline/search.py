"""The search stage: run the recipe's strategy against its evaluator into trials.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.evaluate import Closeable
from nasplug.io import atomic_write_json
from nasplug.layout import RunLayout
from nasplug.objectives import reference_values
from nasplug.pipeline.context import RunContext, build_constraints, build_strategy
from nasplug.pipeline.evaluator_plugin import evaluator_plugin
from nasplug.pipeline.stage import RunView, Section, Stage
from nasplug.progress import progress_bar
from nasplug.search import SearchResult, search
from nasplug.trials import Trial, TrialLog


def write_search_plots(result: SearchResult, space: Any, run_dir: Any, top_k: int = 20) -> None:
    """search_curve.png (best so far against evaluations) and top_choices.png (which option
    the best archs pick at each position)."""
    from nasplug.report import plots

    if not result.scored:
        return
    layout = RunLayout(run_dir)
    plots.search_curve(result, layout.plot(layout.SEARCH_CURVE_PLOT), title=f"search ({result.metric})")
    top = [t.model_arch for t in result.top(top_k)]
    plots.choice_frequency(top, space.choices(), layout.plot(layout.TOP_CHOICES_PLOT),
                           title=f"choices of the top {len(top)} architectures by position")


class SearchStage(Stage):
    name = "search"
    multi_process = True

    def applies(self, recipe: Any) -> bool:
        return recipe.search is not None and recipe.arch is None

    def check(self, ctx: RunContext) -> None:
        """The strategy and constraints are built (cheap, pure Python) and the evaluator's
        settings checked (a recipe's ``module:attr`` is refused before anything is called or
        written), so a typo fails before the supernet trains."""
        cfg = ctx.recipe.search_config()
        build_strategy(cfg.strategy, ctx.space, seed=ctx.recipe.seed, objectives=ctx.objectives)
        reference_values(ctx.objectives, cfg.reference_point)
        build_constraints(cfg.constraints, ctx.space)
        evaluator_plugin(ctx.recipe.evaluator).check(ctx)  # e.g. the metric is one the task measures

    def models(self, ctx: RunContext) -> dict[str, tuple[Any, Any]]:
        """The trained supernet, when the evaluator scores archs with its inherited weights."""
        if ctx.recipe.supernet is None or ctx.recipe.task is None:
            return {}
        if not evaluator_plugin(ctx.recipe.evaluator).needs_context:  # it reads what earlier stages wrote
            return {}
        from nasplug.oneshot.build import build_supernet

        return {"supernet": (lambda: build_supernet(ctx.space, seed=ctx.recipe.seed), ctx.task)}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        cfg = ctx.recipe.search_config()
        space = ctx.space
        strategy = build_strategy(cfg.strategy, space, seed=ctx.recipe.seed, objectives=ctx.objectives)
        constraints = build_constraints(cfg.constraints, space)
        evaluator = evaluator_plugin(ctx.recipe.evaluator).build(ctx, strategy.memory_hint())
        bar = progress_bar(total=cfg.budget, desc="search", unit="arch", enabled=ctx.progress)

        def progress(trial: Trial, result: SearchResult) -> None:
            if trial.scored:
                bar.update(1)
                best = result.best
                if best is not None:
                    bar.set_postfix({result.metric: f"{best.score:.4g}"}, refresh=False)

        try:
            result = search(strategy, evaluator, cfg.budget, space=space, constraints=constraints,
                            objectives=ctx.objectives, archs_per_ask=cfg.archs_per_ask, log_path=ctx.layout.trials,
                            resume=ctx.resume, callbacks=[progress])
        finally:
            bar.close()
            if isinstance(evaluator, Closeable):  # it may hold memory (kept hidden states)
                evaluator.close()
        ctx.extras["search"] = result
        from nasplug import distributed

        # rank 0 holds the result and writes it; a failed write stops every rank
        return distributed.on_main(_write_outputs, result, space, cfg, ctx.run_dir) or {}

    def extends(self, ctx: RunContext) -> bool:
        """A larger ``search.budget`` continues a finished search from its log (as adding trials
        to an Optuna study does); a budget below the trials scored already is refused."""
        search = ctx.recipe.search
        assert search is not None  # applies() said so
        budget = search.budget
        record = ctx.layout.read_stage(self.name)
        summary = record.get("summary") if isinstance(record, dict) else None
        if isinstance(summary, dict):
            scored = _count(summary.get("ok")) + _count(summary.get("cached"))
            searched_for = _count(summary.get("budget"), default=scored)  # stops early: the strategy ran out
        else:
            scored = sum(t.scored for t in TrialLog(ctx.layout.trials).read()) if ctx.layout.trials.is_file() else 0
            searched_for = budget
        if budget < scored:
            raise NasplugError(f"search.budget: {budget} is below the {scored} architectures the search in "
                               f"{ctx.run_dir} has scored already; a search is extended, never cut: set it to at least "
                               f"{scored} (or use --out for a new run)")
        if record is None or budget <= searched_for:
            return False
        found = ctx.layout.retrain("found")
        if ctx.recipe.retrain is not None and found.exists():
            raise NasplugError(f"search.budget: {budget} would extend the finished search ({scored} scored), but its "
                               f"best architecture was retrained already ({found}) and a longer search may find "
                               "another: search longer in a new run (--out)")
        return True

    def report(self, view: RunView) -> Section:
        from nasplug.report.sections import search_section

        return search_section(view)


def _write_outputs(result: SearchResult, space: Any, cfg: Any, run_dir: Path) -> dict[str, Any]:
    """``top.json`` and the plots of a finished search; returns the stage summary."""
    top = [{"rank": i + 1, "arch": t.model_arch, "text": space.format(t.model_arch), "score": t.score,
            "metrics": t.metrics} for i, t in enumerate(result.top(cfg.top_k))]
    atomic_write_json(RunLayout(run_dir).top, top)
    write_search_plots(result, space, run_dir, top_k=max(cfg.top_k, 20))
    counts = {s: sum(t.status == s for t in result.trials) for s in ("ok", "cached", "rejected", "failed")}
    best = result.best
    summary = {"trials": len(result.trials), **counts, "best_score": None if best is None else best.score,
               "best_arch": None if best is None else space.format(best.model_arch), "budget": cfg.budget}
    if len(result.objectives) > 1 and result.scored:
        from nasplug.report.front import write_front

        front = write_front(result, space.format, run_dir, cfg.reference_point)
        summary.update(front_size=len(front["front"]), hypervolume=front["hypervolume"])
    return summary


def _count(value: Any, default: int = 0) -> int:
    """A count from a stage record (written by this module; anything else counts as ``default``)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
