"""Kill sweep: SIGKILL `nasplug` at random moments in every stage, resume, compare.

What it measures: whether a run killed at any moment (``kill -9``: no handler runs, files
are left exactly as the kernel has them) and then resumed with ``--resume`` (perhaps killed
again during the resume) ends with exactly the results of an uninterrupted run. Four targets:

* ``pipeline``: ``nasplug run tests/data/tiny-pipeline.yaml`` (supernet, search, retrain,
  GLUE, report at the smallest size; GLUE from ``$NASPLUG_DATA_DIR``);
* ``toy``: ``nasplug run recipes/toy-evolution.yaml`` (500 trials);
* ``toy-pareto``: ``nasplug run recipes/toy-pareto.yaml`` (two objectives, NSGA-II, 400 trials;
  ``pareto.json`` is checked too);
* ``compare``: ``nasplug compare recipes/toy-evolution.yaml`` (2 strategies x 3 seeds).

Kill moments are drawn from ``--seed``: a stage, a point of progress inside it (a number of
lines in its log: supernet ``metrics.jsonl``, ``trials.jsonl``, the retrained models' logs,
the GLUE result files, as a fraction of the uninterrupted run's count) and a delay after that
point (0-300 ms), so the kill lands during computation, during a write, or between them; in
the report stage (no log) a fraction of the stage's time in the uninterrupted run. Each
episode kills a fresh run once and then, with probability ``--resume-kill-p`` each, kills its
resumes again (a resume whose planned stage is done already is killed in the stage it is
in); then it resumes until the run finishes. Every third pipeline episode uses a fresh data
cache, so kills also land while the tokenizer and the packed data are built.

Checked against the uninterrupted run: ``trials.jsonl`` byte for byte; the retrained weights
(``retrain/*/model.safetensors``) and the supernet's, tensor for tensor; GLUE scores
(``glue/*/scores.json`` and each task's JSON, timing fields removed); ``top.json`` (and
``pareto.json`` for ``toy-pareto``); for
``compare``, every run's log and ``comparison.json`` without its timing fields.

Target: every resume completes and every check matches (exit status 0); any mismatch or
failed resume exits 1. Prints one row per kill (target, episode, run, stage, moment,
outcome) and a summary line. The targets, the checks and the forked runs (``--fork``) are in
benchmarks/killkit.py.

    .venv/bin/python benchmarks/kill_sweep.py --seed 0 --kills 24
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _load_killkit() -> None:
    """Make ``killkit`` (next to this script) importable also when this script is loaded by
    file path (tests/fuzz/test_kill.py), without putting benchmarks/ on sys.path."""
    if "killkit" not in sys.modules:
        spec = importlib.util.spec_from_file_location("killkit", Path(__file__).resolve().with_name("killkit.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["killkit"] = module  # dataclasses look their module up
        spec.loader.exec_module(module)


_load_killkit()
from killkit import POLL_S, REPO, TARGETS, Forked, Target, prepare_forking  # noqa: E402


# ---------------------------------------------------------------------- kills
@dataclass(frozen=True)
class Moment:
    """Where to kill: in ``stage``, once its progress count reaches ``fraction`` of the
    uninterrupted run's, ``delay_s`` later; in a stage without a count (the report), after
    ``fraction`` of the stage's time in the uninterrupted run."""

    stage: str
    fraction: float
    delay_s: float


@dataclass
class Row:
    target: str
    episode: int
    run: str
    planned: str
    stage: str
    outcome: str


@dataclass
class Sweep:
    rows: list[Row] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    episodes: int = 0

    @property
    def kills(self) -> list[Row]:
        return [r for r in self.rows if r.outcome.startswith("killed")]


def stage_walls(reference: Path, target: Target) -> dict[str, float]:
    """Seconds each stage took in the uninterrupted run (its stage marker), where recorded."""
    walls = {}
    for stage in target.stages:
        try:
            walls[stage] = round(float(json.loads((reference / "stages" / f"{stage}.json").read_text())["wall_s"]), 3)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return walls


def current_stage(target: Target, out: Path) -> str:
    for stage in target.stages:
        if not target.stage_done(out, stage):
            return stage
    return "(finished)"


# ---------------------------------------------------------------------- launching, killing, resuming
FORK = False  # set by --fork (and by the fast pytest subset): forked runs instead of subprocesses


def launch(target: Target, out: Path, resume: bool, env: dict[str, str]) -> Any:
    command = target.command(out, resume)
    if FORK:
        return Forked(command[3:], env)  # drop "python -m nasplug"
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


