"""The supernet side of rank-corr: each supernet's sums for every arch, per held-out batch,
kept with the settings they were computed with.

``scores/<slug>.json`` in the output folder holds, per arch (canonical key), the task's sums on
each held-out batch and the seconds they took, under ``settings``: the evaluator's settings
(held-out batches, precision, BatchNorm recalibration), the SHA-256 of every weights file of
the supernet, and the space's and the task's settings. A rerun whose settings differ in
anything (``--batches``, ``--set evaluator.precision=bf16``, a supernet trained again) scores
every arch again; with the same settings only archs not scored yet are evaluated.

Per-batch sums give the metric on the first b batches for any b (the evaluation-cost curve)
from the one evaluation, and their total is the evaluator's score exactly.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasplug.arch import arch_key
from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json
from nasplug.rankcorr.standalone import is_sums
from nasplug.runfiles import read_json
from nasplug.task import Sums

log = logging.getLogger(__name__)


@dataclass
class SupernetRun:
    """One supernet's sums of every arch of the plan ([arch][batch]) and its cost per arch."""

    parts: list[list[Sums]]
    batch_seconds: list[float]  # mean seconds per arch spent on each held-out batch
    setup_seconds: float  # mean seconds per arch before the first batch (BatchNorm recalibration)


#: How held-out scores are computed; a cache of scores made otherwise is not read.
SCORING_VERSION = 3


def weights_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of each ``*.safetensors`` file of a supernet's folder (the model, ELECTRA's generator)."""
    out = {}
    for path in sorted(folder.glob("*.safetensors")):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        out[path.name] = digest.hexdigest()
    return out


def _settings(plan: Any, plugin: Any, folder: Path) -> dict[str, Any]:
    from nasplug.rankcorr.standalone import as_json

    recipe = plan.ctx.recipe
    # what "auto" meant, and how held-out scores are made (2: the scoring head in fp32 under bf16,
    # stop 31; 3: the vocabulary product in bf16 with fp32 argmaxes, the convolution mixed as a
    # band product, stop 32): scores cached before either changed are computed again, never
    # mixed with new ones
    used = {"precision": plan.ctx.machine.evaluator_precision(plugin.precision), "scoring": SCORING_VERSION}
    return as_json({"evaluator": plugin.settings(), "used": used, "weights": weights_digest(folder),
                    "space": recipe.space.model_dump(), "task": recipe.task.model_dump() if recipe.task else None})


def _usable(entry: Any, batches: int) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("per_batch"), list) and len(entry["per_batch"]) == batches
            and all(is_sums(p) for p in entry["per_batch"]) and isinstance(entry.get("batch_seconds"), list)
            and len(entry["batch_seconds"]) == batches and all(_number(t) for t in entry["batch_seconds"])
            and _number(entry.get("setup_seconds")))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_cache(path: Path, entries: str, settings: dict[str, Any], usable: Any) -> dict[str, Any]:
    """The entries (arch key -> entry) of a cache file written with ``settings``; {} when there
    is none or it was written with other settings (everything is computed again); NasplugError
    naming the file when it is not a cache or an entry is damaged."""
    hint = "delete it to compute its scores again"
    saved = read_json(path, dict, hint)
    if saved is None:
        return {}
    if not isinstance(saved.get("settings"), dict) or not isinstance(saved.get(entries), dict):
        raise NasplugError(f"{path}: not a rank-corr cache (no 'settings' and '{entries}' mappings); {hint}")
    if saved["settings"] != settings:
        return {}
    bad = next((key for key, entry in saved[entries].items() if not usable(entry)), None)
    if bad is not None:
        raise NasplugError(f"{path}: the entry of arch {bad[:60]} is damaged; {hint}")
    return saved[entries]


def score_supernet(plan: Any, source: Any, kwargs: dict[str, Any], slug: str) -> SupernetRun:
    """Every arch of ``plan`` scored by the supernet ``source`` (a
    :class:`~nasplug.rankcorr.plan.SupernetSource`) with evaluator settings ``kwargs``."""
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.registry import build_callable

    plugin = build_callable(SupernetEvaluator, kwargs, field="evaluator")
    folder = source.folder if source.folder is not None else source.ctx.layout.supernet
    settings = _settings(plan, plugin, folder)
    path = plan.layout.supernet_scores(slug)
    cached = read_cache(path, "archs", settings, lambda entry: _usable(entry, plugin.num_batches))
    missing = [a for a in plan.archs if arch_key(a) not in cached]
    if missing:
        log.info("rank-corr: scoring %d archs with %s", len(missing), source.label)
        evaluator = _build(plan, plugin, source)
        parts = evaluator.evaluate_sums(missing)
        per_batch = [s / len(missing) for s in evaluator.batch_seconds]
        setup = evaluator.setup_seconds / len(missing)
        evaluator.close()
        for arch, sums in zip(missing, parts):
            cached[arch_key(arch)] = {"per_batch": sums, "batch_seconds": per_batch, "setup_seconds": setup}
        atomic_write_json(path, {"settings": settings, "archs": cached})
    entries = [cached[arch_key(a)] for a in plan.archs]
    n = len(entries)
    batch_seconds = [sum(e["batch_seconds"][b] for e in entries) / n for b in range(len(entries[0]["batch_seconds"]))]
    return SupernetRun([e["per_batch"] for e in entries], batch_seconds, sum(e["setup_seconds"] for e in entries) / n)


def _build(plan: Any, plugin: Any, source: Any) -> Any:
    """The evaluator of ``source``'s weights on the plan's held-out batches."""
    from nasplug.errors import UnloadableWeights

    try:
        return plugin.build(plan.ctx, source=None if source.ctx is plan.ctx else source.ctx, folder=source.folder)
    except UnloadableWeights as exc:
        raise NasplugError(
            f"{exc} (the run's recipe.yaml builds another supernet than the one trained; if the "
            "recipe had null keys such as space.size: null, pass them again: --set space.size=null)"
        ) from None


def eval_cost_variants(plan: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """``(tag, description, evaluator settings)`` of the evaluation-cost curve: the run's
    settings, the other precision, and BatchNorm recalibration toggled (on 4 batches when the
    run has none) where the supernet has BatchNorm layers."""
    from nasplug.oneshot.recalibrate import batchnorms
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.pipeline.supernet import trained_supernet_shape
    from nasplug.registry import build_callable

    base = dict(plan.evaluator_kwargs)
    plugin = build_callable(SupernetEvaluator, base, field="evaluator")
    precision = plan.ctx.machine.evaluator_precision(plugin.precision)  # what the run's evaluator used
    recal = plugin.num_recalibrate_batches

    def describe(p: str, r: int) -> str:
        return f"{p}, " + (f"BatchNorm recalibrated on {r} batches" if r else "no recalibration")

    other = "bf16" if precision == "fp32" else "fp32"
    variants = [("as-run", describe(precision, recal), base),
                (other, describe(other, recal), {**base, "precision": other})]
    if batchnorms(trained_supernet_shape(plan.ctx)):
        flipped = 0 if recal else 4
        variants.append((f"recalibrate-{flipped}", describe(precision, flipped), {**base, "recalibrate": flipped}))
    return variants
