"""The retrain stage: the found arch and the baselines, trained from scratch for the same steps.

``found`` is the search's best arch (or the recipe's fixed ``arch``); each baseline is an arch
in the space's text form (``retrain.baselines``). Each model trains standalone with fresh
weights into ``run_dir/retrain/<name>/`` (``retrain/<name>/seed-<k>/`` for each of several
``retrain.seeds``) and resumes from its own checkpoint. After training, a model is scored on
the task's test split when it has one (``test.json``, see :mod:`nasplug.pipeline.standalone`),
its folder is exported for other tools (:func:`~nasplug.pipeline.export.export_folder`), and
``retrain/<name>/summary.json`` gives the mean and standard deviation over the seeds. A model
is done when its training result, its test figures and its export are all there: a kill
during the export is redone on resume, without training again. Which models and seeds there
are is :mod:`nasplug.pipeline.retrained`'s business.
"""

from __future__ import annotations

import logging
import statistics
from typing import Any

from nasplug import distributed
from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json
from nasplug.oneshot.build import build_model
from nasplug.oneshot.config import TrainConfig
from nasplug.pipeline.context import RunContext
from nasplug.pipeline.export import export_folder, exported
from nasplug.pipeline.retrained import baseline_archs, retrain_archs, seed_runs
from nasplug.pipeline.stage import RunView, Section, Stage
from nasplug.pipeline.standalone import folder_state, read_run, train_model
from nasplug.pipeline.supernet import check_fit

log = logging.getLogger(__name__)

class RetrainStage(Stage):
    name = "retrain"
    multi_process = True

    def applies(self, recipe: Any) -> bool:
        return recipe.retrain is not None

    def check(self, ctx: RunContext) -> None:
        _ = ctx.retrain_task
        seeds = ctx.recipe.retrain_config().seeds
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise NasplugError(f"retrain.seeds: {seeds} repeats a seed")
        baseline_archs(ctx)
        if ctx.recipe.retrain_config().pareto is not None and (ctx.recipe.search is None or ctx.recipe.arch is not None
                                                               or len(ctx.objectives) < 2):
            raise NasplugError("retrain.pareto: needs a search with two or more search.objectives (a Pareto front); "
                               "remove retrain.pareto or name the objectives")

    def models(self, ctx: RunContext) -> dict[str, tuple[Any, Any]]:
        """A fresh standalone model (of a sampled arch: the found one is not known yet)."""
        import random

        arch = ctx.space.sample(random.Random(0)) if ctx.recipe.arch is None else ctx.space.parse(ctx.recipe.arch)
        return {"retrained model": (lambda: build_model(ctx.space.unconstrained(), arch, ctx.retrain_task, seed=0),
                                    ctx.retrain_task)}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        cfg = ctx.recipe.retrain_config()
        task = ctx.prepared_task(ctx.retrain_task)
        free = ctx.space.unconstrained()  # baselines may lie outside the searched sub-space
        summary: dict[str, Any] = {}
        for name, arch in retrain_archs(ctx).items():
            runs = []
            for init_seed, train_seed, folder_seed in seed_runs(ctx):
                folder = ctx.layout.retrain(name, folder_seed)
                state = folder_state(task, folder, exported=exported(folder))
                if not (state["trained"] and state["tested"] and state["exported"]):
                    sub = "" if folder_seed is None else f" ({folder.name})"
                    log.info("retrain %s%s: %s", name, sub, ctx.space.format(arch))
                    model = build_model(free, arch, task, seed=init_seed)
                    check_fit(task, model, free)
                    train_cfg = TrainConfig.of(cfg, seed=train_seed, precision=ctx.machine.precision_for(cfg.precision))
                    train_model(model, task, train_cfg, folder, state=state, progress=ctx.progress)
                    # also when only the export is missing (a kill during the last one); rank 0 writes
                    distributed.on_main(export_folder, ctx, name, arch, model, folder, seeds=(init_seed, train_seed))
                runs.append(read_run(folder))
            summary[name] = aggregate(runs)
            if cfg.seeds is not None:
                distributed.on_main(atomic_write_json, ctx.layout.retrain_summary(name),
                                    {"arch": ctx.space.format(arch), "seeds": cfg.seeds, **summary[name]})
        return summary

    def report(self, view: RunView) -> Section:
        from nasplug.report.front_retrain import retrained_front_section
        from nasplug.report.sections import retrain_section

        lines, table = retrain_section(view)
        return lines + retrained_front_section(view), table


def aggregate(runs: list[dict[str, float]]) -> dict[str, Any]:
    """One run's figures as they are; several: ``mean`` / ``std`` per figure and the runs."""
    if len(runs) == 1:
        return runs[0]
    keys = [k for k in runs[0] if all(k in r for r in runs)]
    return {"mean": {k: statistics.fmean(r[k] for r in runs) for k in keys},
            "std": {k: statistics.stdev(r[k] for r in runs) for k in keys}, "runs": runs}
