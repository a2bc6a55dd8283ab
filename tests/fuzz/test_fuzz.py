"""Issue 15's fuzz suite: every bad input gives one clear line and exit status 2, never a
traceback or a hang, and never changes a run directory.

``test_cli_case`` runs every case of :mod:`fuzzcases` in-process (``nasplug.cli.main``),
``test_cli_subprocess`` a seeded sample of 20 through ``python -m nasplug``, so the entry
point itself (exit status, what reaches the terminal) is proven too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cases_base import FOLDER
from conftest import copy_base
from fuzzcases import CASES, TINY_RECIPE, Case, heavy, subprocess_sample
from fuzzkit import Outcome, assert_refused, changes, fingerprint, run_inprocess, run_subprocess

SAMPLE = subprocess_sample(CASES)
#: A subprocess starts a fresh interpreter (torch, datasets; for LV-BERT transformers too):
#: seconds of imports, many more on a loaded machine; a hang still ends here.
SUBPROCESS_TIMEOUT_S = 90


@dataclass
class Prepared:
    """A case made ready: its folder, placeholders, environment and fingerprints."""

    case: Case
    folder: Path
    cwd: Path
    values: dict[str, str]
    env: dict[str, str]
    argv: list[str]
    names: str
    run_before: dict[str, str] = field(default_factory=dict)
    case_before: dict[str, str] = field(default_factory=dict)
    originals: dict[Path, bytes] = field(default_factory=dict)

    @property
    def run(self) -> Path:
        return Path(self.values["@RUN@"])


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def fill_regex(pattern: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        pattern = pattern.replace(key, re.escape(value))
    return pattern


def _case_files(folder: Path) -> dict[str, str]:
    """The case folder's fingerprint, without the run directory (checked on its own)."""
    return {k: v for k, v in fingerprint(folder).items() if not (k == "run/" or k.startswith("run/"))}


def prepare(case: Case, request: pytest.FixtureRequest, folder: Path, base_env: dict[str, str]) -> Prepared:
    """Write the case's files, copy and damage its run directory, fingerprint both."""
    if case.data or (case.base or "").startswith("tiny"):
        base_env = {**base_env, **request.getfixturevalue("tiny_env")}  # skips without the shared data
    cwd = folder / "cwd" / "a" / "b"
    cwd.mkdir(parents=True, exist_ok=True)
    values = {"@CASE@": str(folder), "@RUN@": str(folder / "run"), "@TOY@": str(request.getfixturevalue("toy_recipe")),
              "@TINY@": str(TINY_RECIPE), "@MARKER@": str(folder / "MARKER"),
              "@CWD@": str(cwd)}
    for rel, content in case.files:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(fill(content, values).encode() if isinstance(content, str) else content)
    for rel in case.readonly:
        path = folder / rel
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o555)
    prep = Prepared(case, folder, cwd, values, {**base_env, **{k: fill(v, values) for k, v in case.env}},
                    [fill(a, values) for a in case.argv], fill_regex(case.names, values))
    if case.base is not None:
        copy_base(request, case.base, prep.run)
        for pattern, transform in case.damage:
            targets = sorted(prep.run.glob(pattern))
            assert targets, f"case {case.cid}: nothing matches {pattern} in the base run {case.base}"
            for path in targets:
                prep.originals[path] = path.read_bytes()
                if transform is None:
                    path.unlink()
                elif transform == FOLDER:
                    path.unlink()
                    path.mkdir()
                elif isinstance(transform, bytes):
                    path.write_bytes(transform)
                else:
                    path.write_bytes(transform(prep.originals[path]))
        prep.run_before = fingerprint(prep.run)
    prep.case_before = _case_files(folder)
    return prep


def check(prep: Prepared, outcome: Outcome) -> None:
    """The case's contract (see :class:`fuzzcases.Case`)."""
    case = prep.case
    assert not outcome.hung, f"[{case.cid}] {outcome.describe()}"
    assert "Traceback" not in outcome.stderr, f"[{case.cid}] traceback: {outcome.describe()}"
    marker = Path(prep.values["@MARKER@"])
    assert not marker.exists(), f"[{case.cid}] the marker file was created: a recipe's code ran"
    assert not (prep.cwd / "PICKLE-MARKER").exists(), f"[{case.cid}] a pickled command ran"
    contract = case.contract
    if contract == "repaired-or-refused":
        contract = "refused" if outcome.rc == 2 else "repaired"
    if contract == "refused":
        assert_refused(outcome, prep.names, case.cid)
        if case.base is not None:
            diff = changes(prep.run_before, fingerprint(prep.run))
            assert not diff, f"[{case.cid}] refused, but the run directory changed: {diff[:8]}"
        if case.keep_case_dir:
            diff = changes(prep.case_before, _case_files(prep.folder))
            assert not diff, f"[{case.cid}] refused, but files were written: {diff[:8]}"
    elif contract == "repaired":
        assert outcome.rc == 0, f"[{case.cid}] expected the run to complete: {outcome.describe()}"
        for path, original in prep.originals.items():
            assert path.read_bytes() == original, \
                f"[{case.cid}] {path.relative_to(prep.run)} differs from the uninterrupted run's"
    elif contract == "read-only":
        assert outcome.rc == 0, f"[{case.cid}] {outcome.describe()}"
        diff = changes(prep.run_before, fingerprint(prep.run))
        assert not diff, f"[{case.cid}] a read-only command changed the run directory: {diff[:8]}"
    elif contract == "glue-missing":
        assert outcome.rc == 0, f"[{case.cid}] {outcome.describe()}"
        for task in ("RTE", "STS-B"):
            record = json.loads((prep.run / "glue" / "found" / f"{task}.json").read_text())
            assert record.get("status") == "missing", f"[{case.cid}] {task}: {record.get('status')!r}"
    else:  # pragma: no cover - a typo in a case
        raise AssertionError(f"unknown contract {contract!r}")


