"""GLUE server submission files: names, header, row counts, label strings, zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from nasplug.errors import NasplugError
from nasplug.glue import SUBMISSION_FILES, TEST_SIZES, load_task, write_submission

NAMES = ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE", "WNLI", "AX"]
ALLOWED = {
    "CoLA": {"0", "1"}, "SST-2": {"0", "1"}, "MRPC": {"0", "1"}, "QQP": {"0", "1"},
    "WNLI": {"0", "1"},
    "MNLI-m": {"entailment", "neutral", "contradiction"},
    "MNLI-mm": {"entailment", "neutral", "contradiction"},
    "AX": {"entailment", "neutral", "contradiction"},
    "QNLI": {"entailment", "not_entailment"}, "RTE": {"entailment", "not_entailment"},
}


def _fake(name: str) -> list:
    n = TEST_SIZES[name]
    if name == "STS-B":
        return [-1.0, 6.0] + [i % 51 / 10 for i in range(n - 2)]
    k = 3 if name in ("MNLI-m", "MNLI-mm", "AX") else 2
    return [i % k for i in range(n)]


def test_test_sizes_match_the_local_test_files(shared_data: Path) -> None:
    for name in ("CoLA", "SST-2", "MRPC", "STS-B", "QNLI", "RTE", "WNLI", "AX"):
        assert len(load_task(name, shared_data / "glue", ["test"]).splits["test"]) == TEST_SIZES[name]
    assert TEST_SIZES["MNLI-m"] + TEST_SIZES["MNLI-mm"] == 19643  # jiant's MNLI test check
    assert TEST_SIZES["QQP"] == 390965


def test_full_submission(tmp_path: Path) -> None:
    assert list(SUBMISSION_FILES) == NAMES
    report = write_submission({name: _fake(name) for name in NAMES}, tmp_path / "sub")
    assert report["status"] == "ok" and report["missing"] == []
    assert sorted(p.name for p in (tmp_path / "sub").glob("*.tsv")) == sorted(f"{n}.tsv" for n in NAMES)
    for name in NAMES:
        lines = (tmp_path / "sub" / f"{name}.tsv").read_text().split("\n")
        assert lines[0] == "index\tprediction"
        assert lines[-1] == "" and len(lines) - 2 == TEST_SIZES[name] == report["files"][name]["rows"]
        index, preds = zip(*(line.split("\t") for line in lines[1:-1]), strict=True)
        assert list(index) == [str(i) for i in range(TEST_SIZES[name])]
        if name == "STS-B":
            assert preds[:3] == ("0.000", "5.000", "0.000") and preds[5] == "0.300"
        else:
            assert set(preds) == ALLOWED[name]
    mnli = (tmp_path / "sub" / "MNLI-m.tsv").read_text().split("\n")
    assert mnli[1:4] == ["0\tentailment", "1\tneutral", "2\tcontradiction"]
    assert (tmp_path / "sub" / "RTE.tsv").read_text().split("\n")[1:3] == ["0\tentailment",
                                                                          "1\tnot_entailment"]
    with zipfile.ZipFile(report["zip"]) as zf:
        assert sorted(zf.namelist()) == sorted(f"{n}.tsv" for n in NAMES)
        assert zf.read("WNLI.tsv").decode() == (tmp_path / "sub" / "WNLI.tsv").read_text()
    assert not list((tmp_path / "sub").glob(".*tmp"))  # atomic writes left no temp files


def test_partial_submission_reports_missing(tmp_path: Path) -> None:
    preds = {"rte": {"index": [1, 0], "prediction": ["not_entailment", 0]},
             "STS-B": {0: 2.5, 1: 4.25}}
    report = write_submission(preds, tmp_path, check_counts=False, zip_name=None)
    assert report["status"] == "partial" and report["zip"] is None
    assert report["missing"] == [n for n in NAMES if n not in ("RTE", "STS-B")]
    assert (tmp_path / "RTE.tsv").read_text() == "index\tprediction\n1\tnot_entailment\n0\tentailment\n"
    assert (tmp_path / "STS-B.tsv").read_text() == "index\tprediction\n0\t2.500\n1\t4.250\n"


def test_submission_errors(tmp_path: Path) -> None:
    with pytest.raises(NasplugError, match="RTE: 2 predictions, the test set has 3000 rows"):
        write_submission({"RTE": [0, 1]}, tmp_path)
    with pytest.raises(NasplugError, match=r"class id 3 outside 0..2"):
        write_submission({"MNLI-m": [3]}, tmp_path, check_counts=False)
    with pytest.raises(NasplugError, match="label 'yes' not in"):
        write_submission({"QNLI": ["yes"]}, tmp_path, check_counts=False)
    with pytest.raises(NasplugError, match="ambiguous"):
        write_submission({"mnli": [0]}, tmp_path, check_counts=False)
    with pytest.raises(NasplugError, match="duplicate"):
        write_submission({"CoLA": {"index": [0, 0], "prediction": [1, 1]}}, tmp_path,
                         check_counts=False)
    assert not list(tmp_path.iterdir())  # nothing half-written
