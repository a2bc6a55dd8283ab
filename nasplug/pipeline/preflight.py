"""The check at the start of ``nasplug run``: every model the requested stages will build,
against what their tasks call, before anything is written or trained.

Each stage names the models it will use (:meth:`~nasplug.pipeline.stage.Stage.models`: the
supernet it trains or scores, a fresh standalone model it retrains); each is built (on
PyTorch's ``meta`` device when the space allows it: no memory, no initialisation) and its
task says what it lacks (:meth:`~nasplug.task.Task.missing`). Everything missing, in every
model, is one line; the run directory is not created or touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from nasplug.errors import NasplugError

log = logging.getLogger(__name__)

Build = Callable[[], Any]


def build_light(build: Build) -> Any:
    """``build()`` on the meta device (shapes only), or on the CPU when the space's code
    needs real tensors while it builds; the global RNG is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        try:
            with torch.device("meta"):
                return build()
        except NasplugError:
            raise
        except Exception:  # noqa: BLE001 - e.g. a space that fills tensors from a CPU generator
            log.debug("preflight: building on the meta device failed; building on the CPU", exc_info=True)
    with torch.random.fork_rng(devices=[]):
        return build()


def preflight(ctx: Any, stages: Sequence[Any]) -> None:
    """NasplugError (one line) naming every method or head a model of ``stages`` lacks for
    the task its stage drives it with; silent when every model fits."""
    problems: list[str] = []
    seen: set[str] = set()
    for stage in stages:
        for label, (build, task) in stage.models(ctx).items():
            if label in seen:
                continue
            seen.add(label)
            try:
                model = build_light(build)
            except NasplugError as exc:  # e.g. a head the space does not build: said with the rest
                problems.append(f"{label} ({stage.name} stage): cannot be built ({exc})")
                continue
            missing = task.missing(model)
            if missing:
                problems.append(f"{label} ({type(model).__name__}, {stage.name} stage): {', '.join(missing)}")
    if problems:
        task_names = sorted({task.name for stage in stages for _, task in stage.models(ctx).values()})
        raise NasplugError(f"space {ctx.space.name!r}: its models lack what task {', '.join(map(repr, task_names))} "
                           f"calls; missing: {'; '.join(problems)} (see the task's model interface, e.g. "
                           "nasplug.text.interface for mlm and electra)")
