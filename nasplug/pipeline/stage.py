"""The Stage interface and the stage registry.

A stage is one resumable step of ``nasplug run``. The pipeline calls, in this order:
:meth:`Stage.applies` (does the recipe ask for it?), :meth:`Stage.check` for every stage
that will run (before any of them runs, so a bad setting is reported before hours of
training), then :meth:`Stage.run` for each. :meth:`Stage.report` renders the stage's section
of ``report.md`` from the files it left in the run directory (``nasplug show`` calls it on
runs that are finished or not). Built-in stages are registered by import path (in
:data:`nasplug.registry.STAGES`, beside the other registries), so no stage module is imported
before the stage order is first needed (GLUE lives with the text plugins); then every
registered stage is loaded, entry points included. A plugin stage
says itself where it runs (:attr:`Stage.position`), what it writes (:attr:`Stage.outputs`),
which of its settings a resumed run may change (:attr:`Stage.may_change`), whether it has a
recipe section (:attr:`Stage.section`) and what figures it adds to a study
(:meth:`Stage.downstream`, :meth:`Stage.downstream_metrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from nasplug.layout import RunLayout
from nasplug.registry import STAGES

if TYPE_CHECKING:
    from nasplug.pipeline.context import RunContext
    from nasplug.recipe import Recipe

#: Where the core stages run (a stage's :attr:`Stage.position` wins over this table).
CORE_POSITIONS = {"supernet": 10.0, "search": 20.0, "retrain": 30.0, "report": 100.0}

Section = tuple[list[str], str]  # Markdown lines for report.md, and a table for the terminal ("" for none)


@dataclass
class RunView:
    """What a stage's report section reads: the run directory, its recipe (as stored), the
    space and the task (None when they cannot be built), how many top archs to list, and
    whether the section may draw its plots into the run (the report stage) or only show the
    ones there are (``nasplug show``, which never writes: a run may sit on a read-only share)."""

    run_dir: Path
    recipe: dict[str, Any]
    space: Any = None
    top_k: int = 10
    task: Any = None
    draw: bool = False

    @property
    def layout(self) -> RunLayout:
        """Where each file of the run lives."""
        return RunLayout(self.run_dir)


class Stage:
    """One step of a run. Subclass, set ``name``, implement :meth:`applies` and :meth:`run`."""

    name: str = "stage"
    #: Runs on every torchrun process (the others run on rank 0 alone).
    multi_process: bool = False
    #: Run again when named in ``--stages`` even though it finished (it adds what is missing).
    incremental: bool = False
    #: Where the stage runs among the others: lower first (supernet 10, search 20, retrain 30,
    #: report 100; see :data:`CORE_POSITIONS`). None: the core table's, else 50.
    position: float | None = None
    #: Files and folders the stage writes at the top of the run directory: their presence
    #: means a run has started there (``nasplug run`` then refuses to start another one).
    outputs: tuple[str, ...] = ()
    #: Dotted recipe keys (or prefixes) of this stage's settings that a resumed run may change
    #: because they cannot alter what it wrote already (e.g. which tasks still to run); the
    #: resume policy (:mod:`nasplug.resume`) allows them beside its own.
    may_change: tuple[str, ...] = ()
    #: The stage reads its settings from the recipe's top-level key of its own name (GLUE:
    #: ``glue:``); the recipe accepts that key, and :meth:`check` validates what it holds.
    section: bool = False

    def applies(self, recipe: Recipe) -> bool:
        """True when the recipe asks for this stage."""
        raise NotImplementedError

    def check(self, ctx: RunContext) -> None:
        """Validate the stage's settings; raise NasplugError. Called before any stage runs."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Do the work; return a small JSON summary (written to ``stages/<name>.json``)."""
        raise NotImplementedError

    def models(self, ctx: RunContext) -> dict[str, tuple[Callable[[], Any], Any]]:
        """The models this stage will train or score: label -> (a function that builds one,
        the task that drives it). ``nasplug run`` builds them before any stage runs and asks
        each task what its model lacks (:mod:`nasplug.pipeline.preflight`). Default: none."""
        return {}

    def extends(self, ctx: RunContext) -> bool:
        """Called on ``--resume`` for every stage that applies, before any stage runs: True when
        the stage finished but the recipe now asks for more of it (the search: a larger budget),
        so it runs again and adds what is missing. Raises NasplugError when the recipe asks for
        less than the stage did already. Default: False."""
        return False

    def report(self, view: RunView) -> Section:
        """This stage's section of ``report.md``, read from the run directory only."""
        return [], ""

    def downstream(self, ctx: RunContext, arch: Any, folder: Path, seed: int) -> dict[str, float] | None:
        """Downstream figures of a model trained into ``folder`` (its ``model.safetensors``),
        for ``nasplug study``: e.g. GLUE dev scores of a text encoder. Default: none. The
        study asks every stage that overrides this and applies to the recipe."""
        return None

    def downstream_metrics(self, ctx: RunContext) -> dict[str, str]:
        """Name -> direction of the figures :meth:`downstream` returns, the headline first
        (the study plots it beside its own headline and accepts these as ``study.metric``).
        Called before anything trains. Default: none."""
        return {}




def get_stage(name: str) -> Stage:
    """A fresh instance of the stage registered as ``name``."""
    return STAGES.get(name)()


def stage_position(stage: Stage) -> float:
    return stage.position if stage.position is not None else CORE_POSITIONS.get(stage.name, 50.0)


def stage_order() -> tuple[str, ...]:
    """Every registered stage's name, in the order they run (by position, then name)."""
    stages = [get_stage(name) for name in STAGES.names()]
    return tuple(s.name for s in sorted(stages, key=lambda s: (stage_position(s), s.name)))


class _StageOrder(Sequence[str]):
    """:func:`stage_order` as a sequence, computed when read (a plugin stage's position is
    known once its class is loaded; loading them all when this module is imported would
    import every plugin)."""

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return stage_order()[index]

    def __len__(self) -> int:
        return len(stage_order())

    def __iter__(self) -> Iterator[str]:
        return iter(stage_order())

    def __contains__(self, name: object) -> bool:
        return name in stage_order()

    def index(self, name: Any, start: int = 0, stop: int | None = None) -> int:
        order = stage_order()
        return order.index(name, start, len(order) if stop is None else stop)

    def __repr__(self) -> str:
        return repr(stage_order())


#: The order stages run in (every registered stage; see :func:`stage_order`).
ORDER: Sequence[str] = _StageOrder()


def all_stages() -> list[Stage]:
    """Every stage of :data:`ORDER`, in order."""
    return [get_stage(name) for name in stage_order()]
