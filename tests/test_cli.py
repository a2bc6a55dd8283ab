"""The CLI: one-line errors with exit status 2, list/show, and resume after a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasplug.cli import main

GOOD = """\
name: t
seed: 0
space: {name: toy, slots: 6}
evaluator: {name: toy}
search:
  strategy: {name: evolution, population: 10, parents: 3, mutations: 4, crossovers: 4}
  budget: 30
  batch_size: 10
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


def one_line_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


BAD_RECIPES = {
    "unknown key": (GOOD + "bogus: 1\n", "bogus: unknown key"),
    "wrong type": (GOOD.replace("seed: 0", "seed: lots"), "seed: Input should be a valid integer"),
    "unknown space": (GOOD.replace("name: toy, slots", "name: tyo, slots"), "unknown space 'tyo'; did you mean 'toy'"),
    "unknown strategy": (GOOD.replace("name: evolution", "name: genetic"), "unknown strategy 'genetic'"),
    "non-positive budget": (
        GOOD.replace("budget: 30", "budget: 0"),
        "search.budget: Input should be greater than or equal to 1",
    ),
    "malformed yaml": (GOOD + "search: [unclosed\n", "malformed YAML at line"),
    "unknown space argument": (GOOD.replace("slots: 6", "slotz: 6"), "space.slotz: unknown argument"),
    "bad strategy setting": (GOOD.replace("population: 10", "population: -1"), "strategy.population"),
    "arch missing choice": (GOOD + "arch: skip,linear\n", "arch: expected 6 comma-separated ops"),
    "arch extra choice": (
        GOOD + 'arch: \'{"s0":"skip","s1":"skip","s2":"skip","s3":"skip","s4":"skip","s5":"skip","s6":"skip"}\'\n',
        "unknown choice 's6'",
    ),
    "arch out of range": (GOOD + "arch: skip,skip,skip,skip,skip,conv9\n", "arch.s5: 'conv9' is not an option"),
    "arch missing key": (GOOD + 'arch: \'{"s0":"skip"}\'\n', "missing choice 's1'"),
}


@pytest.mark.parametrize("case", list(BAD_RECIPES))
def test_bad_recipes_give_one_line_and_exit_2(capsys, tmp_path, case):
    text, expected = BAD_RECIPES[case]
    err = one_line_error(capsys, ["run", write(tmp_path, text), "--out", str(tmp_path / "run")])
    assert expected in err


def test_missing_recipe_file(capsys, tmp_path):
    assert "file not found" in one_line_error(capsys, ["run", str(tmp_path / "nope.yaml")])


def test_bad_override_and_stage(capsys, tmp_path):
    path = write(tmp_path, GOOD)
    assert "search.budget: Input should be greater than or equal to 1" in one_line_error(
        capsys, ["run", path, "--set", "search.budget=-3"]
    )
    assert "unknown stage 'serch'" in one_line_error(capsys, ["run", path, "--stages", "serch"])


def test_usage_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["list", "planets"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["study", "study-quick"],
        ["compare", "toy-evolution", "--strategies", "random", "--seeds", "2"],
        ["rank-corr", "runs/x", "--archs", "4", "--steps", "1"],
        ["export", "runs/x", "--out", "y"],
    ],
)
def test_one_process_commands_refuse_torchrun_on_every_rank(capsys, monkeypatch, tmp_path, argv):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    err = one_line_error(capsys, argv)
    assert f"{argv[0]}: runs in one process, but WORLD_SIZE=2 (torchrun)" in err
    assert not any(tmp_path.iterdir()), "nothing may be written"


def test_read_only_commands_run_under_torchrun(capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["list", "strategies"]) == 0
    assert "evolution" in capsys.readouterr().out.split()


def test_a_full_disk_during_a_run_is_one_line(capsys, monkeypatch, tmp_path):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    err = one_line_error(capsys, ["run", write(tmp_path, GOOD), "--out", str(tmp_path / "run")])
    assert "cannot write it (No space left on device); free disk space" in err


