"""The standalone side of rank-corr: every (arch, steps, seed) trained once, in a folder of
its own (:meth:`nasplug.layout.RankCorrLayout.standalone`), and scored per held-out batch.

``arch.json`` records the arch, the training settings and the task's settings a model was
trained with; a folder holding another arch, or a model trained otherwise, is refused (one
line) rather than reused. ``score.json`` holds the task's sums on each held-out batch and
what they were scored with (the held-out batches' count, size and seed, and the task's
settings): when those change the trained model is loaded and scored again, never retrained.

Seed ``k`` initialises the weights with the recipe's seed + k and draws the data order,
masking and dropout with the training seed + k: seed 0 is the recipe's own seeds, and K
seeds of an arch differ in everything random.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json
from nasplug.layout import RankCorrLayout
from nasplug.runfiles import read_json
from nasplug.task import Sums

log = logging.getLogger(__name__)


def as_json(obj: Any) -> Any:
    """``obj`` as it reads back from a JSON file, to compare with what a file holds."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


@dataclass
class Standalone:
    """One trained model's held-out sums (per batch) and what it cost."""

    parts: list[Sums]
    train_s: float  # the training's wall time (as its result.json says)
    score_s: float  # scoring it now (0 when read back)


class StandaloneModels:
    """Trains, loads and scores the standalone models of one rank-corr call.

    Args:
        ctx: the run's context (space, task, recipe).
        layout: where the models live.
        overrides: TrainConfig fields over the recipe's training settings (``train_overrides``).
        heldout: the task's fixed held-out batches both sides are scored on.
        heldout_id: what those batches depend on (recorded in ``score.json``).
    """

    def __init__(self, ctx: Any, layout: RankCorrLayout, overrides: dict[str, Any] | None, heldout: list[Any],
                 heldout_id: dict[str, Any], *, progress: bool = False, keep_checkpoints: bool = False) -> None:
        self.ctx, self.layout, self.overrides, self.heldout = ctx, layout, overrides, heldout
        task = ctx.recipe.task
        self.task_settings = as_json(task.kwargs() if task is not None else None)
        self.scored_with = as_json({"heldout": heldout_id, "task": self.task_settings})
        self.progress, self.keep_checkpoints = progress, keep_checkpoints

    def config(self, steps: int, seed: int) -> Any:
        """The training settings of an S-step run with seed ``seed`` (see the module docstring)."""
        cfg = standalone_train_config(self.ctx.recipe, steps, self.overrides)
        # "auto" as the run recorded it: every model in the same precision, whichever process
        # trains it (a worker measuring the CPU's bf16 speed under load could decide otherwise)
        precision = self.ctx.machine.precision_for(cfg.precision)
        return cfg.model_copy(update={"seed": cfg.seed + seed, "precision": precision})

    def trained(self, arch: Arch, steps: int, seed: int) -> bool:
        """Whether this model's training has finished (it may still need scoring)."""
        folder = self.layout.standalone(arch_key(arch), steps, seed)
        return (folder / "result.json").is_file() and (folder / "model.safetensors").is_file()

    def get(self, arch: Arch, steps: int, seed: int) -> Standalone:
        """The held-out sums of ``arch`` trained for ``steps`` steps with seed ``seed``: read
        back, or the trained model scored again, or trained now and scored."""
        text = self.ctx.space.format(arch)
        folder = self.layout.standalone(arch_key(arch), steps, seed)
        config = self.config(steps, seed)
        meta = {"arch": text, "arch_dict": arch, "config": config.model_dump(mode="json"), "task": self.task_settings,
                "seed": seed}
        saved = self._read(folder, as_json(meta))
        if saved is not None:
            return saved
        trained = (folder / "result.json").is_file() and (folder / "model.safetensors").is_file()
        if not trained:
            log.info("rank-corr: %s, seed %d: training %d steps", text, seed, steps)
            atomic_write_json(folder / "arch.json", meta)
        parts, score_s = self._train_and_score(arch, folder, config, seed)
        atomic_write_json(folder / "score.json", {"per_batch": parts, "scored_with": self.scored_with})
        if not self.keep_checkpoints:
            shutil.rmtree(folder / "checkpoint", ignore_errors=True)
        return Standalone(parts, _train_seconds(folder), score_s)

    def _train_and_score(self, arch: Arch, folder: Path, config: Any, seed: int) -> tuple[list[Sums], float]:
        from nasplug.distributed import device_for
        from nasplug.oneshot.build import build_model
        from nasplug.pipeline.standalone import train_model

        task = self.ctx.prepared_task()
        model = build_model(self.ctx.space, arch, task, seed=self.ctx.recipe.seed + seed)
        aux = train_model(model, task, config, folder, progress=self.progress, test=False)
        device = device_for(config.device)  # a model loaded from its folder (not trained now) is on the CPU
        t0 = time.perf_counter()
        parts = heldout_sums(task, model.to(device), self.heldout, {k: m.to(device) for k, m in aux.items()})
        return parts, time.perf_counter() - t0

    def _read(self, folder: Path, meta: dict[str, Any]) -> Standalone | None:
        """The saved scores, None when there are none or they were scored on other held-out
        batches; NasplugError when the folder holds another arch or another training."""
        meta_file = folder / "arch.json"
        if not meta_file.is_file():
            return None
        saved_meta = read_json(meta_file, dict, "delete the folder to train the arch again")
        assert saved_meta is not None
        if saved_meta.get("arch_dict") != meta["arch_dict"]:
            raise NasplugError(f"{folder}: holds arch {saved_meta.get('arch')}, not {meta['arch']}; delete the folder")
        if saved_meta.get("config") != meta["config"]:
            previous = saved_meta.get("config") if isinstance(saved_meta.get("config"), dict) else {}
            changed = sorted(k for k in meta["config"] if previous.get(k) != meta["config"][k])
            raise NasplugError(f"{folder}: was trained with other settings ({', '.join(changed)} differ: an earlier "
                               "--set?); pass another --models or delete the folder")
        if saved_meta.get("task") != meta["task"]:
            raise NasplugError(f"{folder}: was trained on other data (the task settings differ: an earlier --set "
                               "task...?); pass another --models or delete the folder")
        score = read_json(folder / "score.json", dict, "delete it to score the arch again")
        if score is None or score.get("scored_with") != self.scored_with:
            return None  # not scored yet, or on other held-out batches: scored again
        parts = score.get("per_batch")
        if not (isinstance(parts, list) and len(parts) == len(self.heldout) and all(is_sums(p) for p in parts)):
            raise NasplugError(f"{folder / 'score.json'}: 'per_batch' is not a list of sums per held-out batch; "
                               "delete it to score the arch again")
        return Standalone(parts, _train_seconds(folder), 0.0)


