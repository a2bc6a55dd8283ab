"""A run directory's identity: one experiment per directory, never damaged by a command.

:func:`check_run_dir` is called by ``nasplug run`` (and ``nasplug study``) before it writes
anything. It refuses an ``--out`` that is not a usable directory, a directory holding a run
unless ``--resume`` is given, and a resume whose recipe differs from the stored one in
anything that changes results. What may change (descriptions, the paper's numbers, logging,
checkpoint frequency, device, compilation, the search budget, the remedies after a divergence,
what a plugin stage declares in :attr:`~nasplug.pipeline.stage.Stage.may_change`, the study's
rows, seeds and headline) is the resume policy's call: :mod:`nasplug.resume`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.layout import RunLayout
from nasplug.recipe import Recipe
from nasplug.resume import RESUME
from nasplug.yamlio import flatten


def check_out_path(run_dir: Path, field: str = "--out") -> None:
    """NasplugError unless ``run_dir`` is a directory or can be created as one."""
    if run_dir.exists() and not run_dir.is_dir():
        raise NasplugError(f"{field}: {run_dir} exists and is not a directory")
    parent = run_dir
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NasplugError(f"{field}: {run_dir} cannot be created: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise NasplugError(f"{field}: {run_dir} cannot be written: no permission on {parent}")


def has_run(run_dir: Path) -> bool:
    """Whether a run has started in ``run_dir``: one of :data:`RunLayout.MARKERS
    <nasplug.layout.RunLayout.MARKERS>` or of what a registered stage writes is there."""
    from nasplug.pipeline.stage import all_stages

    return RunLayout(run_dir).has_run(tuple(m for stage in all_stages() for m in stage.outputs))


def check_run_dir(run_dir: Path, recipe: Recipe, resume: bool) -> None:
    """Refuse, before anything is written, a command that would damage or mix a run."""
    check_out_path(run_dir)
    if not has_run(run_dir):
        return
    if not resume:
        raise NasplugError(f"run directory {run_dir} has a run in it already; pass --resume to continue it, "
                           "or --out for a new one")
    stored = stored_recipe(run_dir)
    if stored is None:
        return  # a run killed before its recipe was written: nothing to compare with
    key = first_difference(flatten(stored.model_dump(mode="json")), flatten(recipe.model_dump(mode="json")))
    if key is not None:
        raise NasplugError(f"--resume: {key} differs from the run in {run_dir} (which has "
                           f"{_show(flatten(stored.model_dump(mode='json')).get(key))}); a resumed run must be the "
                           "same experiment: use the stored recipe.yaml, or --out for a new run")


def stored_recipe(run_dir: Path) -> Recipe | None:
    """The recipe stored in a run directory (validated), None if there is none."""
    from nasplug.recipe import validate_recipe

    layout = RunLayout(run_dir)
    raw = layout.read_recipe("restore it from your recipe file or start a new run directory")
    return None if raw is None else validate_recipe(raw, source=str(layout.recipe))



def first_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The first dotted key whose value differs and may not change, or None: the resume policy
    (:data:`~nasplug.resume.RESUME`) asked with what every registered stage declares
    (:attr:`~nasplug.pipeline.stage.Stage.may_change`)."""
    from nasplug.pipeline.stage import all_stages

    return RESUME.first_recipe_difference(old, new, [k for stage in all_stages() for k in stage.may_change])


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
