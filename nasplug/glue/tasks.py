"""The GLUE task table: files, columns, labels, metrics and fine-tuning epochs per task.

Layouts are those of the standard ``download_glue_data.py`` folder (``<root>/<folder>/<file>``)
and of the Hugging Face ``nyu-mll/glue`` configs. Split names follow the hub everywhere:
``train``, ``validation``, ``test``; MNLI has ``validation_matched``, ``validation_mismatched``,
``test_matched`` and ``test_mismatched``; AX has only ``test`` (predicted with the MNLI model).

Label lists are in the order of the hub's ``ClassLabel`` features, which is also the order of
the integer labels in the TSV files (CoLA, SST-2, MRPC, QQP, WNLI store ``0``/``1``; MNLI, QNLI
and RTE store the label names). The GLUE server takes the label *names* for MNLI, AX, QNLI and
RTE, and the integers for the others (``submit_names``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasplug.errors import NasplugError

__all__ = [
    "TASKS",
    "TASK_NAMES",
    "BENCHMARK_TASKS",
    "GlueTask",
    "SplitLayout",
    "TEST_SIZES",
    "get_task",
]


@dataclass(frozen=True)
class SplitLayout:
    """Where one split lives in the TSV folder and which columns it uses.

    Columns are header names, or 0-based positions when ``header`` is False (CoLA train/dev).
    ``index`` is None where the file has no index column (the row number is used instead);
    ``label`` is None for unlabelled test files.
    """

    file: str
    text: tuple[str | int, ...]
    label: str | int | None = None
    index: str | None = None
    header: bool = True


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task (AX included).

    Attributes:
        name: canonical name, as in the GLUE submission file names (MNLI is split there).
        folder: folder name in the standard TSV layout.
        hub_config: config name of ``nyu-mll/glue``.
        hub_text: the hub's text column names, mapped to ``sentence1``/``sentence2``.
        splits: layout of every split this task has.
        labels: label names in id order (empty for the regression task STS-B).
        metrics: metric keys :func:`nasplug.glue.compute_metrics` returns.
        primary: the metric of the ELECTRA dev table (used to pick the median seed).
        epochs: fine-tuning epochs in the ELECTRA/LV-BERT recipe (10 for RTE and STS-B).
        symmetric: pair task the official code trains on both sentence orders (ELECTRA's
            ``double_unordered``: MRPC and STS-B; not QQP).
        label_scale: regression targets are ``label / label_scale`` in training (STS-B: the
            official code trains on score / 5); predictions are scaled back.
        submit_names: the GLUE server wants label names rather than ids.
        eval_splits: labelled splits scored after fine-tuning, with the metric-key suffix.
        test_splits: unlabelled splits predicted for the server, with the submission name.
        train_task: the task whose model predicts this one (AX -> MNLI), else None.
    """

    name: str
    folder: str
    hub_config: str
    hub_text: tuple[str, ...]
    splits: dict[str, SplitLayout]
    labels: tuple[str, ...]
    metrics: tuple[str, ...]
    primary: str
    epochs: int = 3
    symmetric: bool = False
    label_scale: float = 1.0
    submit_names: bool = False
    eval_splits: dict[str, str] = field(default_factory=lambda: {"validation": ""})
    test_splits: dict[str, str] = field(default_factory=dict)
    train_task: str | None = None

    @property
    def is_regression(self) -> bool:
        """True for STS-B: one output, MSE loss, Pearson/Spearman."""
        return not self.labels

    @property
    def num_labels(self) -> int:
        """Number of model outputs (1 for regression)."""
        return len(self.labels) or 1

    @property
    def is_pair(self) -> bool:
        """True when examples have two texts (``sentence1`` and ``sentence2``)."""
        return len(self.hub_text) == 2


_PAIR = ("sentence1", "sentence2")
_NLI3 = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")
_MNLI_PARSE_TEXT = ("sentence1", "sentence2")


def _std(text: tuple[str, ...], label: str | None, test_text: tuple[str, ...] | None = None,
         train_index: str | None = "index", test_index: str = "index") -> dict[str, SplitLayout]:
    """Train/dev/test layout shared by most tasks."""
    return {
        "train": SplitLayout("train.tsv", text, label, train_index),
        "validation": SplitLayout("dev.tsv", text, label, train_index),
        "test": SplitLayout("test.tsv", test_text or text, None, test_index),
    }


TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in [
        GlueTask(
            "CoLA", "CoLA", "cola", ("sentence",),
            {
                # train/dev: no header; columns source, label, original label, sentence.
                "train": SplitLayout("train.tsv", (3,), 1, None, header=False),
                "validation": SplitLayout("dev.tsv", (3,), 1, None, header=False),
                "test": SplitLayout("test.tsv", ("sentence",), None, "index"),
            },
            ("unacceptable", "acceptable"), ("mcc",), "mcc",
            test_splits={"test": "CoLA"},
        ),
        GlueTask(
            "SST-2", "SST-2", "sst2", ("sentence",),
            _std(("sentence",), "label", train_index=None),
            ("negative", "positive"), ("accuracy",), "accuracy",
            test_splits={"test": "SST-2"},
        ),
        GlueTask(
            "MRPC", "MRPC", "mrpc", _PAIR,
            # train/dev start with a UTF-8 BOM (read as utf-8-sig).
            _std(("#1 String", "#2 String"), "Quality", train_index=None),
            ("not_equivalent", "equivalent"), ("f1", "accuracy"), "accuracy",
            symmetric=True, test_splits={"test": "MRPC"},
        ),
        GlueTask(
            "STS-B", "STS-B", "stsb", _PAIR,
            _std(_PAIR, "score"),
            (), ("pearson", "spearman"), "spearman", epochs=10,
            symmetric=True, label_scale=5.0, test_splits={"test": "STS-B"},
        ),
        GlueTask(
            "QQP", "QQP", "qqp", ("question1", "question2"),
            # train/dev: id qid1 qid2 question1 question2 is_duplicate; test: id question1 question2
            _std(("question1", "question2"), "is_duplicate", train_index="id", test_index="id"),
            ("not_duplicate", "duplicate"), ("f1", "accuracy"), "accuracy",
            test_splits={"test": "QQP"},  # one order: the official code does not double QQP
        ),
        GlueTask(
            "MNLI", "MNLI", "mnli", ("premise", "hypothesis"),
            {
                # index promptID pairID genre sentence{1,2}_binary_parse sentence{1,2}_parse
                # sentence1 sentence2 [label1 (label2..label5 on dev)] gold_label
                "train": SplitLayout("train.tsv", _MNLI_PARSE_TEXT, "gold_label", "index"),
                "validation_matched": SplitLayout("dev_matched.tsv", _MNLI_PARSE_TEXT, "gold_label", "index"),
                "validation_mismatched": SplitLayout("dev_mismatched.tsv", _MNLI_PARSE_TEXT, "gold_label", "index"),
                "test_matched": SplitLayout("test_matched.tsv", _MNLI_PARSE_TEXT, None, "index"),
                "test_mismatched": SplitLayout("test_mismatched.tsv", _MNLI_PARSE_TEXT, None, "index"),
            },
            _NLI3, ("accuracy",), "accuracy_m", submit_names=True,
            eval_splits={"validation_matched": "_m", "validation_mismatched": "_mm"},
            test_splits={"test_matched": "MNLI-m", "test_mismatched": "MNLI-mm"},
        ),
        GlueTask(
            "QNLI", "QNLI", "qnli", ("question", "sentence"),
            _std(("question", "sentence"), "label"),
            _NLI2, ("accuracy",), "accuracy", submit_names=True,
            test_splits={"test": "QNLI"},
        ),
        GlueTask(
            "RTE", "RTE", "rte", _PAIR, _std(_PAIR, "label"),
            _NLI2, ("accuracy",), "accuracy", epochs=10, submit_names=True,
            test_splits={"test": "RTE"},
        ),
        GlueTask(
            "WNLI", "WNLI", "wnli", _PAIR, _std(_PAIR, "label"),
            ("not_entailment", "entailment"), ("accuracy",), "accuracy",
            test_splits={"test": "WNLI"},
        ),
        GlueTask(
            # The diagnostic set: test only, scored by the server with R3 (3-class Matthews
            # correlation); predicted with the MNLI model.
            "AX", "diagnostic", "ax", ("premise", "hypothesis"),
            {"test": SplitLayout("diagnostic.tsv", _PAIR, None, "index")},
            _NLI3, ("mcc",), "mcc", submit_names=True,
            eval_splits={}, test_splits={"test": "AX"}, train_task="MNLI",
        ),
    ]
}

TASK_NAMES: tuple[str, ...] = tuple(TASKS)
"""All ten names: the nine benchmark tasks and AX."""

BENCHMARK_TASKS: tuple[str, ...] = tuple(n for n in TASKS if n != "AX")
"""The nine tasks of the GLUE score (AX is diagnostic only)."""

TEST_SIZES: dict[str, int] = {
    "CoLA": 1063, "SST-2": 1821, "MRPC": 1725, "STS-B": 1379, "QQP": 390965,
    "MNLI-m": 9796, "MNLI-mm": 9847, "QNLI": 5463, "RTE": 3000, "WNLI": 146, "AX": 1104,
}
"""Rows of each test file, keyed by submission name (what the GLUE server expects)."""


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_ALIASES: dict[str, str] = {_key(n): n for n in TASKS}
_ALIASES.update({_key(t.hub_config): n for n, t in TASKS.items()})
_ALIASES.update({"sst": "SST-2", "sts": "STS-B", "diagnostic": "AX"})


def get_task(name: str) -> GlueTask:
    """Look a task up by any usual spelling (``"SST-2"``, ``"sst2"``, ``"stsb"``, ``"ax"``).

    Raises:
        NasplugError: the name is not a GLUE task; the message lists the allowed names.
    """
    canonical = _ALIASES.get(_key(str(name)))
    if canonical is None:
        raise NasplugError(f"glue task: unknown task {name!r}; allowed: {', '.join(TASK_NAMES)}")
    return TASKS[canonical]
