"""Fine-tuning on one GLUE task, the ELECTRA / LV-BERT way, over several seeds.

Recipe (LVBERT.md, from the ELECTRA code base): the official optimiser (``optimizer:
official``: AdamWeightDecay without bias correction, the 10% warm-up multiplying the linear
decay; ``adamw``, the default, is torch AdamW with warm-up then decay), weight decay 0.01
except biases and LayerNorm, layer-wise learning-rate decay (a parameter at depth ``d`` gets
``lr * decay ** (top - d)``, ``top`` being the task layer's depth; the official depths leave
``top - 1`` empty, see :func:`bert_layer_index`), batch 32, length 128, 3 epochs (10 for RTE
and STS-B), MRPC and STS-B trained on both sentence orders, STS-B on score / 5, the median
over seeds reported. ``official_padding`` pads every batch to ``max_len`` as the official
code does (the model must then let its convolutions see padding to match it). The test split
is predicted with the model of the median seed.

The model contract: ``model_factory(num_labels, seed) -> nn.Module`` whose
``forward(input_ids, attention_mask, token_type_ids)`` returns an object with ``.logits``
of shape ``[B, num_labels]`` (or the tensor itself); ``num_labels == 1`` means regression.
"""

from __future__ import annotations

import logging
import math
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors.torch import load_model, save_model
from torch import nn

from nasplug.errors import NasplugError
from nasplug.glue.data import TaskData
from nasplug.glue.encode import Encoded, batches, cap, concat, encode, logits_of, predict
from nasplug.glue.metrics import compute_metrics
from nasplug.glue.tasks import GlueTask, get_task
from nasplug.oneshot.optim import build_optimizer, lr_factor
from nasplug.progress import progress_bar

__all__ = ["FinetuneConfig", "LayerIndex", "ModelFactory", "bert_layer_index", "finetune",
           "param_groups"]

logger = logging.getLogger(__name__)

LayerIndex = Callable[[str], int]
"""Parameter name -> depth (0 = embeddings, larger = closer to the output)."""
ModelFactory = Callable[[int, int], nn.Module]
"""``(num_labels, seed) -> model``."""


class FinetuneConfig(BaseModel):
    """Fine-tuning settings; defaults are the LV-BERT-small / ELECTRA-small recipe."""

    # strict: `epochs: true` or `max_len: "64"` is an error, not 1 or a guess; with upper bounds
    model_config = ConfigDict(extra="forbid", strict=True)

    optimizer: Literal["adamw", "official"] = Field(
        "adamw", description="adamw: torch AdamW; official: AdamWeightDecay (no bias correction), warm-up x decay")
    lr: float = Field(3e-4, gt=0, le=100, allow_inf_nan=False, description="peak learning rate of the top layer (head)")
    layerwise_decay: float = Field(0.8, gt=0, le=1, description="lr factor per layer down")
    weight_decay: float = Field(
        0.01, ge=0, le=100, allow_inf_nan=False, description="AdamW decay, not on biases/LayerNorm"
    )
    warmup: float = Field(0.1, ge=0, le=1, description="fraction of steps of linear warm-up")
    batch_size: int = Field(32, ge=1, le=2**16)
    eval_batch_size: int = Field(128, ge=1, le=2**16)
    max_len: int = Field(128, ge=2, le=65_536, description="tokens per example after truncation")
    epochs: int | None = Field(None, ge=1, le=1000, description="None: the task table (3; RTE, STS-B 10)")
    max_train_examples: int | None = Field(None, ge=1, le=10**9, description="cap (fixed subset) for CPU")
    max_eval_examples: int | None = Field(None, ge=1, le=10**9, description="cap per dev split")
    seeds: list[int] = Field(default_factory=lambda: list(range(10)), min_length=1, max_length=1000)
    both_orders: bool = Field(True, description="MRPC, STS-B: add swapped training pairs (official)")
    official_padding: bool = Field(False, description="pad every batch to max_len, as the official code")
    adam_epsilon: float = Field(1e-6, gt=0, allow_inf_nan=False)
    max_grad_norm: float | None = Field(1.0, gt=0, allow_inf_nan=False)
    predict_test: bool = True
    device: str = "cpu"
    progress: bool = True

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> FinetuneConfig:
        """Validate a mapping (e.g. from a recipe), raising NasplugError naming the field."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as err:
            first = err.errors()[0]
            field = "finetune." + ".".join(str(p) for p in first["loc"])
            raise NasplugError(f"{field}: {first['msg']}; allowed fields: "
                               f"{', '.join(cls.model_fields)}") from err


def bert_layer_index(num_layers: int) -> LayerIndex:
    """Depths for Hugging Face BERT/ELECTRA names, as ELECTRA's ``_get_layer_lrs``:
    embeddings 0, ``encoder.layer.i`` i+1, anything else (pooler, classifier: the official
    ``task_specific`` scope) ``num_layers + 2``; depth ``num_layers + 1`` is unused, so the top
    layer trains at ``decay ** 2`` of the head's rate."""

    def index(name: str) -> int:
        if "embeddings" in name:
            return 0
        parts = name.split(".")
        for i, part in enumerate(parts[:-1]):
            if part == "layer" and i > 0 and parts[i - 1] == "encoder" and parts[i + 1].isdigit():
                return int(parts[i + 1]) + 1
        return num_layers + 2

    return index


