"""Experiment tracking: a run's figures in TensorBoard event files and an MLflow run.

A recipe asks for it with a ``tracking:`` section (``pip install 'nasplug[tracking]'``)::

    tracking:
      report_to: [tensorboard, mlflow]
      tensorboard_dir: null        # default RUN/tensorboard
      mlflow_tracking_uri: null    # default sqlite:///RUN/mlflow.db (any MLflow URI: a server, databricks, ...)
      experiment: null             # the MLflow experiment; default: the recipe's name

What is sent is what the run's files hold, read back from them (so the tracked values are
``metrics.jsonl``'s to the last bit): the supernet's and each retrained model's training
curves (``supernet/train/loss``, ``supernet/heldout/mlm_acc``, ``retrain/found/train/loss``,
...; the step is the training step), every search trial (``search/score`` and
``search/best`` with one objective, by trial number, and its other metrics), the GLUE dev figures
(``glue/<model>/<TASK>/<metric>``) and the recipe's settings (MLflow parameters, TensorBoard
text). Rank 0 sends them while the run goes (every ``every_s`` seconds, from a thread of its
own) and when each stage ends. ``tracking.json`` in the run remembers the MLflow run and how
much of each file was sent: a resumed run continues the same MLflow run and sends only what
is new. A tracking backend that fails is a warning, never a lost training.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json
from nasplug.layout import RunLayout
from nasplug.runfiles import read_json, read_log_leniently
from nasplug.yamlio import flatten

log = logging.getLogger(__name__)

Backend = Literal["tensorboard", "mlflow"]
#: The package each backend needs (the ``tracking`` extra installs both).
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


class TrackingConfig(BaseModel):
    """The recipe's ``tracking:`` section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    report_to: list[Backend] = Field(default_factory=list, max_length=2)
    tensorboard_dir: str | None = Field(None, min_length=1)
    mlflow_tracking_uri: str | None = Field(None, min_length=1)
    experiment: str | None = Field(None, min_length=1, max_length=500)
    every_s: float = Field(60.0, ge=1.0, le=86_400.0, allow_inf_nan=False)


def check_tracking(cfg: TrackingConfig | None) -> None:
    """NasplugError (one line) when a backend the recipe names is not installed."""
    import importlib.util

    for backend in (cfg.report_to if cfg is not None else []):
        if importlib.util.find_spec(PACKAGES[backend]) is None:
            raise NasplugError(f"tracking.report_to: {backend} needs the {PACKAGES[backend]} package; "
                               "install it with pip install 'nasplug[tracking]'")


# ---------------------------------------------------------------------- what is sent
Point = tuple[str, int, float]  # (tag, step, value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _training_points(records: list[dict[str, Any]], prefix: str) -> Iterator[Point]:
    """A training log's curves: train records' numbers, held-out figures of eval records."""
    for record in records:
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            continue
        event = record.get("event")
        if event is None:
            for key, value in record.items():
                if key != "step" and _number(value):
                    yield f"{prefix}/train/{key}", step, float(value)
        elif event in ("eval", "end"):
            for key, value in record.items():
                if key.startswith("heldout_") and _number(value):
                    yield f"{prefix}/heldout/{key.removeprefix('heldout_')}", step, float(value)


def _trial_points(records: list[dict[str, Any]], start: int, direction: str | None) -> Iterator[Point]:
    """Each scored trial from ``start`` on: its score, the best so far (one objective:
    ``direction``; None for several), its other metrics."""
    best: float | None = None
    better = max if direction == "maximize" else min
    for index, record in enumerate(records):
        raw = record.get("score")
        if record.get("status") not in ("ok", "cached") or not isinstance(raw, (int, float)) or not _number(raw):
            continue
        score = float(raw)
        best = score if best is None else better(best, score)
        if index < start:
            continue
        yield "search/score", index, score
        if direction is not None:
            yield "search/best", index, best
        for key, value in sorted((record.get("metrics") or {}).items()):
            if _number(value):
                yield f"search/{key}", index, float(value)


class _Sources:
    """The run's files that hold figures, and how much of each was sent (``sent``)."""

    def __init__(self, layout: RunLayout, direction: str | None) -> None:
        self.layout, self.direction = layout, direction

    def logs(self) -> Iterator[tuple[str, Path]]:
        root = self.layout.root
        for path in [self.layout.supernet_oneshot / "metrics.jsonl", self.layout.supernet / "metrics.jsonl",
                     *sorted(root.glob(f"{RunLayout.RETRAIN}/*/metrics.jsonl")),
                     *sorted(root.glob(f"{RunLayout.RETRAIN}/*/seed-*/metrics.jsonl"))]:
            if path.is_file():
                yield path.parent.relative_to(root).as_posix(), path

    def new_points(self, sent: dict[str, Any]) -> tuple[list[Point], dict[str, Any]]:
        """The points not sent yet, and the new ``sent`` once they are."""
        points: list[Point] = []
        now = dict(sent)
        for prefix, path in self.logs():
            records = read_log_leniently(path)
            points += _training_points(records[sent.get(prefix, 0):], prefix)
            now[prefix] = len(records)
        trials = read_log_leniently(self.layout.trials) if self.layout.trials.is_file() else []
        points += _trial_points(trials, sent.get("search", 0), self.direction)
        now["search"] = len(trials)
        for path in sorted(self.layout.glue().glob("*/*.json")) if self.layout.glue().is_dir() else []:
            key = path.relative_to(self.layout.root).as_posix()
            result = read_json(path) if path.stem != "scores" else None
            median = result.get("median") if isinstance(result, dict) else None
            if not isinstance(median, dict) or sent.get(key) == median:
                continue
            points += [(f"glue/{path.parent.name}/{path.stem}/{m}", 0, float(v)) for m, v in median.items()
                       if _number(v)]
            now[key] = median
        return points, now