def heldout_sums(task: Any, model: torch.nn.Module, batches: list[Any],
                 aux: dict[str, Any] | None = None) -> list[Sums]:
    """The task's sums of a standalone model on each held-out batch (fp32, eval mode): what
    the inherited-weights evaluator gives a model extracted from the supernet, batch by batch."""
    device = next(model.parameters()).device
    model.eval()
    for module in (aux or {}).values():
        module.eval()
    with torch.inference_mode():
        return [task.evaluate(model, [batch], aux or {}, device) for batch in batches]


def is_sums(value: Any) -> bool:
    """Whether ``value`` is a mapping of names to numbers (one batch's sums)."""
    return isinstance(value, dict) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values())


def _train_seconds(folder: Path) -> float:
    result = read_json(folder / "result.json")
    wall = result.get("wall_s") if isinstance(result, dict) else None
    return float(wall) if isinstance(wall, (int, float)) else 0.0


def standalone_train_config(recipe: Any, steps: int, overrides: dict[str, Any] | None = None) -> Any:
    """The recipe's ``retrain`` settings (else ``supernet``'s) for an S-step standalone run.

    ``steps`` = S; an explicit ``warmup_steps`` is scaled by S / the recipe's steps (a
    ``warmup_fraction`` scales by itself); ``eval_every`` = 0 (the held-out score is computed
    here, on the evaluator's batches). ``overrides`` (TrainConfig fields) are applied last.
    """
    from pydantic import ValidationError

    from nasplug.oneshot.config import TrainConfig
    from nasplug.recipe import describe_error, training_settings

    base = training_settings(recipe)
    if base is None:
        raise NasplugError("rank-corr: the recipe needs a retrain (or supernet) section for the training settings")
    changes: dict[str, Any] = {"steps": steps, "eval_every": 0}
    if base.warmup_steps is not None:
        changes["warmup_steps"] = round(base.warmup_steps * steps / base.steps)
    try:
        return TrainConfig.of(base, **{**changes, **(overrides or {})})
    except ValidationError as exc:
        raise NasplugError(f"rank-corr training settings: {describe_error(exc)}") from None
