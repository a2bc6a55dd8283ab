"""The GLUE task table and loading: the local TSV folder, tiny QQP/MNLI files in the real
layouts, the hub path (with load_dataset stubbed), missing and malformed data."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from nasplug.errors import NasplugError
from nasplug.glue import TASKS, get_task, load_glue, load_task

# /work/shared/data/README.md: train/dev/test rows (QNLI train absent; AX test only).
ROWS = {
    "CoLA": {"train": 8551, "validation": 1043, "test": 1063},
    "SST-2": {"train": 67349, "validation": 872, "test": 1821},
    "MRPC": {"train": 3668, "validation": 408, "test": 1725},
    "STS-B": {"train": 5749, "validation": 1500, "test": 1379},
    "RTE": {"train": 2490, "validation": 277, "test": 3000},
    "WNLI": {"train": 635, "validation": 71, "test": 146},
    "QNLI": {"validation": 5463, "test": 5463},
    "AX": {"test": 1104},
}


@pytest.fixture(scope="module")
def local(shared_data: Path) -> dict:
    return load_glue(shared_data / "glue")


def test_task_table() -> None:
    assert list(TASKS) == ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE",
                           "WNLI", "AX"]
    assert {n: t.epochs for n, t in TASKS.items() if t.epochs != 3} == {"STS-B": 10, "RTE": 10}
    assert [n for n, t in TASKS.items() if t.symmetric] == ["MRPC", "STS-B"]  # official: not QQP
    assert [n for n, t in TASKS.items() if t.is_regression] == ["STS-B"]
    assert TASKS["MNLI"].labels == ("entailment", "neutral", "contradiction")
    assert TASKS["AX"].labels == TASKS["MNLI"].labels and TASKS["AX"].train_task == "MNLI"
    assert TASKS["WNLI"].labels == ("not_entailment", "entailment")
    assert get_task("sst2") is get_task("SST-2") is get_task("sst")
    assert get_task("stsb").name == "STS-B" and get_task("diagnostic").name == "AX"
    with pytest.raises(NasplugError, match="allowed: CoLA, SST-2"):
        get_task("squad")


@pytest.mark.parametrize("task", list(ROWS))
def test_local_row_counts_and_labels(local: dict, task: str) -> None:
    data = local[task]
    assert {s: len(ds) for s, ds in data.splits.items()} == ROWS[task]
    spec = TASKS[task]
    for split, ds in data.splits.items():
        assert ds.column_names == (["idx", "sentence1", "sentence2", "label"] if spec.is_pair
                                   else ["idx", "sentence1", "label"])
        labels = ds["label"]
        if split == "test":
            assert set(labels) == {-1}
            assert ds["idx"] == list(range(len(ds)))  # the index column, in file order
        elif spec.is_regression:
            assert min(labels) == 0.0 and max(labels) == 5.0
        else:
            assert set(labels) == set(range(spec.num_labels))
        assert all(isinstance(t, str) and t for t in ds["sentence1"][:50])


def test_local_details(local: dict) -> None:
    # counts from glue/PROVENANCE.md; CoLA has no header, MRPC starts with a BOM
    assert local["CoLA"].splits["train"]["label"].count(1) == 6023
    assert local["SST-2"].splits["train"]["label"].count(0) == 29780
    assert local["MRPC"].splits["train"]["label"].count(1) == 2474
    assert local["QNLI"].splits["validation"]["label"].count(0) == 2702  # entailment
    assert local["RTE"].splits["train"]["label"].count(0) == 1249  # entailment
    assert local["CoLA"].splits["validation"][0]["sentence1"] == (
        "The sailors rode the breeze clear of the rocks.")
    # quotes are plain text (no CSV quoting): MRPC rows keep their bare " characters
    assert '" the witness "' in local["MRPC"].splits["train"][0]["sentence1"]
    assert local["STS-B"].splits["validation"][0]["label"] == 5.0


def test_missing_tasks_and_splits_are_reported(local: dict) -> None:
    assert local["QNLI"].status == "partial"
    assert "QNLI/train.tsv" in local["QNLI"].missing["train"]
    for task in ("QQP", "MNLI"):
        assert local[task].status == "missing" and not local[task].splits
        assert set(local[task].missing) == set(TASKS[task].splits)
    with pytest.raises(NasplugError, match="split 'train' is missing.*file not found"):
        local["QNLI"].require("train")
    assert local["RTE"].summary()["rows"] == ROWS["RTE"]


QQP_TRAIN = (
    "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    '133273\t213221\t213222\tHow is the life of a math student?\tWhich level of prepration '
    "is enough for the exam jlpt5?\t0\n"
    "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your "
    "horniness?\t1\n"
    '360472\t364011\t490273\tWhat causes stool color to change to "yellow"?\tWhat can cause '
    "stool to come out as little balls?\t0\n"
)
QQP_TEST = ("id\tquestion1\tquestion2\n0\tWhy am I mentally very lonely?\tHow can I stop "
            "being lonely?\n1\tWhich is the best Python book?\tWhat book teaches Python?\n")
_MNLI_COLS = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
              "sentence1_parse\tsentence2_parse\tsentence1\tsentence2")


def _mnli_row(i: int, s1: str, s2: str, labels: str = "") -> str:
    parses = f"( ( {s1} ) )\t( {s2} )\t(ROOT (S {s1}))\t(ROOT (S {s2}))"
    return f"{i}\t{31193 + i}\t{31193 + i}n\tgovernment\t{parses}\t{s1}\t{s2}{labels}\n"


def _write_tiny_glue(root: Path) -> Path:
    (root / "QQP").mkdir(parents=True)
    (root / "QQP" / "train.tsv").write_text(QQP_TRAIN)
    (root / "QQP" / "dev.tsv").write_text(QQP_TRAIN)
    (root / "QQP" / "test.tsv").write_text(QQP_TEST)
    mnli = root / "MNLI"
    mnli.mkdir()
    pairs = [("The cat sat .", "A cat sat .", "entailment"),
             ("It rained all day .", "It was sunny .", "contradiction"),
             ("He read a book .", "He liked the book .", "neutral")]
    train = _MNLI_COLS + "\tlabel1\tgold_label\n" + "".join(
        _mnli_row(i, a, b, f"\t{lab}\t{lab}") for i, (a, b, lab) in enumerate(pairs))
    dev = _MNLI_COLS + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n" + "".join(
        _mnli_row(i, a, b, f"\t{lab}" * 6) for i, (a, b, lab) in enumerate(pairs))
    test = _MNLI_COLS + "\n" + "".join(_mnli_row(i, a, b) for i, (a, b, _) in enumerate(pairs))
    (mnli / "train.tsv").write_text(train)
    for name in ("dev_matched", "dev_mismatched"):
        (mnli / f"{name}.tsv").write_text(dev)
    for name in ("test_matched", "test_mismatched"):
        (mnli / f"{name}.tsv").write_text(test)
    return root


def test_qqp_and_mnli_real_layouts(tmp_path: Path) -> None:
    root = _write_tiny_glue(tmp_path)
    qqp = load_task("qqp", root)
    assert qqp.status == "ok"
    train = qqp.splits["train"]
    assert train["idx"] == [133273, 402555, 360472] and train["label"] == [0, 1, 0]
    assert train[2]["sentence1"] == 'What causes stool color to change to "yellow"?'
    assert qqp.splits["test"]["idx"] == [0, 1] and qqp.splits["test"]["label"] == [-1, -1]
    mnli = load_task("MNLI", root)
    assert mnli.status == "ok" and set(mnli.splits) == set(TASKS["MNLI"].splits)
    dev = mnli.splits["validation_mismatched"]
    assert dev["label"] == [0, 2, 1]  # entailment, contradiction, neutral
    assert dev[1]["sentence1"] == "It rained all day ." and dev[1]["sentence2"] == "It was sunny ."
    assert mnli.splits["test_matched"]["label"] == [-1, -1, -1]


def test_malformed_files_raise_naming_the_file(tmp_path: Path) -> None:
    root = tmp_path / "glue"
    (root / "RTE").mkdir(parents=True)
    bad_header = root / "RTE" / "train.tsv"
    bad_header.write_text("index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(NasplugError, match=r"RTE/train.tsv has no column\(s\) \['sentence1'"):
        load_task("RTE", root, ["train"])
    bad_rows = root / "RTE" / "dev.tsv"
    bad_rows.write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta b\n"
                        "2\ta\tb\tmaybe\n")
    with pytest.raises(NasplugError, match=r"RTE/dev.tsv is malformed: 2 of 3 rows.*line 3"):
        load_task("RTE", root, ["validation"])
    with pytest.raises(NasplugError, match="unknown split"):
        load_task("RTE", root, ["dev"])
    with pytest.raises(NasplugError, match="does not exist"):
        load_task("RTE", tmp_path / "nowhere")


# The nyu-mll/glue configs' own text columns (dataset card), in their order.
HUB_TEXT = {
    "cola": ["sentence"], "sst2": ["sentence"], "mrpc": ["sentence1", "sentence2"],
    "qqp": ["question1", "question2"], "stsb": ["sentence1", "sentence2"],
    "mnli": ["premise", "hypothesis"], "qnli": ["question", "sentence"],
    "rte": ["sentence1", "sentence2"], "wnli": ["sentence1", "sentence2"],
    "ax": ["premise", "hypothesis"],
}


@pytest.mark.parametrize("config", list(HUB_TEXT))
def test_hub_source_maps_columns(monkeypatch: pytest.MonkeyPatch, config: str) -> None:
    """Each config's columns come out as idx, sentence1[, sentence2], label."""
    spec = get_task(config)
    label = (datasets.Value("float32") if spec.is_regression
             else datasets.ClassLabel(names=list(spec.labels)))
    text = HUB_TEXT[config]
    feats = datasets.Features({**{c: datasets.Value("string") for c in text}, "label": label,
                               "idx": datasets.Value("int32")})
    split = datasets.Dataset.from_dict(
        {**{c: [f"{c} text"] for c in text}, "label": [1], "idx": [7]}, features=feats)
    first = next(iter(spec.splits))
    calls = []

    def fake_load(path: str, name: str) -> datasets.DatasetDict:
        calls.append((path, name))
        return datasets.DatasetDict({first: split})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    data = load_task(config, "hub")
    assert calls == [("nyu-mll/glue", config)]
    expected = {"idx": 7, "sentence1": f"{text[0]} text",
                **({"sentence2": f"{text[1]} text"} if spec.is_pair else {}), "label": 1}
    assert data.splits[first][0] == expected
    assert data.splits[first].column_names == list(expected)
    assert data.splits[first].features["label"] == label
    assert data.status == ("ok" if len(spec.splits) == 1 else "partial")
    for split_name in set(spec.splits) - {first}:
        assert f"no split {split_name!r}" in data.missing[split_name]


def test_hub_unreachable_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(path: str, name: str) -> None:
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    data = load_task("cola", "hub")
    assert data.status == "missing"
    assert all("hub nyu-mll/glue/cola unavailable" in r for r in data.missing.values())
