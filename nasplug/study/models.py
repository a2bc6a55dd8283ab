"""Training the study's models: every (row, arch, seed) once, resumable.

A run's folder is ``study/models/<row>/<i>-<arch>/seed-<k>/``; it is done when its
``result.json`` (training), ``test.json`` (when the task has a test split) and
``downstream.json`` (when a downstream stage such as GLUE applies) exist. An interrupted
training continues from its checkpoint; a finished one is read back, never redone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nasplug.arch import Arch
from nasplug.io import atomic_write_json
from nasplug.progress import progress_bar
from nasplug.runfiles import read_json
from nasplug.study.plan import downstream_stages, slug, train_config

log = logging.getLogger(__name__)

Figures = dict[str, float]


def train_rows(ctx: Any, cfg: Any, archs: dict[str, list[Arch]]) -> dict[str, list[dict[int, Figures]]]:
    """``row -> [per arch: {seed: figures}]``, training what is not done yet."""
    task = ctx.prepared_task(ctx.retrain_task)
    downstream = downstream_stages(ctx)
    todo = [(row, i, arch, seed) for row, row_archs in archs.items() for i, arch in enumerate(row_archs)
            for seed in cfg.seeds]
    bar = progress_bar(total=len(todo), desc="study", unit="run", enabled=ctx.progress)
    results: dict[str, list[dict[int, Figures]]] = {row: [{} for _ in row_archs] for row, row_archs in archs.items()}
    for row, i, arch, seed in todo:
        folder = ctx.layout.study_model(row, i, slug(ctx.space, arch), seed)
        results[row][i][seed] = _one_run(ctx, cfg, task, row, arch, seed, folder, downstream)
        bar.update()
    bar.close()
    return results


def _one_run(ctx: Any, cfg: Any, task: Any, row: str, arch: Arch, seed: int, folder: Path,
             downstream: list[Any]) -> Figures:
    from nasplug.oneshot.build import build_model
    from nasplug.pipeline.standalone import folder_state, read_run, train_model

    state = folder_state(task, folder)
    if not (state["trained"] and state["tested"]):
        log.info("study: %s seed %d: %s", row, seed, ctx.space.format(arch))
        model = build_model(ctx.space.unconstrained(), arch, task, seed=seed)
        train_cfg = train_config(ctx.recipe, cfg, seed)
        train_cfg = train_cfg.model_copy(update={"precision": ctx.machine.precision_for(train_cfg.precision)})
        train_model(model, task, train_cfg, folder, progress=False, state=state)
    figures = read_run(folder)
    if downstream:
        scores = read_json(folder / "downstream.json")
        if scores is None:
            scores = {}
            for stage in downstream:
                scores.update(stage.downstream(ctx, arch, folder, seed) or {})
            atomic_write_json(folder / "downstream.json", scores)
        figures.update({k: float(v) for k, v in scores.items() if isinstance(v, (int, float))})
    return figures
