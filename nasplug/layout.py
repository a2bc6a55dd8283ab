"""Where everything of a run lives: one home for the paths of a run directory.

Every stage, the report, ``nasplug rank-corr``, ``nasplug study``, ``nasplug export`` and the
GLUE plugin take the paths of a run from :class:`RunLayout`, and read its files back through
its validated readers; ``nasplug compare`` takes the paths of its output folder from
:class:`ComparisonLayout`. A run directory::

    recipe.yaml  run.json           the run's identity (written before the first stage runs)
    stages/<stage>.json             a finished stage's summary and wall time
    supernet/                       the trained supernet (supernet/oneshot/: a few-shot split's first phase;
                                    supernet/snapshots/step-<8 digits>/: the weights kept at supernet.snapshots)
    trials.jsonl  top.json          the search log and its best archs
    pareto.json                     the Pareto front of a search with several objectives
    latency_table.json              the latency stage's table (``latency_ms`` of the space's archs)
    latency_measured.jsonl          ``latency.measure: direct``: each arch's measured ``latency_ms``
    retrain/<model>[/seed-<k>]/     a retrained model (summary.json over the seeds)
    glue/<model>/<TASK>.json        GLUE fine-tuning (the text plugin)
    tokenizer/                      the text tasks' tokenizer
    rank_corr/                      ``nasplug rank-corr`` (default folder; :class:`RankCorrLayout`)
    study/                          ``nasplug study``: searches/<row>/, models/<row>/<i>-<arch>/seed-<k>/
    report.md  *.png                the report
    tracking.json                   what ``tracking:`` sent where (tensorboard/, mlflow.db by default)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.runfiles import read_json


def snapshot_folder(training_folder: str | Path, step: int) -> Path:
    """Where a training keeps the weights of step ``step`` (``train(snapshots=...)``)."""
    return Path(training_folder) / "snapshots" / f"step-{step:08d}"


def default_out(name: str) -> Path:
    """Where a command writes when it is given no ``--out``: ``runs/<name>`` (relative to the
    working directory); ``name`` is the recipe's (plus ``-compare`` for ``nasplug compare``)."""
    return Path("runs") / name