def _no_decay(name: str, param: torch.Tensor) -> bool:
    return param.ndim < 2 or name.endswith("bias") or "norm" in name.lower()


def param_groups(model: nn.Module, lr: float, decay: float, weight_decay: float,
                 layer_index: LayerIndex | None = None) -> list[dict[str, Any]]:
    """AdamW parameter groups with layer-wise learning rates.

    Args:
        model: the model; parameters without ``requires_grad`` are left out.
        lr: rate of the deepest depth (the task head).
        decay: factor per depth below the top: ``lr * decay ** (top - depth)``.
        weight_decay: for weight matrices; 0 for biases, LayerNorm and other 1-D parameters.
        layer_index: name -> depth; None puts everything at one depth (plain fine-tuning).

    Returns:
        One group per (depth, decayed or not), each with ``params``, ``lr``,
        ``weight_decay``, ``depth`` and ``param_names``.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    depth = {n: (layer_index(n) if layer_index else 0) for n, _ in named}
    top = max(depth.values(), default=0)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in named:
        nd = _no_decay(name, param)
        group = groups.setdefault((depth[name], nd), {
            "params": [], "param_names": [], "depth": depth[name],
            "lr": lr * decay ** (top - depth[name]), "weight_decay": 0.0 if nd else weight_decay,
        })
        group["params"].append(param)
        group["param_names"].append(name)
    return [groups[k] for k in sorted(groups)]


def _rng_scope(device: str) -> Any:
    """Fork torch's global generators (CPU, and the GPU in use) so seeding inside the scope
    leaves the caller's random state as it was."""
    dev = torch.device(device)
    return torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else [])


class Diverged(Exception):
    """The fine-tuning loss became NaN or infinite: the run's weights mean nothing."""


def _train_one(spec: GlueTask, model: nn.Module, train: Encoded, epochs: int,
               cfg: FinetuneConfig, seed: int, pad_id: int, layer_index: LayerIndex | None
               ) -> list[float]:
    """Train in place; returns the mean loss of each epoch.

    Raises:
        Diverged: a non-finite loss (nothing is stepped with it).
    """
    from transformers import get_linear_schedule_with_warmup  # heavy import, only here

    model.to(cfg.device).train()
    groups = param_groups(model, cfg.lr, cfg.layerwise_decay, cfg.weight_decay, layer_index)
    opt = build_optimizer(cfg.optimizer, groups, cfg.lr, eps=cfg.adam_epsilon)
    n = len(train["input_ids"])
    total = math.ceil(n / cfg.batch_size) * epochs
    warmup = round(cfg.warmup * total)
    if cfg.optimizer == "official":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup, total, "official"))
    else:
        sched = get_linear_schedule_with_warmup(opt, warmup, total)
    gen = torch.Generator().manual_seed(seed)  # shuffling order, independent of the global RNG
    epoch_loss: list[float] = []
    bar = progress_bar(total=total, desc=f"{spec.name} seed {seed}", unit="step", enabled=cfg.progress)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen).tolist()
        losses = []
        for batch in batches(train, order, cfg.batch_size, pad_id, spec.is_regression, cfg.device,
                             pad_to=_pad_to(cfg), label_scale=spec.label_scale):
            logits = logits_of(model, batch)
            if spec.is_regression:
                loss = F.mse_loss(logits[:, 0].float(), batch["labels"])
            else:
                loss = F.cross_entropy(logits.float(), batch["labels"])
            if not math.isfinite(loss.item()):
                bar.close()
                raise Diverged(f"loss is {loss.item()} at step {bar.n + 1} of {total} (seed {seed}, lr {cfg.lr:g})")
            loss.backward()
            if cfg.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(1)
        epoch_loss.append(float(np.mean(losses)))
        logger.info("glue %s seed %d epoch %d/%d: loss %.4f", spec.name, seed, epoch + 1,
                    epochs, epoch_loss[-1])
    bar.close()
    return epoch_loss


