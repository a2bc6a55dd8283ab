"""The fast subset of benchmarks/kill_sweep.py: `nasplug run` SIGKILLed in every stage of the
tiny pipeline (the first kill on a fresh run, the others during its resumes) and a toy
search killed twice; each then resumed to the end must equal an uninterrupted run
(trials.jsonl, retrained and supernet weights, GLUE scores, top.json). The runs are forks
of the test process calling nasplug.cli.main (the sweep script runs real subprocesses)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _kill_sweep():
    spec = importlib.util.spec_from_file_location("kill_sweep", REPO / "benchmarks" / "kill_sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_sweep"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_kills_in_every_stage_then_resume_equal_an_uninterrupted_run(tmp_path: Path, shared_data: Path) -> None:
    ks = _kill_sweep()
    ks.FORK = True  # forks of this process: the same runs without seconds of imports per start
    ks.prepare_forking()
    Moment = ks.Moment
    plans = {
        # one episode: killed fresh in the supernet, then each resume killed in the next stage
        "pipeline": [[Moment("supernet", 0.5, 0.05), Moment("search", 0.4, 0.02), Moment("retrain", 0.5, 0.0),
                      Moment("glue", 0.3, 0.1)]],
        "toy": [[Moment("search", 0.3, 0.01), Moment("search", 0.7, 0.0)]],
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NASPLUG_DATA_DIR": str(shared_data)}
    result = ks.sweep(["pipeline", "toy"], kills=6, seed=0, work=tmp_path, env=env, plans=plans, fresh_cache_every=0,
                      timeout_s=300, log=lambda line: None)
    print(ks.table(result))
    assert not result.mismatches, result.mismatches
    kills = result.kills
    assert len(kills) >= 4, f"too few kills landed: {ks.table(result)}"
    assert any(r.run != "fresh" for r in kills), "no kill landed during a resume"
    stages = {r.stage for r in kills if r.target == "pipeline"}
    assert len(stages) >= 3, f"the kills should land in different stages, they landed in {stages}"


@pytest.mark.slow
def test_a_two_objective_search_killed_twice_resumes_to_the_same_trials_and_front(tmp_path: Path,
                                                                                  shared_data: Path) -> None:
    """SIGKILL during an NSGA-II search (recipes/toy-pareto.yaml), twice, then --resume: the
    same trials.jsonl, top.json and pareto.json, byte for byte, as an uninterrupted run."""
    ks = _kill_sweep()
    ks.FORK = True
    ks.prepare_forking()
    Moment = ks.Moment
    plans = {"toy-pareto": [[Moment("search", 0.25, 0.0), Moment("search", 0.6, 0.01)],
                            [Moment("search", 0.9, 0.002)]]}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NASPLUG_DATA_DIR": str(shared_data)}
    result = ks.sweep(["toy-pareto"], kills=3, seed=1, work=tmp_path, env=env, plans=plans, fresh_cache_every=0,
                      timeout_s=300, log=lambda line: None)
    print(ks.table(result))
    assert not result.mismatches, result.mismatches
    assert len(result.kills) >= 2 and any(r.run != "fresh" for r in result.kills), ks.table(result)
