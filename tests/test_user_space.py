"""A space defined outside nasplug, reached by module:attr and by an entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasplug.pipeline import run_recipe
from nasplug.recipe import validate_recipe
from nasplug.registry import STRATEGIES
from nasplug.testing import SpaceContract

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_the_example_is_short():
    assert len((EXAMPLES / "my_space.py").read_text().splitlines()) < 60


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_module_attr_route_runs_with_every_strategy(on_path, tmp_path, strategy):
    recipe = validate_recipe({
        "name": "mine", "seed": 1,
        "space": {"name": "my_space:MLPSpace", "max_params": 12000},
        "evaluator": {"name": "my_space:ProxyScore"},
        "search": {"strategy": {"name": strategy}, "budget": 12, "batch_size": 4},
    })
    run_recipe(recipe, tmp_path / strategy, progress=False)
    lines = (tmp_path / strategy / "trials.jsonl").read_text().splitlines()
    assert len(lines) >= 12
    assert "params" in (tmp_path / strategy / "report.md").read_text()


class TestExampleSpaceContract(SpaceContract):
    @pytest.fixture
    def space(self, on_path):
        from my_space import MLPSpace

        return MLPSpace()


def test_entry_point_route(tmp_path):
    """A 'installed' third-party package: a dist-info folder with an entry point on sys.path."""
    site = tmp_path / "site"
    dist = site / "my_nas_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-nas-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nasplug.spaces]\nmlp = my_space:MLPSpace\n")
    (site / "my_space.py").write_text((EXAMPLES / "my_space.py").read_text())
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: ep\nspace: {name: mlp}\nevaluator: {name: 'my_space:ProxyScore'}\n"
                      "search: {strategy: {name: random}, budget: 6, batch_size: 3}\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    listed = subprocess.run(
        [sys.executable, "-m", "nasplug", "list", "spaces"], env=env, capture_output=True, text=True
    )
    assert "mlp" in listed.stdout.split()
    run = subprocess.run([sys.executable, "-m", "nasplug", "-q", "run", str(recipe), "--out", str(tmp_path / "run")],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len((tmp_path / "run" / "trials.jsonl").read_text().splitlines()) == 6
