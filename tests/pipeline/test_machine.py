"""A run's machine settings: precision ``auto`` resolved once and recorded in run.json with
the reason, kept on resume whatever the machine says then; the thread count set for the run,
recorded, and the caller's restored afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nasplug.hardware as hw
from nasplug.cli import main
from nasplug.pipeline import run_recipe
from nasplug.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits" / "recipe.yaml"
ARCH = '{"op0": "conv3", "op1": "pool", "op2": "skip", "width": 8}'
RETRAIN = [f"arch='{ARCH}'", "retrain.baselines={}", "retrain.steps=4", "retrain.seeds=[0,1]", "retrain.batch_size=32",
           "retrain.checkpoint_every=2", "retrain.log_every=2", "retrain.eval_batches=1"]
TOY = REPO / "recipes" / "toy-evolution.yaml"


def cpu_with(monkeypatch: pytest.MonkeyPatch, *flags: str, bf16_speedup: float = 0.5) -> None:
    """Pretend the CPU has exactly ``flags``, and (where it has avx512_bf16 without AMX) that
    its bf16 products measured ``bf16_speedup`` times fp32's: slower by default."""
    monkeypatch.setattr(hw, "_cpu_flag", lambda name: name in flags)
    monkeypatch.setattr(hw, "cpu_bf16_speedup", lambda: bf16_speedup)


def machine(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())["machine"]


def start_config(folder: Path) -> dict:
    return json.loads((folder / "metrics.jsonl").read_text().splitlines()[0])["config"]


def test_auto_is_recorded_and_kept_on_resume_on_another_machine(tmp_path: Path, monkeypatch) -> None:
    import nasplug.pipeline.retrain as retrain

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpu_with(monkeypatch, "_is_amx_tile_supported")  # started where bf16 is fast
    real = retrain.export_folder

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed after the first model")

    monkeypatch.setattr(retrain, "export_folder", killed)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_recipe(load_recipe(DIGITS, RETRAIN), out, stages=["retrain"], progress=False)
    record = machine(out)
    assert record["precision"]["auto"] == "bf16" and "AMX" in record["precision"]["reason"]
    assert record["precision"]["retrain"] == "bf16" and record["threads"]["value"] == 1
    assert record["precision"]["evaluator"] == "bf16", "the evaluator's default is the run's auto"
    assert start_config(out / "retrain" / "found" / "seed-0")["precision"] == "bf16"

    cpu_with(monkeypatch, "_is_avx512_bf16_supported")  # resumed where auto would mean fp32
    monkeypatch.setattr(retrain, "export_folder", real)
    run_recipe(load_recipe(DIGITS, RETRAIN), out, resume=True, stages=["retrain"], progress=False)
    assert start_config(out / "retrain" / "found" / "seed-1")["precision"] == "bf16", "the run changed precision"
    assert machine(out)["precision"] == record["precision"]

    fresh = tmp_path / "fresh"  # a new run directory on that machine resolves afresh
    run_recipe(load_recipe(DIGITS, [*RETRAIN, "retrain.seeds=[0]"]), fresh, stages=["retrain"], progress=False)
    assert machine(fresh)["precision"]["auto"] == "fp32"
    assert "avx512_bf16 but no AMX" in machine(fresh)["precision"]["reason"]
    assert start_config(fresh / "retrain" / "found" / "seed-0")["precision"] == "fp32"


def test_an_explicit_precision_wins_and_an_old_run_reads_as_fp32(tmp_path: Path, monkeypatch) -> None:
    cpu_with(monkeypatch, "_is_amx_tile_supported")
    out = tmp_path / "run"
    recipe = load_recipe(DIGITS, [*RETRAIN, "retrain.seeds=[0]", "retrain.precision=fp32"])
    run_recipe(recipe, out, stages=["retrain"], progress=False)
    record = machine(out)
    assert record["precision"]["auto"] == "bf16" and record["precision"]["retrain"] == "fp32"
    assert start_config(out / "retrain" / "found" / "seed-0")["precision"] == "fp32"

    info = json.loads((out / "run.json").read_text())  # a run directory from before the record
    del info["machine"]
    (out / "run.json").write_text(json.dumps(info))
    from nasplug.pipeline.machine import resolve_machine

    old = resolve_machine(load_recipe(DIGITS, [*RETRAIN, "retrain.seeds=[0]"]), out)
    assert old.precision.value == "fp32" and old.recorded


def test_threads_are_set_for_the_run_recorded_and_restored(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(hw, "cpu_bf16_speedup", lambda: 1.0)  # the bf16 probe sets threads too, on one thread
    calls: list[int] = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n)))
    before = torch.get_num_threads()
    out = tmp_path / "toy"
    assert main(["-q", "run", str(TOY), "--out", str(out), "--threads", "2", "--set", "search.budget=20"]) == 0
    assert calls == [2, before] and torch.get_num_threads() == before
    assert machine(out)["threads"] == {"value": 2, "reason": "set in the recipe or with --threads"}
    assert "threads: 2" in (out / "recipe.yaml").read_text()

    calls.clear()  # resumed without the flag: the recorded count, not the default
    assert main(["-q", "run", str(TOY), "--out", str(out), "--resume", "--set", "search.budget=20"]) == 0
    assert calls == [2, before]
    capsys.readouterr()


