"""The training loop: any supernet or model, any task.

The pipeline calls :func:`train` once per training run (supernet pre-training, the retraining
of each found or baseline arch). Per optimizer step::

    archs  = sampler(step)                          # supernet: fresh archs (same on every rank)
    batch  = next(task.training_batches(...))       # the global batch
    micro  = task.micro_batches(batch, step, ...)   # this rank's micro-batches + global counts
    for each arch, for each micro-batch:  task.loss(...).backward()   # or distillation (PathLosses)
    sum gradients over ranks -> finite? -> clip -> AdamW -> warm-up/linear-decay schedule

Every random choice of a step is derived from ``(seed, step)``, so the same seed gives the
same weights bit for bit on CPU and ``resume`` continues exactly (the checkpoint also stores
the RNG states and the data position). Dropout draws from the global torch RNG, re-seeded per
(step, rank) inside ``torch.random.fork_rng`` (the caller's RNG is untouched); it therefore
differs between a 1-process and an N-process run: equivalence holds with dropout 0.

``precision: auto`` resolves on the training device (:mod:`nasplug.hardware`; the pipeline
passes the run's resolved value instead); a resumed run keeps the precision its checkpoint
was trained with unless the settings name one.

Held-out evaluation of a supernet scores a fixed list of ``eval_archs`` archs sampled from
the space with a seed of their own (the same list at every evaluation) and reports the mean;
a fixed arch or a standalone model is scored alone. Figures are the task's metrics, prefixed
``heldout_``.

Files (rank 0 only): ``metrics.jsonl`` (append, fsynced), ``checkpoint/`` (see
:mod:`nasplug.oneshot.checkpoint`), and at the end ``model.safetensors`` (the model passed
in), ``<name>.safetensors`` for each of the task's auxiliary modules (ELECTRA: ``generator``)
and ``result.json``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasplug import distributed
from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.hardware import resolve_precision
from nasplug.io import append_jsonl, atomic_write_json
from nasplug.layout import snapshot_folder
from nasplug.oneshot import checkpoint as ckpt
from nasplug.oneshot.config import TrainConfig, TrainResult
from nasplug.oneshot.health import Health, divergence_error
from nasplug.oneshot.optim import compile_model, lr_factor, make_optimizer, shard
from nasplug.oneshot.samplers import PathLosses, UniformSampler
from nasplug.oneshot.seeds import auxiliary_seed, derive_seed
from nasplug.supernet import is_supernet
from nasplug.task import Task

log = logging.getLogger(__name__)


def train(
    model: nn.Module,
    task: Task,
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    space: Any = None,
    arch: Arch | None = None,
    sampler: Any = None,
    resume: bool = False,
    progress: bool = True,
    snapshots: Sequence[int] = (),
) -> TrainResult:
    """Train ``model`` on ``task`` (prepared) into ``run_dir``.

    Args:
        model: a supernet (with ``space``: a fresh arch every step from ``sampler``, by
            default uniform; with ``arch``: that arch) or a standalone model.
        task: gives the batches, the loss, the held-out figures (its data prepared).
        cfg: the settings. ``run_dir``: where files go (rank 0 writes them).
        resume: continue from ``run_dir/checkpoint`` (a fresh start if there is none);
            without it an existing checkpoint is an error, never overwritten.
        progress: show a progress bar (rank 0).
        snapshots: steps after which the weights are kept (``snapshots/step-<8 digits>/``: the
            model and the auxiliary modules), e.g. for a training-budget curve.

    Raises:
        NasplugError: bad inputs, or a diverged run: a non-finite loss or gradient, or weights
            or a loss still unsound at the last step (then no model is written; the message
            names the last good checkpoint to resume from).
    """
    info = distributed.init()
    device = distributed.device_for(cfg.device, info)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        return _Run(model, task, cfg, Path(run_dir), space, arch, sampler, info, device, snapshots).run(resume,
                                                                                                        progress)


def validate_inputs(model: nn.Module, task: Task, cfg: TrainConfig, space: Any, arch: Any, world: int) -> None:
    """One clear NasplugError for each way the arguments of :func:`train` can disagree."""
    supernet = is_supernet(model)
    if space is not None and not supernet:
        raise NasplugError(f"space: given for single-path sampling, but {type(model).__name__} is not a supernet")
    if supernet and space is None and arch is None:
        raise NasplugError("arch: a supernet needs space= (sample an arch every step) or arch= (train that arch)")
    if arch is not None and is_supernet(model):
        model.activate(arch)  # checks the arch against the supernet, with its own clear error
    task.check_model(model)
    if cfg.batch_size % (world * cfg.grad_accum):
        raise NasplugError(f"batch_size: {cfg.batch_size} is not a multiple of world size x grad_accum = "
                           f"{world} x {cfg.grad_accum}")


class _Run:
    """The state of one :func:`train` call; ``run`` is the loop."""

    def __init__(self, model: nn.Module, task: Task, cfg: TrainConfig, run_dir: Path, space: Any, arch: Arch | None,
                 sampler: Any, info: distributed.DistInfo, device: torch.device, snapshots: Sequence[int] = ()) -> None:
        validate_inputs(model, task, cfg, space, arch, info.world)
        self.auto = cfg.precision == "auto"  # resolved here, or to what a resumed checkpoint trained with
        # rank 0's choice on every rank: a CPU's bf16 speed is measured, and ranks could measure apart
        precision = distributed.broadcast_object(resolve_precision(cfg.precision, device))
        if self.auto:
            log.info("precision: %s (%s)", precision.value, precision.reason)
        cfg = cfg.model_copy(update={"precision": precision.value})
        self.cfg, self.task, self.run_dir, self.space, self.info, self.device = cfg, task, run_dir, space, info, device
        self.fixed_arch = None if arch is None else dict(arch)
        self.sampler = None if space is None else (sampler or UniformSampler(space, cfg.seed))
        self.model = model.to(device)
        self.aux = task.auxiliary(self.model, auxiliary_seed(cfg.seed))
        self.trainable = nn.ModuleDict({"model": self.model, **self.aux})  # one optimizer and one checkpoint
        distributed.broadcast_module(self.trainable)  # identical start on every rank, like DDP
        if cfg.compile:
            for part in self.trainable.values():
                compile_model(part)
        self.params = [p for p in self.trainable.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.trainable, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg.warmup(), cfg.steps, cfg.optimizer)
        )
        self.batches = task.training_batches(cfg.batch_size, cfg.seed)  # global batches
        self.heldout = task.heldout_batches(cfg.batch_size, derive_seed(cfg.seed, "heldout"),
                                            num_batches=cfg.eval_batches)  # the recipe key eval_batches: a count
        self.baseline = task.baseline()
        self.eval_archs = self._eval_archs()
        self.ckpt_root, self.metrics_path = run_dir / "checkpoint", run_dir / "metrics.jsonl"
        self.last_ckpt: int | None = None
        self.archs: list[Arch] = []
        self.health = Health()
        self.snapshots = frozenset(snapshots)

    # ------------------------------------------------------------------ the loop
    def run(self, resume: bool, progress: bool) -> TrainResult:
        from nasplug.progress import progress_bar

        cfg, wall0 = self.cfg, time.perf_counter()
        start = self._restore(resume)
        bar = progress_bar(total=cfg.steps, initial=start, desc="train", unit="step",
                           enabled=progress and self.info.is_main)
        window_s, window_steps, window_units, train_s, units = 0.0, 0, 0, 0.0, 0
        metrics: dict[str, Any] = {}
        heldout: dict[str, Any] = {}
        unit = self.task.unit
        for step in range(start + 1, cfg.steps + 1):
            t0 = time.perf_counter()
            metrics, done = self._train_step(step)
            window_s, window_steps, window_units = (
                window_s + time.perf_counter() - t0,
                window_steps + 1,
                window_units + done,
            )
            if step % cfg.log_every == 0 or step == cfg.steps:
                train_s, units = train_s + window_s, units + window_units
                metrics[f"{unit}_per_s"] = window_units / max(window_s, 1e-9)
                self._record({"step": step, **metrics})
                bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()
                                 if isinstance(v, float) and k not in ("lr", "grad_norm")})
                window_s, window_steps, window_units = 0.0, 0, 0
            if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
                heldout = self._evaluate(step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != cfg.steps:
                self._checkpoint(step)
            if step in self.snapshots:  # (written again on a resume from before it: the same weights)
                distributed.on_main(self._save_weights, snapshot_folder(self.run_dir, step), step)
            bar.update()
        bar.close()
        heldout = self._evaluate(cfg.steps)
        self._checkpoint(cfg.steps)
        if not self.health.healthy(self.params):  # (every rank agrees: same losses, same weights)
            # a diverged model is no result: no model.safetensors, no result.json, say what to do
            raise divergence_error(f"{self.health.problem()} by the last step ({cfg.steps})", self.ckpt_root,
                                   self.run_dir)
        result = TrainResult(
            steps=cfg.steps, metrics=metrics, heldout=heldout, baseline=self.baseline,
            throughput=units / train_s if train_s else 0.0, unit=unit,
            wall_s=time.perf_counter() - wall0, run_dir=str(self.run_dir), eval_archs=self.eval_archs,
        )
        distributed.on_main(self._save_result, result)  # also the barrier: every rank reads the files next
        return result

    def _save_weights(self, folder: Path, step: int) -> None:
        ckpt.save_weights(self.model, folder / "model.safetensors", metadata={"step": str(step)})
        for name, module in self.aux.items():
            ckpt.save_weights(module, folder / f"{name}.safetensors")

    def _save_result(self, result: TrainResult) -> None:
        self._save_weights(self.run_dir, result.steps)
        atomic_write_json(self.run_dir / "result.json", result.to_dict())
        append_jsonl(
            self.metrics_path, {"event": "end", "step": result.steps, "wall_s": result.wall_s, **result.heldout}
        )

    def _train_step(self, step: int) -> tuple[dict[str, Any], int]:
        """One optimizer step; returns the logged figures and the units it processed."""
        cfg = self.cfg
        self.archs = self._archs_for(step)
        torch.manual_seed(derive_seed(cfg.seed, "dropout", step, self.info.rank))
        micro, counts = self._micro_batches(step)
        self.trainable.train()
        sums: dict[str, torch.Tensor] = {}
        paths: list[Arch | None] = [*self.archs] or [None]
        losses = PathLosses(self.task, getattr(self.sampler, "distill", False) and len(paths) > 1)
        for j, arch in enumerate(paths):
            self._activate(arch)
            for m, batch in enumerate(micro):
                with self._autocast():
                    loss, stats = losses(self.model, j, m, batch, counts, self.aux)
                (loss if len(paths) == 1 else loss / len(paths)).backward()  # fair sampling: the mean over paths
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0) + value.double()
        distributed.sum_gradients(self.params)
        total = distributed.sum_dict(sums)
        if len(paths) > 1:
            total = {k: v / len(paths) for k, v in total.items()}
        metrics: dict[str, Any] = self.task.step_metrics(total, counts)
        self._check_finite(step, "loss", metrics["loss"])
        norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.clip or math.inf)
        self._check_finite(step, "gradient norm", float(norm))
        metrics.update(lr=self.optimizer.param_groups[0]["lr"], grad_norm=float(norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.archs:
            metrics["arch"] = (
                self._format(self.archs[0]) if len(self.archs) == 1 else [self._format(a) for a in self.archs]
            )
        unit = self.task.unit
        return metrics, int(counts.get(unit, counts.get("examples", 0))) * len(paths)

    # ------------------------------------------------------------------ pieces of a step
    def _archs_for(self, step: int) -> list[Arch]:
        if self.fixed_arch is not None:
            return [self.fixed_arch]
        if self.sampler is None:
            return []
        return self.sampler(step)

    def _activate(self, arch: Arch | None) -> None:
        """Route the model (and auxiliary supernets, e.g. ELECTRA's generator) through ``arch``."""
        if arch is not None:
            for part in self.trainable.values():
                if is_supernet(part):
                    part.activate(arch)

    def _micro_batches(self, step: int) -> tuple[list[Any], dict[str, int]]:
        """This rank's micro-batches of the step's global batch, and the global counts the
        losses are divided by."""
        batch = next(self.batches)  # the whole global batch
        slices = shard(self.cfg.batch_size, self.info.rank, self.info.world, self.cfg.grad_accum)
        return self.task.micro_batches(batch, step, self.cfg.seed, slices, self.device)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")

    def _check_finite(self, step: int, what: str, value: float) -> None:
        self.health.update(what, value)
        if not math.isfinite(value):
            raise divergence_error(f"{what} is {value} at step {step}", self.ckpt_root, self.run_dir)

    # ------------------------------------------------------------------ evaluation
    def _eval_archs(self) -> list[Arch | None]:
        if self.fixed_arch is not None or self.space is None:
            return [self.fixed_arch]
        return [self.space.sample(random.Random(derive_seed(self.cfg.seed, "eval-arch", i)))
                for i in range(self.cfg.eval_archs)]

    def _evaluate(self, step: int) -> dict[str, Any]:
        """Held-out figures of every eval arch (batches sharded over ranks), and their mean."""
        if not self.heldout:
            return {}
        self.trainable.eval()
        mine = self.heldout[self.info.rank :: self.info.world]
        per_arch: list[dict[str, Any]] = []
        for arch in self.eval_archs:
            self._activate(arch)
            with self._autocast():
                sums = self.task.evaluate(self.model, mine, self.aux, self.device)
            on = self.device if self.device.type == "cuda" else torch.device("cpu")  # NCCL reduces CUDA tensors only
            total = distributed.sum_dict({k: torch.tensor(v, dtype=torch.float64, device=on) for k, v in sums.items()},
                                         uneven=True)  # a rank may have no held-out batch
            entry = {f"heldout_{k}": v for k, v in self.task.figures(total).items()}
            per_arch.append({**({"arch": self._format(arch)} if arch is not None else {}), **entry})
        self.trainable.train()
        out: dict[str, Any] = {k: sum(e[k] for e in per_arch) / len(per_arch) for k in per_arch[0] if k != "arch"}
        out["per_arch"] = per_arch
        self._record({"event": "eval", "step": step, **out, "baseline": self.baseline})
        primary = self.task.primary_metric()
        log.info("step %d: held-out %s %.4f%s", step, primary, out.get(f"heldout_{primary}", float("nan")),
                 f" (baseline {self.baseline[primary]:.4f})" if primary in self.baseline else "")
        return out

    # ------------------------------------------------------------------ files
    def _record(self, record: dict[str, Any]) -> None:
        """Append ``record`` to ``metrics.jsonl`` (rank 0 writes); every rank calls it, so a
        failed write stops them all. Inside a function run by :func:`distributed.on_main`,
        append directly instead."""
        distributed.on_main(append_jsonl, self.metrics_path, record)

    def _format(self, arch: Arch) -> str:
        return self.space.format(arch) if self.space is not None else json.dumps(arch, sort_keys=True)

    def _checkpoint(self, step: int) -> None:
        if step != self.last_ckpt:  # (a resumed finished run has it already)
            distributed.on_main(self._save_checkpoint, step)  # a full disk stops every rank, not rank 0 alone
        self.last_ckpt = step

    def _save_checkpoint(self, step: int) -> None:
        # the sampler needs no state: it draws the archs of a step from (seed, step) alone
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "data": self.batches.state_dict(), "rng": ckpt.rng_state(),
                 "config": self.cfg.model_dump(mode="json"), "world": self.info.world}
        ckpt.save_checkpoint(self.ckpt_root, step, self.trainable, state, healthy=self.health.healthy(self.params))

    def _start_log(self) -> None:
        """A run from step 0 starts a fresh log (rank 0, through :func:`distributed.on_main`)."""
        if self.metrics_path.exists():
            self.metrics_path.unlink()
        append_jsonl(self.metrics_path, {"event": "start", "step": 0, "config": self.cfg.model_dump(mode="json"),
                                         "world": self.info.world, "baseline": self.baseline,
                                         "metrics": dict(self.task.metrics)})

    def _restore(self, resume: bool) -> int:
        """Load the last checkpoint when resuming; returns the number of steps already done."""
        if not resume and ckpt.latest_checkpoint(self.ckpt_root) is not None:  # (resume falls back past a damaged one)
            raise NasplugError(f"run directory {self.run_dir} has a checkpoint; pass resume=True "
                               "(--resume) to continue it, or use a new run directory")
        point = ckpt.resume_point(self.ckpt_root, self.trainable) if resume else None
        if point is None:
            if resume:
                log.warning("resume: no checkpoint in %s; starting from step 0", self.ckpt_root)
            distributed.on_main(self._start_log)
            return 0
        path, state = point
        if not isinstance(state["config"], dict):
            raise NasplugError(f"checkpoint: {path} holds no training settings; it was not written by this loop")
        ckpt.check_resume_config(state["config"], self.cfg)
        if self.auto and state["config"].get("precision") in ("fp32", "bf16"):  # auto goes on as it started
            self.cfg = self.cfg.model_copy(update={"precision": state["config"]["precision"]})
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            step = int(state["step"])
            self.batches.load_state_dict(state["data"])
            ckpt.set_rng_state(state["rng"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise NasplugError(f"checkpoint: {path} does not fit this training run ({type(exc).__name__}: "
                               f"{str(exc)[:120]}); delete the checkpoint folder to train again from step 0") from None
        if state["config"].get("lr") != self.cfg.lr:  # a resume with a new peak learning rate
            self.scheduler.base_lrs = [self.cfg.lr for _ in self.optimizer.param_groups]
            for group in self.optimizer.param_groups:
                group["lr"] = self.cfg.lr * lr_factor(step, self.cfg.warmup(), self.cfg.steps, self.cfg.optimizer)
        self.last_ckpt = step
        distributed.on_main(ckpt.cut_log, self.metrics_path, step)  # a damaged log stops every rank, not rank 0 alone
        self._record({"event": "resume", "step": step, "world": self.info.world})
        log.info("resumed from %s (step %d)", path, step)
        return step
