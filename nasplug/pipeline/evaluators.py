"""The ``supernet`` evaluator of a recipe: inherited weights from the run's trained supernet.

Called by the search stage (and by ``nasplug compare`` / ``rank-corr``) after the supernet
stage has written ``supernet/model.safetensors``; recipes never name weight files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from nasplug.errors import NasplugError
from nasplug.oneshot.checkpoint import load_weights
from nasplug.oneshot.evaluator import InheritedWeights
from nasplug.oneshot.recalibrate import BatchNormRecalibration
from nasplug.oneshot.seeds import auxiliary_seed, derive_seed
from nasplug.pipeline.evaluator_plugin import EvaluatorPlugin
from nasplug.registry import checked


def load_trained_supernet(context: Any, source: Any = None, folder: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """The run's trained supernet (on its training device) and the task's auxiliary modules
    (ELECTRA: the generator) with their trained weights.

    ``source``: the run whose supernet to load (default ``context``; ``nasplug rank-corr
    --compare`` scores another run's supernet on this run's data); ``folder``: where its weights
    are (default the source's ``supernet/``; a snapshot folder for ``--checkpoints``).
    """
    from nasplug import distributed

    source = context if source is None else source
    shared = source is context and folder is None  # the supernet this process trained or loaded may be reused
    folder = source.layout.supernet if folder is None else folder
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise NasplugError(f"evaluator 'supernet': no trained supernet at {weights}; run the supernet stage first")
    task = context.prepared_task()
    supernet = context.extras.get("supernet") if shared else None
    if supernet is None:
        from nasplug.pipeline.supernet import trained_supernet_shape

        supernet = trained_supernet_shape(source)
        load_weights(supernet, weights)
        train_device = source.recipe.supernet.device if source.recipe.supernet is not None else "auto"
        supernet = supernet.to(distributed.device_for(train_device))
    train_seed = source.recipe.supernet.seed if source.recipe.supernet is not None else 0
    aux = task.auxiliary(supernet, auxiliary_seed(train_seed))
    for name, module in aux.items():
        load_weights(module, folder / f"{name}.safetensors")
    return supernet, aux


class SupernetEvaluator(EvaluatorPlugin):
    """Inherited weights of this run's trained supernet, scored on ``batches`` fixed held-out
    batches of ``batch_size`` examples of the task (made with ``seed``).

    Between calls it keeps the hidden states of the ``keep`` best archs by the search's
    metric (within ``cache_mb`` MiB), so children start from their parents' states; by
    default as many as the strategy's memory hint (evolution: its ``parents``; 10 when it
    gives none). ``recalibrate``: re-estimate BatchNorm statistics on that many training
    batches of ``recalibrate_batch_size`` examples per arch (SPOS).

    ``precision``: ``auto`` (the default): what the run's training sections resolve ``auto``
    to (:mod:`nasplug.pipeline.machine`: bf16 where the device multiplies bf16 faster), or
    ``fp32``, or ``bf16`` (autocast; the head that turns the last hidden states into the
    metrics decides in fp32 either way: its layers run in fp32, and the MLM decoder's
    vocabulary product in bf16 with every argmax that bf16 rounding could change recomputed in
    fp32, :mod:`nasplug.text.bf16_vocab`). ``benchmarks/eval_throughput.py --run`` on the
    demo's trained supernet measured a Kendall tau of 0.98 between the bf16 and fp32 rankings
    by held-out MLM accuracy of the same 1,000 candidates (0.909 while the whole head ran in
    bf16), above the 0.95 a default needs.

    The recipe key ``batches`` is a count (``num_batches`` in the glossary, ``nasplug.__doc__``);
    this is the one place it is read under its recipe name.
    """

    needs_context = True

    @checked("evaluator")
    def __init__(self, batches: Annotated[int, Field(ge=1, le=10**6)] = 8,
                 batch_size: Annotated[int, Field(ge=1, le=2**20)] = 64,
                 precision: Literal["auto", "fp32", "bf16"] = "auto", prefix_sharing: bool = True, seed: int = 0,
                 keep: Annotated[int, Field(ge=0, le=10**6)] | None = None,
                 cache_mb: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 4096,
                 recalibrate: Annotated[int, Field(ge=0, le=10**4)] = 0,
                 recalibrate_batch_size: Annotated[int, Field(ge=1, le=2**20)] = 64) -> None:
        self.num_batches, self.batch_size, self.seed = batches, batch_size, seed
        self.precision, self.prefix_sharing, self.keep, self.cache_mb = precision, prefix_sharing, keep, cache_mb
        self.num_recalibrate_batches, self.recalibrate_batch_size = recalibrate, recalibrate_batch_size

    def check(self, ctx: Any) -> None:
        """Every objective of the search is a metric the task or the space measures."""
        if ctx.recipe.search is None:
            return
        task, objectives = ctx.task, ctx.objectives
        missing = [o.metric for o in objectives if o.metric not in task.metrics]
        if not missing:
            return
        import random

        analytic = ctx.space.metrics(ctx.space.sample(random.Random(0)))
        if ctx.recipe.section("latency") is not None:  # the latency stage's table (written later) or measured
            analytic.setdefault("latency_ms", 0.0)
        for metric in missing:
            if metric not in analytic:
                field = "search.metric" if len(objectives) == 1 else "search.objectives"
                raise NasplugError(f"{field}: {metric!r} is not measured by the supernet evaluator on task "
                                   f"{task.name!r}; allowed: {', '.join([*task.metrics, *analytic])}")

    def settings(self) -> dict[str, Any]:
        """What its scores depend on besides the weights and the data (memory settings left out)."""
        return {"batches": self.num_batches, "batch_size": self.batch_size, "seed": self.seed,
                "precision": self.precision, "recalibrate": self.num_recalibrate_batches,
                "recalibrate_batch_size": self.recalibrate_batch_size}

    def build(self, ctx: Any, memory_hint: int | None = None, *, source: Any = None,
              folder: Path | None = None) -> InheritedWeights:
        """The evaluator of ``ctx``'s trained supernet, or (``rank-corr``) of another run's
        (``source``) or of a snapshot's weights (``folder``), on ``ctx``'s held-out batches."""
        supernet, aux = load_trained_supernet(ctx, source, folder)
        task = ctx.prepared_task()
        held = task.heldout_batches(self.batch_size, self.seed, self.num_batches)
        if not held:
            raise NasplugError(f"task {task.name!r}: no held-out examples to score candidates on")
        keep = self.keep if self.keep is not None else memory_hint if memory_hint is not None else 10
        rank: dict[str, Any] = {}  # which archs' states are kept: the best by the first objective the task measures
        measured = [o for o in ctx.objectives if o.metric in task.metrics] if ctx.recipe.search is not None else []
        if measured:
            rank = {"rank_metric": measured[0].metric, "rank_direction": measured[0].direction}
        device = next(supernet.parameters()).device
        recalibration = (BatchNormRecalibration.from_task(task, self.num_recalibrate_batches,
                                                          self.recalibrate_batch_size,
                                                          derive_seed(self.seed, "recalibrate"), device)
                         if self.num_recalibrate_batches else None)
        machine = getattr(ctx, "machine", None)  # a RunContext: the run's auto; anything else resolves it itself
        precision = machine.evaluator_precision(self.precision) if machine is not None else self.precision
        return InheritedWeights(supernet, task, held, space=ctx.space, aux=aux, precision=precision,
                                prefix_sharing=self.prefix_sharing, keep=keep, cache_mb=self.cache_mb,
                                recalibration=recalibration, **rank)
