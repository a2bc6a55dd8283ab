"""A run's machine settings: what ``precision: auto`` means here, and the CPU thread count.

Resolved once per run directory (see :mod:`nasplug.hardware` for the rules) and recorded in
``run.json`` under ``machine``, with the reason; every later command on the run directory
(``--resume``, ``compare --from-run``, ``rank-corr``) reads the record instead of asking the
hardware again, so a run started in fp32 goes on in fp32 on any machine, and its figures stay
comparable with those it logged before. A run directory from before this record (the default
precision was then fp32) reads as fp32. An explicit ``precision: fp32|bf16`` or ``threads:``
in the recipe always wins: changing them on resume is a remedy the recipe check allows
(``supernet.precision``, ``retrain.precision``, ``threads``), and the new values are recorded
when the resumed run succeeds. What ``identity`` compares on resume is the recipe's own
setting (``auto`` stays ``auto``); the record pins what it resolved to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasplug.errors import NasplugError
from nasplug.hardware import Choice, check_threads, default_threads, fast_bf16


@dataclass(frozen=True)
class Machine:
    """The precision ``auto`` resolves to in this run, and its thread count (each with why)."""

    precision: Choice
    threads: Choice
    device: str
    recorded: bool = False  # read from run.json (the run started earlier), not from this machine
    evaluator: str | None = None  # the precision the run's evaluator recorded (None: none recorded)

    def precision_for(self, setting: str) -> str:
        """The precision a section uses: its own setting, or the run's choice for ``auto``."""
        return str(self.precision.value) if setting == "auto" else setting

    def evaluator_precision(self, setting: str) -> str:
        """The supernet evaluator's precision: for ``auto`` (its default), what the run's
        evaluator recorded when it has a record, so a run scores its candidates in one
        precision from start to end (runs recorded while the default was fp32 stay fp32);
        else :meth:`precision_for`."""
        return self.evaluator if setting == "auto" and self.evaluator is not None else self.precision_for(setting)

    def used(self, recipe: Any) -> dict[str, str]:
        """The precision each section of ``recipe`` uses in this run."""
        return {name: self.evaluator_precision(setting) if name == "evaluator" else self.precision_for(setting)
                for name, setting in section_precisions(recipe).items()}

    def record(self, recipe: Any) -> dict[str, Any]:
        """What ``run.json`` stores under ``machine``."""
        used = self.used(recipe)
        return {"device": self.device, "precision": {"auto": self.precision.value, "reason": self.precision.reason,
                                                     **used},
                "threads": {"value": self.threads.value, "reason": self.threads.reason}}

    def describe(self, recipe: Any) -> str:
        used = self.used(recipe)
        kept = ", kept from the run's start" if self.recorded else ""
        where = ", ".join(f"{k} {v}" for k, v in used.items())
        precision = f"precision: {where} (auto means {self.precision.value}{kept}: {self.precision.reason}); "
        return f"{precision if used else ''}threads: {self.threads.value} ({self.threads.reason})"

    def apply(self) -> int:
        """Set torch's CPU thread count; returns the count it had (to restore afterwards)."""
        before = torch.get_num_threads()
        torch.set_num_threads(int(self.threads.value))
        return before


def section_precisions(recipe: Any) -> dict[str, str]:
    """The ``precision`` setting of each section the recipe has (the evaluator's when it takes one)."""
    out = {name: getattr(recipe, name).precision for name in ("supernet", "retrain")
           if getattr(recipe, name, None) is not None}
    if recipe.evaluator is not None:
        kwargs = recipe.evaluator.kwargs()
        if "precision" in kwargs or recipe.evaluator.name == "supernet":
            out["evaluator"] = str(kwargs.get("precision", "auto"))  # the supernet evaluator's default
    return out


def training_device(recipe: Any) -> torch.device:
    """The device the run trains on (the supernet's, else the retrained models')."""
    from nasplug import distributed

    section = recipe.supernet if recipe.supernet is not None else recipe.retrain
    return distributed.device_for(section.device if section is not None else "auto")


def resolve_machine(recipe: Any, run_dir: Path) -> Machine:
    """The run's machine settings: from ``run_dir/run.json`` when the run has one (a run
    directory keeps what it started with), else from this machine."""
    device = training_device(recipe)
    recorded = recorded_machine(run_dir)
    evaluator = None
    if recorded is None:
        # A new run: every rank gets here before rank 0 writes run.json (run_recipe's barrier),
        # so all take this branch; rank 0 alone measures (a CPU's bf16 speed is timed, and
        # ranks timing at once would slow each other) and its choice is every rank's.
        from nasplug import distributed

        fast = distributed.broadcast_object(fast_bf16(device) if distributed.is_main() else None)
        assert fast is not None
        precision, threads = Choice("bf16" if fast.value else "fp32", fast.reason), default_threads()
    else:
        precision, threads, evaluator = recorded
    if recipe.threads is not None:
        threads = Choice(recipe.threads, "set in the recipe or with --threads")
    return Machine(precision=precision, threads=threads, device=str(device), recorded=recorded is not None,
                   evaluator=evaluator)


def recorded_machine(run_dir: Path) -> tuple[Choice, Choice, str | None] | None:
    """``(precision, threads, evaluator precision or None)`` recorded by the run in ``run_dir``;
    None when it has no run.json. A run.json without the record (written before it existed)
    means fp32 (the evaluator's too) and the default threads."""
    from nasplug.layout import RunLayout
    from nasplug.runfiles import read_json

    path = RunLayout(run_dir).info
    info = read_json(path, what="restore it from a backup, or start a new run directory")
    if info is None:
        return None
    record = info.get("machine")
    if record is None:
        return (Choice("fp32", "the run started before precision auto existed (fp32 was the default)"),
                default_threads(), "fp32")
    try:
        value, reason = record["precision"]["auto"], record["precision"]["reason"]
        evaluator = record["precision"].get("evaluator")
        threads = check_threads(record["threads"]["value"], f"{path}: machine.threads.value")
    except (KeyError, TypeError, AttributeError):
        raise NasplugError(f"{path}: machine: expected precision.auto, precision.reason and threads.value; restore "
                           "run.json from a backup, or start a new run directory") from None
    if value not in ("fp32", "bf16") or not isinstance(reason, str):
        raise NasplugError(f"{path}: machine.precision.auto: {value!r} is not allowed; allowed: fp32, bf16")
    if evaluator not in (None, "fp32", "bf16"):
        raise NasplugError(f"{path}: machine.precision.evaluator: {evaluator!r} is not allowed; allowed: fp32, bf16")
    threads_reason = record["threads"].get("reason") if isinstance(record["threads"], dict) else None
    return (Choice(value, reason), Choice(threads, threads_reason if isinstance(threads_reason, str) else "recorded"),
            evaluator)
