"""Run directories shared by the fuzz cases, prepared once per session.

Each case copies the run directory it needs (``shutil.copytree``), damages the copy and runs
one command on it, so cases never interfere. The toy runs need nothing; the LV-BERT runs
(tests/data/tiny-pipeline.yaml) read GLUE from the shared data folder and are skipped
without it (and fail under CI), as everywhere in the test suite.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from cases_base import DIRECT_STAGES
from fuzzcases import COMPARE_ARGS, TINY_RECIPE, TOY
from fuzzkit import run_inprocess, warm_imports


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """2 shared cores: one torch thread (and the same kernels, hence the same bits, as the
    subprocesses started with OMP_NUM_THREADS=1), given back after each module so the rest
    of the test suite runs as it would without this folder; the imports a run needs are
    done once, so every forked case starts warm."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    warm_imports()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="session")
def cache_dir(fuzz_root: Path) -> Path:
    """The NASPLUG_CACHE of every case (tokenised data shared by the LV-BERT runs)."""
    path = fuzz_root / "cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def toy_recipe(fuzz_root: Path) -> Path:
    path = fuzz_root / "recipes" / "toy.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(TOY, sort_keys=False))
    return path


def _make_run(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.chdir(cwd)
        outcome = run_inprocess(argv, timeout=300)
    assert outcome.rc == 0, f"preparing {argv}: {outcome.describe()}\n{outcome.stderr[-3000:]}"


@pytest.fixture(scope="session")
def toy_run(fuzz_root: Path, toy_recipe: Path, cache_dir: Path) -> Path:
    """A finished toy search (search + report stages)."""
    out = fuzz_root / "bases" / "toy-run"
    _make_run(["-q", "run", str(toy_recipe), "--out", str(out)], {"NASPLUG_CACHE": str(cache_dir)}, fuzz_root)
    return out


@pytest.fixture(scope="session")
def pareto_run(fuzz_root: Path, cache_dir: Path) -> Path:
    """A finished toy search of two objectives (score against params): it has a pareto.json."""
    recipe = fuzz_root / "recipes" / "toy-pareto.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    search = {k: v for k, v in TOY["search"].items() if k not in ("metric", "direction")}
    recipe.write_text(yaml.safe_dump({**TOY, "search": {**search, "objectives": ["score", "params"]}}, sort_keys=False))
    out = fuzz_root / "bases" / "pareto-run"
    _make_run(["-q", "run", str(recipe), "--out", str(out)], {"NASPLUG_CACHE": str(cache_dir)}, fuzz_root)
    assert (out / "pareto.json").is_file()
    return out


@pytest.fixture(scope="session")
def toy_unsearched(fuzz_root: Path, toy_run: Path) -> Path:
    """The toy run as if killed after its last trial was logged but before the search stage
    was marked done: ``--resume`` replays the whole log."""
    out = fuzz_root / "bases" / "toy-unsearched"
    shutil.copytree(toy_run, out)
    for name in ("stages", "top.json", "report.md", "search_curve.png", "top_choices.png"):
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return out


@pytest.fixture(scope="session")
def compare_run(fuzz_root: Path, toy_recipe: Path, cache_dir: Path) -> Path:
    """A finished `nasplug compare` of random and evolution, 2 seeds, budget 12."""
    out = fuzz_root / "bases" / "compare"
    _make_run(["-q", "compare", str(toy_recipe), *COMPARE_ARGS, "--out", str(out)],
              {"NASPLUG_CACHE": str(cache_dir)}, fuzz_root)
    return out


@pytest.fixture(scope="session")
def tiny_env(shared_data: Path, cache_dir: Path) -> dict[str, str]:
    return {"NASPLUG_DATA_DIR": str(shared_data), "NASPLUG_CACHE": str(cache_dir)}


@pytest.fixture(scope="session")
def tiny_run(fuzz_root: Path, tiny_env: dict[str, str]) -> Path:
    """A finished LV-BERT run of tests/data/tiny-pipeline.yaml (every stage)."""
    out = fuzz_root / "bases" / "tiny-run"
    _make_run(["-q", "run", str(TINY_RECIPE), "--out", str(out)], tiny_env, fuzz_root)
    return out


@pytest.fixture(scope="session")
def tiny_direct(fuzz_root: Path, tiny_env: dict[str, str]) -> Path:
    """The tiny run searched for accuracy against directly measured latency (latency, supernet
    and search stages): it has a ``latency_measured.jsonl``."""
    out = fuzz_root / "bases" / "tiny-direct"
    _make_run(["-q", "run", str(TINY_RECIPE), "--out", str(out), *DIRECT_STAGES], tiny_env, fuzz_root)
    assert (out / "latency_measured.jsonl").is_file()
    return out


@pytest.fixture(scope="session")
def tiny_rankcorr(fuzz_root: Path, tiny_run: Path, tiny_env: dict[str, str]) -> Path:
    """The tiny run after ``rank-corr --archs 3 --steps 2 --seeds 2 --predictors synflow``: every
    cache rank-corr reads back (supernet scores, standalone models and scores, proxy scores)."""
    out = _derive(fuzz_root, tiny_run, "tiny-rankcorr", [])
    _make_run(["-q", "rank-corr", str(out), "--archs", "3", "--steps", "2", "--seeds", "2", "--predictors",
               "synflow"], tiny_env, fuzz_root)
    return out


def _derive(fuzz_root: Path, tiny_run: Path, name: str, remove: list[str]) -> Path:
    out = fuzz_root / "bases" / name
    shutil.copytree(tiny_run, out)
    for rel in remove:
        for path in sorted(out.glob(rel)):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return out


_AFTER_SEARCH = ["retrain", "glue", "report.md", "*.png", "stages/retrain.json", "stages/glue.json",
                 "stages/report.json"]


@pytest.fixture(scope="session")
def tiny_mid_supernet(fuzz_root: Path, tiny_run: Path) -> Path:
    """Killed after the supernet's last checkpoint, before it was marked done: ``--resume``
    loads ``supernet/checkpoint``."""
    return _derive(fuzz_root, tiny_run, "tiny-mid-supernet",
                   ["stages", "supernet/result.json", "supernet/model.safetensors", "trials.jsonl", "top.json",
                    *_AFTER_SEARCH])


@pytest.fixture(scope="session")
def tiny_mid_search(fuzz_root: Path, tiny_run: Path) -> Path:
    """The supernet is trained, the search has not started: ``--resume`` loads the supernet."""
    return _derive(fuzz_root, tiny_run, "tiny-mid-search",
                   ["stages/search.json", "trials.jsonl", "top.json", *_AFTER_SEARCH])


@pytest.fixture(scope="session")
def tiny_mid_retrain(fuzz_root: Path, tiny_run: Path) -> Path:
    """Search done; the found arch was killed after its last retraining checkpoint:
    ``--resume`` reads top.json and ``retrain/found/checkpoint``."""
    return _derive(fuzz_root, tiny_run, "tiny-mid-retrain",
                   ["retrain/found/result.json", "retrain/found/model.safetensors", "glue", "report.md",
                    "stages/retrain.json", "stages/glue.json", "stages/report.json"])


@pytest.fixture(scope="session")
def tiny_unmarked_retrain(fuzz_root: Path, tiny_run: Path) -> Path:
    """Both models retrained, the stage not yet marked done: ``--resume`` reads their
    result.json files back."""
    return _derive(fuzz_root, tiny_run, "tiny-unmarked-retrain",
                   ["glue", "report.md", "stages/retrain.json", "stages/glue.json", "stages/report.json"])


@pytest.fixture(scope="session")
def tiny_before_glue(fuzz_root: Path, tiny_run: Path) -> Path:
    """Retrained, not fine-tuned: ``--resume --stages glue`` reads the GLUE folder."""
    return _derive(fuzz_root, tiny_run, "tiny-before-glue", ["glue", "stages/glue.json", "stages/report.json",
                                                            "report.md"])


@pytest.fixture(scope="session")
def tiny_rte_done(fuzz_root: Path, tiny_run: Path) -> Path:
    """Fine-tuned on RTE, not yet on STS-B: ``--resume --stages glue`` reads STS-B only."""
    return _derive(fuzz_root, tiny_run, "tiny-rte-done", ["glue/*/STS-B.json", "glue/*/scores.json", "stages/glue.json",
                                                         "stages/report.json", "report.md"])


def copy_base(request: pytest.FixtureRequest, base: str, dest: Path) -> Path:
    """A private copy of the session run directory ``base`` (a fixture name) at ``dest``."""
    source = request.getfixturevalue(base)
    shutil.copytree(source, dest, symlinks=True)
    return dest