def wait_and_kill(target: Target, proc: Any, out: Path, moment: Moment, totals: dict[str, int],
                  walls: dict[str, float], timeout_s: float) -> tuple[str, str]:
    """Kill ``proc`` at ``moment``; returns (outcome, the moment as it was applied).

    A resume whose planned stage has finished already is killed in the stage it is in."""
    stage = moment.stage
    if target.stage_done(out, stage):
        stage = current_stage(target, out)
        if stage == "(finished)":
            stage = target.stages[-1]
    total = totals.get(stage, 0)
    if total:
        base = target.progress(out).get(stage, 0)
        threshold = max(math.ceil(moment.fraction * total), base + 1)
        delay = moment.delay_s
        applied = f"{stage} >= {threshold} ({moment.fraction:.2f}) + {delay * 1000:.0f} ms"
    else:
        threshold = 0
        delay = moment.fraction * walls.get(stage, 0.5)
        applied = f"{stage} + {delay * 1000:.0f} ms ({moment.fraction:.2f} of its time)"
    before = target.stages[: target.stages.index(stage)]
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        if all(target.stage_done(out, s) for s in before) and target.progress(out).get(stage, 0) >= threshold:
            break
        time.sleep(POLL_S)
    if delay and proc.poll() is None:
        time.sleep(delay)
    if proc.poll() is not None:
        err = proc.stderr.read().decode(errors="replace").strip().splitlines() if proc.stderr else []
        proc.wait()
        if proc.returncode == 0:
            return "finished before the kill", applied
        return f"FAILED (exit {proc.returncode}: {err[-1] if err else ''})", applied
    if time.monotonic() >= deadline:
        proc.kill()
        proc.wait()
        return "FAILED (hung)", applied
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return "killed", applied


def finish(target: Target, out: Path, env: dict[str, str], timeout_s: float) -> str | None:
    """Resume until the run finishes; the error if it does not."""
    proc = launch(target, out, True, env)
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "the final resume hung"
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()
        return f"the final resume failed (exit {proc.returncode}): {tail[-1] if tail else ''}"
    return None


def episode_planner(target: Target, rng: random.Random, resume_p: float,
                    counted: set[str]) -> Callable[[int], list[Moment]]:
    """Draws episodes of moments in progress order: the first kills a fresh run, the others
    its resumes (at most ``left`` in all). Stages are visited round-robin, from a shuffled
    order, so each gets its share of kills. Resumes are killed only in stages with a
    progress count (``counted``): a resume enters a stage without one (the report) during
    start-up, where a delay from its start cannot be placed inside the stage."""
    stage_cycle = list(target.stages)
    rng.shuffle(stage_cycle)
    count = [0]

    def next_episode(left: int) -> list[Moment]:
        stage = stage_cycle[count[0] % len(stage_cycle)]
        count[0] += 1
        moments = [Moment(stage, round(rng.uniform(0.0, 0.95), 2), round(rng.uniform(0.0, 0.3), 3))]
        while len(moments) < left and rng.random() < resume_p:
            later = [s for s in target.stages[target.stages.index(moments[-1].stage):] if s in counted]
            if not later:
                break
            stage = rng.choice(later)
            low = moments[-1].fraction if stage == moments[-1].stage else 0.0
            moments.append(Moment(stage, round(rng.uniform(low, 0.97), 2), round(rng.uniform(0.0, 0.3), 3)))
        return moments

    return next_episode


