"""How a recipe's ``evaluator:`` section becomes an evaluator: the :class:`EvaluatorPlugin` base.

An evaluator is any callable ``arch -> metrics`` (:mod:`nasplug.evaluate`). Most are built
from the space alone and are written as a plain class or function (``ToyObjective(space,
noise=0.1)``; see README, "Your own space and task"); :class:`CallableEvaluator` adapts
them. An evaluator that needs more of the run (the supernet evaluator reads the trained
supernet and the task's held-out data) subclasses :class:`EvaluatorPlugin`, as a stage
subclasses :class:`~nasplug.pipeline.stage.Stage`: what it needs is declared on the class
and in its signatures, never probed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from nasplug.errors import NasplugError
from nasplug.evaluate import Evaluator
from nasplug.objectives import DeclaresDirections
from nasplug.recipe import Component, refuse_reserved
from nasplug.registry import EVALUATORS, build_callable, check_kwargs, check_plugin

if TYPE_CHECKING:
    from nasplug.pipeline.context import RunContext


class EvaluatorPlugin:
    """A recipe's evaluator. Subclass it, take the recipe's settings as keyword arguments of
    ``__init__`` and implement :meth:`build`; register it in ``EVALUATORS`` (or the entry-point
    group ``nasplug.evaluators``) or name it by ``module:Class`` in a recipe.

    The pipeline calls, in this order:

    1. ``__init__(**settings)`` with the recipe's keys besides ``name``, each checked first
       against its type hint and the bounds declared there (``Annotated[int, Field(ge=1)]``):
       a bad value is one line naming ``evaluator.<key>``. Called when the search stage
       checks the recipe, before any stage runs, and again when an evaluator is built.
    2. :meth:`check` before any stage runs: what depends on the rest of the recipe.
    3. :meth:`build` when the search starts (and in ``nasplug compare``, ``rank-corr`` and
       ``study``): returns the evaluator, an ``arch -> metrics`` callable that may also
       be a :class:`~nasplug.evaluate.BatchEvaluator` and a :class:`~nasplug.evaluate.Closeable`.
    """

    #: ``build`` reads what earlier stages wrote in the run directory (the supernet evaluator
    #: loads the trained supernet): ``nasplug compare`` then needs ``--from-run``.
    needs_context: ClassVar[bool] = False

    def check(self, ctx: RunContext) -> None:
        """Raise NasplugError naming the recipe key when the settings do not fit the run (e.g.
        a search metric this evaluator does not measure). Called before any stage runs; it
        must not read what stages write. Default: nothing to check."""

    def metric_directions(self, ctx: RunContext) -> Mapping[str, str]:
        """Which way each metric this evaluator produces is better, for the metrics neither the
        task nor the space declares (see :mod:`nasplug.objectives`). Called before any stage
        runs, when the run resolves its objectives; it must not read what stages write.
        Default: none (the supernet evaluator's metrics are the task's and the space's)."""
        return {}

    def build(self, ctx: RunContext, memory_hint: int | None = None) -> Evaluator:
        """The evaluator for the run's space (``ctx.space``).

        Args:
            ctx: the run: recipe, space, task (``ctx.prepared_task()``), run directory.
            memory_hint: how many of the best archs scored so far the strategy builds its
                next proposals on (:meth:`nasplug.strategy.Strategy.memory_hint`; None: not
                known). An evaluator that keeps per-arch state between calls keeps that many.
        """
        raise NotImplementedError(f"{type(self).__name__} implements no build()")


class CallableEvaluator(EvaluatorPlugin):
    """A plain evaluator factory (a class whose instances are called, or a function marked
    with :func:`nasplug.registry.plugin`), built as ``factory(space=ctx.space, **settings)``."""

    def __init__(self, factory: Any, settings: dict[str, Any], field: str = "evaluator") -> None:
        self.factory, self.field = factory, field
        self.settings = check_kwargs(factory, settings, field=field)

    def metric_directions(self, ctx: RunContext) -> Mapping[str, str]:
        """What the factory declares in its ``metric_directions`` attribute (none if absent)."""
        return dict(self.factory.metric_directions) if isinstance(self.factory, DeclaresDirections) else {}

    def build(self, ctx: RunContext, memory_hint: int | None = None) -> Evaluator:
        return build_callable(self.factory, {"space": ctx.space, **self.settings}, field=self.field)


def evaluator_plugin(spec: Component | None, field: str = "evaluator") -> EvaluatorPlugin:
    """The recipe's evaluator plugin, its settings checked (nothing built, nothing read from
    the run); NasplugError naming the key when the recipe has none or a setting is bad, and
    for a ``module:attr`` path that is not an evaluator plugin (refused before it is called)."""
    if spec is None:
        raise NasplugError(f"{field}: the recipe has a search section but no evaluator (e.g. evaluator: {{name: toy}})")
    refuse_reserved(spec, "evaluator", field)
    factory, trusted = EVALUATORS.resolve(spec.name)
    if isinstance(factory, type) and issubclass(factory, EvaluatorPlugin):
        return build_callable(factory, spec.kwargs(), field=field)
    if not trusted:
        check_plugin(factory, EVALUATORS.kind, None, field, spec.name)
    return CallableEvaluator(factory, spec.kwargs(), field)


def build_evaluator(ctx: RunContext, memory_hint: int | None = None) -> Evaluator:
    """The recipe's evaluator for the run ``ctx`` (its settings checked first); see
    :meth:`EvaluatorPlugin.build` for ``memory_hint``."""
    return evaluator_plugin(ctx.recipe.evaluator).build(ctx, memory_hint)