def finetune(task: str, model_factory: ModelFactory, tokenizer: Any,
             data: TaskData | Mapping[str, datasets.Dataset], config: FinetuneConfig | None = None,
             seeds: Sequence[int] | None = None, *, layer_index: LayerIndex | None = None,
             ax_data: TaskData | Mapping[str, datasets.Dataset] | None = None) -> dict[str, Any]:
    """Fine-tune one task over several seeds; report per-seed and median dev metrics.

    Args:
        task: task name (any spelling); not AX (pass AX as ``ax_data`` to the MNLI run).
        model_factory: ``(num_labels, seed) -> model`` (see the module docstring).
        tokenizer: a ``transformers`` tokenizer: ``tokenizer(texts[, pairs], truncation=True,
            max_length=n)`` giving ``input_ids`` (and ``token_type_ids``); ``pad_token_id``.
        data: :func:`nasplug.glue.load_task` output, or split name -> dataset.
        config: settings (default :class:`FinetuneConfig`).
        seeds: overrides ``config.seeds``.
        layer_index: parameter name -> depth for layer-wise lr decay (None: no decay).
        ax_data: with MNLI, the AX test split, predicted by the median seed's model.

    Returns:
        A JSON-serialisable dict: ``task``, ``status`` (``ok``/``partial``/``missing``, or
        ``failed`` when a seed's loss became NaN or infinite: then ``error`` says where, no
        figure is reported, and the GLUE stage named again in ``--stages`` fine-tunes it again),
        ``missing`` (split -> reason), ``median`` (metric -> median over seeds; MNLI keys end
        in ``_m``/``_mm``), ``per_seed`` (seed, metrics, epoch_loss), ``median_seed``,
        ``test_predictions`` (submission name -> ``{"index", "prediction"}``), ``config``...
        A task without training data is returned with status ``missing``, not trained.
    """
    spec = get_task(task)
    if spec.train_task:
        raise NasplugError(f"glue {spec.name}: has no training data; fine-tune "
                           f"{spec.train_task} and pass this task as ax_data")
    cfg = config or FinetuneConfig()
    seed_list = list(seeds) if seeds is not None else list(cfg.seeds)
    if not seed_list:
        raise NasplugError("finetune seeds: empty; give at least one seed")
    td = data if isinstance(data, TaskData) else TaskData(spec.name, "memory", dict(data))
    tests = _test_splits(spec, td, ax_data) if cfg.predict_test else {}
    missing = _missing(spec, td, ax_data)
    epochs = cfg.epochs or spec.epochs
    result: dict[str, Any] = {
        "task": spec.name, "status": "ok", "missing": missing, "config": cfg.model_dump(),
        "epochs": epochs, "seeds": seed_list, "primary": spec.primary, "per_seed": [],
        "median": {}, "median_seed": None, "test_predictions": {},
    }
    if "train" not in td.splits:
        logger.warning("glue %s: not fine-tuned, training data missing: %s", spec.name,
                       missing.get("train"))
        result["status"] = "missing"
        return result
    pad_id = tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else 0
    train, evals = _encode_splits(spec, td, tokenizer, cfg)
    result["train_examples"] = len(train["input_ids"])
    result["eval_examples"] = {s: len(e["input_ids"]) for s, e in evals.items()}
    run = _SeedRuns(spec, model_factory, cfg, pad_id, layer_index)
    with tempfile.TemporaryDirectory(prefix="nasplug-glue-") as tmp:
        if not run.train_all(train, evals, epochs, seed_list, Path(tmp) if tests else None, result):
            return result  # a seed diverged: the task is marked failed
        _medians(spec, result)
        if tests:
            run.predict_tests(tokenizer, tests, Path(tmp), result)
    if missing:
        result["status"] = "partial"
    return result


def _missing(spec: GlueTask, td: TaskData, ax_data: TaskData | Mapping[str, datasets.Dataset] | None
             ) -> dict[str, str]:
    """Split -> why it is not there (the AX test split rides along with MNLI)."""
    missing = {s: td.missing.get(s, "not loaded") for s in spec.splits if s not in td.splits}
    if ax_data is not None:
        ax = ax_data.splits if isinstance(ax_data, TaskData) else ax_data
        if "test" not in ax:
            reason = ax_data.missing.get("test") if isinstance(ax_data, TaskData) else None
            missing["AX test"] = reason or "not loaded"
    return missing


def _encode_splits(spec: GlueTask, td: TaskData, tokenizer: Any, cfg: FinetuneConfig
                   ) -> tuple[Encoded, dict[str, Encoded]]:
    """The encoded training set (both sentence orders where the task is symmetric) and dev sets."""
    train_ds = cap(td.splits["train"], cfg.max_train_examples)
    train = encode(tokenizer, train_ds, spec, cfg.max_len)
    if spec.symmetric and cfg.both_orders:
        train = concat(train, encode(tokenizer, train_ds, spec, cfg.max_len, swap=True))
    evals = {s: encode(tokenizer, cap(td.splits[s], cfg.max_eval_examples), spec, cfg.max_len)
             for s in spec.eval_splits if s in td.splits}
    return train, evals


