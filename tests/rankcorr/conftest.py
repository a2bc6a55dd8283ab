"""The tiny run every rank-corr test scores: LV-BERT hidden 32, 3 slots, a synthetic corpus,
a 20-step supernet keeping a snapshot at step 10, built by the real pipeline once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = {
    "name": "tiny-rank-corr", "seed": 0,
    "space": {"name": "lvbert", "size": None, "hidden": 32, "heads": 1, "ffn": 64, "embedding": 32, "slots": 3,
              "vocab_size": 200, "max_positions": 32, "seq_len": 32},
    "data": {"corpus": {"source": "synthetic", "synthetic_documents": 200}, "tokenizer": {"vocab_size": 200},
             "seq_len": 32},
    "supernet": {"steps": 20, "batch_size": 8, "eval_batches": 1, "log_every": 10, "snapshots": [10]},
    "evaluator": {"name": "supernet", "batches": 2, "batch_size": 8},
    "retrain": {"steps": 100, "batch_size": 8, "warmup_steps": 20, "eval_batches": 1, "checkpoint_every": 3},
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run_dir, cache): the real supernet stage on the tiny recipe."""
    from nasplug.pipeline import run_recipe
    from nasplug.recipe import validate_recipe

    root = tmp_path_factory.mktemp("rank_corr")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASPLUG_CACHE", str(root / "cache"))
        run_recipe(validate_recipe(TINY), root / "run", stages=["supernet"], progress=False)
    return root / "run", root / "cache"


@pytest.fixture(autouse=True)
def _cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "tiny_run" in request.fixturenames:
        monkeypatch.setenv("NASPLUG_CACHE", str(request.getfixturevalue("tiny_run")[1]))


