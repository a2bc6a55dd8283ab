"""bf16 against fp32 training: held-out curves from the same start, beside the seed-to-seed noise.

Trains the quickstart recipe's supernet (``recipes/quickstart.yaml``: hidden 64, 8 slots, MLM
on the WikiText-2 test split, or nasplug's generated text without the data) with the real
training loop three ways (or more with ``--seeds``):

* fp32, seed 0 and bf16 (autocast), seed 0: the same initial weights, the same batches, the
  same sampled archs and the same dropout masks; only the precision differs;
* fp32 with seed 1 (other weights, batches and archs): the seed-noise reference.

It prints the held-out MLM loss and accuracy (the mean over the fixed eval archs, on fixed
batches) at every evaluation, and at the end the bf16-vs-fp32 gap against the gap between
the fp32 seeds. Target: the final bf16 gap is smaller than the seed gap.

    NASPLUG_DATA_DIR=../shared/data .venv/bin/python benchmarks/precision_curves.py \\
        [--steps 300] [--eval-every 50] [--seeds 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nasplug.oneshot.build import build_supernet
from nasplug.oneshot.config import TrainConfig
from nasplug.oneshot.samplers import build_sampler
from nasplug.oneshot.train import train
from nasplug.pipeline import RunContext
from nasplug.recipe import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"


def curve(ctx: RunContext, cfg: TrainConfig, seed: int, folder: Path) -> tuple[dict[int, dict[str, float]], float]:
    """Held-out figures per evaluated step of one training run, and its wall time."""
    task = ctx.prepared_task()
    supernet = build_supernet(ctx.space, seed=seed)
    start = time.perf_counter()
    train(supernet, task, cfg, folder, space=ctx.space, sampler=build_sampler("uniform", ctx.space, cfg.seed),
          progress=False)
    wall = time.perf_counter() - start
    points = {}
    for line in (folder / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("event") in ("eval", "end") and "heldout_mlm_loss" in record:
            points[record["step"]] = {"loss": record["heldout_mlm_loss"], "acc": record["heldout_mlm_acc"]}
    return points, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2, help="fp32 seeds (0 .. N-1); the first also runs in bf16")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    recipe = load_recipe(RECIPE)
    runs: dict[str, tuple[dict[int, dict[str, float]], float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(recipe=recipe, run_dir=Path(tmp), progress=False)
        base: dict[str, Any] = recipe.supernet.model_dump(include=set(TrainConfig.model_fields))
        base.update(steps=args.steps, eval_every=args.eval_every, eval_batches=args.eval_batches,
                    checkpoint_every=0, device="cpu")
        plan = [("fp32", 0), ("bf16", 0)] + [("fp32", s) for s in range(1, args.seeds)]
        for precision, seed in plan:
            cfg = TrainConfig.model_validate({**base, "precision": precision, "seed": seed})
            runs[f"{precision} s{seed}"] = curve(ctx, cfg, seed, Path(tmp) / f"{precision}-{seed}")
    names = list(runs)
    print(f"quickstart supernet (hidden 64, 8 slots), {args.steps} steps, batch {base['batch_size']}, held-out MLM "
          f"on {args.eval_batches} fixed batches x {base['eval_archs']} eval archs, threads {args.threads}, "
          f"bf16 autocast; wall s: " + ", ".join(f"{n} {runs[n][1]:.0f}" for n in names))
    for metric in ("loss", "acc"):
        print(f"\nheld-out MLM {metric}")
        print(f"  {'step':>5} " + " ".join(f"{n:>10}" for n in names) + "   |bf16-fp32|   |fp32 s1-s0|")
        for step in sorted(runs[names[0]][0]):
            row = [runs[n][0][step][metric] for n in names]
            seed_gap = f"{abs(row[2] - row[0]):12.4f}" if len(row) > 2 else ""
            values = " ".join(f"{v:10.4f}" for v in row)
            print(f"  {step:>5} {values}   {abs(row[1] - row[0]):11.4f}  {seed_gap}")
    if args.seeds < 2:
        return
    last = max(runs[names[0]][0])
    for metric in ("loss", "acc"):
        value = {n: runs[n][0][last][metric] for n in names}
        gap = abs(value["bf16 s0"] - value["fp32 s0"])
        noise = max(abs(value[n] - value["fp32 s0"]) for n in names[2:])
        verdict = "ok" if gap < noise else "MISSED"
        print(f"final {metric}: bf16 gap {gap:.4f} vs fp32 seed gap {noise:.4f} ({gap / noise:.2f} of it)  "
              f"target: smaller  [{verdict}]")


if __name__ == "__main__":
    main()