@pytest.mark.parametrize("resume", [False, True])
def test_a_search_log_that_is_a_folder_is_one_line(capsys, tmp_path, resume):
    out = tmp_path / "run"
    (out / "trials.jsonl").mkdir(parents=True)
    err = one_line_error(capsys, ["-q", "run", write(tmp_path, GOOD), "--out", str(out), *(["--resume"] * resume)])
    assert ("trials.jsonl: the search log is not a file" if resume else "has a run in it already") in err


HEAVY = ("torch", "numpy", "transformers", "optuna", "pydantic", "matplotlib", "datasets")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["run", "--help"], ["show", "--help"],
                                  ["compare", "--help"], ["rank-corr", "--help"], ["study", "--help"],
                                  ["import-official", "--help"], ["export", "--help"]])
def test_help_and_version_import_nothing_heavy(argv):
    """`nasplug --help` took seconds importing torch; the parser imports only what it needs."""
    code = ("import sys, nasplug.cli\n"
            f"try:\n    nasplug.cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "HEAVY []", done.stdout[-500:]


def test_verbose_shows_nasplug_debug_lines_not_matplotlib_font_search(tmp_path):
    """-v: nasplug's debug lines (219 of 232 lines were matplotlib's font search); -vv: everyone's."""
    recipe = write(tmp_path, GOOD)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    lines = {}
    for flag in ("-v", "-vv"):
        done = subprocess.run([sys.executable, "-m", "nasplug", flag, "run", recipe, "--out", str(tmp_path / flag)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        lines[flag] = done.stderr.splitlines()
    assert any(line.startswith("DEBUG nasplug.") for line in lines["-v"])
    assert not [line for line in lines["-v"] if line.startswith("DEBUG") and " nasplug" not in line[:15]]
    assert any(line.startswith("DEBUG matplotlib") for line in lines["-vv"])


def test_run_list_show(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["-q", "run", write(tmp_path, GOOD), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| rank |" in printed and "run directory" in printed
    for name in ("recipe.yaml", "run.json", "trials.jsonl", "top.json", "report.md", "stages/search.json",
                 "search_curve.png", "top_choices.png"):
        assert (out / name).is_file(), name
    assert '"commit"' in (out / "run.json").read_text() and '"torch"' in (out / "run.json").read_text()
    assert main(["show", str(out), "--top", "3"]) == 0
    shown = capsys.readouterr().out
    assert "Best architecture" in shown and shown.count("\n| ") >= 4
    assert main(["list", "strategies"]) == 0
    assert "evolution" in capsys.readouterr().out.split()
    err = one_line_error(capsys, ["run", write(tmp_path, GOOD), "--out", str(out)])
    assert "--resume" in err
    (tmp_path / "empty").mkdir()
    assert "not a nasplug run directory" in one_line_error(capsys, ["show", str(tmp_path / "empty")])


SLOW = """
import time
from nasplug.spaces.toy import ToyObjective

class SlowToy(ToyObjective):
    def __call__(self, arch):
        time.sleep(0.01)
        return super().__call__(arch)
"""


def test_sigkill_mid_search_then_resume_gives_the_same_log(tmp_path):
    (tmp_path / "slowtoy.py").write_text(SLOW)
    recipe = write(
        tmp_path, GOOD.replace("name: toy}", "name: 'slowtoy:SlowToy'}").replace("budget: 30", "budget: 300")
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    cmd = [sys.executable, "-m", "nasplug", "-q", "run", recipe]
    reference = tmp_path / "reference"
    subprocess.run(cmd + ["--out", str(reference)], env=env, check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = killed / "trials.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or log.read_bytes().count(b"\n") < 75):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = log.read_bytes().count(b"\n")
    assert 75 <= lines < 300, f"the kill should land mid-search, it landed after {lines} trials"
    assert not (killed / "stages" / "search.json").exists()

    resumed = subprocess.run(cmd + ["--out", str(killed), "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert log.read_bytes() == (reference / "trials.jsonl").read_bytes()
