"""The zero-cost proxies as registered evaluators: ``evaluator: {name: synflow}`` (also
``grad_norm``, ``snip``, ``jacov``).

Each scores an arch on a standalone model of it with fresh weights (``seed``: the recipe's
seed unless given, the weights a retrain would start from) and one fixed training batch of
the task (``batch_size`` examples, the first batch of the stream shuffled with
``batch_seed``), with no training. Results are ``{<proxy>: value}`` plus the space's analytic
metrics (params, FLOPs); higher proxy values rank an arch higher (the direction is
``maximize``).

Modes: the loss-based measures (grad-norm, SNIP) and Jacobian covariance run with the model in
eval mode (no dropout) except its BatchNorm layers, which normalise with the batch's
statistics as in training, where both papers computed them; SynFlow runs in eval mode, so a
fresh BatchNorm (mean 0, variance 1) is close to the identity (the papers' SynFlow removes
BatchNorm). The task's :meth:`~nasplug.task.Task.differentiable_input` gives SynFlow and
Jacobian covariance a continuous input: images and table rows as they are; for text, the
word embeddings.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.pipeline.evaluator_plugin import EvaluatorPlugin
from nasplug.registry import checked
from nasplug.zerocost import PROXIES, measures

__all__ = ["PROXIES", "GradNorm", "JacobianCovariance", "ProxyScore", "Snip", "SynFlow", "ZeroCostEvaluator"]


def _train_batchnorm_only(model: nn.Module) -> None:
    """Eval mode (no dropout) but BatchNorm layers normalising with the batch's statistics."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train()


class ProxyScore:
    """``arch -> {proxy: value, **analytic metrics}`` on fresh models and one fixed batch."""

    def __init__(self, proxy: str, space: Any, task: Any, batch_size: int, batch_seed: int, seed: int,
                 device: torch.device) -> None:
        from nasplug.oneshot.seeds import auxiliary_seed

        self.proxy, self.space, self.task, self.seed, self.device = proxy, space, task, seed, device
        stream = task.training_batches(batch_size, batch_seed)
        micro, self.counts = task.micro_batches(next(stream), 1, batch_seed, [slice(0, batch_size)], device)
        self.batch = micro[0]
        self.aux_seed = auxiliary_seed(seed)

    def __call__(self, arch: Arch) -> dict[str, float]:
        from nasplug.oneshot.build import build_model

        model = build_model(self.space, arch, self.task, seed=self.seed).to(self.device)
        with torch.random.fork_rng(devices=[]):  # nothing random runs; any stray draw stays here
            torch.manual_seed(self.seed)
            value = self._measure(model)
        return {self.proxy: value, **self.space.metrics(arch)}

    def _measure(self, model: nn.Module) -> float:
        if self.proxy == "synflow":
            model.eval()
            return measures.synflow(model, self.task.differentiable_input(model, self.batch))
        _train_batchnorm_only(model)
        if self.proxy == "jacov":
            return measures.jacov(model, self.task.differentiable_input(model, self.batch))
        aux = {name: m.to(self.device).eval() for name, m in self.task.auxiliary(model, self.aux_seed).items()}

        def loss() -> torch.Tensor:
            return self.task.loss(model, self.batch, self.counts, aux)[0]

        return measures.grad_norm(model, loss) if self.proxy == "grad_norm" else measures.snip(model, loss)


class ZeroCostEvaluator(EvaluatorPlugin):
    """A zero-cost proxy (the subclasses name it): see the module docstring.

    Args:
        batch_size: examples in the one batch (``grad_norm``, ``snip``, ``jacov``; SynFlow
            uses one example's shape).
        batch_seed: shuffles the training stream the batch is the first of.
        seed: initialises the fresh models (default: the recipe's seed).
        device: where the models run (``auto``: CUDA when available).
    """

    proxy: ClassVar[str] = ""
    needs_context = False  # the task's data and the space only, nothing a stage wrote

    @checked("evaluator")
    def __init__(self, batch_size: Annotated[int, Field(ge=2, le=2**16)] = 64,
                 batch_seed: Annotated[int, Field(ge=0, lt=2**63)] = 0,
                 seed: Annotated[int, Field(ge=0, lt=2**63)] | None = None,
                 device: Literal["auto", "cpu", "cuda"] = "auto") -> None:
        self.batch_size, self.batch_seed, self.seed, self.device = batch_size, batch_seed, seed, device

    def settings(self) -> dict[str, Any]:
        """What the scores depend on besides the space and the task (for caches)."""
        return {"proxy": self.proxy, "batch_size": self.batch_size, "batch_seed": self.batch_seed, "seed": self.seed}

    def metric_directions(self, ctx: Any) -> dict[str, str]:
        """Every proxy here ranks archs with higher values first."""
        return {self.proxy: "maximize"}

    def check(self, ctx: Any) -> None:
        """The search's objectives are this proxy (maximised) or analytic metrics of the space."""
        if ctx.recipe.search is None:
            return
        analytic: dict[str, Any] | None = None
        for objective in ctx.objectives:
            if objective.metric == self.proxy:
                if objective.direction != "maximize":
                    raise NasplugError(f"search.direction: {self.proxy} ranks archs with higher values first; "
                                       "use maximize")
                continue
            if analytic is None:
                import random

                analytic = ctx.space.metrics(ctx.space.sample(random.Random(0)))
            if objective.metric not in analytic:
                raise NasplugError(f"search.metric: {objective.metric!r} is not measured by the {self.proxy} "
                                   f"evaluator; allowed: {', '.join([self.proxy, *analytic])}")

    def build(self, ctx: Any, memory_hint: int | None = None) -> ProxyScore:
        from nasplug import distributed

        seed = self.seed if self.seed is not None else ctx.recipe.seed
        return ProxyScore(self.proxy, ctx.space, ctx.prepared_task(), self.batch_size, self.batch_seed, seed,
                          distributed.device_for(self.device))


class SynFlow(ZeroCostEvaluator):
    """SynFlow (Tanaka et al. 2020) of a fresh model: ``evaluator: {name: synflow}``."""

    proxy = "synflow"


class GradNorm(ZeroCostEvaluator):
    """Sum of the gradient norms of a fresh model's layers: ``evaluator: {name: grad_norm}``."""

    proxy = "grad_norm"


class Snip(ZeroCostEvaluator):
    """SNIP connection sensitivity (Lee et al. 2019) of a fresh model: ``evaluator: {name: snip}``."""

    proxy = "snip"


class JacobianCovariance(ZeroCostEvaluator):
    """Jacobian covariance (Mellor et al. 2020) of a fresh model: ``evaluator: {name: jacov}``."""

    proxy = "jacov"
