"""The ``supernet`` evaluator of a recipe: inherited weights from the run's trained supernet.

Called by the search stage (and by ``nasplug compare`` / ``rank-corr``) after the supernet
stage has written ``supernet/model.safetensors``; recipes never name weight files.
"""

from __future__ import annotations

from typing import Any

from nasplug.errors import NasplugError
from nasplug.oneshot.checkpoint import load_weights
from nasplug.oneshot.evaluator import InheritedWeights
from nasplug.oneshot.recalibrate import BatchNormRecalibration
from nasplug.oneshot.seeds import auxiliary_seed, derive_seed
from nasplug.registry import plugin
from nasplug.space import SearchSpace


def load_trained_supernet(context: Any) -> tuple[Any, dict[str, Any]]:
    """The run's trained supernet (on its training device) and the task's auxiliary modules
    (ELECTRA: the generator) with their trained weights."""
    from nasplug import distributed

    folder = context.layout.supernet
    weights = context.layout.supernet_weights
    if not weights.is_file():
        raise NasplugError(f"evaluator 'supernet': no trained supernet at {weights}; run the supernet stage first")
    task = context.prepared_task()
    supernet = context.extras.get("supernet")
    if supernet is None:
        from nasplug.pipeline.supernet import trained_supernet_shape

        supernet = trained_supernet_shape(context)
        load_weights(supernet, weights)
        train_device = context.recipe.supernet.device if context.recipe.supernet is not None else "auto"
        supernet = supernet.to(distributed.device_for(train_device))
    train_seed = context.recipe.supernet.seed if context.recipe.supernet is not None else 0
    aux = task.auxiliary(supernet, auxiliary_seed(train_seed))
    for name, module in aux.items():
        load_weights(module, folder / f"{name}.safetensors")
    return supernet, aux


@plugin("evaluator")
def supernet_evaluator(space: SearchSpace, context: Any, batches: int = 8, batch_size: int = 64,
                       precision: str = "fp32", prefix_sharing: bool = True, seed: int = 0,
                       keep: int | None = None, cache_mb: float = 4096, recalibrate: int = 0,
                       recalibrate_batch_size: int = 64) -> InheritedWeights:
    """Inherited weights of this run's trained supernet, scored on ``batches`` fixed held-out
    batches of ``batch_size`` examples of the task (made with ``seed``).

    Between calls it keeps the hidden states of the ``keep`` best archs by the search's
    metric (within ``cache_mb`` MiB), so children start from their parents' states; by
    default as many as the strategy's ``parents`` (10 when it has none). ``recalibrate``:
    re-estimate BatchNorm statistics on that many training batches per arch (SPOS).
    """
    check_settings(batches=batches, batch_size=batch_size, recalibrate=recalibrate,
                   recalibrate_batch_size=recalibrate_batch_size, keep=keep, cache_mb=cache_mb)
    supernet, aux = load_trained_supernet(context)
    task = context.prepared_task()
    held = task.heldout_batches(batch_size, seed, batches)
    if not held:
        raise NasplugError(f"task {task.name!r}: no held-out examples to score candidates on")
    search = context.recipe.search
    if keep is None:
        parents = search.strategy.kwargs().get("parents") if search is not None else None
        keep = parents if isinstance(parents, int) and parents > 0 else 10  # the strategy reports bad values
    rank: dict[str, Any] = {}
    if search is not None and search.metric in task.metrics:
        rank = {"rank_metric": search.metric, "rank_direction": search.direction}
    device = next(supernet.parameters()).device
    recalibration = (BatchNormRecalibration.from_task(task, recalibrate, recalibrate_batch_size,
                                                      derive_seed(seed, "recalibrate"), device)
                     if recalibrate else None)
    return InheritedWeights(supernet, task, held, space=space, aux=aux, precision=precision,
                            prefix_sharing=prefix_sharing, keep=keep, cache_mb=cache_mb,
                            recalibration=recalibration, **rank)


#: field -> (lowest, highest) allowed
LIMITS = {"batches": (1, 10**6), "batch_size": (1, 2**20), "recalibrate": (0, 10**4),
          "recalibrate_batch_size": (1, 2**20), "keep": (0, 10**6)}


def check_settings(**settings: Any) -> None:
    """NasplugError naming the first setting outside its range (with the range)."""
    import math

    for name, value in settings.items():
        if name == "cache_mb":
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise NasplugError(f"evaluator.cache_mb: must be a finite number >= 0, got {value!r}")
            continue
        if value is None:
            continue
        low, high = LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise NasplugError(f"evaluator.{name}: must be an integer between {low} and {high:,}, got {value!r}")


def check_recipe(context: Any) -> None:
    """Before any stage runs: the evaluator's settings are in range, and the search metric
    is one the task or the space measures."""
    spec = context.recipe.evaluator
    if spec is not None:
        check_settings(**{k: v for k, v in spec.kwargs().items() if k in LIMITS or k == "cache_mb"})
    search = context.recipe.search
    task = context.task
    if search is None or search.metric in task.metrics:
        return
    import random

    analytic = context.space.metrics(context.space.sample(random.Random(0)))
    if search.metric not in analytic:
        raise NasplugError(f"search.metric: {search.metric!r} is not measured by the supernet evaluator on task "
                           f"{task.name!r}; allowed: {', '.join([*task.metrics, *analytic])}")


supernet_evaluator.needs_run_context = True  # type: ignore[attr-defined]
supernet_evaluator.check_recipe = check_recipe  # type: ignore[attr-defined]
