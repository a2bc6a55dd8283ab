"""Training checkpoints: safetensors weights + a weights-only-loadable state file, atomically.

Layout of ``run_dir/checkpoint/``::

    step-00000200/model.safetensors   # every trained tensor (shared/tied ones stored once)
    step-00000200/state.pt            # optimizer, scheduler, RNG states, data position, settings
    latest.json                       # the commit point: {"step", "dir", "history": [...]}

:func:`save_checkpoint` (called by the loop on rank 0 every ``checkpoint_every`` steps and at
the end) writes a step folder under a temporary name, fsyncs it, renames it into place, and
only then atomically rewrites ``latest.json``, whose ``history`` lists the folders kept, newest
first, each marked healthy or not: the new one, the one before it, and the newest healthy one.
Other step folders are removed afterwards. A kill at any moment therefore leaves ``latest.json``
naming complete folders. :func:`resume_point` (called on ``--resume``) loads the newest
healthy one that loads, falling back along the history past a damaged or diverged one.
The state file holds only tensors, dicts, lists, tuples, ints, floats, bools, strings and
None, so ``torch.load(weights_only=True)`` reads it. (Checkpoints written by older versions
may also hold ``arch`` and ``arch_rng``; nothing reads them: samplers draw from (seed, step).)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from nasplug.errors import NasplugError, UnloadableWeights, WriteFailed
from nasplug.io import atomic_write, atomic_write_json, make_temp_dir, shareable
from nasplug.resume import RESUME

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
STATE = "state.pt"
LATEST = "latest.json"
FORMAT = 1


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def save_weights(module: nn.Module, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> Path:
    """Write ``module``'s tensors as safetensors atomically (temp file, fsync, rename).

    Tied parameters (the MLM decoder and the word embeddings; the embeddings an ELECTRA
    generator shares) are stored once; :func:`load_weights` restores the ties. The same
    weights always give the same bytes (see :func:`_sort_metadata`).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        # "format": "pt" lets transformers' from_pretrained read the file as it is
        save_model(module, tmp, metadata={"format": "pt", **(metadata or {})})
        _sort_metadata(Path(tmp))
        shareable(tmp)
        _fsync(Path(tmp))
        os.replace(tmp, path)
    except (OSError, SafetensorError) as exc:  # a full disk reaches us as either
        raise (exc if isinstance(exc, WriteFailed) else WriteFailed.of(path, exc)) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    _fsync(path.parent)
    return path


def _sort_metadata(path: Path) -> None:
    """Rewrite the safetensors header's ``__metadata__`` with sorted keys, in place.

    safetensors keeps metadata in a hash map whose order changes from process to process, so
    two runs that wrote identical tensors could differ in bytes; sorted, they do not. The
    header keeps its length (same keys, same values), so the tensor offsets are unchanged.
    """
    import struct

    with open(path, "r+b") as fh:
        size = struct.unpack("<Q", fh.read(8))[0]
        raw = fh.read(size)
        header = json.loads(raw)
        meta = header.get("__metadata__")
        if not meta or len(meta) < 2:
            return
        header = {
            "__metadata__": dict(sorted(meta.items())),
            **{k: v for k, v in header.items() if k != "__metadata__"},
        }
        text = json.dumps(header, separators=(",", ":")).encode()
        if len(text) > size:  # not the compact layout we expected: leave the file as it is
            return
        fh.seek(8)
        fh.write(text + b" " * (size - len(text)))


