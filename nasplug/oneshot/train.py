"""Pre-training: one loop for a supernet (single-path one-shot) and a fixed architecture.

The pipeline calls :func:`pretrain` once per training stage (supernet pre-training, retraining
of the found arch). Per optimizer step::

    arch   = space.sample(Random(derive_seed(seed, "arch", step)))   # same on every rank
    rows   = next(global batch)  -> mask with Generator(derive_seed(seed, "mask", step))
    for each micro-batch of this rank's share:  loss (sum / global count) .backward()
    sum gradients over ranks -> finite? -> clip -> AdamW -> warm-up/linear-decay schedule

Every random choice of a step is derived from ``(seed, step)``, so the same seed gives the
same weights bit for bit on CPU and ``resume`` continues exactly (the checkpoint still stores
every RNG state and the data position). Every rank reads and masks the whole global batch
(B x T ints: negligible) and keeps its rows, so masks and ELECTRA samples do not depend on
the number of processes or on gradient accumulation. Dropout draws from the global torch RNG,
re-seeded per (step, rank) inside ``torch.random.fork_rng`` (the caller's RNG is untouched);
it therefore differs between a 1-process and an N-process run: equivalence holds with dropout 0.

Held-out evaluation of a supernet scores a fixed list of ``eval_archs`` archs sampled from
the space with a seed of their own (the same list at every evaluation) and reports the mean;
a fixed arch or a standalone model is scored alone. For ELECTRA the held-out MLM figures are
the generator's (the discriminator has no trained MLM head) plus the discriminator accuracy.

Files (rank 0 only): ``metrics.jsonl`` (append, fsynced), ``checkpoint/`` (see
:mod:`nasplug.oneshot.checkpoint`), and at the end ``model.safetensors`` (the model passed in),
``generator.safetensors`` (ELECTRA) and ``result.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from nasplug.oneshot import checkpoint as ckpt
from nasplug import distributed
from nasplug.text import objectives as obj
from nasplug.arch import Arch
from nasplug.oneshot.batches import BatchIterator
from nasplug.errors import NasplugError
from nasplug.io import append_jsonl, atomic_write_json
from nasplug.text.masking import IGNORE_INDEX, fixed_heldout_batches, mask_tokens, unigram_baseline

log = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """Pre-training settings; recipe keys map 1:1 onto these fields.

    ``batch_size`` is global (all ranks and micro-batches together); ``warmup_steps`` wins
    over ``warmup_fraction`` (of ``steps``) when set; ``clip`` None disables clipping;
    ``eval_every`` / ``checkpoint_every`` 0 mean "only at the end".
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1000, ge=1)
    batch_size: int = Field(128, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int | None = Field(None, ge=0)
    warmup_fraction: float = Field(0.1, ge=0, le=1)
    clip: float | None = Field(1.0, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-6, gt=0)
    objective: Literal["mlm", "electra"] = "mlm"
    generator_weight: float = Field(1.0, ge=0)
    discriminator_weight: float = Field(50.0, ge=0)
    mask_prob: float = Field(0.15, gt=0, le=1)
    precision: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False
    eval_every: int = Field(0, ge=0)
    eval_batches: int = Field(20, ge=1)
    eval_archs: int = Field(4, ge=1)
    checkpoint_every: int = Field(0, ge=0)
    log_every: int = Field(10, ge=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def warmup(self) -> int:
        """Warm-up length in optimizer steps."""
        return self.warmup_steps if self.warmup_steps is not None else round(self.warmup_fraction * self.steps)


@dataclass
class TrainResult:
    """What :func:`pretrain` returns (also written to ``run_dir/result.json``).

    ``metrics`` holds the last step's training figures (``loss``, ``mlm_acc`` or
    ``gen_mlm_acc`` / ``disc_acc``, ``lr``, ``grad_norm``); ``heldout`` the last evaluation
    (``heldout_mlm_acc``, ``heldout_mlm_loss``, ``heldout_disc_acc``, ``per_arch``).
    """

    steps: int
    metrics: dict[str, Any]
    heldout: dict[str, Any]
    unigram_baseline: float | None
    tokens_per_s: float
    wall_s: float
    run_dir: str
    eval_archs: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Learning-rate multiplier for the optimizer step that follows ``step`` finished steps:
    linear warm-up from 0 over ``warmup`` steps, then linear decay to 0 at ``total``."""
    if step < warmup:
        return step / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def derive_seed(seed: int, stream: str, *parts: int) -> int:
    """An independent 56-bit seed per (run seed, stream name, step, ...): stable everywhere."""
    text = ":".join([str(seed), stream, *map(str, parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "little")


def pretrain(
    model: nn.Module,
    data: Any,
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    space: Any = None,
    arch: Arch | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Pre-train ``model`` on ``data`` (``PackedData``-like: ``train``, ``heldout``, ``tokens``).

    Args:
        model: a supernet (with ``space``: a fresh arch every step; with ``arch``: that arch)
            or a standalone ``LVBertForMaskedLM`` (MLM) / ``LVBertForPreTraining`` (ELECTRA).
        cfg: the settings. ``run_dir``: where files go (rank 0 writes them).
        resume: continue from ``run_dir/checkpoint`` (a fresh start if there is none);
            without it an existing checkpoint is an error, never overwritten.
        progress: show a progress bar (rank 0).

    Raises:
        NasplugError: bad inputs, or a non-finite loss / gradient (the message names the last
            good checkpoint).
    """
    info = distributed.init()
    device = distributed.device_for(cfg.device, info)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        return _Run(model, data, cfg, Path(run_dir), space, arch, info, device).run(resume, progress)


class _Run:
    """The state of one :func:`pretrain` call; ``run`` is the loop."""

    def __init__(self, model: nn.Module, data: Any, cfg: TrainConfig, run_dir: Path, space: Any,
                 arch: Arch | None, info: distributed.DistInfo, device: torch.device) -> None:
        obj.validate_inputs(model, data, cfg, space, arch, info.world)
        self.cfg, self.run_dir, self.space, self.info, self.device = cfg, run_dir, space, info, device
        self.fixed_arch = None if arch is None else dict(arch)
        self.model = model.to(device)
        self.generator = obj.build_generator(self.model, derive_seed(cfg.seed, "generator")) \
            if cfg.objective == "electra" else None
        parts = {"model": self.model, **({"generator": self.generator} if self.generator is not None else {})}
        self.trainable = nn.ModuleDict(parts)  # one optimizer and one checkpoint for everything
        distributed.broadcast_module(self.trainable)  # identical start on every rank, like DDP
        if cfg.compile:
            for part in parts.values():
                obj.compile_model(part)
        self.params = [p for p in self.trainable.parameters() if p.requires_grad]
        self.optimizer = obj.make_optimizer(self.trainable, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg.warmup(), cfg.steps))
        self.batches = BatchIterator(data.train, cfg.batch_size, cfg.seed)  # global batches
        self.tokens = data.tokens
        self.heldout = fixed_heldout_batches(data.heldout, data.tokens, cfg.batch_size, derive_seed(
            cfg.seed, "heldout"), cfg.eval_batches, cfg.mask_prob) if len(data.heldout) else []
        self.baseline = unigram_baseline(data.train, self.heldout, data.tokens) if self.heldout else None
        self.eval_archs = self._eval_archs()
        self.tokens_per_step = cfg.batch_size * data.train.shape[1]
        self.ckpt_root, self.metrics_path = run_dir / "checkpoint", run_dir / "metrics.jsonl"
        self.last_ckpt: int | None = None
        self.arch: Arch | None = None
        self.arch_rng: random.Random | None = None

    # ------------------------------------------------------------------ the loop
    def run(self, resume: bool, progress: bool) -> TrainResult:
        from tqdm import tqdm

        cfg, wall0 = self.cfg, time.perf_counter()
        start = self._restore(resume)
        bar = tqdm(total=cfg.steps, initial=start, desc="pretrain", unit="step",
                   disable=not (progress and self.info.is_main))
        window_s, window_steps, train_s, metrics, heldout = 0.0, 0, 0.0, {}, {}
        for step in range(start + 1, cfg.steps + 1):
            t0 = time.perf_counter()
            metrics = self._train_step(step)
            window_s, window_steps = window_s + time.perf_counter() - t0, window_steps + 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                train_s += window_s
                metrics["tokens_per_s"] = self.tokens_per_step * window_steps / max(window_s, 1e-9)
                self._record({"step": step, **metrics})
                bar.set_postfix({k: f"{metrics[k]:.4g}" for k in ("loss", "mlm_acc", "gen_mlm_acc", "disc_acc",
                                                                    "tokens_per_s") if k in metrics})
                window_s, window_steps = 0.0, 0
            if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
                heldout = self._evaluate(step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != cfg.steps:
                self._checkpoint(step)
            bar.update()
        bar.close()
        heldout = self._evaluate(cfg.steps)
        self._checkpoint(cfg.steps)
        result = TrainResult(
            steps=cfg.steps, metrics=metrics, heldout=heldout, unigram_baseline=self.baseline,
            tokens_per_s=self.tokens_per_step * (cfg.steps - start) / max(train_s, 1e-9) if train_s else 0.0,
            wall_s=time.perf_counter() - wall0, run_dir=str(self.run_dir), eval_archs=self.eval_archs,
        )
        if self.info.is_main:
            ckpt.save_weights(self.model, self.run_dir / "model.safetensors", metadata={"step": str(cfg.steps)})
            if self.generator is not None:
                ckpt.save_weights(self.generator, self.run_dir / "generator.safetensors")
            atomic_write_json(self.run_dir / "result.json", result.to_dict())
            self._record({"event": "end", "step": cfg.steps, "wall_s": result.wall_s, **heldout})
        distributed.barrier()
        return result

    def _train_step(self, step: int) -> dict[str, Any]:
        cfg, gen = self.cfg, self.generator
        self.arch = self._activate(self._arch_for(step))
        torch.manual_seed(derive_seed(cfg.seed, "dropout", step, self.info.rank))
        micro, n_masked, n_real = self._micro_batches(step)
        self.trainable.train()
        sums: dict[str, torch.Tensor] = {}
        for batch in micro:
            with self._autocast():
                if gen is None:
                    loss, stats = obj.mlm_step(self.model, batch, n_masked)
                else:
                    loss, stats = obj.electra_step(self.model, gen, batch, n_masked, n_real,
                                                   cfg.generator_weight, cfg.discriminator_weight)
            loss.backward()
            for key, value in stats.items():
                sums[key] = sums.get(key, 0) + value.double()
        distributed.sum_gradients(self.params)
        metrics = obj.step_metrics(distributed.sum_dict(sums), n_masked, n_real, cfg)
        self._check_finite(step, "loss", metrics["loss"])
        norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.clip or math.inf)
        self._check_finite(step, "gradient norm", float(norm))
        metrics.update(lr=self.optimizer.param_groups[0]["lr"], grad_norm=float(norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.arch is not None:
            metrics["arch"] = self._format(self.arch)
            if gen is not None and obj.is_supernet(gen):
                metrics["gen_arch"] = self._format(gen.active)
        return metrics

    # ------------------------------------------------------------------ pieces of a step
    def _arch_for(self, step: int) -> Arch | None:
        if self.fixed_arch is not None or self.space is None:
            return self.fixed_arch
        self.arch_rng = random.Random(derive_seed(self.cfg.seed, "arch", step))  # kept for the checkpoint
        return self.space.sample(self.arch_rng)

    def _activate(self, arch: Arch | None) -> Arch | None:
        """Route the model (and the ELECTRA generator: same layer sequence) through ``arch``."""
        if arch is not None:
            for part in (self.model, self.generator):
                if part is not None and obj.is_supernet(part):
                    part.activate(arch)
        return arch

    def _micro_batches(self, step: int) -> tuple[list[obj.MicroBatch], int, int]:
        """This rank's micro-batches of the step's global batch, and the global masked and
        real-token counts the losses are divided by."""
        cfg, tokens = self.cfg, self.tokens
        rows = next(self.batches)  # [B, T] the whole global batch
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "mask", step))
        # ELECTRA's masking (official code): 85% [MASK], 15% kept; BERT's MLM: 80/10/10.
        fractions = (0.85, 0.0) if cfg.objective == "electra" else (0.8, 0.1)
        ids, labels = mask_tokens(rows, tokens, gen, cfg.mask_prob, *fractions)
        uniforms = torch.rand(rows.shape, generator=gen) if cfg.objective == "electra" else None
        n_masked, n_real = int((labels != IGNORE_INDEX).sum()), int((rows != tokens.pad_id).sum())
        mine = obj.shard(cfg.batch_size, self.info.rank, self.info.world, cfg.grad_accum)
        return [obj.MicroBatch.of(ids[i], labels[i], rows[i], tokens.pad_id, None if uniforms is None else uniforms[i],
                                  self.device) for i in mine], n_masked, n_real

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")

    def _check_finite(self, step: int, what: str, value: float) -> None:
        if math.isfinite(value):
            return
        where = (f"the last good checkpoint (step {self.last_ckpt}) is in {self.ckpt_root}"
                 if self.last_ckpt is not None else "no checkpoint was written before it")
        raise NasplugError(f"training: {what} is {value} at step {step}; {where}; lower the learning rate or use fp32")

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
        per_arch = []
        for arch in self.eval_archs:
            self._activate(arch)
            sums = obj.evaluate(self.model, mine, self.tokens.pad_id, self.device, self._autocast(),
                                self.generator, seed=derive_seed(self.cfg.seed, "heldout-replace"))
            entry = obj.heldout_figures(distributed.sum_dict(sums))
            per_arch.append({**({"arch": self._format(arch)} if arch is not None else {}), **entry})
        self.trainable.train()
        out: dict[str, Any] = {k: sum(e[k] for e in per_arch) / len(per_arch) for k in per_arch[0] if k != "arch"}
        out["per_arch"] = per_arch
        self._record({"event": "eval", "step": step, **out, "unigram_baseline": self.baseline})
        log.info("step %d: held-out MLM accuracy %.4f (unigram baseline %.4f)", step, out["heldout_mlm_acc"],
                 float("nan") if self.baseline is None else self.baseline)
        return out

    # ------------------------------------------------------------------ files
    def _record(self, record: dict[str, Any]) -> None:
        if self.info.is_main:
            append_jsonl(self.metrics_path, record)

    def _format(self, arch: Arch) -> str:
        fmt = getattr(self.space, "format", None)
        return fmt(arch) if fmt is not None else json.dumps(arch, sort_keys=True)

    def _checkpoint(self, step: int) -> None:
        if self.info.is_main and step != self.last_ckpt:  # (a resumed finished run has it already)
            state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                     "data": self.batches.state_dict(), "rng": ckpt.rng_state(), "arch": self.arch,
                     "arch_rng": ckpt.python_rng_state(self.arch_rng) if self.arch_rng is not None else None,
                     "config": self.cfg.model_dump(mode="json"), "world": self.info.world}
            ckpt.save_checkpoint(self.ckpt_root, step, self.trainable, state)
        self.last_ckpt = step

    def _restore(self, resume: bool) -> int:
        """Load the last checkpoint when resuming; returns the number of steps already done."""
        path = ckpt.latest_checkpoint(self.ckpt_root)
        if path is not None and not resume:
            raise NasplugError(f"run directory {self.run_dir} has a checkpoint ({path.name}); pass resume=True "
                               "(--resume) to continue it, or use a new run directory")
        if path is None:
            if resume:
                log.warning("resume: no checkpoint in %s; starting from step 0", self.ckpt_root)
            elif self.info.is_main and self.metrics_path.exists():
                self.metrics_path.unlink()  # a fresh run starts a fresh log
            self._record({"event": "start", "step": 0, "config": self.cfg.model_dump(mode="json"),
                          "world": self.info.world, "unigram_baseline": self.baseline})
            return 0
        state = ckpt.load_checkpoint(path, self.trainable)
        ckpt.check_resume_config(state["config"], self.cfg)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
        if state["config"]["lr"] != self.cfg.lr:  # a resume with a new peak learning rate
            self.scheduler.base_lrs = [self.cfg.lr for _ in self.optimizer.param_groups]
            for group in self.optimizer.param_groups:
                group["lr"] = self.cfg.lr * lr_factor(step, self.cfg.warmup(), self.cfg.steps)
        self.batches.load_state_dict(state["data"])
        ckpt.set_rng_state(state["rng"])
        self.last_ckpt = step
        self._record({"event": "resume", "step": step, "world": self.info.world})
        log.info("resumed from %s (step %d)", path, step)
        return step
