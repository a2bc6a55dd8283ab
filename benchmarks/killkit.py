"""The reusable parts of benchmarks/kill_sweep.py: what runs are killed (the targets: their
commands, progress counts, stage markers), how a resumed run is compared with an
uninterrupted one, and how a run is started in a fork of this process instead of a new
interpreter (:class:`Forked`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny-pipeline.yaml"
TOY = REPO / "recipes" / "toy-evolution.yaml"
TOY_PARETO = REPO / "recipes" / "toy-pareto.yaml"
COMPARE_ARGS = ["--strategies", "random", "evolution", "--seeds", "3", "--budget", "60"]
TIMING_KEYS = {"wall_s", "seconds", "elapsed", "elapsed_s", "time", "time_s", "duration", "duration_s", "wall",
               "runtime", "throughput", "examples_per_s", "tokens_per_s"}
POLL_S = 0.003


# ---------------------------------------------------------------------- progress of a run
def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def count_files(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


@dataclass(frozen=True)
class Target:
    """A command to kill, how far along a run of it is, and what must match afterwards."""

    name: str
    stages: tuple[str, ...]
    command: Callable[[Path, bool], list[str]]
    progress: Callable[[Path], dict[str, int]]  # stage -> progress count inside it
    stage_done: Callable[[Path, str], bool]
    compare: Callable[[Path, Path], list[str]]  # (reference, run) -> mismatches


def _pipeline_command(out: Path, resume: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nasplug",
        "-q",
        "run",
        str(TINY),
        "--out",
        str(out),
        *(["--resume"] if resume else []),
    ]


def _pipeline_progress(out: Path) -> dict[str, int]:
    return {"supernet": lines(out / "supernet" / "metrics.jsonl"),
            "search": lines(out / "trials.jsonl"),
            "retrain": sum(lines(p) for p in (out / "retrain").glob("*/metrics.jsonl")),
            "glue": count_files(out / "glue", "*/*.json"),
            "report": 0}


def _toy_command(out: Path, resume: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nasplug",
        "-q",
        "run",
        str(TOY),
        "--out",
        str(out),
        *(["--resume"] if resume else []),
    ]


def _toy_pareto_command(out: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "nasplug", "-q", "run", str(TOY_PARETO), "--out", str(out),
            *(["--resume"] if resume else [])]


def _toy_progress(out: Path) -> dict[str, int]:
    return {"search": lines(out / "trials.jsonl"), "report": 0}


def _compare_command(out: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "nasplug", "-q", "compare", str(TOY), *COMPARE_ARGS, "--out", str(out),
            *(["--resume"] if resume else [])]


def _compare_progress(out: Path) -> dict[str, int]:
    return {"runs": sum(lines(p) for p in (out / "runs").glob("*/seed*/trials.jsonl")), "report": 0}


def _marker_done(out: Path, stage: str) -> bool:
    return (out / "stages" / f"{stage}.json").is_file()


COMPARE_RUNS = 2 * 3  # strategies x seeds of COMPARE_ARGS


def _compare_done(out: Path, stage: str) -> bool:
    if stage == "runs":  # every (strategy, seed) run has written its run.json
        return (out / "comparison.json").is_file() or count_files(out / "runs", "*/seed*/run.json") >= COMPARE_RUNS
    return (out / "comparison.json").is_file()


# ---------------------------------------------------------------------- checks
def strip_timing(value: Any) -> Any:
    """``value`` without timing fields (wall times and throughputs differ run to run)."""
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS and not k.endswith("_per_s")}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


def same_bytes(ref: Path, run: Path, rel: str) -> list[str]:
    a, b = ref / rel, run / rel
    if not a.is_file():
        return [] if not b.is_file() else [f"{rel}: exists only in the killed run"]
    if not b.is_file():
        return [f"{rel}: missing"]
    left, right = a.read_bytes(), b.read_bytes()
    if left == right:
        return []
    for i, (x, y) in enumerate(zip(left.split(b"\n"), right.split(b"\n")), start=1):
        if x != y:
            at = next((j for j, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
            return [f"{rel}: line {i} differs at byte {at}: ...{y[max(at - 40, 0):at + 60]!r} instead of "
                    f"...{x[max(at - 40, 0):at + 60]!r}"]
    return [f"{rel}: {len(right)} bytes instead of {len(left)}"]


def same_json(ref: Path, run: Path, rel: str, drop: tuple[str, ...] = ()) -> list[str]:
    a, b = ref / rel, run / rel
    if not b.is_file():
        return [f"{rel}: missing"]
    try:
        left = strip_timing({k: v for k, v in json.loads(a.read_text()).items() if k not in drop})
        right = strip_timing({k: v for k, v in json.loads(b.read_text()).items() if k not in drop})
    except (ValueError, AttributeError) as exc:
        return [f"{rel}: unreadable ({exc})"]
    return [] if left == right else [f"{rel}: differs (timing fields removed)"]


def same_tensors(ref: Path, run: Path, rel: str) -> list[str]:
    import torch
    from safetensors.torch import load_file

    if not (run / rel).is_file():
        return [f"{rel}: missing"]
    want, got = load_file(str(ref / rel)), load_file(str(run / rel))
    if want.keys() != got.keys():
        return [f"{rel}: different tensor names"]
    bad = [k for k in want if not torch.equal(want[k], got[k])]
    return [f"{rel}: tensors differ ({bad[0]}, ...)"] if bad else []


def _pipeline_compare(ref: Path, run: Path) -> list[str]:
    problems = same_bytes(ref, run, "trials.jsonl") + same_bytes(ref, run, "top.json")
    problems += same_tensors(ref, run, "supernet/model.safetensors")
    for weights in sorted((ref / "retrain").glob("*/model.safetensors")):
        problems += same_tensors(ref, run, str(weights.relative_to(ref)))
    for result in sorted((ref / "glue").glob("*/*.json")):
        problems += same_json(ref, run, str(result.relative_to(ref)))
    for stage in ("supernet", "search", "retrain", "glue", "report"):
        if not (run / "stages" / f"{stage}.json").is_file():
            problems.append(f"stages/{stage}.json: missing")
    return problems


def _toy_compare(ref: Path, run: Path) -> list[str]:
    return same_bytes(ref, run, "trials.jsonl") + same_bytes(ref, run, "top.json")


def _toy_pareto_compare(ref: Path, run: Path) -> list[str]:
    return _toy_compare(ref, run) + same_bytes(ref, run, "pareto.json")


def _compare_compare(ref: Path, run: Path) -> list[str]:
    problems = []
    for log in sorted((ref / "runs").glob("*/seed*/trials.jsonl")):
        problems += same_bytes(ref, run, str(log.relative_to(ref)))
    problems += same_json(ref, run, "comparison.json", drop=("runtime",))
    return problems


TARGETS = {
    "pipeline": Target("pipeline", ("supernet", "search", "retrain", "glue", "report"), _pipeline_command,
                       _pipeline_progress, _marker_done, _pipeline_compare),
    "toy": Target("toy", ("search", "report"), _toy_command, _toy_progress, _marker_done, _toy_compare),
    "toy-pareto": Target("toy-pareto", ("search", "report"), _toy_pareto_command, _toy_progress, _marker_done,
                         _toy_pareto_compare),
    "compare": Target("compare", ("runs", "report"), _compare_command, _compare_progress, _compare_done,
                      _compare_compare),
}


# ---------------------------------------------------------------------- runs in forks of this process
class Forked:
    """``nasplug ARGV`` run by :func:`nasplug.cli.main` in a fork of this process: what
    ``python -m nasplug`` does without a new interpreter's imports (seconds per start). The
    parts of :class:`subprocess.Popen` the sweep uses."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self._err = tempfile.TemporaryFile()
        self.returncode: int | None = None
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns
            code: object = 1
            try:
                os.environ.clear()
                os.environ.update(env)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(self._err.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False, buffering=1)
                sys.stderr = open(2, "w", closefd=False, buffering=1)
                for sig in (signal.SIGTERM, signal.SIGALRM):
                    signal.signal(sig, signal.SIG_DFL)
                logging.getLogger().handlers = []
                sys.argv = ["nasplug", *argv]
                from nasplug.cli import main

                code = main(argv)
            except SystemExit as exc:
                code = exc.code
            except BaseException:  # as the interpreter would print it
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 1)

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("nasplug", timeout or 0)
            time.sleep(POLL_S)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    @property
    def stderr(self) -> Any:
        self._err.seek(0)
        return self._err

    def communicate(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        self.wait(timeout)
        return b"", self.stderr.read()


#: What a forked run imports, imported once before the first fork.
WARM_IMPORTS = ("nasplug.cli", "nasplug.pipeline", "nasplug.pipeline.supernet", "nasplug.pipeline.search",
                "nasplug.pipeline.retrain", "nasplug.pipeline.report", "nasplug.pipeline.evaluators",
                "nasplug.glue.stage", "nasplug.text.tasks", "nasplug.spaces.toy", "nasplug.spaces.lvbert",
                "nasplug.strategies.evolution", "nasplug.strategies.random", "nasplug.report", "nasplug.compare",
                "nasplug.oneshot.train", "datasets", "tokenizers", "safetensors.torch", "matplotlib.pyplot")


def prepare_forking() -> None:
    """One torch thread (as OMP_NUM_THREADS=1 gives a subprocess: the same kernels, the
    same bits) and the imports done, so each fork starts at once."""
    import importlib

    import torch

    torch.set_num_threads(1)
    for name in WARM_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