class RunLayout:
    """The paths of one run directory (nothing is created or read when it is built)."""

    SUPERNET = "supernet"
    RETRAIN = "retrain"
    STAGES = "stages"
    TRIALS = "trials.jsonl"
    TOP = "top.json"
    PARETO = "pareto.json"
    LATENCY_TABLE = "latency_table.json"
    LATENCY_MEASURED = "latency_measured.jsonl"
    RECIPE = "recipe.yaml"
    INFO = "run.json"
    GLUE = "glue"
    #: Files and folders whose presence means a run has started in a directory (plus every
    #: stage's :attr:`~nasplug.pipeline.stage.Stage.outputs`).
    MARKERS = (RECIPE, INFO, STAGES, TRIALS, SUPERNET, RETRAIN, TOP)
    #: What a run writes before its first stage starts (a new run refused by that stage forgets them).
    IDENTITY = (RECIPE, INFO)

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.root = Path(run_dir)

    def __repr__(self) -> str:
        return f"RunLayout({str(self.root)!r})"

    # ------------------------------------------------------------------ identity and stages
    @property
    def recipe(self) -> Path:
        return self.root / self.RECIPE

    @property
    def info(self) -> Path:
        return self.root / self.INFO

    def stage_file(self, stage: str) -> Path:
        """``stages/<stage>.json``: written when the stage finished."""
        return self.root / self.STAGES / f"{stage}.json"

    def stage_done(self, stage: str) -> bool:
        return self.stage_file(stage).is_file()

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    def plot(self, name: str) -> Path:
        """A report figure beside ``report.md`` (``name`` is one of the ``*_PLOT`` names)."""
        return self.root / name

    SEARCH_CURVE_PLOT = "search_curve.png"
    PARETO_RETRAINED_PLOT = "pareto_retrained.png"
    TOP_CHOICES_PLOT = "top_choices.png"
    SUPERNET_LOSS_PLOT = "supernet_loss.png"
    SUPERNET_HELDOUT_PLOT = "supernet_heldout.png"
    ARCHITECTURES_PLOT = "architectures.png"
    RETRAIN_LOSS_PLOT = "retrain_loss.png"
    PARETO_PLOT = "pareto.png"
    HYPERVOLUME_PLOT = "hypervolume.png"

    # ------------------------------------------------------------------ supernet and search
    @property
    def supernet(self) -> Path:
        """The supernet stage's training folder (checkpoint, metrics.jsonl, model.safetensors)."""
        return self.root / self.SUPERNET

    @property
    def supernet_oneshot(self) -> Path:
        """A few-shot split's first phase: the one-shot supernet's training folder."""
        return self.supernet / "oneshot"

    @property
    def supernet_weights(self) -> Path:
        return self.supernet / "model.safetensors"

    def supernet_snapshot(self, step: int) -> Path:
        """The supernet's weights kept after ``step`` steps (``supernet.snapshots``)."""
        return snapshot_folder(self.supernet, step)

    def supernet_snapshots(self) -> dict[int, Path]:
        """Step -> folder of every complete snapshot of the supernet, by step."""
        folder = self.supernet / "snapshots"
        found = {}
        for path in sorted(folder.glob("step-*")) if folder.is_dir() else []:
            step = path.name.removeprefix("step-")
            if step.isdigit() and (path / "model.safetensors").is_file():
                found[int(step)] = path
        return found

    @property
    def trials(self) -> Path:
        return self.root / self.TRIALS

    @property
    def top(self) -> Path:
        return self.root / self.TOP

    @property
    def pareto(self) -> Path:
        """The front of a search with several objectives (``nasplug.report.front``)."""
        return self.root / self.PARETO

    # ------------------------------------------------------------------ retrained models
    def retrain(self, name: str, seed: int | None = None) -> Path:
        """The training folder of retrained model ``name``; with ``seed``, of its run with that
        seed (a recipe with ``retrain.seeds`` trains each model once per seed)."""
        folder = self.root / self.RETRAIN / name
        return folder if seed is None else folder / f"seed-{seed}"

    @property
    def latency_table(self) -> Path:
        """The latency stage's table of the run's space (:mod:`nasplug.cost.table`)."""
        return self.root / self.LATENCY_TABLE

    @property
    def latency_measured(self) -> Path:
        """``latency.measure: direct``: the latency of each arch measured so far (:mod:`nasplug.cost.direct`)."""
        return self.root / self.LATENCY_MEASURED

    def retrain_summary(self, name: str) -> Path:
        """Mean and standard deviation of a model's runs over ``retrain.seeds``."""
        return self.retrain(name) / "summary.json"

    # ------------------------------------------------------------------ plugins
    def glue(self, model: str | None = None) -> Path:
        """The GLUE stage's folder; with ``model``, that model's results (``<TASK>.json``,
        ``scores.json``, ``submission/``)."""
        folder = self.root / self.GLUE
        return folder if model is None else folder / model

    def glue_submission(self, model: str) -> Path:
        """The GLUE server's submission files of a model's test predictions."""
        return self.glue(model) / "submission"

    def glue_scores(self, model: str) -> Path:
        """A model's GLUE score under each averaging convention."""
        return self.glue(model) / "scores.json"

    @property
    def tokenizer(self) -> Path:
        """The text tasks' tokenizer of this run (written when the task prepares its data)."""
        return self.root / "tokenizer"

    # ------------------------------------------------------------------ experiment tracking
    @property
    def tracking(self) -> Path:
        """``tracking.json``: the MLflow run and how much of each file was sent (nasplug.tracking)."""
        return self.root / "tracking.json"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files (``tracking.tensorboard_dir`` by default)."""
        return self.root / "tensorboard"

    @property
    def mlflow_store(self) -> Path:
        """The local MLflow store (``tracking.mlflow_tracking_uri`` by default: ``sqlite:///`` this)."""
        return self.root / "mlflow.db"

    # ------------------------------------------------------------------ commands on a run
    @property
    def rank_corr(self) -> Path:
        """``nasplug rank-corr``'s default output folder."""
        return self.root / "rank_corr"

    @property
    def study(self) -> Path:
        """``nasplug study``'s folder: its table, tests and plot (``study.json/md/png``)."""
        return self.root / "study"

    def study_search(self, row: str) -> Path:
        """The search of a study's search row (``trials.jsonl``, ``best.json``)."""
        return self.study / "searches" / row

    def study_model(self, row: str, index: int, arch_slug: str, seed: int) -> Path:
        """One training run of a study: row, the row's ``index``-th arch, seed."""
        return self.study / "models" / row / f"{index}-{arch_slug}" / f"seed-{seed}"

    # ------------------------------------------------------------------ validated readers
    def has_run(self, outputs: tuple[str, ...] = ()) -> bool:
        """Whether a run has started here: any of :data:`MARKERS` or of ``outputs`` (what the
        registered stages write) exists."""
        return self.root.is_dir() and any((self.root / m).exists() for m in (*self.MARKERS, *outputs))

    def read_info(self) -> dict[str, Any] | None:
        """``run.json`` (how and where the run started), None when there is none."""
        return read_json(self.info)

    def read_stage(self, stage: str) -> dict[str, Any] | None:
        """A finished stage's record (``stage``, ``wall_s``, ``summary``), None when not finished."""
        return read_json(self.stage_file(stage))

    def read_top(self) -> list[dict[str, Any]]:
        """``top.json``: the best archs of the search, best first ([] when there is none)."""
        top = read_json(self.top, list, "run the search stage again (delete it, then --resume)")
        if top is None:
            return []
        for entry in top:
            if not isinstance(entry, dict) or not isinstance(entry.get("arch"), dict):
                raise NasplugError(f"{self.top}: an entry has no 'arch' mapping; delete it and rerun the search stage "
                                   "(--resume replays the search log)")
        return top

    def read_pareto(self) -> dict[str, Any] | None:
        """``pareto.json``: the search's front (None when the search had one objective or has
        not finished); its ``front`` entries each hold an ``arch`` mapping and ``values``."""
        data = read_json(self.pareto, dict, "delete it and rerun the search stage (--resume replays the log)")
        if data is None:
            return None
        front = data.get("front")
        if not isinstance(front, list) or not all(
                isinstance(e, dict) and isinstance(e.get("arch"), dict) and isinstance(e.get("values"), dict)
                for e in front):
            raise NasplugError(f"{self.pareto}: 'front' is not a list of entries with 'arch' and 'values'; delete it "
                               "and rerun the search stage (--resume replays the search log)")
        return data

    def read_recipe(self, hint: str) -> dict[str, Any] | None:
        """The stored ``recipe.yaml`` as a mapping (not validated: a recipe of an older version
        is migrated by whoever validates it), None when there is none. ``hint``: what to do when
        it is not a mapping."""
        from nasplug.yamlio import safe_load_recipe

        if not self.recipe.exists():
            return None
        self.use_plugins()
        raw = safe_load_recipe(self.recipe)
        if not isinstance(raw, dict):
            raise NasplugError(f"{self.recipe}: not a recipe (a mapping of keys); {hint}")
        return raw

    def use_plugins(self) -> None:
        """Make the modules of the run's plugins importable again: its recipe's folder (``run.json``)."""
        from nasplug.registry import add_import_dir

        info = self.read_info()
        folder = info.get("recipe_dir") if isinstance(info, dict) else None
        if isinstance(folder, str) and Path(folder).is_dir():
            add_import_dir(folder)


class ComparisonLayout:
    """The paths of a ``nasplug compare`` output folder::

        compare-config.json            the settings (and the fingerprint a resume must match)
        cache.jsonl                    every evaluation, shared by all runs
        runs/<strategy>/seed<k>/       one search: trials.jsonl, run.json (written when it returned)
        comparison.json  comparison.md  anytime.png
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.root = Path(out_dir)

    @property
    def config(self) -> Path:
        return self.root / "compare-config.json"

    @property
    def cache(self) -> Path:
        return self.root / "cache.jsonl"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, strategy_slug: str, seed: int) -> Path:
        return self.runs / strategy_slug / f"seed{seed}"

    def run_trials(self, strategy_slug: str, seed: int) -> Path:
        """The run's search log (the same format as a run directory's)."""
        return self.run(strategy_slug, seed) / RunLayout.TRIALS

    def run_marker(self, strategy_slug: str, seed: int) -> Path:
        """Written when the run's ``search()`` returned: how many trials it scored."""
        return self.run(strategy_slug, seed) / "run.json"

    @property
    def started(self) -> bool:
        """Whether a comparison has started here."""
        return self.config.is_file() or self.runs.is_dir() or self.cache.is_file()

    def output(self, suffix: str) -> Path:
        """``comparison.json`` / ``comparison.md``."""
        return self.root / f"comparison.{suffix}"

    @property
    def anytime_plot(self) -> Path:
        return self.root / "anytime.png"


