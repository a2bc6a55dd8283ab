"""retrain.pareto on the two-objective digits recipe (accuracy against params, a few steps):
the picks are spread along pareto.json's front, the report draws the retrained front beside
the predicted one with the rank agreement, and ``nasplug export`` exports the front
(``--pareto``) or the best retrained front model within a budget (``--max-params``;
acceptance 7 of issue 23), with one line when none fits. Also: the latency stage gives the
tiny LV-BERT run a table-predicted ``latency_ms`` that a two-objective search optimises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nasplug.cli import main
from nasplug.pareto import spread
from nasplug.pipeline import run_recipe
from nasplug.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "examples" / "digits" / "recipe-pareto.yaml"
TINY = ["supernet.steps=30", "supernet.eval_every=0", "search.budget=32", "retrain.steps=6", "retrain.pareto=3",
        "retrain.seeds=[0]", "retrain.log_every=3", "retrain.checkpoint_every=3", "retrain.eval_batches=2"]

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pareto-retrain") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_recipe(load_recipe(RECIPE, TINY), out, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


def front_models(run: Path) -> dict[str, dict]:
    """name -> {arch, params, acc}: the retrained front models, read from the run's files."""
    front = json.loads((run / "pareto.json").read_text())["front"]
    top = json.loads((run / "top.json").read_text())[0]["arch"]
    picks = {f"pareto-{i + 1}": front[j] for i, j in enumerate(spread(len(front), 3))}
    models = {}
    for name, entry in picks.items():
        folder_name = "found" if entry["arch"] == top else name
        result = json.loads((run / "retrain" / folder_name / "seed-0" / "result.json").read_text())
        models[folder_name] = {"arch": entry["arch"], "params": entry["metrics"]["params"],
                               "acc": result["heldout"]["heldout_acc"]}
    return models


def test_the_picks_spread_along_the_front_are_retrained(run: Path) -> None:
    models = front_models(run)
    trained = {p.name for p in (run / "retrain").iterdir()}
    assert set(models) <= trained and "hand-picked" in trained
    assert len(models) == min(3, len(json.loads((run / "pareto.json").read_text())["front"]))
    report = (run / "report.md").read_text()
    assert "## The front retrained" in report and "Rank agreement on acc" in report
    assert "(pareto_retrained.png)" in report and (run / "pareto_retrained.png").stat().st_size > 0


def test_export_max_params_picks_the_best_retrained_front_model_within_n(run: Path, tmp_path: Path, capsys) -> None:
    models = front_models(run)
    for i, limit in enumerate(sorted({m["params"] for m in models.values()})):
        fits = {n: m for n, m in models.items() if m["params"] <= limit}
        expected = max(fits, key=lambda n: (fits[n]["acc"], -fits[n]["params"]))
        out = tmp_path / f"e{i}"
        assert main(["-q", "export", str(run), "--max-params", str(limit), "--out", str(out)]) == 0
        assert json.loads((out / "export.json").read_text())["model"] == expected
        ours = load_file(str(out / "model.safetensors"))
        trained = load_file(str(run / "retrain" / expected / "seed-0" / "model.safetensors"))
        assert ours.keys() == trained.keys() and all(torch.equal(ours[k], trained[k]) for k in ours)
    capsys.readouterr()
    smallest = min(m["params"] for m in models.values())
    assert main(["-q", "export", str(run), "--max-params", str(smallest - 1), "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--max-params: no retrained front model has params <= {smallest - 1:g}" in err[0]
    assert not (tmp_path / "none").exists()


def test_export_pareto_writes_every_front_model(run: Path, tmp_path: Path) -> None:
    assert main(["-q", "export", str(run), "--pareto", "--out", str(tmp_path / "front")]) == 0
    assert {p.name for p in (tmp_path / "front").iterdir()} == set(front_models(run))
    for folder in (tmp_path / "front").iterdir():
        assert json.loads((folder / "export.json").read_text())["model"] == folder.name


def test_the_latency_stage_gives_a_search_its_table_predicted_latency(tmp_path: Path) -> None:
    from nasplug.cost.table import load_table

    tiny = REPO / "tests" / "data" / "tiny-pipeline.yaml"
    sets = ["search.metric=null", "search.objectives=[mlm_acc, latency_ms]",
            "latency={seq_len: 16, warmup: 0, repeats: 1, calls: 1, calibrate: 2}", "search.budget=8"]
    out = tmp_path / "run"
    run_recipe(load_recipe(tiny, sets), out, stages=["latency", "supernet", "search"], progress=False)
    table = load_table(out / "latency_table.json")
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    scored = [t for t in trials if t["status"] in ("ok", "cached")]
    assert scored
    from nasplug.spaces.lvbert.space import LVBertSpace

    space = LVBertSpace(**{k: v for k, v in table.space.items() if k != "name"})
    for t in scored:
        assert t["metrics"]["latency_ms"] == pytest.approx(table.predict(t["arch"], space))
    front = json.loads((out / "pareto.json").read_text())
    assert [o["metric"] for o in front["objectives"]] == ["mlm_acc", "latency_ms"]
    assert front["objectives"][1]["direction"] == "minimize"
    before = (out / "latency_table.json").read_bytes()
    (out / "stages" / "search.json").unlink()  # the search runs again on resume: a replay of its log
    run_recipe(load_recipe(tiny, sets), out, resume=True, stages=["latency", "search"], progress=False)
    assert (out / "latency_table.json").read_bytes() == before, "a resumed run reads its table back"
    again = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert again == trials
