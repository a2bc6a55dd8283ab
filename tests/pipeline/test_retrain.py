"""The retrain stage on the digits example (a fixed arch, two seeds, a few steps): an export a
kill interrupted is redone without training again; model cards carry each model's own seeds;
``nasplug export --seed``; and under two processes no rank races rank 0's files."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from nasplug.cli import main
from nasplug.pipeline import run_recipe
from nasplug.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "examples" / "digits" / "recipe.yaml"
ARCH = '{"op0": "conv3", "op1": "pool", "op2": "skip", "width": 8}'
TINY = [f"arch='{ARCH}'", "retrain.baselines={}", "retrain.steps=6", "retrain.seeds=[0,1]", "retrain.batch_size=32",
        "retrain.checkpoint_every=3", "retrain.log_every=3", "retrain.eval_batches=1"]


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def tiny():
    return load_recipe(RECIPE, TINY)


def card(folder: Path) -> dict:
    return json.loads((folder / "arch.json").read_text())


def test_a_kill_during_the_export_is_redone_on_resume_without_training(tmp_path: Path, monkeypatch) -> None:
    import nasplug.pipeline.retrain as retrain

    real = retrain.export_folder

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while exporting")

    monkeypatch.setattr(retrain, "export_folder", killed)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_recipe(tiny(), out, stages=["retrain"], progress=False)
    first = out / "retrain" / "found" / "seed-0"
    assert (first / "result.json").is_file() and (first / "test.json").is_file()
    assert not (first / "arch.json").exists() and not (first / "export.json").exists()
    trained = {name: (first / name).read_bytes() for name in ("metrics.jsonl", "result.json", "model.safetensors")}

    monkeypatch.setattr(retrain, "export_folder", real)
    run_recipe(tiny(), out, resume=True, stages=["retrain"], progress=False)
    assert all((first / name).read_bytes() == data for name, data in trained.items()), "trained again"
    for seed in (0, 1):
        folder = out / "retrain" / "found" / f"seed-{seed}"
        assert (folder / "export.json").is_file()
        facts = card(folder)
        assert facts["seed"] == seed and facts["train_seed"] == seed, "each model card names its own seeds"
        assert "layers" not in facts
    summary = json.loads((out / "retrain" / "found" / "summary.json").read_text())
    assert len(summary["runs"]) == 2 and "test_acc" in summary["mean"]


def test_a_sigkill_inside_a_write_leaves_no_temp_file_after_the_resume(tmp_path: Path, monkeypatch) -> None:
    """SIGKILL during the export's atomic write of config.json leaves ``.config.json.XXXX.tmp``
    (no cleanup code runs); the resume removes it and finishes the export."""
    import signal

    import nasplug.pipeline.retrain as retrain
    from nasplug.io import atomic_write

    out = tmp_path / "run"

    def killed(ctx, name, arch, model, folder, seeds):
        atomic_write(folder / "config.json", lambda fh: (fh.write(b"{"), os.kill(os.getpid(), signal.SIGKILL)))

    pid = os.fork()
    if pid == 0:  # the child runs until the kill
        try:
            monkeypatch.setattr(retrain, "export_folder", killed)
            run_recipe(tiny(), out, stages=["retrain"], progress=False)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    first = out / "retrain" / "found" / "seed-0"
    assert [p.name for p in first.glob(".config.json.*.tmp")], "the kill should leave the temp file"
    run_recipe(tiny(), out, resume=True, stages=["retrain"], progress=False)
    assert not [p for p in out.rglob("*") if p.name.startswith(".")], "a temp file outlived the resume"
    assert (first / "export.json").is_file()


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("retrain") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_recipe(tiny(), out, stages=["retrain"], progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


def test_export_picks_the_seed_asked_for(retrained: Path, tmp_path: Path, capsys) -> None:
    assert main(["-q", "export", str(retrained), "--out", str(tmp_path / "first")]) == 0
    assert card(tmp_path / "first")["seed"] == 0
    assert main(["-q", "export", str(retrained), "--out", str(tmp_path / "second"), "--seed", "1"]) == 0
    assert card(tmp_path / "second")["seed"] == 1
    exported = [json.loads((tmp_path / n / "export.json").read_text()) for n in ("first", "second")]
    # only true facts: the digits recipe has no GLUE stage, so neither model was fine-tuned on GLUE
    assert [e["glue_tuned"] for e in exported] == [False, False]
    ours = load_file(str(tmp_path / "second" / "model.safetensors"))
    trained = load_file(str(retrained / "retrain" / "found" / "seed-1" / "model.safetensors"))
    assert ours.keys() == trained.keys() and all(torch.equal(ours[k], trained[k]) for k in ours)
    capsys.readouterr()
    assert main(["-q", "export", str(retrained), "--out", str(tmp_path / "third"), "--seed", "5"]) == 2
    assert "--seed: 5 is not one of the run's retrain.seeds: 0, 1" in capsys.readouterr().err
    assert "default: the first of retrain.seeds" in " ".join(_export_help().split())


def _export_help() -> str:
    from nasplug.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices["export"].format_help()


# ---------------------------------------------------------------------- two processes
def _worker(rank: int, world: int, init_file: str, out: str, result_dir: str) -> None:
    """Rank 1 is slow to look at the run directory; rank 0 is slow to write test.json. Neither
    may make the other fail or read a missing file."""
    import nasplug.pipeline.retrain as retrain
    import nasplug.pipeline.run as run
    import nasplug.pipeline.standalone as standalone

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        if rank == 1:
            check = run.check_run_dir
            run.check_run_dir = lambda *a, **k: (time.sleep(1.5), check(*a, **k))[1]
        else:
            write = standalone.atomic_write_json
            standalone.atomic_write_json = lambda path, obj: (time.sleep(1.5) if Path(path).name == "test.json"
                                                              else None, write(path, obj))[1]
        written: list[str] = []
        write_summary = retrain.atomic_write_json
        retrain.atomic_write_json = lambda path, obj: (written.append(Path(path).name), write_summary(path, obj))[1]
        stage_run, summaries = retrain.RetrainStage.run, []
        retrain.RetrainStage.run = lambda self, ctx: summaries.append(stage_run(self, ctx)) or summaries[-1]
        run_recipe(load_recipe(RECIPE, TINY), out, stages=["retrain"], progress=False)
        Path(result_dir, f"rank{rank}.json").write_text(json.dumps({"summary": summaries[0], "written": written}))
        dist.barrier()  # as `nasplug run` ends: no rank leaves while the other may still talk to it
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="gloo file rendezvous")
def test_two_processes_start_and_retrain_without_racing_rank_0(tmp_path: Path) -> None:
    out = tmp_path / "run"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.start_processes(_worker, args=(2, str(tmp_path / "rdv"), str(out), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for info in ranks:  # every rank read test.json after rank 0 wrote it
        assert "test_acc" in info["summary"]["found"]["mean"], info
    assert ranks[0]["summary"] == ranks[1]["summary"]
    assert ranks[0]["written"] == ["summary.json"] and ranks[1]["written"] == [], "summary.json: rank 0 only"
    assert (out / "recipe.yaml").is_file() and (out / "stages" / "retrain.json").is_file()