class RankCorrLayout:
    """The paths of a ``nasplug rank-corr`` output folder and of its models folder (``--models``,
    by default the output folder itself)::

        rank_corr.json / .md / .png      the supernet against standalone training, the noise ceiling
        predictors.json / .md            every predictor against the same standalone archs
        budget.json / .md / .png         tau at each kept supernet snapshot (--checkpoints)
        eval_cost.json / .md / .png      tau against held-out batches, precision, recalibration
        scores/<predictor>.json          supernet scores (per held-out batch) and the settings they used

        models folder:
        standalone/<arch id>/steps-<S>/seed-<k>/   one standalone training: arch.json, model.safetensors,
                                                   score.json (per held-out batch, with its settings)
        predictors/<predictor>.json      zero-cost and analytic scores and the settings they used

    An arch id is the first 16 hex digits of the SHA-256 of the arch's canonical key, so a model
    is found again whichever draw (uniform, stratified, a larger N) picks its arch.
    """

    def __init__(self, out_dir: str | Path, models_dir: str | Path | None = None) -> None:
        self.root = Path(out_dir)
        self.models = Path(models_dir) if models_dir is not None else self.root

    def output(self, name: str, suffix: str) -> Path:
        """``rank_corr``, ``predictors``, ``budget`` or ``eval_cost`` with ``suffix`` json/md/png."""
        return self.root / f"{name}.{suffix}"

    def supernet_scores(self, slug: str) -> Path:
        return self.root / "scores" / f"{slug}.json"

    def predictor_scores(self, slug: str) -> Path:
        return self.models / "predictors" / f"{slug}.json"

    @staticmethod
    def arch_id(key: str) -> str:
        """The folder name of an arch (its canonical key, :func:`nasplug.arch.arch_key`)."""
        import hashlib

        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def standalone(self, key: str, steps: int, seed: int) -> Path:
        """The training folder of one arch (canonical key), for ``steps`` steps and seed ``seed``."""
        return self.models / "standalone" / self.arch_id(key) / f"steps-{steps}" / f"seed-{seed}"

    def has_models(self) -> bool:
        """Whether standalone models were trained here already."""
        return (self.models / "standalone").is_dir() and any((self.models / "standalone").iterdir())