def sweep(target_names: list[str], kills: int, seed: int, work: Path, env: dict[str, str], resume_p: float = 0.6,
          timeout_s: float = 600.0, fresh_cache_every: int = 3, log: Callable[[str], None] = print,
          plans: dict[str, list[list[Moment]]] | None = None) -> Sweep:
    """Land ``kills`` kills over the targets (split evenly), resume each run to the end,
    compare it with the target's uninterrupted run.

    ``plans``: explicit episodes of moments for a target instead of drawn ones.
    """
    rng = random.Random(seed)
    result = Sweep()
    per_target = [kills // len(target_names) + (1 if i < kills % len(target_names) else 0)
                  for i in range(len(target_names))]
    for name, n in zip(target_names, per_target):
        target = TARGETS[name]
        reference = work / f"{name}-reference"
        run_env = {**env, "NASPLUG_CACHE": str(work / "cache")}
        t0 = time.monotonic()
        proc = launch(target, reference, False, run_env)
        _, err = proc.communicate(timeout=timeout_s)
        if proc.returncode != 0:
            raise SystemExit(f"{name}: the uninterrupted run failed: {err.decode(errors='replace')[-2000:]}")
        totals = target.progress(reference)
        walls = stage_walls(reference, target)
        log(f"{name}: uninterrupted run in {time.monotonic() - t0:.1f}s; progress counts {totals}; "
            f"stage times {walls}")
        fixed = list((plans or {}).get(name) or [])
        planner = episode_planner(target, rng, resume_p, {s for s, n in totals.items() if n})
        landed = 0
        e = -1
        while True:  # episodes until ``n`` kills have landed (a run may finish before its kill moment)
            if (e + 1 >= len(fixed)) if fixed else (landed >= n or e >= 3 * n):
                break
            e += 1
            moments = fixed[e] if fixed else planner(n - landed)
            out = work / f"{name}-episode{e}"
            episode_env = run_env
            if name == "pipeline" and fresh_cache_every and e % fresh_cache_every == fresh_cache_every - 1:
                episode_env = {**env, "NASPLUG_CACHE": str(work / f"cache-{name}-{e}")}  # kills in data preparation
            result.episodes += 1
            failed = False
            for k, moment in enumerate(moments):
                if k and not totals.get(current_stage(target, out)):
                    break  # what is left has no progress count (the report) or nothing: no kill inside it
                proc = launch(target, out, k > 0, episode_env)
                outcome, applied = wait_and_kill(target, proc, out, moment, totals, walls, timeout_s)
                stage = current_stage(target, out)
                run = "fresh" if k == 0 else f"resume {k}"
                row = Row(name, e, run, applied, stage, outcome)
                result.rows.append(row)
                landed += outcome == "killed"
                log(f"  {name} ep{e} {run:<9} {applied:<40} stage {stage:<10} {outcome}")
                if outcome.startswith("FAILED"):
                    result.mismatches.append(f"{name} episode {e} ({run}): {outcome}")
                    failed = True
                    break
            if failed:
                continue
            error = finish(target, out, episode_env, timeout_s)
            if error is not None:
                result.mismatches.append(f"{name} episode {e}: {error}")
                continue
            for problem in target.compare(reference, out):
                result.mismatches.append(f"{name} episode {e}: {problem}")
    return result


def table(result: Sweep) -> str:
    header = f"{'#':>3}  {'target':<8} {'ep':>3}  {'run':<9} {'stage':<10} {'moment':<44} outcome"
    rows = [header, "-" * len(header)]
    for i, r in enumerate(result.rows, start=1):
        rows.append(f"{i:>3}  {r.target:<8} {r.episode:>3}  {r.run:<9} {r.stage:<10} {r.planned:<44} {r.outcome}")
    return "\n".join(rows)


def summary(result: Sweep, wall_s: float) -> str:
    kills = result.kills
    during_resume = sum(1 for r in kills if r.run != "fresh")
    stages = sorted({f"{r.target}:{r.stage}" for r in kills})
    verdict = "all resumes matched the uninterrupted runs" if not result.mismatches else \
        f"{len(result.mismatches)} MISMATCHES"
    return (f"kill sweep: {len(kills)} kills ({during_resume} during a resume) in {result.episodes} episodes, "
            f"stages hit: {', '.join(stages)}; {verdict}; {wall_s:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument(
        "--kills", type=int, default=24, help="kills that must land, split over the targets (default 24)"
    )
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--resume-kill-p", type=float, default=0.6,
                        help="probability that a resume is killed again (default %(default)s)")
    parser.add_argument("--work", help="folder for the runs (default: a temporary folder, removed)")
    parser.add_argument("--fork", action="store_true",
                        help="run nasplug in forks of this process instead of subprocesses (no start-up imports)")
    parser.add_argument("--data", default=os.environ.get("NASPLUG_DATA_DIR", str(REPO.parent / "shared" / "data")),
                        help="NASPLUG_DATA_DIR for the pipeline's GLUE tasks")
    args = parser.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NASPLUG_DATA_DIR": args.data, "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    global FORK
    if args.fork:
        FORK = True
        prepare_forking()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kill-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        result = sweep(args.targets, args.kills, args.seed, work, env, resume_p=args.resume_kill_p)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(result))
    for problem in result.mismatches:
        print(f"MISMATCH: {problem}")
    print(summary(result, time.monotonic() - t0))
    return 1 if result.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
