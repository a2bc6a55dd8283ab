"""The fuzz harness itself can fail: a hang, an abort, a traceback, a second stderr line, a
changed byte in a run directory and a created marker file are each caught."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from fuzzkit import Outcome, assert_refused, changes, fingerprint, run_inprocess


def _main_that(behaviour: str):
    def main(argv: list[str]) -> int:
        if behaviour == "hang":
            time.sleep(60)
        if behaviour == "abort":
            os.abort()
        if behaviour == "raise":
            raise KeyError("boom")
        if behaviour == "two-lines":
            print("WARNING something", file=sys.stderr)
        print(f"nasplug: error: {' '.join(argv)}", file=sys.stderr)
        return 2
    return main


@pytest.mark.parametrize("behaviour", ["hang", "abort", "raise", "two-lines"])
def test_the_runner_sees_what_a_case_did(behaviour: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import nasplug.cli

    monkeypatch.setattr(nasplug.cli, "main", _main_that(behaviour))  # the forked child imports the patched one
    outcome = run_inprocess(["field.x"], timeout=1)
    with pytest.raises(AssertionError):
        assert_refused(outcome, r"field\.x")
    if behaviour == "hang":
        assert outcome.hung and outcome.seconds < 5
    if behaviour == "abort":
        assert outcome.rc == -6 and "SIGABRT" in outcome.describe()
    if behaviour == "raise":
        assert outcome.rc == 1 and "KeyError: 'boom'" in outcome.describe()


def test_a_clean_refusal_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    import nasplug.cli

    monkeypatch.setattr(nasplug.cli, "main", _main_that("refuse"))
    outcome = run_inprocess(["field.x"], timeout=5)
    assert_refused(outcome, r"field\.x")
    with pytest.raises(AssertionError):
        assert_refused(outcome, r"other\.field")  # the line must name the field


@pytest.mark.parametrize("outcome", [
    Outcome(2, "", "nasplug: error: a\nnasplug: error: b\n", 0.1),
    Outcome(2, "", "error: field.x\n", 0.1),
    Outcome(1, "", "nasplug: error: field.x\n", 0.1),
    Outcome(None, "", "", 20.0),
    Outcome(2, "", "nasplug: error: field.x\nTraceback (most recent call last):\n", 0.1),
])
def test_assert_refused_rejects(outcome: Outcome) -> None:
    with pytest.raises(AssertionError):
        assert_refused(outcome, r"field\.x")


def test_fingerprints_see_one_changed_byte_and_new_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.json").write_bytes(b'{"x": 1}')
    before = fingerprint(tmp_path)
    assert not changes(before, fingerprint(tmp_path))
    (tmp_path / "a" / "f.json").write_bytes(b'{"x": 2}')
    (tmp_path / "new").mkdir()
    assert changes(before, fingerprint(tmp_path)) == ["changed a/f.json", "added new/"]


def test_the_marker_check_fails_when_the_marker_exists(tmp_path: Path) -> None:
    from fuzzcases import Case
    from test_fuzz import Prepared, check

    case = Case("self-test-0", ("-q",), r"x", marker=True)
    prep = Prepared(case, tmp_path, tmp_path, {"@MARKER@": str(tmp_path / "MARKER"), "@RUN@": str(tmp_path / "run")},
                    {}, [], r"x")
    (tmp_path / "MARKER").write_text("ran")
    with pytest.raises(AssertionError, match="marker"):
        check(prep, Outcome(2, "", "nasplug: error: x\n", 0.1))