def test_the_choice_is_logged_once(tmp_path: Path, monkeypatch, caplog) -> None:
    cpu_with(monkeypatch, "_is_avx512_bf16_supported")
    with caplog.at_level("INFO", logger="nasplug"):
        run_recipe(load_recipe(DIGITS, [*RETRAIN, "retrain.seeds=[0]"]), tmp_path / "run", stages=["retrain"],
                   progress=False)
    lines = [r.getMessage() for r in caplog.records if "auto means" in r.getMessage() or "precision:" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("precision: supernet fp32, retrain fp32, evaluator fp32 (auto means fp32: the CPU has "
                               "avx512_bf16 but no AMX")
    caplog.clear()
    cpu_with(monkeypatch, "_is_amx_tile_supported")  # where auto is bf16, the evaluator follows unless told
    with caplog.at_level("INFO", logger="nasplug"):
        run_recipe(load_recipe(DIGITS, [*RETRAIN, "retrain.seeds=[0]"]), tmp_path / "amx", stages=["retrain"],
                   progress=False)
    assert "precision: supernet bf16, retrain bf16, evaluator bf16 (auto means bf16" in caplog.text
    assert machine(tmp_path / "amx")["precision"]["evaluator"] == "bf16"
    caplog.clear()
    with caplog.at_level("INFO", logger="nasplug"):
        run_recipe(load_recipe(DIGITS, [*RETRAIN, "retrain.seeds=[0]", "evaluator.precision=fp32"]),
                   tmp_path / "amx-fp32", stages=["retrain"], progress=False)
    assert "precision: supernet bf16, retrain bf16, evaluator fp32 (auto means bf16" in caplog.text
    cpu_with(monkeypatch, "_is_avx512_bf16_supported", bf16_speedup=2.3)  # measured fast without AMX
    caplog.clear()
    with caplog.at_level("INFO", logger="nasplug"):
        run_recipe(load_recipe(DIGITS, [*RETRAIN, "retrain.seeds=[0]"]), tmp_path / "zen4", stages=["retrain"],
                   progress=False)
    assert "evaluator bf16 (auto means bf16: the CPU has avx512_bf16 but no AMX, and its bf16 matrix products " \
           "measured 2.30x as fast as fp32's (at least 1.25x))" in caplog.text


def test_the_evaluator_resolves_auto_to_the_runs_choice(tmp_path: Path, monkeypatch) -> None:
    from nasplug.pipeline import RunContext
    from nasplug.pipeline.evaluators import SupernetEvaluator

    cpu_with(monkeypatch, "_is_amx_tile_supported")
    out = tmp_path / "run"
    steps = ["supernet.steps=2", "supernet.eval_every=0", "supernet.checkpoint_every=0", "supernet.log_every=1"]
    recipe = load_recipe(DIGITS, steps)
    run_recipe(recipe, out, stages=["supernet"], progress=False)
    cpu_with(monkeypatch)  # later commands read the run's record, not this machine
    ctx = RunContext(recipe=recipe, run_dir=out, resume=True, progress=False)
    assert SupernetEvaluator(precision="auto", batches=1).build(ctx).precision == "bf16"
    assert SupernetEvaluator(batches=1).build(ctx).precision == "bf16", "auto by default"
    assert SupernetEvaluator(precision="fp32", batches=1).build(ctx).precision == "fp32"
    assert machine(out)["precision"]["evaluator"] == "bf16"

    # a run recorded while the evaluator's default was fp32 keeps scoring in fp32 on resume
    info = json.loads((out / "run.json").read_text())
    info["machine"]["precision"]["evaluator"] = "fp32"
    (out / "run.json").write_text(json.dumps(info))
    ctx = RunContext(recipe=recipe, run_dir=out, resume=True, progress=False)
    assert SupernetEvaluator(batches=1).build(ctx).precision == "fp32"
    assert ctx.machine.record(recipe)["precision"]["evaluator"] == "fp32", "the record is rewritten as it was"
    assert "evaluator fp32 (auto means bf16, kept from the run's start" in ctx.machine.describe(recipe)
    del info["machine"]["precision"]["evaluator"]  # none recorded: the run's auto
    (out / "run.json").write_text(json.dumps(info))
    ctx = RunContext(recipe=recipe, run_dir=out, resume=True, progress=False)
    assert SupernetEvaluator(batches=1).build(ctx).precision == "bf16"


RANKS_RUNNER = '''
import json, os, sys
import torch.distributed as dist
import nasplug.hardware as hw
from nasplug import distributed
from nasplug.hardware import resolve_precision
from nasplug.pipeline.machine import resolve_machine
from nasplug.recipe import load_recipe

distributed.init("gloo")
rank = dist.get_rank()
hw._cpu_flag = lambda name: name == "_is_avx512_bf16_supported"
hw.cpu_bf16_speedup = lambda: 2.0 if rank == 0 else 0.5  # the two ranks measure apart
machine = resolve_machine(load_recipe(sys.argv[1]), __import__("pathlib").Path(sys.argv[2]))
out = {"machine": machine.precision.value, "reason": machine.precision.reason,
       "own": resolve_precision("auto", "cpu").value}
with open(os.path.join(sys.argv[2] + f"-rank{rank}.json"), "w") as f:
    json.dump(out, f)
distributed.destroy()
'''


@pytest.mark.slow
def test_every_rank_takes_rank_0s_measured_choice(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    runner = tmp_path / "runner.py"
    runner.write_text(RANKS_RUNNER)
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(runner), str(DIGITS), str(run_dir)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = [json.loads((tmp_path / f"run-rank{r}.json").read_text()) for r in (0, 1)]
    assert [g["own"] for g in got] == ["bf16", "fp32"], "the ranks' own measurements disagree"
    assert [g["machine"] for g in got] == ["bf16", "bf16"] and got[0]["reason"] == got[1]["reason"]
