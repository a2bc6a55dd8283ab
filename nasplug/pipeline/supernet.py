"""The supernet stage: single-path one-shot training of the space's supernet on the task.

Every step trains the path of freshly sampled archs (uniform by default: SPOS) through the
shared weights; ``run_dir/supernet/`` holds the checkpoint, ``metrics.jsonl``,
``model.safetensors`` and the task's auxiliary modules (ELECTRA: ``generator.safetensors``).
A few-shot split (``supernet.split``) trains the one-shot supernet into
``run_dir/supernet/oneshot/`` first, then the split one into ``run_dir/supernet/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.oneshot.build import build_supernet
from nasplug.oneshot.config import TrainConfig
from nasplug.oneshot.samplers import build_sampler
from nasplug.oneshot.seeds import derive_seed
from nasplug.oneshot.train import train
from nasplug.pipeline.context import RunContext
from nasplug.pipeline.stage import RunView, Section, Stage
from nasplug.task import Task


def resume_flag(folder: Path) -> bool:
    """Resume a training run that has a checkpoint (after a crash), else start fresh."""
    return (folder / "checkpoint").exists() or (folder / "metrics.jsonl").exists()


def check_fit(task: Task, model: Any, space: Any, arch: Any = None) -> None:
    """One clear line when the task's batches do not fit the model (wrong shapes, ids out
    of range): a forward pass on two held-out examples before any training. The weights,
    the modes and the global RNG are left as they were."""
    import contextlib
    import random

    import torch

    from nasplug.supernet import is_supernet

    task.check_model(model)
    batches = task.heldout_batches(2, 0, 1)
    if not batches:
        return
    route = arch if arch is not None else (space.sample(random.Random(0)) if is_supernet(model) else None)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), contextlib.ExitStack() as stack:
            aux = task.auxiliary(model, 0)
            nets = [model, *aux.values()]
            modes = [net.training for net in nets]
            stack.callback(lambda: [net.train(mode) for net, mode in zip(nets, modes)])
            for net in nets:
                net.eval()
                if route is not None and is_supernet(net):
                    stack.enter_context(net.using(route))
            task.evaluate(model, batches, aux, next(model.parameters()).device)
    except NasplugError:
        raise
    except (RuntimeError, IndexError, ValueError, TypeError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise NasplugError(f"task {task.name!r}: its batches do not fit the models of space {space.name!r} "
                           f"({type(exc).__name__}: {first[:200]})") from None


def split_supernet(space: Any, supernet: Any, choice: str) -> Any:
    """The few-shot supernet: a copy of ``supernet`` per option of ``choice``."""
    from nasplug.oneshot.fewshot import FewShotSupernet

    return FewShotSupernet(supernet, choice, list(space.choices()[choice]))


def trained_supernet_shape(ctx: RunContext) -> Any:
    """A supernet of the structure the supernet stage trains (its weights to be loaded)."""
    supernet = build_supernet(ctx.space, seed=ctx.recipe.seed)
    split = ctx.recipe.supernet.split if ctx.recipe.supernet is not None else None
    return supernet if split is None else split_supernet(ctx.space, supernet, split.choice)


def split_steps(cfg: Any) -> int:
    """Steps of the one-shot phase before a few-shot split (the rest train the split supernet)."""
    return round(cfg.split.after * cfg.steps)


class SupernetStage(Stage):
    name = "supernet"
    multi_process = True

    def applies(self, recipe: Any) -> bool:
        return recipe.supernet is not None and recipe.arch is None

    def check(self, ctx: RunContext) -> None:
        cfg = ctx.recipe.supernet_config()
        sampler = build_sampler(cfg.sampler, ctx.space, 0)
        if sampler.distill and ctx.recipe.task is not None and not ctx.task.distillation:
            raise NasplugError(f"supernet.sampler.distill: task {ctx.task.name!r} has no in-place distillation; "
                               "set distill: false (the sandwich rule without a teacher)")
        if cfg.split is not None and not 1 <= split_steps(cfg) < cfg.steps:
            raise NasplugError(f"supernet.split.after: {cfg.split.after} of {cfg.steps} steps leaves "
                               f"{split_steps(cfg)} one-shot and {cfg.steps - split_steps(cfg)} few-shot steps; each "
                               "phase needs at least one (choose another fraction or more supernet.steps)")
        if cfg.split is not None and cfg.split.choice not in ctx.space.choices():
            raise NasplugError(f"supernet.split.choice: {cfg.split.choice!r} is not a choice of space "
                               f"{ctx.space.name!r}; choices: {', '.join(list(ctx.space.choices())[:8])} ...")
        if cfg.split is not None and ctx.recipe.task is not None and type(ctx.task).auxiliary is not Task.auxiliary:
            raise NasplugError(f"supernet.split: task {ctx.task.name!r} trains auxiliary modules (e.g. a generator); "
                               "a few-shot split supports tasks without them (e.g. mlm)")
        _ = ctx.task  # the recipe names a task, and its settings are valid

    def models(self, ctx: RunContext) -> dict[str, tuple[Any, Task]]:
        return {"supernet": (lambda: build_supernet(ctx.space, seed=ctx.recipe.seed), ctx.task)}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        cfg = ctx.recipe.supernet_config()
        task = ctx.prepared_task()
        supernet = build_supernet(ctx.space, seed=ctx.recipe.seed)
        check_fit(task, supernet, ctx.space)
        ctx.space.warm_start(supernet, task)
        folder = ctx.layout.supernet
        train_cfg = TrainConfig.of(cfg, precision=ctx.machine.precision_for(cfg.precision))
        sampler = build_sampler(cfg.sampler, ctx.space, cfg.seed)
        if cfg.split is not None:  # few-shot: the one-shot supernet first, then a copy per option
            supernet, task, sampler, train_cfg = self._one_shot_phase(ctx, supernet, task, sampler, train_cfg)
        result = train(supernet, task, train_cfg, folder, space=ctx.space, sampler=sampler,
                       resume=resume_flag(folder), progress=ctx.progress, snapshots=cfg.snapshots)
        ctx.extras["supernet"] = supernet
        return {"heldout": {k: v for k, v in result.heldout.items() if k != "per_arch"},
                "baseline": result.baseline, f"{result.unit}_per_s": result.throughput}

    def _one_shot_phase(self, ctx: RunContext, supernet: Any, task: Task, sampler: Any,
                        train_cfg: TrainConfig) -> tuple[Any, Any, Any, TrainConfig]:
        """Train (or, once done, load) the one-shot supernet of a few-shot split; return the
        split supernet and what its phase trains with: the same seed (so its held-out figures
        are on the same eval archs and batches), the data after the first phase's, archs from
        a sampler seed of its own (not the first phase's sequence again), no warm-up."""
        from nasplug.oneshot.checkpoint import load_weights
        from nasplug.oneshot.fewshot import Continued

        cfg = ctx.recipe.supernet_config()
        assert cfg.split is not None  # the stage runs this phase only for a split supernet
        first = split_steps(cfg)
        folder = ctx.layout.supernet_oneshot
        if (folder / "result.json").is_file() and (folder / "model.safetensors").is_file():
            load_weights(supernet, folder / "model.safetensors")  # finished: not evaluated or logged again
        else:
            train(supernet, task, train_cfg.model_copy(update={"steps": first}), folder, space=ctx.space,
                  sampler=sampler, resume=resume_flag(folder), progress=ctx.progress)
        split = split_supernet(ctx.space, supernet, cfg.split.choice)
        sampler = build_sampler(cfg.sampler, ctx.space, derive_seed(cfg.seed, "few-shot"))
        return split, Continued(task, first), sampler, train_cfg.model_copy(
            update={"steps": cfg.steps - first, "warmup_steps": 0})

    def report(self, view: RunView) -> Section:
        from nasplug.report.sections import supernet_section

        return supernet_section(view), ""