def load_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load :func:`save_weights` output into ``module`` (strict: every key must match)."""
    try:
        load_model(module, str(path), strict=True, device=str(next(module.parameters()).device))
    except Exception as e:  # noqa: BLE001 - truncated or foreign files fail in many ways (SafetensorError, ...)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UnloadableWeights(f"checkpoint: cannot load weights from {path}: {first}") from None


def rng_state() -> dict[str, Any]:
    """The global torch RNG states (CPU, and every CUDA device when CUDA is in use).

    The loop re-seeds them from ``(seed, step, rank)`` every step, so resume does not need
    them; they are saved so a checkpoint is a complete picture of the process.
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state` output (CUDA states only when the device count matches)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _entries(root: Path) -> list[dict[str, Any]]:
    """The checkpoints ``latest.json`` lists, newest first: ``{"step", "dir", "healthy"}``.

    Raises NasplugError when ``latest.json`` exists but is not what :func:`save_checkpoint`
    writes (empty, garbage, a list, a folder name that leaves ``root``).
    """
    path = root / LATEST
    if not path.exists():
        return []
    hint = "restore it, or delete the checkpoint folder to train again from step 0"
    try:
        latest = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as e:
        raise NasplugError(f"checkpoint: {path} is unreadable or damaged ({type(e).__name__}); {hint}") from None
    entries = latest.get("history") if isinstance(latest, dict) else None
    if entries is None and isinstance(latest, dict):  # written before checkpoints kept a history
        entries = [{"step": latest.get("step"), "dir": latest.get("dir"), "healthy": True}]
    if not isinstance(entries, list) or not entries:
        raise NasplugError(f"checkpoint: {path} is not a checkpoint index; {hint}")
    for entry in entries:
        ok = (isinstance(entry, dict) and isinstance(entry.get("step"), int) and not isinstance(entry["step"], bool)
              and isinstance(entry.get("dir"), str) and entry["dir"].startswith("step-") and "/" not in entry["dir"]
              and "\\" not in entry["dir"] and ".." not in entry["dir"])
        if not ok:
            raise NasplugError(f"checkpoint: {path} has a malformed entry ({str(entry)[:80]}); {hint}")
    return entries


def latest_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint folder, or None when there is no checkpoint yet."""
    root = Path(root)
    entries = _entries(root)
    if not entries:
        return None
    path = root / entries[0]["dir"]
    if not (path / WEIGHTS).is_file() or not (path / STATE).is_file():
        raise NasplugError(f"checkpoint: {root / LATEST} names {path}, which is incomplete; delete the checkpoint "
                           "folder to train again from step 0")
    return path


def last_good(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The newest checkpoint written while training was healthy (``{"step", "dir"}``), or None."""
    try:
        return next((e for e in _entries(Path(root)) if e.get("healthy", True)), None)
    except NasplugError:
        return None


def save_checkpoint(root: str | os.PathLike[str], step: int, module: nn.Module, state: dict[str, Any],
                    healthy: bool = True) -> Path:
    """Write checkpoint ``step`` of ``module`` and ``state`` under ``root``; see the module doc.

    Args:
        root: the checkpoint folder (``run_dir/checkpoint``).
        step: optimizer steps done; names the folder.
        module: everything trained (for ELECTRA a container of discriminator and generator).
        state: plain data: optimizer / scheduler state dicts, data position, RNG states, ...
        healthy: whether training looked sound when it was written (finite weights, the loss
            not diverging). Resume and the divergence message use the newest healthy one.

    Kept: the new checkpoint, the one before it (a fallback if the newest is ever found
    damaged) and the newest healthy one; older folders are removed once the index is committed.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        history = _entries(root)
    except NasplugError:
        history = []  # a damaged index: the new checkpoint starts a new one
    name = f"step-{step:08d}"
    tmp = make_temp_dir(root, prefix=f".{name}.", suffix=".tmp")
    try:
        save_weights(module, tmp / WEIGHTS, metadata={"step": str(step)})
        try:
            atomic_write(tmp / STATE, lambda fh: torch.save({**state, "step": step, "format": FORMAT}, fh))
        except RuntimeError as exc:  # torch.save's own writer reports a full disk so
            raise WriteFailed.of(tmp / STATE, exc) from exc
        final = root / name
        if final.exists():  # a re-save of a step: never touch the committed folder, take a new name
            name = f"{name}-{tmp.name.split('.')[-2]}"
            final = root / name
        os.replace(tmp, final)
        _fsync(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    entry = {"step": step, "dir": name, "healthy": bool(healthy)}
    kept = [entry, *history[:1]]
    good = next((e for e in [entry, *history] if e.get("healthy", True)), None)
    if good is not None and good not in kept:
        kept.append(good)
    atomic_write_json(root / LATEST, {"step": step, "dir": name, "history": kept})  # the commit point
    keep = {e["dir"] for e in kept} | {LATEST}
    for old in root.iterdir():  # older checkpoints and leftovers of killed writes
        if old.name not in keep and (old.name.startswith("step-") or old.name.startswith(".step-")):
            shutil.rmtree(old, ignore_errors=True)
    log.info("checkpoint: step %d written to %s%s", step, final, "" if healthy else " (training unhealthy)")
    return final


def load_checkpoint(path: str | os.PathLike[str], module: nn.Module) -> dict[str, Any]:
    """Load the weights of checkpoint folder ``path`` into ``module``; return its state dict."""
    path = Path(path)
    load_weights(module, path / WEIGHTS)
    try:
        state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise NasplugError(f"checkpoint: cannot read {path / STATE}: {first}") from None
    if not isinstance(state, dict):
        raise NasplugError(f"checkpoint: {path / STATE} is not a checkpoint state (it holds a {type(state).__name__})")
    if state.get("format") != FORMAT:
        raise NasplugError(
            f"checkpoint: {path / STATE} has format {state.get('format')!r}, this version reads {FORMAT}"
        )
    missing = [k for k in ("step", "config", "optimizer", "scheduler", "data", "rng") if k not in state]
    if missing:
        raise NasplugError(f"checkpoint: {path / STATE} lacks {missing[0]!r}; it was not written by this loop")
    return state


def resume_point(root: str | os.PathLike[str], module: nn.Module) -> tuple[Path, dict[str, Any]] | None:
    """Load the checkpoint to resume from into ``module``: the newest healthy one that loads.

    A checkpoint written while training was diverging is passed over (resuming it would
    diverge again), and a damaged one (truncated weights, garbage state) falls back to the
    one before it, each with a warning. None when there is no checkpoint at all.

    Raises:
        NasplugError: checkpoints exist but none can be resumed (saying what to do).
    """
    root = Path(root)
    entries = _entries(root)
    if not entries:
        return None
    problems: list[str] = []
    tried: set[str] = set()
    for entry in entries:
        if entry["dir"] in tried:
            continue
        tried.add(entry["dir"])
        path = root / entry["dir"]
        if not entry.get("healthy", True):
            problems.append(f"step {entry['step']} was written while training diverged")
            continue
        try:
            if not (path / WEIGHTS).is_file() or not (path / STATE).is_file():
                raise NasplugError(f"checkpoint: {path} is incomplete")
            state = load_checkpoint(path, module)
        except NasplugError as exc:
            problems.append(str(exc).removeprefix("checkpoint: "))
            continue
        for problem in problems:  # said only when an earlier checkpoint could be resumed instead
            log.warning("checkpoint: %s; resuming step %d instead", problem, entry["step"])
        return path, state
    raise NasplugError(f"checkpoint: no checkpoint in {root} can be resumed ({'; '.join(problems)[:300]}); delete "
                       "the checkpoint folder (and metrics.jsonl) to train again from step 0")


def check_resume_config(saved: dict[str, Any], current: Any) -> None:
    """NasplugError naming the first setting that differs from the checkpoint's (other than those
    the resume policy lets change, :meth:`~nasplug.resume.ResumePolicy.checkpoint_may_change`):
    resuming under other settings would not continue the same run."""
    now = current.model_dump(mode="json")
    fields = getattr(type(current), "model_fields", {})
    for key in sorted(set(saved) | set(now)):
        if key not in saved and key in fields and now.get(key) == fields[key].default:
            continue  # a setting added since the checkpoint was written, at its default: the same run
        if not RESUME.checkpoint_may_change(key) and saved.get(key) != now.get(key):
            raise NasplugError(f"{key}: the checkpoint was trained with {saved.get(key)!r}, this run has "
                               f"{now.get(key)!r}; resume with the same setting or start a new run directory")


def cut_log(metrics_path: Path, step: int) -> None:
    """Drop the records of steps after ``step`` from a training's ``metrics.jsonl`` (logged before
    a crash, and about to be logged again on resume), so each step appears once; atomically."""
    from nasplug.io import JsonlLineError, atomic_write_text, read_jsonl

    if not metrics_path.is_file():
        return
    try:
        records = read_jsonl(metrics_path, blank_lines=True)  # a torn last record is dropped too
    except JsonlLineError as exc:
        raise NasplugError(f"{metrics_path}:{exc.lineno}: not a metrics record; the log was damaged: "
                           "restore it, or delete it (it is only the log) and resume") from None
    kept = [r for r in records if not (isinstance(r, dict) and isinstance(r.get("step"), int) and r["step"] > step)]
    atomic_write_text(metrics_path, "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n"
                                            for r in kept))
