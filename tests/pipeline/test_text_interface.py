"""The text-model interface: a space written to it alone runs every stage with the mlm task;
a space missing a method is refused by the preflight in one line, before anything is written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasplug.pipeline import run_recipe
from nasplug.recipe import load_recipe

HERE = Path(__file__).resolve().parent
RECIPE = """name: tiny-text
seed: 0
space: {{name: "text_space_kit:{space}", vocab_size: 320, seq_len: 32}}
task:
  name: mlm
  corpus: {{source: synthetic, synthetic_documents: 150, heldout_fraction: 0.1}}
  tokenizer: {{vocab_size: 320}}
  seq_len: 32
supernet: {{steps: 8, batch_size: 8, lr: 0.002, eval_every: 0, eval_batches: 2, eval_archs: 2, log_every: 4,
           sampler: {{name: sandwich, random: 1}}}}
evaluator: {{name: supernet, batches: 2, batch_size: 8}}
search: {{strategy: {{name: random}}, budget: 6, batch_size: 3, metric: mlm_acc, top_k: 3}}
retrain: {{steps: 6, batch_size: 8, lr: 0.002, eval_batches: 2, log_every: 3}}
"""

pytestmark = pytest.mark.usefixtures("one_thread")


def _recipe(folder: Path, space: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "text_space_kit.py", folder / "text_space_kit.py")
    path = folder / "recipe.yaml"
    path.write_text(RECIPE.format(space=space))
    return path


def test_a_space_written_to_the_interface_runs_every_stage(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NASPLUG_CACHE", str(tmp_path / "cache"))
    recipe = load_recipe(_recipe(tmp_path / "project", "TinyTextSpace"))
    run_recipe(recipe, tmp_path / "run", progress=False)
    assert {p.stem for p in (tmp_path / "run" / "stages").glob("*.json")} == {"supernet", "search", "retrain",
                                                                            "report"}
    assert "mlm acc" in (tmp_path / "run" / "report.md").read_text()


def test_a_missing_method_is_one_line_before_anything_is_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NASPLUG_CACHE", str(tmp_path / "cache"))
    recipe = _recipe(tmp_path / "project", "NoLogitsSpace")
    env = {**os.environ, "NASPLUG_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nasplug", "run", str(recipe), "--out", str(tmp_path / "run")],
                          env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "masked_logits" in line]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    for stage in ("supernet stage", "retrained model"):  # every model of every stage, in that one line
        assert stage in errors[0]
    assert not (tmp_path / "run").exists()
    assert took < 60  # seconds (generous: the machine is shared), not a training run
    # a resumed run whose space lost the method is refused the same way and left as it was
    good = _recipe(tmp_path / "good", "TinyTextSpace")
    cmd = [sys.executable, "-m", "nasplug", "-q", "run", str(good), "--out", str(tmp_path / "resumed")]
    subprocess.run([*cmd, "--stages", "supernet"], env=env, check=True, capture_output=True)
    before = {p: p.read_bytes() for p in sorted((tmp_path / "resumed").rglob("*")) if p.is_file()}
    kit = tmp_path / "good" / "text_space_kit.py"
    kit.write_text(kit.read_text().replace("    def masked_logits(self, hidden, labels):",
                                           "    def logits_renamed(self, hidden, labels):"))
    again = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "masked_logits" in again.stderr and "Traceback" not in again.stderr
    assert {p: p.read_bytes() for p in sorted((tmp_path / "resumed").rglob("*")) if p.is_file()} == before


def test_vocabulary_and_length_flow_from_the_task_to_the_space(tmp_path: Path) -> None:
    from nasplug.errors import NasplugError
    from nasplug.pipeline import RunContext

    path = _recipe(tmp_path / "project", "TinyTextSpace")
    path.write_text(path.read_text().replace(", vocab_size: 320, seq_len: 32", ""))
    space = RunContext(load_recipe(path, ["task.tokenizer.vocab_size=200", "task.seq_len=24"]), tmp_path / "r").space
    assert (space.vocab_size, space.seq_len) == (200, 24)
    for key, value, message in (("vocab_size", 100, "space.vocab_size: 100 disagrees with the task's vocab_size (200"),
                                ("seq_len", 32, "space.seq_len: 32 disagrees with the task's seq_len (24")):
        recipe = load_recipe(path, ["task.tokenizer.vocab_size=200", "task.seq_len=24", f"space.{key}={value}"])
        with pytest.raises(NasplugError, match=message.replace("(", r"\(")):
            _ = RunContext(recipe, tmp_path / "r").space
