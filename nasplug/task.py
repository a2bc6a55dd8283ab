"""The Task interface: the data models are trained and scored on, the loss and the metrics.

A task is the half of a one-shot NAS run that the search space does not know: where the
examples come from, how a batch is cut and fed to a model, the loss, and the held-out
metrics (with their directions) that the inherited-weights evaluator and the retrained
models are compared on. The generic parts (the training loop, the evaluator, the pipeline's
stages, ``rank-corr``, ``compare``) talk to data only through this interface.

Writing a task takes two methods when the data fits in tensors (images, tables)::

    class DigitsTask(Task):
        name = "digits"
        metrics = {"acc": "maximize", "loss": "minimize"}

        def load(self, env):                  # once per run
            return {"train": (x, y), "heldout": (xh, yh), "test": (xt, yt)}

        def batch_loss(self, model, batch):   # sum of losses and of per-example stats
            x, y = batch
            logits = model(x)
            return F.cross_entropy(logits, y, reduction="sum"), {"acc": (logits.argmax(1) == y).sum()}

Every figure is then ``sum over examples / number of examples`` (``loss`` from the loss sum,
each stat from its own sum). Tasks whose data or objective do not fit that mould (the text
tasks: masking per step, an ELECTRA generator, per-token counts) override the hooks below
the line "the loop's view of a task".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasplug.errors import NasplugError

log = logging.getLogger(__name__)

Batch = Any  # what a task's batches are: a tuple of tensors by default
Sums = dict[str, float]
DIRECTIONS = ("maximize", "minimize")


@dataclass
class TaskEnv:
    """Where a task may keep files, passed to :meth:`Task.prepare` once per run.

    Attributes:
        run_dir: the run directory (a task may keep run-specific files here, e.g. a tokenizer).
        cache_dir: a folder shared between runs for costly derived data (``$NASPLUG_CACHE``).
        seed: the recipe's seed.
        progress: whether progress output is wanted.
    """

    run_dir: Path
    cache_dir: Path
    seed: int = 0
    progress: bool = False


class Task:
    """Data, loss and metrics. Subclass and implement :meth:`load` and :meth:`batch_loss`.

    Class attributes:
        name: registered name (logs, errors, ``nasplug list tasks``).
        metrics: held-out metric name -> ``"maximize"`` or ``"minimize"``.
        default_metric: what a search ranks by when the recipe names no metric (default:
            the first of ``metrics``).
        head: the model head the task trains, passed to ``space.build(arch, head=...)`` and
            ``space.build_supernet(head=...)`` when the space takes one (None: not passed).
        unit: what the training loop counts for its throughput (``<unit>_per_s``): a key of
            the counts :meth:`micro_batches` returns (the text tasks: ``tokens``).
    """

    name: str = "task"
    metrics: Mapping[str, str] = {"loss": "minimize"}
    #: Whether :meth:`teacher_loss` / :meth:`distill_loss` work (the sandwich sampler's
    #: in-place distillation); a task whose default cannot apply sets it False.
    distillation: bool = True
    default_metric: str | None = None
    head: str | None = None
    unit: str = "examples"
    #: Set by the run once it has called :meth:`prepare` in this process (it does so once).
    prepared_for_run: bool = False
    #: The splits :meth:`load` returned, set by :meth:`prepare` (None: not prepared yet).
    splits: dict[str, tuple[torch.Tensor, ...]] | None = None

    # ------------------------------------------------------------------ data
    def load(self, env: TaskEnv) -> Mapping[str, Sequence[torch.Tensor]]:
        """The splits as tuples of tensors with the same first dimension: ``train`` and
        ``heldout`` (used to score candidates and retrained models), optionally ``test``.
        Called once per run, by :meth:`prepare`."""
        raise NotImplementedError(f"task {self.name!r} implements neither load() nor prepare()")

    def prepare(self, env: TaskEnv) -> None:
        """Build or load the data; called once per run before anything reads it (under
        torchrun, rank 0 first). Default: ``self.splits = self.load(env)``, checked."""
        if self.splits is not None:
            return
        loaded = dict(self.load(env))
        for name in ("train", "heldout"):
            if name not in loaded:
                raise NasplugError(f"task {self.name!r}: load() returned no {name!r} split")
        splits: dict[str, tuple[torch.Tensor, ...]] = {}
        for name, given in loaded.items():
            tensors = tuple(given) if isinstance(given, (tuple, list)) else (given,)
            if not tensors or len({len(t) for t in tensors}) != 1 or len(tensors[0]) == 0:
                raise NasplugError(f"task {self.name!r}: split {name!r} must be non-empty tensors of equal length")
            splits[name] = tensors
        self.splits = splits

    def split(self, name: str) -> tuple[torch.Tensor, ...] | None:
        """The tensors of one split (None if the task has no such split)."""
        if self.splits is None:
            raise RuntimeError(f"task {self.name!r}: call prepare() before reading data")
        return self.splits.get(name)

    def batch_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
        """``(loss summed over the batch's examples, {stat: sum over the examples})`` of
        ``model`` (a supernet routed through an arch, or a standalone model). Every metric
        but ``loss`` must be such a stat."""
        raise NotImplementedError(f"task {self.name!r} implements no batch_loss()")

    # ------------------------------------------------------------------ what a model needs
    def check_model(self, model: nn.Module) -> None:
        """Raise NasplugError naming what ``model`` lacks for this task (e.g. a head).
        Called before training and evaluation. Default: nothing to check."""

    def model_settings(self) -> dict[str, Any]:
        """What this task dictates of its models, by the name of the space's constructor
        argument (text tasks: ``vocab_size``, ``seq_len``). The run passes each to a space
        that takes it when the recipe leaves it out, and refuses a recipe value that
        disagrees. Called before any data is built, so only settings known from the recipe.
        Default: none."""
        return {}

    def missing(self, model: nn.Module) -> list[str]:
        """The names (methods, heads) ``model`` lacks for this task. Called by ``nasplug run``
        on every model its stages will build, before anything is written or trained, so a
        space that does not fit the task is one line naming all of them. Default: none (the
        task calls the model itself)."""
        return []

    def auxiliary(self, model: nn.Module, seed: int) -> dict[str, nn.Module]:
        """Extra modules trained alongside ``model`` (ELECTRA's generator): name -> module.
        They share the optimizer and the checkpoint. Default: none."""
        return {}

    def export_assets(self, run_dir: Path, folder: Path) -> None:
        """Copy what a user of a trained model needs besides its weights (a tokenizer) from
        ``run_dir`` into ``folder``. Called after retraining and by ``nasplug export``.
        Default: nothing."""

    def card_facts(self) -> dict[str, Any]:
        """What an exported model's card says of the data: ``corpus`` (a name), ``language``
        and ``datasets`` (Hub ids), each only where it is known. Called when a model is
        exported. Default: nothing."""
        return {}

    def baseline(self) -> dict[str, float]:
        """Figures of a trivial predictor (e.g. the majority class) that any model must
        beat; reported beside the held-out figures. Default: none."""
        return {}

    # ------------------------------------------------------------------ the loop's view of a task
    def training_batches(self, batch_size: int, seed: int) -> Any:
        """An iterator of *global* training batches with ``state_dict()`` /
        ``load_state_dict()`` (saved with each checkpoint). Called once per training run."""
        from nasplug.oneshot.batches import BatchIterator

        return BatchIterator(self._tensors("train"), batch_size, seed)

    def micro_batches(self, batch: Batch, step: int, seed: int, slices: Sequence[slice],
                      device: torch.device) -> tuple[list[Batch], dict[str, int]]:
        """Cut the global ``batch`` of optimizer step ``step`` into this process's
        micro-batches (``slices`` of its rows), on ``device``; also return the counts the
        losses are normalised by (global: the same on every process)."""
        rows = _rows(batch)
        return [tuple(t[s].to(device) for t in rows) for s in slices], {"examples": len(rows[0])}

    def loss(self, model: nn.Module, batch: Batch, counts: Mapping[str, int],
             aux: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of one micro-batch, scaled so that the micro-batches of all processes add up
        to the global batch's mean; and the stats (sums) to log."""
        loss_sum, stats = self.batch_loss(model, batch)
        out = {"loss": loss_sum.detach(), **{k: v.detach() for k, v in stats.items()}}
        return loss_sum / max(counts["examples"], 1), out

    def teacher_loss(self, model: nn.Module, batch: Batch, counts: Mapping[str, int],
                     aux: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor], Any]:
        """In-place distillation (the sandwich sampler): :meth:`loss` of the teacher path (the
        largest arch) plus what the other paths learn from, detached. Default: the model's
        output on the batch (the tensor its forward returns while :meth:`loss` runs)."""
        with _output_of(model) as outputs:
            loss, stats = self.loss(model, batch, counts, aux)
        return loss, stats, _detached(outputs, self.name)

    def distill_loss(self, model: nn.Module, batch: Batch, counts: Mapping[str, int], aux: Mapping[str, nn.Module],
                     target: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of a student path toward the teacher's ``target`` on the same micro-batch,
        scaled like :meth:`loss`, and the task's own stats (for the log). Default: logit
        matching (Ba & Caruana 2014): squared difference between the model's output and the
        teacher's, summed over the output and divided by the global example count."""
        with _output_of(model) as outputs:
            _, stats = self.loss(model, batch, counts, aux)
        out = _detached(outputs, self.name, detach=False)
        return ((out.float() - target.float()) ** 2).sum() / max(counts["examples"], 1), stats

    def step_metrics(self, sums: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
        """Global sums of one step (added over micro-batches and processes) -> logged figures."""
        return {k: v / max(counts["examples"], 1) for k, v in sums.items()}

    def heldout_batches(self, batch_size: int, seed: int = 0, num_batches: int | None = None,
                        split: str = "heldout") -> list[Batch]:
        """Fixed batches of a split, identical for every candidate (``seed`` lets tasks
        with random inputs, e.g. masking, fix them). Default: the rows in order."""
        rows = self._tensors(split)
        available = -(-len(rows[0]) // batch_size)
        if num_batches is not None and num_batches > available:  # as the text tasks do: said, not silent
            log.warning("only %d %s batches of %d examples exist; %d were asked for", available, split, batch_size,
                        num_batches)
        n = available if num_batches is None else min(available, num_batches)
        return [tuple(t[i * batch_size:(i + 1) * batch_size] for t in rows) for i in range(n)]

    def evaluate(self, model: nn.Module, batches: Sequence[Batch], aux: Mapping[str, nn.Module] | None = None,
                 device: torch.device | None = None) -> Sums:
        """Sums over ``batches`` (no gradients; the caller sets eval mode and, for a supernet,
        the arch). Default: the loss sum, every stat's sum and ``examples``."""
        device = device or _device_of(model)
        sums: Sums = {}
        with torch.no_grad():
            for batch in batches:
                rows = tuple(t.to(device) for t in _rows(batch))
                loss_sum, stats = self.batch_loss(model, rows)
                for key, value in {"loss": loss_sum, **stats}.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
                sums["examples"] = sums.get("examples", 0.0) + len(rows[0])
        return sums

    def differentiable_input(self, model: nn.Module,
                             batch: Batch) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """``(x, f)`` for one micro-batch (as :meth:`loss` receives it): ``x`` a float tensor
        [N, ...] standing for the batch's inputs, and ``f`` the model's outputs [n, ...] as a
        differentiable function of the first n rows of such a tensor. The zero-cost proxies
        call it (SynFlow feeds ``f`` ones shaped like one row of ``x``; Jacobian covariance
        differentiates ``f(x)`` by ``x``). Default: the batch's first tensor and ``f = model``;
        NasplugError when that tensor is not a float tensor (ids, say: override this)."""
        x = _rows(batch)[0]
        if not torch.is_floating_point(x):
            raise NasplugError(f"task {self.name!r}: its inputs are {x.dtype}, not a float tensor; SynFlow and "
                               "Jacobian covariance need Task.differentiable_input to give a continuous input")
        return x, model

    def figures(self, sums: Mapping[str, float]) -> dict[str, float]:
        """Held-out sums -> the task's metrics. Default: every sum / ``examples``."""
        count = max(sums.get("examples", 0.0), 1.0)
        return {k: v / count for k, v in sums.items() if k != "examples"}

    # ------------------------------------------------------------------ helpers
    def primary_metric(self) -> str:
        return self.default_metric or next(iter(self.metrics))

    def direction(self, metric: str) -> str:
        if metric not in self.metrics:
            raise NasplugError(f"metric: task {self.name!r} has no metric {metric!r}; it has {', '.join(self.metrics)}")
        return self.metrics[metric]

    def _tensors(self, split: str) -> tuple[torch.Tensor, ...]:
        tensors = self.split(split)
        if tensors is None:
            raise NasplugError(f"task {self.name!r}: no {split!r} split")
        return tensors


def add_sums(parts: Sequence[Mapping[str, float]]) -> Sums:
    """The sums of several batches (e.g. one :meth:`Task.evaluate` per batch) added in order:
    the same additions, in the same order, as one :meth:`Task.evaluate` over those batches."""
    total: Sums = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total


def _rows(batch: Batch) -> tuple[torch.Tensor, ...]:
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def _device_of(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@contextmanager
def _output_of(model: nn.Module) -> Iterator[list[Any]]:
    """Collects what ``model``'s forward returns while the block runs."""
    outputs: list[Any] = []
    handle = model.register_forward_hook(lambda module, args, out: outputs.append(out))
    try:
        yield outputs
    finally:
        handle.remove()


def _detached(outputs: list[Any], task: str, detach: bool = True) -> torch.Tensor:
    if len(outputs) != 1 or not isinstance(outputs[0], torch.Tensor):
        raise NasplugError(f"task {task!r}: in-place distillation needs one tensor from the model's forward per batch "
                           f"(the default distill_loss); override teacher_loss and distill_loss, or use "
                           f"supernet.sampler {{name: sandwich, distill: false}}")
    return outputs[0].detach() if detach else outputs[0]


def check_metrics(task: Task) -> None:
    """NasplugError (one line, naming the task and the metric) unless the task declares at
    least one metric, each with a direction of :data:`DIRECTIONS`, and its ``default_metric``
    is one of them. Called when a task is built for a run: a misspelt direction would
    otherwise rank every candidate the wrong way round without a word."""
    metrics = task.metrics
    if not isinstance(metrics, Mapping) or not metrics:
        raise NasplugError(f"task {task.name!r}: metrics must map each metric name to 'maximize' or 'minimize', "
                           f"got {metrics!r}")
    for name, direction in metrics.items():
        if direction not in DIRECTIONS:
            raise NasplugError(f"task {task.name!r}: metric {name!r} has direction {direction!r}; allowed: "
                               f"{', '.join(DIRECTIONS)}")
    if task.default_metric is not None and task.default_metric not in metrics:
        raise NasplugError(f"task {task.name!r}: default_metric {task.default_metric!r} is not one of its metrics "
                           f"({', '.join(metrics)})")


__all__ = ["Batch", "Sums", "Task", "TaskEnv", "add_sums", "check_metrics"]
