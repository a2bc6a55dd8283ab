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

log = logging.getLogger(__name__)

Figures = dict[str, float]


def run_folder(run_dir: Path, row: str, index: int, arch_slug: str, seed: int) -> Path:
    return run_dir / "study" / "models" / row / f"{index}-{arch_slug}" / f"seed-{seed}"


def train_rows(ctx: Any, cfg: Any, archs: dict[str, list[Arch]]) -> dict[str, list[dict[int, Figures]]]:
    """``row -> [per arch: {seed: figures}]``, training what is not done yet."""
    from nasplug.pipeline.stage import get_stage
    from nasplug.study import slug

    task = ctx.prepared_task(ctx.retrain_task)
    downstream = [s for s in (get_stage(n) for n in ("glue",)) if s.applies(ctx.recipe)]
    todo = [(row, i, arch, seed) for row, row_archs in archs.items() for i, arch in enumerate(row_archs)
            for seed in cfg.seeds]
    bar = progress_bar(total=len(todo), desc="study", unit="run", enabled=ctx.progress)
    results: dict[str, list[dict[int, Figures]]] = {row: [{} for _ in row_archs] for row, row_archs in archs.items()}
    for row, i, arch, seed in todo:
        folder = run_folder(ctx.run_dir, row, i, slug(ctx.space, arch), seed)
        results[row][i][seed] = _one_run(ctx, cfg, task, row, arch, seed, folder, downstream)
        bar.update()
    bar.close()
    return results


def _one_run(ctx: Any, cfg: Any, task: Any, row: str, arch: Arch, seed: int, folder: Path,
             downstream: list[Any]) -> Figures:
    from nasplug.oneshot.build import build_model
    from nasplug.oneshot.checkpoint import load_weights
    from nasplug.oneshot.train import train
    from nasplug.pipeline.retrain import read_run, score_test
    from nasplug.pipeline.supernet import resume_flag
    from nasplug.study import train_config

    train_cfg = train_config(ctx.recipe, cfg, seed)
    needs_test = task.split("test") is not None
    done = (folder / "result.json").is_file() and (not needs_test or (folder / "test.json").is_file())
    model = None
    if not done:
        log.info("study: %s seed %d: %s", row, seed, ctx.space.format(arch))
        model = build_model(ctx.space.unconstrained(), arch, task, seed=seed)
        if not (folder / "result.json").is_file():
            train(model, task, train_cfg, folder, resume=resume_flag(folder), progress=False)
        else:
            load_weights(model, folder / "model.safetensors")
        score_test(task, model, train_cfg, folder)
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
