"""torch.distributed helpers: start from torchrun's environment, ranks, collectives.

``init()`` is called once at the start of :func:`nasplug.oneshot.train.pretrain` (and may be called
again by a CLI or evaluator: it is idempotent). Under ``torchrun`` (``WORLD_SIZE`` > 1 in the
environment) it creates the default process group: NCCL when CUDA is available, gloo on CPU.
Without torchrun it does nothing and every helper behaves as a world of one, so library code
calls the helpers unconditionally.

Why gradients are averaged by hand instead of ``DistributedDataParallel``: in single-path
one-shot training every rank activates the same sampled arch at each step (it is drawn from a
seed shared by all ranks), so the parameters that received gradients are the same on every
rank. One ``all_reduce`` over the flattened gradients of exactly those parameters, once per
optimizer step (after gradient accumulation), is then correct, needs no ``no_sync`` for
accumulation, and avoids DDP's ``find_unused_parameters`` graph walk and bucket rebuilds for
a path that changes every step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from nasplug.errors import NasplugError, describe

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files (rank 0)."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as e:
        raise NasplugError(f"{name}: expected an integer in the environment, got {value!r}") from e


def launched_world_size() -> int:
    """How many processes the launcher started (``WORLD_SIZE``; 1 outside torchrun), known
    before :func:`init` joins the group."""
    return _env_int("WORLD_SIZE", 1)


def init(backend: str | None = None, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group torchrun describes in the environment, once.

    Called at the start of training; safe to call again and outside torchrun (then it
    returns ``DistInfo(0, 1, 0)`` without creating a group).

    Args:
        backend: ``"gloo"`` or ``"nccl"``; None picks NCCL when CUDA is available, else gloo.
        timeout_s: collective timeout.
    """
    if dist.is_available() and dist.is_initialized():
        return info()
    world = launched_world_size()
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise NasplugError("distributed: WORLD_SIZE > 1 but this torch build has no torch.distributed")
    local_rank = _env_int("LOCAL_RANK", 0)
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    log.info("joined process group: rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return info()


def info() -> DistInfo:
    """Rank, world size and local rank (a world of one when no group exists)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))


def device_for(device: str, dist_info: DistInfo | None = None) -> torch.device:
    """The torch device of this process for a ``device`` setting ``auto`` / ``cpu`` / ``cuda``:
    ``cuda:<local_rank>`` under torchrun on GPUs."""
    dist_info = dist_info or info()
    if device == "cuda" and not torch.cuda.is_available():
        raise NasplugError("device: 'cuda' was asked for but CUDA is not available; allowed here: auto, cpu")
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", dist_info.local_rank % max(torch.cuda.device_count(), 1))
    if device not in ("auto", "cpu"):
        raise NasplugError(f"device: {device!r} is not a device; allowed: auto, cpu, cuda")
    return torch.device("cpu")


def is_distributed() -> bool:
    """True when a process group with more than one process exists."""
    return info().world > 1


def rank() -> int:
    return info().rank


def world_size() -> int:
    return info().world


def is_main() -> bool:
    """True on rank 0 (and outside torchrun): the process that writes files and logs."""
    return info().rank == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place (no-op in a world of one); returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def sum_dict(values: dict[str, torch.Tensor], *, uneven: bool = False) -> dict[str, float]:
    """Sum 0-d tensors over all ranks in one collective; returns Python floats (float64 sums).

    With ``uneven`` the ranks may hold different keys (a rank with no held-out batch has
    none): the keys are gathered first and a missing one counts as 0.
    """
    keys = sorted(values)
    if uneven and is_distributed():
        gathered: list[list[str]] = [[] for _ in range(world_size())]
        dist.all_gather_object(gathered, keys)
        keys = sorted({k for ks in gathered for k in ks})
    if not keys:
        return {}
    device = next(iter(values.values())).device if values else (
        torch.device("cuda", torch.cuda.current_device()) if is_distributed() and dist.get_backend() == "nccl"
        else torch.device("cpu"))
    zero = torch.zeros((), dtype=torch.float64, device=device)
    total = all_reduce_sum(torch.stack([values.get(k, zero).double() for k in keys]))
    return dict(zip(keys, total.tolist(), strict=True))


def sum_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Sum the gradients of ``params`` that have one over all ranks, in one collective.

    Called once per optimizer step. Every rank must hold gradients for the same parameters
    in the same order (true when all ranks trained the same arch, see the module docstring).
    The training loss is already divided by the global token count, so a sum (not a mean)
    gives the gradient of the global-batch loss.
    """
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads)  # one buffer: one collective, whatever the path
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    for grad, reduced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        grad.copy_(reduced)


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy every parameter and buffer of ``module`` from rank ``src`` (what DDP does at
    construction), so ranks start identical even if they initialised differently."""
    if not is_distributed():
        return
    with torch.no_grad():
        seen: set[int] = set()
        for tensor in [*module.parameters(), *module.buffers()]:
            if id(tensor) not in seen:
                seen.add(id(tensor))
                dist.broadcast(tensor.data, src=src)


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` from rank ``src`` on every rank (picklable objects; no-op in a world of one)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def on_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn(*args, **kwargs)`` on rank 0 only (its result there, None elsewhere), called by
    every rank, never from code that only rank 0 runs; ``fn`` may not call a collective.

    When ``fn`` fails on rank 0 (a damaged log, a full disk: file writes raise
    :class:`~nasplug.errors.WriteFailed`, a NasplugError) rank 0 raises the error and every other
    rank a NasplugError with its message, so no rank waits in a collective for a rank that
    stopped. Outside torchrun it is a plain call."""
    if not is_distributed():
        return fn(*args, **kwargs)
    result, failure, message = None, None, None
    if is_main():
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - told to every rank, then raised as it is
            failure = exc
            message = describe(exc)
    message = broadcast_object(message)
    if failure is not None:
        raise failure
    if message is not None:
        raise NasplugError(f"{message} (on rank 0)")
    return result


def barrier() -> None:
    """Wait for every rank (no-op in a world of one)."""
    if is_distributed():
        dist.barrier()


def destroy(*, wait_for_all: bool = False) -> None:
    """Leave the process group if one exists (end of a torchrun worker).

    With ``wait_for_all`` (a normal end) every rank first meets the others in a barrier, so no
    rank tears its connections down while a peer is still talking to it: gloo can abort that
    peer ("terminate called without an active exception"). Leave it off after a failure, when
    a rank that stopped would never arrive."""
    if dist.is_available() and dist.is_initialized():
        if wait_for_all and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()