def _medians(spec: GlueTask, result: dict[str, Any]) -> None:
    """Each dev metric's median over the seeds, and the (lower) median seed by the primary metric."""
    per_seed = result["per_seed"]
    for key in per_seed[0]["metrics"]:
        result["median"][key] = float(statistics.median(r["metrics"][key] for r in per_seed))
    primary = spec.primary if spec.primary in result["median"] else None
    ranked = sorted(per_seed, key=lambda r: r["metrics"][primary] if primary else 0.0)
    result["median_seed"] = ranked[(len(ranked) - 1) // 2]["seed"]  # lower median


@dataclass
class _SeedRuns:
    """Fine-tuning one task's model once per seed, then predicting its test splits."""

    spec: GlueTask
    model_factory: ModelFactory
    cfg: FinetuneConfig
    pad_id: int
    layer_index: LayerIndex | None

    def train_all(self, train: Encoded, evals: dict[str, Encoded], epochs: int, seeds: list[int],
                  keep: Path | None, result: dict[str, Any]) -> bool:
        """Train and score every seed into ``result["per_seed"]`` (each model's weights kept in
        ``keep`` for the test predictions); False when a seed diverged (``result`` says so)."""
        spec, cfg = self.spec, self.cfg
        for seed in seeds:
            # Dropout and the factory's initialisation draw from torch's global generator;
            # fork it so a seed gives the same run bit for bit and the caller's state is kept.
            with _rng_scope(cfg.device):
                torch.manual_seed(seed)
                model = self.model_factory(spec.num_labels, seed)
                try:
                    losses = _train_one(spec, model, train, epochs, cfg, seed, self.pad_id, self.layer_index)
                except Diverged as exc:
                    logger.warning("glue %s: fine-tuning diverged: %s; the task is marked failed (to retry "
                                   "it: --resume --stages glue,report --set glue.lr=<lower>)", spec.name, exc)
                    result.update(status="failed", error=f"diverged: {exc}", per_seed=[], median={})
                    return False
            metrics: dict[str, float] = {}
            for split, enc in evals.items():
                preds = predict(model, enc, spec, cfg.eval_batch_size, self.pad_id, cfg.device, _pad_to(cfg))
                scores = compute_metrics(spec.name, preds, enc["label"])
                metrics.update({k + spec.eval_splits[split]: v for k, v in scores.items()})
            logger.info("glue %s seed %d: %s", spec.name, seed, metrics)
            result["per_seed"].append({"seed": seed, "metrics": metrics, "epoch_loss": losses})
            if keep is not None:  # kept on disk, not in memory: only the median seed's is reloaded
                save_model(model, str(keep / f"seed{seed}.safetensors"))
            del model
        return True

    def predict_tests(self, tokenizer: Any, tests: dict[str, datasets.Dataset], kept: Path,
                      result: dict[str, Any]) -> None:
        """``result["test_predictions"]``: each test split predicted by the median seed's model."""
        spec, cfg = self.spec, self.cfg
        with _rng_scope(cfg.device):  # the factory may draw initial weights
            model = self.model_factory(spec.num_labels, result["median_seed"]).to(cfg.device)
        load_model(model, str(kept / f"seed{result['median_seed']}.safetensors"), device=cfg.device)
        for name, ds in tests.items():
            enc = encode(tokenizer, ds, spec, cfg.max_len)
            preds = predict(model, enc, spec, cfg.eval_batch_size, self.pad_id, cfg.device, _pad_to(cfg))
            result["test_predictions"][name] = {"index": list(enc["idx"]), "prediction": preds.tolist()}


def _pad_to(cfg: FinetuneConfig) -> int | None:
    return cfg.max_len if cfg.official_padding else None


def _test_splits(spec: GlueTask, td: TaskData,
                 ax_data: TaskData | Mapping[str, datasets.Dataset] | None
                 ) -> dict[str, datasets.Dataset]:
    """Submission name -> unlabelled split to predict (AX rides along with MNLI)."""
    out = {name: td.splits[s] for s, name in spec.test_splits.items() if s in td.splits}
    if ax_data is not None:
        if spec.name != "MNLI":
            raise NasplugError(f"finetune ax_data: only the MNLI run predicts AX, not {spec.name}")
        ax = ax_data.splits if isinstance(ax_data, TaskData) else ax_data
        if "test" in ax:
            out["AX"] = ax["test"]
    return out