# ---------------------------------------------------------------------- backends
class _TensorBoard:
    """Event files under ``folder`` (torch's SummaryWriter; the tensorboard package writes them)."""

    def __init__(self, folder: Path, settings: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))
        self.settings = settings

    def send(self, points: list[Point], first: bool) -> None:
        if first:
            self.writer.add_text("recipe", f"```yaml\n{self.settings}\n```", 0)
        for tag, step, value in points:
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _MLflow:
    """One MLflow run (created on the first send, continued by a resumed nasplug run)."""

    def __init__(self, uri: str, experiment: str, run_id: str | None, params: dict[str, str], name: str) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.uri, self.experiment, self.run_id, self.params, self.name = uri, experiment, run_id, params, name

    def send(self, points: list[Point], first: bool) -> None:
        import time

        from mlflow.entities import Metric, Param

        if self.run_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            experiment = found.experiment_id if found else self.client.create_experiment(self.experiment)
            self.run_id = self.client.create_run(experiment, run_name=self.name).info.run_id
            params = [Param(k[:250], v[:6000]) for k, v in self.params.items()]
            for i in range(0, len(params), 100):  # MLflow takes 100 parameters per call
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        now = int(time.time() * 1000)
        metrics = [Metric(tag, value, now, step) for tag, step, value in points]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def close(self) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id)


# ---------------------------------------------------------------------- the tracker
class Tracker:
    """Sends a run's new figures to the recipe's backends, from a thread of its own (every
    ``every_s`` seconds and when :meth:`sync` asks); rank 0 of ``nasplug run`` makes one."""

    def __init__(self, cfg: TrackingConfig, run_dir: Path, recipe_name: str, settings: dict[str, Any],
                 direction: str | None = "maximize") -> None:
        self.cfg, self.layout = cfg, RunLayout(run_dir)
        self.sources = _Sources(self.layout, direction)
        self.recipe_name, self.settings = recipe_name, settings
        self.backends: dict[str, Any] = {}
        self.requests: queue.Queue[threading.Event | None] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="nasplug-tracking", daemon=True)
        self.thread.start()

    def sync(self) -> None:
        """Send what is new now, and wait until it is sent."""
        done = threading.Event()
        self.requests.put(done)
        done.wait()

    def close(self) -> None:
        """Send what is new, end the MLflow run, stop the thread."""
        self.sync()
        self.requests.put(None)
        self.thread.join()

    # -- the thread
    def _work(self) -> None:
        while True:
            try:
                request = self.requests.get(timeout=self.cfg.every_s)
            except queue.Empty:
                request = threading.Event()  # the periodic send
            try:
                self._send() if request is not None else self._close()
            except Exception as exc:  # noqa: BLE001 - tracking never stops a run: a warning says why
                log.warning("tracking: %s", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc))
            finally:
                if request is not None:
                    request.set()
            if request is None:
                return

    def _state(self) -> dict[str, Any]:
        try:
            state = read_json(self.layout.tracking) if self.layout.tracking.is_file() else None
        except NasplugError as exc:  # a damaged record: everything is sent again, to a new MLflow run
            log.warning("tracking: %s; sending every figure again", exc)
            state = None
        return state if isinstance(state, dict) else {}

    def _send(self) -> None:
        state = self._state()
        for name in self.cfg.report_to:
            backend = self.backends.get(name) or self._open(name, state)
            self.backends[name] = backend
            sent = state.get(name, {}).get("sent", {}) if isinstance(state.get(name), dict) else {}
            points, now = self.sources.new_points(sent if isinstance(sent, dict) else {})
            if points or not sent:
                backend.send(points, first=not sent)
            state[name] = {**(state.get(name) or {}), "sent": now}
            if name == "mlflow":
                state[name].update(run_id=backend.run_id, uri=backend.uri)
            atomic_write_json(self.layout.tracking, state)

    def _open(self, name: str, state: dict[str, Any]) -> Any:
        import yaml

        if name == "tensorboard":
            folder = Path(self.cfg.tensorboard_dir) if self.cfg.tensorboard_dir else self.layout.tensorboard
            return _TensorBoard(folder, yaml.safe_dump(self.settings, sort_keys=False))
        for noisy in ("mlflow", "alembic"):  # table creation and migrations, at INFO
            logging.getLogger(noisy).setLevel(logging.WARNING)
        uri = self.cfg.mlflow_tracking_uri or f"sqlite:///{self.layout.mlflow_store.resolve()}"
        stored = state.get("mlflow")
        previous: dict[str, Any] = stored if isinstance(stored, dict) else {}
        run_id = previous.get("run_id") if previous.get("uri") == uri else None  # another store: a new run
        params = {key: json.dumps(value) if not isinstance(value, str) else value
                  for key, value in flatten(self.settings).items()}
        return _MLflow(uri, self.cfg.experiment or self.recipe_name, run_id, params, self.recipe_name)

    def _close(self) -> None:
        for backend in self.backends.values():
            backend.close()

