"""The cheaper predictors rank-corr sets beside the supernet (``--predictors``).

=============  =====================================================================  ==========
name           score of an arch                                                       cost
=============  =====================================================================  ==========
``params``     the space's analytic parameter count (more ranks higher)               none
``flops``      the space's analytic FLOPs (more ranks higher)                         none
``synflow``    SynFlow of a fresh model (:mod:`nasplug.zerocost`)                     one batch
``grad_norm``  summed gradient norms of a fresh model                                 one batch
``snip``       SNIP connection sensitivity of a fresh model                           one batch
``jacov``      Jacobian covariance of a fresh model                                   one batch
``short:N``    the arch trained standalone for N steps (``short``: S / 8), seed 0     N steps
=============  =====================================================================  ==========

``all`` names every one the space supports (with ``short:N`` given, that short training). The
proxies' scores are kept in the models folder (``predictors/<name>.json``) with the settings
they were computed with (the proxy's, the space's, the task's): a changed setting scores every
arch again. Short trainings are standalone models like the others (``standalone/<arch>/steps-N/seed-0/``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError
from nasplug.zerocost import PROXIES

log = logging.getLogger(__name__)

ANALYTIC = ("params", "flops")


@dataclass(frozen=True)
class Predictor:
    """One cheaper predictor: ``kind`` is ``analytic``, ``proxy`` or ``short``."""

    name: str
    kind: str
    steps: int = 0  # a short training's steps

    @property
    def label(self) -> str:
        return f"short training ({self.steps} steps)" if self.kind == "short" else self.name


@dataclass
class PredictorScores:
    """A predictor's value for each arch (in its own units) and what it cost."""

    values: list[float]
    higher_is_better: bool
    seconds_per_arch: float  # measured when the scores were computed (kept with them)
    one_off_s: float | None = None  # a cost paid once for every arch (training a supernet)


def parse_predictors(names: Sequence[str], space: Any, steps: int, field: str = "--predictors") -> list[Predictor]:
    """``--predictors`` (names, each maybe a comma-separated list) -> checked predictors;
    NasplugError naming ``field``, the bad one and the allowed names."""
    import random

    analytic = [m for m in ANALYTIC if isinstance(space.metrics(space.sample(random.Random(0))).get(m), (int, float))]
    wanted = [part.strip() for name in names for part in name.split(",") if part.strip()]
    if "all" in wanted:
        short = [] if any(w == "short" or w.startswith("short:") for w in wanted) else ["short"]  # all, short:N
        wanted = [*(w for w in wanted if w != "all"), *analytic, *PROXIES, *short]
    out: list[Predictor] = []
    for name in dict.fromkeys(wanted):
        if name in analytic:
            out.append(Predictor(name, "analytic"))
        elif name in PROXIES:
            out.append(Predictor(name, "proxy"))
        elif name == "short" or name.startswith("short:"):
            out.append(Predictor("short", "short", _short_steps(name, steps, field)))
        else:
            missing = f" (space {space.name!r} gives no analytic {name!r})" if name in ANALYTIC else ""
            raise NasplugError(f"{field}: {name!r} is not a predictor{missing}; allowed: "
                               f"{', '.join([*analytic, *PROXIES, 'short', 'short:N', 'all'])}")
    if len({p.name for p in out}) != len(out):
        raise NasplugError(f"{field}: short training is named twice")
    return out


def _short_steps(name: str, steps: int, field: str) -> int:
    if name == "short":
        return max(1, steps // 8)
    text = name.removeprefix("short:")
    if not text.isdigit() or not 1 <= int(text) < steps:
        raise NasplugError(f"{field}: {name!r}: N must be a whole number of steps from 1 to {steps - 1} "
                           f"(fewer than the {steps} steps of the standalone models)")
    return int(text)


def score_predictor(predictor: Predictor, plan: Any, models: Any, metric_of: Any) -> PredictorScores:
    """Every arch of the plan scored by ``predictor``. ``models``: the plan's
    :class:`~nasplug.rankcorr.standalone.StandaloneModels`; ``metric_of(parts)``: the compared
    metric of a model's held-out sums."""
    archs, space = plan.archs, plan.ctx.space
    if predictor.kind == "analytic":
        t0 = time.perf_counter()
        values = [float(space.metrics(a)[predictor.name]) for a in archs]
        return PredictorScores(values, True, (time.perf_counter() - t0) / len(archs))
    if predictor.kind == "short":
        runs = [models.get(a, predictor.steps, 0) for a in archs]
        cost = sum(r.train_s + r.score_s for r in runs) / len(archs)
        return PredictorScores([metric_of(r.parts) for r in runs], plan.direction == "maximize", cost)
    return _proxy_scores(predictor.name, plan, archs)


def _proxy_scores(name: str, plan: Any, archs: list[Arch]) -> PredictorScores:
    """A zero-cost proxy of every arch: read back when scored with the same settings, else
    computed (the cache file rewritten after each arch, so a stop loses one arch)."""
    from nasplug.io import atomic_write_json
    from nasplug.pipeline.evaluator_plugin import evaluator_plugin
    from nasplug.rankcorr.standalone import as_json
    from nasplug.rankcorr.supernets import read_cache
    from nasplug.recipe import Component

    ctx = plan.ctx
    plugin = evaluator_plugin(Component(name=name), field="--predictors")
    task, space = ctx.recipe.task, ctx.recipe.space
    settings = as_json({**plugin.settings(), "recipe_seed": ctx.recipe.seed, "space": space.model_dump(),
                        "task": task.model_dump() if task is not None else None})
    path = plan.layout.predictor_scores(name)
    scores = read_cache(path, "scores", settings, _usable)
    evaluator = None
    for arch in archs:
        key = arch_key(arch)
        if key in scores:
            continue
        if evaluator is None:
            log.info("rank-corr: computing %s", name)
            evaluator = plugin.build(ctx)
        t0 = time.perf_counter()
        value = float(evaluator(arch)[name])
        scores[key] = {"value": value if math.isfinite(value) else None, "seconds": time.perf_counter() - t0}
        atomic_write_json(path, {"settings": settings, "scores": scores})
    values = [math.nan if scores[arch_key(a)]["value"] is None else float(scores[arch_key(a)]["value"]) for a in archs]
    return PredictorScores(values, True, sum(float(scores[arch_key(a)]["seconds"]) for a in archs) / len(archs))


def _usable(entry: Any) -> bool:
    """A proxy cache entry: its value (None: not finite for this arch) and its seconds."""
    return (isinstance(entry, dict) and isinstance(entry.get("seconds"), (int, float))
            and (entry.get("value") is None or (isinstance(entry.get("value"), (int, float))
                                                and not isinstance(entry.get("value"), bool))))
