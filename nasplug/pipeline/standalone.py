"""One standalone model in its folder: trained (or loaded, if trained already), then scored on
the task's test split. Used by the retrain stage, ``nasplug study`` and ``nasplug rank-corr``.

A folder is *trained* when it holds ``result.json`` and ``model.safetensors`` (the loop writes
them last), and *tested* when it holds ``test.json`` (or the task has no test split). An
interrupted training continues from its checkpoint. Under torchrun rank 0 alone writes files;
every rank takes the branch rank 0's view of the folder gives (:func:`folder_state`), so all
of them meet in the same collectives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from nasplug import distributed
from nasplug.io import atomic_write_json
from nasplug.oneshot.checkpoint import load_weights
from nasplug.oneshot.config import TrainConfig
from nasplug.oneshot.seeds import auxiliary_seed
from nasplug.oneshot.train import train
from nasplug.pipeline.supernet import resume_flag


def folder_state(task: Any, folder: Path, **more: bool) -> dict[str, bool]:
    """``trained``, ``tested`` and ``resume`` (a training to continue) of ``folder``, plus the
    caller's ``more`` flags, as rank 0 sees them, on every rank."""
    state = {"trained": (folder / "result.json").is_file() and (folder / "model.safetensors").is_file(),
             "tested": task.split("test") is None or (folder / "test.json").is_file(),
             "resume": resume_flag(folder), **more}
    return distributed.broadcast_object(state)


def train_model(model: nn.Module, task: Any, cfg: TrainConfig, folder: Path, *, progress: bool = True,
                test: bool = True, state: dict[str, bool] | None = None) -> dict[str, nn.Module]:
    """Train ``model`` (fresh weights) on ``task`` into ``folder``, or load its trained weights;
    then, with ``test``, write ``test.json`` unless it is there.

    Args:
        state: :func:`folder_state` of the folder, when the caller has it already.

    Returns:
        The task's auxiliary modules (ELECTRA: the generator) with their trained weights.
    """
    state = folder_state(task, folder) if state is None else state
    if state["trained"]:
        load_weights(model, folder / "model.safetensors")
    else:
        train(model, task, cfg, folder, resume=state["resume"], progress=progress)
    aux = load_auxiliary(task, model, cfg.seed, folder)
    if test and not state["tested"]:
        score_test(task, model, cfg, folder, aux)
    return aux


def load_auxiliary(task: Any, model: nn.Module, train_seed: int, folder: Path) -> dict[str, nn.Module]:
    """The task's auxiliary modules of ``model`` with the weights trained into ``folder``."""
    aux = task.auxiliary(model, auxiliary_seed(train_seed))
    for name, module in aux.items():
        load_weights(module, folder / f"{name}.safetensors")
    return aux


def score_test(task: Any, model: nn.Module, cfg: TrainConfig, folder: Path,
               aux: dict[str, nn.Module] | None = None) -> None:
    """Test-split figures of a trained model (``test.json``), when the task has a test split.
    Every rank calls it; rank 0 writes, and all return once the file is there."""
    if task.split("test") is None:
        return
    import torch

    device = distributed.device_for(cfg.device)
    model = model.to(device).eval()
    aux = load_auxiliary(task, model, cfg.seed, folder) if aux is None else aux
    aux = {name: module.to(device).eval() for name, module in aux.items()}
    batches = task.heldout_batches(cfg.batch_size, 0, None, split="test")
    with torch.inference_mode():
        figures = task.figures(task.evaluate(model, batches, aux, device))
    # every rank waits for it: the other ranks read test.json next (read_run)
    distributed.on_main(atomic_write_json, folder / "test.json", {f"test_{k}": v for k, v in figures.items()})


def read_run(folder: Path) -> dict[str, float]:
    """``heldout_*`` and ``test_*`` figures of one finished training run."""
    from nasplug.runfiles import read_json

    result = read_json(folder / "result.json") or {}
    out = {k: v for k, v in (result.get("heldout") or {}).items() if k != "per_arch" and isinstance(v, (int, float))}
    out.update(read_json(folder / "test.json") or {})
    return out
