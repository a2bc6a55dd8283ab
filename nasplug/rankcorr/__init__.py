"""``nasplug rank-corr``: can the supernet's ranking of architectures be trusted?

For a run whose supernet stage has finished: sample N distinct archs, score each with the
supernet (inherited weights, the run's evaluator on its fixed held-out batches), train each
standalone from scratch for S steps, score it on exactly the same pre-masked batches, and
report Kendall tau / Spearman rho between the two scores with bootstrap intervals.

Files, in ``run_dir/rank_corr/`` (or ``out``)::

    arch-00/ ... arch-NN/   pretrain output of each standalone model (metrics.jsonl,
                            model.safetensors, result.json) + score.json (its held-out metrics)
    rank_corr.json          pairs, archs, both scores, tau / rho with intervals and p-values
    rank_corr.md            the same as a table
    rank_corr.png           scatter of supernet score vs standalone accuracy

Resumable: an arch whose ``score.json`` exists is not trained again, and an interrupted
training continues from its checkpoint. Archs are the first N distinct draws of
``random.Random(seed)``, so a rerun with a larger N reuses every arch already trained.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

OUT_DIR = "rank_corr"


# ---------------------------------------------------------------------- inputs
def load_run_recipe(run_dir: Path, overrides: Sequence[str] = ()) -> Any:
    """The validated ``Recipe`` of a run directory (its ``recipe.yaml``), with ``--set``
    overrides (``a.b=value``) applied, e.g. ``retrain.lr=0.001``."""
    from nasplug.recipe import apply_override, validate_recipe
    from nasplug.report import load_run

    if not run_dir.is_dir():
        raise NasplugError(f"RUN_DIR: no such run directory: {run_dir}")
    raw, _ = load_run(run_dir)
    for override in overrides:
        apply_override(raw, override)
    return validate_recipe(raw, source=str(run_dir / "recipe.yaml"))


def standalone_train_config(recipe: Any, steps: int, overrides: dict[str, Any] | None = None) -> Any:
    """The recipe's ``retrain`` settings (else ``supernet``'s) for an S-step standalone run.

    ``steps`` = S; an explicit ``warmup_steps`` is scaled by S / the recipe's steps (a
    ``warmup_fraction`` scales by itself); ``eval_every`` = 0 (the held-out score is computed
    here, on the evaluator's batches). ``overrides`` (TrainConfig fields) are applied last.
    """
    from pydantic import ValidationError

    from nasplug.oneshot.config import TrainConfig
    from nasplug.recipe import describe_error

    base = recipe.retrain if recipe.retrain is not None else recipe.supernet
    raw = base.model_dump(exclude={"baselines", "seeds", "sampler", "task"})
    if raw.get("warmup_steps") is not None:
        raw["warmup_steps"] = round(raw["warmup_steps"] * steps / raw["steps"])
    raw.update(steps=steps, eval_every=0)
    raw.update(overrides or {})
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise NasplugError(f"rank-corr training settings: {describe_error(exc)}") from None


def sample_archs(space: Any, n: int, seed: int) -> list[Arch]:
    """The first ``n`` distinct archs drawn with ``random.Random(seed)`` (valid by construction)."""
    rng, seen, archs = random.Random(seed), set(), []
    for _ in range(1000 * n):
        arch = space.sample(rng)
        if arch_key(arch) not in seen:
            seen.add(arch_key(arch))
            archs.append(arch)
            if len(archs) == n:
                return archs
    raise NasplugError(f"--archs: only {len(archs)} distinct archs found in {1000 * n} draws; the space is too small for {n}")


def _evaluator_kwargs(recipe: Any, batches: int | None) -> dict[str, Any]:
    from nasplug.pipeline.evaluators import supernet_evaluator
    from nasplug.registry import EVALUATORS

    spec = recipe.evaluator
    kwargs: dict[str, Any] = {}
    if spec is not None:
        if EVALUATORS.get(spec.name) is not supernet_evaluator:
            raise NasplugError(f"evaluator: rank-corr compares against the 'supernet' evaluator; the run uses {spec.name!r}")
        kwargs = spec.kwargs()
    if batches is not None:
        kwargs["batches"] = batches
    return kwargs


# ---------------------------------------------------------------------- standalone scoring
def standalone_metrics(model: torch.nn.Module, evaluator: Any, aux: dict[str, Any] | None = None) -> dict[str, float]:
    """Held-out metrics of a standalone model on the evaluator's own fixed batches.

    The same sums as :class:`nasplug.oneshot.evaluator.InheritedWeights` (the task's
    ``evaluate`` on the evaluator's batches, fp32): a model extracted from the supernet
    scores exactly what the evaluator gives its arch (without the analytic metrics).
    """
    device = next(model.parameters()).device
    model.eval()
    for module in (aux or {}).values():
        module.eval()
    task = evaluator.task
    with torch.inference_mode():
        return task.figures(task.evaluate(model, evaluator.batches, aux or {}, device))


def _train_and_score(ctx: Any, arch: Arch, folder: Path, cfg: Any, evaluator: Any,
                     progress: bool) -> dict[str, float]:
    """Train ``arch`` from scratch into ``folder`` (or load it if trained) and score it."""
    from nasplug.oneshot.build import build_model
    from nasplug.oneshot.checkpoint import load_weights
    from nasplug.oneshot.seeds import derive_seed
    from nasplug.oneshot.train import train

    task = ctx.prepared_task()
    model = build_model(ctx.space, arch, task, seed=ctx.recipe.seed)
    if (folder / "result.json").is_file() and (folder / "model.safetensors").is_file():
        load_weights(model, folder / "model.safetensors")  # trained before a crash, not yet scored
    else:
        resume = (folder / "checkpoint").exists()
        train(model, task, cfg, folder, resume=resume, progress=progress)
    aux = task.auxiliary(model, derive_seed(cfg.seed, "generator"))
    for name, module in aux.items():
        load_weights(module, folder / f"{name}.safetensors")
    return standalone_metrics(model, evaluator, aux)


def _check_folder(folder: Path, arch_text: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """The saved score of this arch, None if there is none; an error if the folder holds another."""
    meta_file = folder / "arch.json"
    if not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text())
    if meta.get("arch") != arch_text:
        raise NasplugError(f"{folder}: holds arch {meta.get('arch')}, not {arch_text} (an earlier --seed?); "
                           "pass another --out or delete the folder")
    if meta.get("config") != config:
        changed = sorted(k for k in config if meta.get("config", {}).get(k) != config[k])
        raise NasplugError(f"{folder}: was trained with other settings ({', '.join(changed)} differ: an earlier "
                           "--steps or --set?); pass another --out or delete the folder")
    score_file = folder / "score.json"
    return json.loads(score_file.read_text()) if score_file.is_file() else None


# ---------------------------------------------------------------------- the command
def rank_correlation(run_dir: str | Path, archs: int, steps: int, *, seed: int = 0, batches: int | None = None,
                     resume: bool = True, progress: bool = True, train_overrides: dict[str, Any] | None = None,
                     metric: str | None = None, out: str | Path | None = None, resamples: int = 2000,
                     keep_checkpoints: bool = False, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Rank correlation between the supernet's scores and standalone training, for one run.

    Args:
        run_dir: a run directory whose supernet stage has finished.
        archs: N, the number of distinct archs (>= 3).
        steps: S, standalone training steps per arch (>= 1).
        seed: draws the archs (``random.Random(seed)``) and seeds the bootstrap.
        batches: held-out batches of the evaluator (default: the recipe's evaluator setting).
        resume: reuse archs trained by an earlier call; False refuses a folder with results.
        progress: progress bars (across archs, and pretrain's own per arch).
        train_overrides: TrainConfig fields over the recipe's retrain settings, e.g. ``{"lr": 1e-3}``.
        metric: the compared metric (default: the search metric if comparable, else
            ``mlm_acc`` for MLM and ``disc_acc`` for ELECTRA; ``mlm_loss`` is allowed for MLM).
        out: output folder (default ``run_dir/rank_corr``).
        resamples: bootstrap resamples.
        keep_checkpoints: keep each arch's training checkpoint after it is scored (default:
            removed once ``score.json`` is written, to save disk; ``model.safetensors`` stays).
        overrides: ``KEY=VALUE`` changes to the run's recipe, as ``nasplug run --set``
            (e.g. ``retrain.lr=0.001``, or a key the run's ``recipe.yaml`` lost).

    Returns:
        The content of ``rank_corr.json`` plus ``files`` (paths of the json, md and png).

    Raises:
        NasplugError: no run directory, no trained supernet, N < 3, S < 1, a metric the
            objective has not, or an output folder that holds another experiment.
    """
    from nasplug.pipeline import RunContext
    from nasplug.pipeline.evaluators import supernet_evaluator
    from nasplug.progress import progress_bar
    from nasplug.rankcorr.stats import rank_stats, top_k_agreement
    from nasplug.registry import build_callable

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if archs < 3:
        raise NasplugError(f"--archs: rank correlation needs at least 3 archs, got {archs}")
    if steps < 1:
        raise NasplugError(f"--steps: must be >= 1, got {steps}")
    recipe = load_run_recipe(run_dir, overrides)
    if recipe.supernet is None:
        raise NasplugError(f"{run_dir}: the run's recipe has no supernet section; nothing to rank-correlate")
    weights = run_dir / "supernet" / "model.safetensors"
    if not weights.is_file():
        raise NasplugError(f"{run_dir}: no trained supernet ({weights} is missing); run the supernet stage first")
    ctx = RunContext(recipe=recipe, run_dir=run_dir, resume=True, progress=progress)
    task = ctx.task
    if metric is None:
        wanted = recipe.search.metric if recipe.search is not None else None
        metric = wanted if wanted in task.metrics else task.primary_metric()
    if metric not in task.metrics:
        raise NasplugError(f"--metric: {metric!r} is not measured by task {task.name!r}; "
                           f"allowed: {', '.join(task.metrics)}")
    direction = task.metrics[metric]
    cfg = standalone_train_config(recipe, steps, train_overrides)
    out_dir = Path(out) if out is not None else run_dir / OUT_DIR
    if not resume and any(out_dir.glob("arch-*")):
        raise NasplugError(f"{out_dir}: holds archs of an earlier rank-corr; resume it or pass another --out")

    ctx.prepared_task()
    try:
        evaluator = build_callable(supernet_evaluator, {"space": ctx.space, "context": ctx,
                                                        **_evaluator_kwargs(recipe, batches)}, field="evaluator")
    except NasplugError as exc:
        if "cannot load weights" not in str(exc):
            raise
        raise NasplugError(f"{exc} (the run's recipe.yaml builds another supernet than the one trained; if the "
                           "recipe had null keys such as space.size: null, pass them again: --set space.size=null)") from None
    sampled = sample_archs(ctx.space, archs, seed)
    texts = [ctx.space.format(a) for a in sampled]
    log.info("rank-corr: scoring %d archs with the supernet", archs)
    supernet_scores = evaluator.evaluate_batch(sampled)
    evaluator.close()  # its kept hidden states are not needed while the standalone models train

    config = cfg.model_dump(mode="json")
    width = max(2, len(str(archs - 1)))
    standalone: list[dict[str, float]] = []
    bar = progress_bar(total=archs, desc="rank-corr", unit="arch", enabled=progress)
    for i, (arch, text) in enumerate(zip(sampled, texts)):
        folder = out_dir / f"arch-{i:0{width}d}"
        saved = _check_folder(folder, text, config)
        if saved is None:
            bar.set_postfix_str(text[:32])
            log.info("rank-corr: arch %d/%d %s: training %d steps", i + 1, archs, text, steps)
            atomic_write_json(folder / "arch.json", {"arch": text, "arch_dict": arch, "config": config})
            saved = _train_and_score(ctx, arch, folder, cfg, evaluator, progress)
            atomic_write_json(folder / "score.json", saved)
            if not keep_checkpoints:
                shutil.rmtree(folder / "checkpoint", ignore_errors=True)
        else:
            log.info("rank-corr: arch %d/%d %s: trained already, skipped", i + 1, archs, text)
        standalone.append(saved)
        bar.update()
    bar.close()

    x = [s[metric] for s in supernet_scores]
    y = [s[metric] for s in standalone]
    stats = rank_stats(y, x, resamples=resamples, seed=seed)
    sign = -1.0 if direction == "minimize" else 1.0  # top-k picks the best: the lowest loss
    top_k = top_k_agreement([sign * v for v in y], [sign * v for v in x])  # regret stays >= 0, in metric units
    pairs = [{"index": i, "arch": texts[i], "arch_dict": sampled[i], "supernet": x[i], "standalone": y[i],
              "supernet_metrics": supernet_scores[i], "standalone_metrics": standalone[i]} for i in range(archs)]
    result = {
        "run_dir": str(run_dir), "metric": metric, "task": task.name, "archs": archs, "steps": steps,
        "seed": seed, "overrides": list(overrides), "train_config": config, "evaluator": {**_evaluator_kwargs(recipe, batches),
                                                             "heldout_batches": len(evaluator.batches)},
        "direction": "minimize" if sign < 0 else "maximize", "pairs": pairs, **stats, "top_k": top_k, "wall_s": time.perf_counter() - t0,
    }
    result["files"] = write_outputs(result, out_dir)
    tau = stats["kendall_tau"]
    log.info("rank-corr: Kendall tau %.3f [%.3f, %.3f] over %d archs", tau["estimate"], tau["ci_low"], tau["ci_high"], archs)
    return result


# ---------------------------------------------------------------------- outputs
def _clean(value: Any) -> Any:
    """NaN -> None everywhere, so the JSON is strict (NaN is not JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _fmt_coef(entry: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    return f"{f(entry['estimate'])} [{f(entry['ci_low'])}, {f(entry['ci_high'])}] (p = {f(entry['p_value'])})"


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Kendall / Spearman / top-1 lines, for the Markdown file and the terminal."""
    conf = round(100 * result["bootstrap"]["confidence"])
    top = result["top_k"]
    overlap = ", ".join(f"top-{k} {v:.2f}" for k, v in top["overlap"].items())
    return [
        f"Kendall tau: {_fmt_coef(result['kendall_tau'])}",
        f"Spearman rho: {_fmt_coef(result['spearman_rho'])}",
        f"{conf}% bootstrap percentile intervals, {result['bootstrap']['used']} of {result['bootstrap']['resamples']} "
        f"resamples usable ({result['bootstrap']['skipped_constant']} with a constant score skipped)",
        f"Supernet's top pick is standalone rank {top['top1_standalone_rank']} of {result['archs']} "
        f"(regret {top['top1_regret']:.4g}); overlap {overlap}",
    ]


def table(result: dict[str, Any]) -> str:
    """Markdown table of the archs, best supernet score first (lowest, for a loss)."""
    from nasplug.report.table import markdown_table

    pairs = result["pairs"]
    sign = -1.0 if result.get("direction") == "minimize" else 1.0
    sa_rank = {p["index"]: r for r, p in enumerate(sorted(pairs, key=lambda p: (-sign * p["standalone"], p["index"])), 1)}
    rows = [[r, sa_rank[p["index"]], p["index"], p["arch"], f"{p['supernet']:.6g}", f"{p['standalone']:.6g}",
             p["supernet_metrics"].get("params")]
            for r, p in enumerate(sorted(pairs, key=lambda p: (-sign * p["supernet"], p["index"])), 1)]
    m = result["metric"]
    return markdown_table(["supernet rank", "standalone rank", "#", "arch", f"supernet {m}", f"standalone {m}",
                           "params"], rows)


def write_outputs(result: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """``rank_corr.json`` / ``.md`` / ``.png`` in ``out_dir`` (each written atomically)."""
    files = {"json": out_dir / "rank_corr.json", "md": out_dir / "rank_corr.md", "png": out_dir / "rank_corr.png"}
    md = [f"# Rank correlation: supernet vs standalone ({result['metric']})", "",
          f"Run `{result['run_dir']}`: {result['archs']} archs (seed {result['seed']}), each trained standalone "
          f"for {result['steps']} steps; both scored on the same {result['evaluator']['heldout_batches']} "
          "pre-masked held-out batches.", ""]
    md += [f"- {line}" for line in summary_lines(result)]
    md += ["", "![supernet score vs standalone accuracy](rank_corr.png)", "", table(result), ""]
    scatter(result, files["png"])
    atomic_write_text(files["md"], "\n".join(md))
    out = {k: str(v) for k, v in files.items()}
    atomic_write_json(files["json"], _clean({**result, "files": out}))
    return out


def scatter(result: dict[str, Any], path: Path) -> Path:
    """Supernet score (x) against standalone score (y), each point labelled by its index."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["supernet"] for p in result["pairs"]]
    ys = [p["standalone"] for p in result["pairs"]]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(xs, ys, color="#4C72B0", zorder=3)
    for p in result["pairs"]:
        ax.annotate(str(p["index"]), (p["supernet"], p["standalone"]), textcoords="offset points", xytext=(4, 3),
                    fontsize=7, color="#555555")
    tau, rho = result["kendall_tau"], result["spearman_rho"]

    def f(v: float | None) -> str:
        return "nan" if v is None or math.isnan(v) else f"{v:.2f}"

    conf = round(100 * result["bootstrap"]["confidence"])
    ax.set_title(f"Kendall τ = {f(tau['estimate'])} [{f(tau['ci_low'])}, {f(tau['ci_high'])}] ({conf}% CI)\n"
                 f"Spearman ρ = {f(rho['estimate'])}, N = {result['archs']}, {result['steps']} steps", fontsize=9)
    ax.set_xlabel(f"supernet {result['metric']} (inherited weights)")
    ax.set_ylabel(f"standalone {result['metric']} (trained from scratch)")
    ax.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))  # close scores: long tick labels must not overlap
    ax.tick_params(axis="x", labelrotation=30)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    from nasplug.io import atomic_write

    return atomic_write(path, lambda fh: fh.write(buffer.getvalue()))
