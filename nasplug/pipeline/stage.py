"""The Stage interface and the stage registry.

A stage is one resumable step of ``nasplug run``. The pipeline calls, in this order:
:meth:`Stage.applies` (does the recipe ask for it?), :meth:`Stage.check` for every stage
that will run (before any of them runs, so a bad setting is reported before hours of
training), then :meth:`Stage.run` for each. :meth:`Stage.report` renders the stage's section
of ``report.md`` from the files it left in the run directory (``nasplug show`` calls it on
runs that are finished or not). Built-in stages are registered by import path, so the
pipeline never imports a plugin's stage (GLUE lives with the text plugins).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasplug.registry import Registry

if TYPE_CHECKING:
    from nasplug.pipeline.context import RunContext
    from nasplug.recipe import Recipe

#: The order stages run in.
ORDER = ("supernet", "search", "retrain", "glue", "report")

Section = tuple[list[str], str]  # Markdown lines for report.md, and a table for the terminal ("" for none)


@dataclass
class RunView:
    """What a stage's report section reads: the run directory, its recipe (as stored), the
    space (None when it cannot be built) and how many top archs to list."""

    run_dir: Path
    recipe: dict[str, Any]
    space: Any = None
    top_k: int = 10


class Stage:
    """One step of a run. Subclass, set ``name``, implement :meth:`applies` and :meth:`run`."""

    name: str = "stage"
    #: Runs on every torchrun process (the others run on rank 0 alone).
    multi_process: bool = False
    #: Run again when named in ``--stages`` even though it finished (it adds what is missing).
    incremental: bool = False

    def applies(self, recipe: Recipe) -> bool:
        """True when the recipe asks for this stage."""
        raise NotImplementedError

    def check(self, ctx: RunContext) -> None:
        """Validate the stage's settings; raise NasplugError. Called before any stage runs."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Do the work; return a small JSON summary (written to ``stages/<name>.json``)."""
        raise NotImplementedError

    def report(self, view: RunView) -> Section:
        """This stage's section of ``report.md``, read from the run directory only."""
        return [], ""

    def downstream(self, ctx: RunContext, arch: Any, folder: Path, seed: int) -> dict[str, float] | None:
        """Downstream figures of a model trained into ``folder`` (its ``model.safetensors``),
        for ``nasplug study``: e.g. GLUE dev scores of a text encoder. Default: none."""
        return None


STAGES = Registry("stage", group="nasplug.stages")
STAGES.register("supernet", "nasplug.pipeline.supernet:SupernetStage")
STAGES.register("search", "nasplug.pipeline.search:SearchStage")
STAGES.register("retrain", "nasplug.pipeline.retrain:RetrainStage")
STAGES.register("glue", "nasplug.glue.stage:GlueStage")
STAGES.register("report", "nasplug.pipeline.report:ReportStage")


def get_stage(name: str) -> Stage:
    """A fresh instance of the stage registered as ``name``."""
    return STAGES.get(name)()


def all_stages() -> list[Stage]:
    """Every stage of :data:`ORDER`, in order."""
    return [get_stage(name) for name in ORDER]