def _skip_unusable(case: Case) -> None:
    if case.readonly and any("/ro/" in a for a in case.argv) and os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.cid)
def test_cli_case(case: Case, request: pytest.FixtureRequest, tmp_path: Path, cache_dir: Path,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One bad input, in-process: see the module docstring and :class:`fuzzcases.Case`."""
    _skip_unusable(case)
    base_env = {"NASPLUG_CACHE": str(cache_dir), "NASPLUG_DATA_DIR": str(tmp_path / "no-data"), "OMP_NUM_THREADS": "1"}
    prep = prepare(case, request, tmp_path, base_env)
    for key, value in prep.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(prep.cwd)
    try:
        outcome = run_inprocess(prep.argv)
    finally:
        for rel in case.readonly:
            (tmp_path / rel).chmod(0o755)
    check(prep, outcome)


@pytest.fixture(scope="session", autouse=True)
def subprocess_outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                        cache_dir: Path) -> Iterator[dict[str, Future[tuple[Prepared, Outcome]] | str]]:
    """Every sampled case prepared at the start of the session, then run as ``python -m
    nasplug`` in the background, two at a time, while the in-process cases run."""
    root = tmp_path_factory.mktemp("fuzz-subprocess")
    results: dict[str, Future[tuple[Prepared, Outcome]] | str] = {}
    prepared: list[Prepared] = []
    selected = {item.callspec.params["case"].cid for item in request.session.items
                if getattr(item, "originalname", "") == "test_cli_subprocess"}
    for case in (c for c in SAMPLE if c.cid in selected):
        folder = root / case.cid
        folder.mkdir()
        base_env = {**os.environ, "NASPLUG_CACHE": str(cache_dir), "NASPLUG_DATA_DIR": str(folder / "no-data"),
                    "OMP_NUM_THREADS": "1"}
        try:
            prepared.append(prepare(case, request, folder, base_env))
        except pytest.skip.Exception as exc:
            results[case.cid] = str(exc)

    def launch(prep: Prepared) -> tuple[Prepared, Outcome]:
        return prep, run_subprocess(prep.argv, env=prep.env, cwd=prep.cwd, timeout=SUBPROCESS_TIMEOUT_S)

    pool = ThreadPoolExecutor(max_workers=2)
    for prep in prepared:
        results[prep.case.cid] = pool.submit(launch, prep)
    yield results
    pool.shutdown(wait=True)
    for prep in prepared:
        for rel in prep.case.readonly:
            (prep.folder / rel).chmod(0o755)


@pytest.mark.parametrize("case", SAMPLE, ids=lambda c: c.cid)
def test_cli_subprocess(case: Case, subprocess_outcomes: dict[str, Future[tuple[Prepared, Outcome]] | str]) -> None:
    """The same contract through the real entry point, ``python -m nasplug``."""
    _skip_unusable(case)
    result = subprocess_outcomes[case.cid]
    if isinstance(result, str):
        pytest.skip(result)
    prep, outcome = result.result()
    check(prep, outcome)


def test_the_suite_covers_every_category() -> None:
    """At least 250 cases, and every category of the issue's list has cases."""
    families = {c.family for c in CASES}
    wanted = {"recipe-garbage", "recipe-path", "recipe-dup-key", "recipe-alias", "recipe-deep", "recipe-tag",
              "recipe-unknown-key", "recipe-wrong-type", "recipe-bool", "recipe-huge", "recipe-huge-size",
              "recipe-nonpositive", "recipe-unknown-name", "recipe-code", "path-name", "path-baseline", "arch-toy",
              "arch-tiny", "arch-baseline", "set", "stages", "out-run", "out-compare", "out-rankcorr", "corpus", "glue",
              "trials-resume", "trials-show", "trials-torn", "trials-blank", "ckpt-supernet", "ckpt-retrain",
              "ckpt-weights", "stagefile", "top", "result", "runrecipe-show", "runrecipe-resume", "runrecipe-rankcorr",
              "runjson", "compare-damaged", "compare-torn", "compare-changed", "compare-args", "rankcorr",
              "rankcorr-weights", "rankcorr-flags", "rankcorr-cache", "resume-changed-toy", "resume-changed-tiny",
              "noresume", "recipe-snapshots", "recipe-rankcorr"}
    assert wanted <= families, sorted(wanted - families)
    assert len(CASES) >= 250
    assert len(SAMPLE) == 20 and len({c.family for c in SAMPLE}) == 20
    assert sum(heavy(c) for c in SAMPLE) == 3
    assert shutil.which(sys.executable)
