"""``tracking: {report_to: [tensorboard, mlflow]}`` on the digits pipeline: the curves are read
back with tensorboard's event reader and ``mlflow.search_runs`` / the metric history, and
equal what the run's files hold; a resumed run continues the same MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasplug.pipeline import run_recipe
from nasplug.recipe import load_recipe

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "examples" / "digits" / "recipe.yaml"
TINY = ["supernet.steps=8", "supernet.log_every=2", "supernet.eval_every=4", "supernet.checkpoint_every=4",
        "supernet.eval_batches=1", "supernet.eval_archs=1", "evaluator.batches=1", "evaluator.recalibrate=1",
        "search.budget=6", "search.batch_size=3", "search.strategy={name: random}", "retrain.steps=6",
        "retrain.log_every=2", "retrain.seeds=null", "retrain.baselines={}", "retrain.eval_batches=1",
        "retrain.checkpoint_every=3", "tracking={report_to: [tensorboard, mlflow]}"]

pytestmark = pytest.mark.usefixtures("one_thread")


def expected(run: Path) -> dict[str, dict[int, float]]:
    """What the run's files say each tracked series holds."""
    series: dict[str, dict[int, float]] = {}
    for prefix in ("supernet", "retrain/found"):
        for line in (run / prefix / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            if "event" not in record:
                series.setdefault(f"{prefix}/train/loss", {})[record["step"]] = record["loss"]
            elif record["event"] in ("eval", "end") and "heldout_acc" in record:
                series.setdefault(f"{prefix}/heldout/acc", {})[record["step"]] = record["heldout_acc"]
    for line in (run / "trials.jsonl").read_text().splitlines():
        trial = json.loads(line)
        if trial["status"] in ("ok", "cached"):
            series.setdefault("search/score", {})[trial["number"]] = trial["score"]
    return series


def tensorboard_series(folder: Path) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, dict[int, float]] = {}
    for events in sorted(folder.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            series.setdefault(tag, {}).update({e.step: e.value for e in acc.Scalars(tag)})
    return series


def test_curves_trials_and_settings_reach_tensorboard_and_mlflow(tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    run = tmp_path / "run"
    run_recipe(load_recipe(RECIPE, [*TINY, "search.budget=3"]), run, stages=["supernet", "search"], progress=False)
    state = json.loads((run / "tracking.json").read_text())
    first_run_id = state["mlflow"]["run_id"]
    # resumed with a larger search budget: the same MLflow run gets the new trials
    run_recipe(load_recipe(RECIPE, TINY), run, resume=True, progress=False)
    want = expected(run)
    assert len(want["search/score"]) == 6 and len(want["supernet/train/loss"]) == 4

    board = tensorboard_series(run / "tensorboard")
    for tag, points in want.items():  # TensorBoard keeps float32
        assert board[tag].keys() == points.keys(), tag
        assert all(abs(board[tag][s] - v) <= 1e-6 * max(1.0, abs(v)) for s, v in points.items()), tag

    uri = f"sqlite:///{run / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["digits"])
    assert list(runs["run_id"]) == [first_run_id], "a resumed run continues the same MLflow run"
    assert runs["params.search.metric"][0] == "acc" and runs["params.seed"][0] == "0"
    client = MlflowClient(tracking_uri=uri)
    for tag, points in want.items():
        history = client.get_metric_history(first_run_id, tag)
        assert {m.step: m.value for m in history} == points, tag  # MLflow keeps doubles: equal
        assert len(history) == len(points), f"{tag}: sent twice"
    assert runs["metrics.search/best"][0] == max(want["search/score"].values())
    # the found arch is retrained now: a longer search would leave it stale (search.budget, one line)
    from nasplug.errors import NasplugError

    with pytest.raises(NasplugError, match=r"search.budget: 9 would extend .* retrained already"):
        run_recipe(load_recipe(RECIPE, [*TINY, "search.budget=9"]), run, resume=True, progress=False)


def test_glue_dev_figures_reach_tensorboard_and_mlflow_once(tmp_path: Path) -> None:
    """The GLUE stage's files (``glue/<model>/<TASK>.json``: the median over seeds) become
    ``glue/<model>/<TASK>/<metric>``; a figure that did not change is not sent again."""
    from mlflow.tracking import MlflowClient

    from nasplug.tracking import Tracker, TrackingConfig

    run = tmp_path / "run"
    glue = run / "glue" / "found"
    glue.mkdir(parents=True)
    medians = {"RTE": {"accuracy": 62.5}, "STS-B": {"pearson": 71.25, "spearmanr": 70.0}}
    for task, median in medians.items():
        (glue / f"{task}.json").write_text(json.dumps({"median": median, "runs": [median]}))
    (glue / "scores.json").write_text(json.dumps({"RTE": 1.0}))  # the stage's summary: not a figure
    want = {f"glue/found/{task}/{m}": {0: v} for task, median in medians.items() for m, v in median.items()}
    for _ in range(2):  # the second tracker (a resume) finds nothing new to send
        tracker = Tracker(TrackingConfig(report_to=["tensorboard", "mlflow"]), run, "t", {"seed": 0})
        tracker.sync()
        tracker.close()
    assert tensorboard_series(run / "tensorboard") == want
    run_id = json.loads((run / "tracking.json").read_text())["mlflow"]["run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{run / 'mlflow.db'}")
    for tag, points in want.items():
        history = client.get_metric_history(run_id, tag)
        assert [(m.step, m.value) for m in history] == list(points.items()), tag
