"""Training rank-corr's standalone models in several processes (``--jobs N``).

Each model is one (arch, steps, seed) trained into its own folder, independent of the others,
so N worker processes (spawned; one torch thread each) train the models not trained yet, each
exactly as the serial loop would: the same folders and files, the same weights bit for bit on
CPU. The caller then reads every model back as usual. On a machine with N cores and models too
small to use several threads well (LV-BERT at hidden 64), N workers finish about N times sooner.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nasplug.arch import Arch

log = logging.getLogger(__name__)

_WORKER: dict[str, Any] = {}  # a worker process's StandaloneModels, built once by _init


def _init(request: Any, out_dir: Path, models_dir: Path, heldout_id: dict[str, Any]) -> None:
    """In a worker: the run's context and the trainer of its standalone models."""
    import torch

    from nasplug.layout import RankCorrLayout
    from nasplug.pipeline import RunContext
    from nasplug.rankcorr.plan import load_run_recipe
    from nasplug.rankcorr.standalone import StandaloneModels

    torch.set_num_threads(1)
    ctx = RunContext(recipe=load_run_recipe(request.run_dir, request.overrides), run_dir=request.run_dir,
                     resume=True, progress=False)
    heldout = ctx.prepared_task().heldout_batches(heldout_id["batch_size"], heldout_id["seed"], heldout_id["batches"])
    _WORKER["models"] = StandaloneModels(ctx, RankCorrLayout(out_dir, models_dir), request.train_overrides, heldout,
                                         heldout_id, keep_checkpoints=request.keep_checkpoints)


def _train(arch: Arch, steps: int, seed: int) -> None:
    _WORKER["models"].get(arch, steps, seed)


def train_in_workers(plan: Any, models: Any, todo: list[tuple[Arch, int, int]], heldout_id: dict[str, Any]) -> None:
    """Train (and score) every (arch, steps, seed) of ``todo`` that ``models`` has not trained
    yet, in ``plan.request.jobs`` processes; the first worker error (a diverged training, a full
    disk) is raised here once the running models have stopped."""
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    from nasplug.progress import progress_bar

    pending = [job for job in todo if not models.trained(*job)]
    if not pending:
        return
    jobs = min(plan.request.jobs, len(pending))
    log.info("rank-corr: training %d standalone models in %d processes", len(pending), jobs)
    bar = progress_bar(total=len(pending), desc="rank-corr", unit="model", enabled=plan.request.progress)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                             initargs=(plan.request, plan.out_dir, plan.models_dir, heldout_id)) as pool:
        futures = [pool.submit(_train, *job) for job in pending]
        for future in futures:
            future.add_done_callback(lambda _: bar.update())
        done, waiting = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        for future in waiting:
            future.cancel()
    bar.close()
    if failed is not None:
        raise failed.exception()  # type: ignore[misc]
