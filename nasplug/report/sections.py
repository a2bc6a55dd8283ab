"""Report sections of the generic stages: supernet training, search, found vs baselines.

Each section reads only files in the run directory (so ``nasplug show`` works on any run,
finished or not) and returns Markdown lines plus, where it draws one, a PNG beside it. The
figures shown are whatever the run's task measured (``heldout_<metric>``, ``test_<metric>``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.layout import RunLayout
from nasplug.report.table import markdown_table
from nasplug.runfiles import finite_number, read_json, read_log_leniently


def _metric_names(records: list[dict[str, Any]]) -> list[str]:
    """The task's metrics, in its order, from a training log's start record."""
    for record in records:
        if record.get("event") == "start" and isinstance(record.get("metrics"), dict):
            return [str(k) for k in record["metrics"]]
    names: list[str] = []
    for record in records:
        names += [k.removeprefix("heldout_") for k in record if k.startswith("heldout_") and k[8:] not in names]
    return names


def supernet_phases(view: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """The supernet's training logs as ``(label, records)``, steps counted from the start of
    the whole training: one phase, or the one-shot and the few-shot phase of a split."""
    layout = view.layout
    cfg = view.recipe.get("supernet") if isinstance(view.recipe.get("supernet"), dict) else {}
    split = cfg.get("split") if isinstance(cfg.get("split"), dict) else None
    if split is None:
        return [("supernet", read_log_leniently(layout.supernet / "metrics.jsonl"))]
    first = read_log_leniently(layout.supernet_oneshot / "metrics.jsonl")
    offset = max((r["step"] for r in first if isinstance(r.get("step"), int) and not isinstance(r["step"], bool)),
                  default=0)
    second = [{**r, "step": r["step"] + offset} if isinstance(r.get("step"), int) else r
              for r in read_log_leniently(layout.supernet / "metrics.jsonl")]
    return [("one-shot", first), (f"few-shot (split on {split.get('choice')})", second)]


def _primary(view: Any, names: list[str]) -> str | None:
    """The task's primary metric (what the search ranks by by default), else the first logged."""
    task = view.task
    primary = task.primary_metric() if task is not None else None
    return primary if primary in names else (names[0] if names else None)


def supernet_section(view: Any) -> list[str]:
    from nasplug.report import plots

    phases = [(label, records) for label, records in supernet_phases(view) if records]
    if not phases:
        return []
    layout = view.layout
    metric = _primary(view, _metric_names([r for _, records in phases for r in records]))
    key = f"heldout_{metric}" if metric else None
    steps = {f"{label} (train)": [r for r in records if finite_number(r.get("loss")) and "event" not in r]
             for label, records in phases}
    evals = {f"{label} (held-out, mean of eval archs)": [r for r in records if r.get("event") in ("eval", "end")
                                                         and key and finite_number(r.get(key))]
             for label, records in phases}
    cfg = view.recipe.get("supernet") if isinstance(view.recipe.get("supernet"), dict) else {}
    how = f"{cfg.get('sampler', 'uniform')} sampler"
    split = cfg.get("split")
    if isinstance(split, dict):
        how += f", few-shot: split on {split.get('choice')} after {split.get('after', 0.5):.0%} of the steps"
    lines = [f"## Supernet training ({how})", ""]
    if any(steps.values()) and _drawn(view, layout.SUPERNET_LOSS_PLOT, lambda path: plots.training_curves(
            steps, "loss", path, "supernet training loss")):
        lines += [f"![supernet loss]({layout.SUPERNET_LOSS_PLOT})", ""]
    last = next((e[-1] for e in reversed(evals.values()) if e), None)
    if last is not None and key and metric:
        drawn = _drawn(view, layout.SUPERNET_HELDOUT_PLOT, lambda path: plots.training_curves(
            evals, key, path, f"supernet held-out {metric}"))
        baseline = (last.get("baseline") or {}).get(metric) if isinstance(last.get("baseline"), dict) else None
        lines += [f"Held-out {metric} at step {last['step']} (mean over the fixed eval archs): {last[key]:.4f}"
                  + (f" (trivial baseline {baseline:.4f})" if finite_number(baseline) else ""), ""]
        lines += [f"![supernet held-out figure]({layout.SUPERNET_HELDOUT_PLOT})", ""] if drawn else []
    return lines


def _drawn(view: Any, name: str, draw: Any) -> bool:
    """Draw plot ``name`` when the view may write (``draw(path)``); whether the run has it."""
    path = view.layout.plot(name)
    if getattr(view, "draw", False):
        draw(path)
    return path.is_file()


def search_section(view: Any) -> tuple[list[str], str]:
    from nasplug.report import load_run

    _, result = load_run(view.run_dir)
    if result is None or not result.scored:
        return [], ""
    space = view.space
    fmt = space.format if space is not None else (lambda arch: json.dumps(arch, sort_keys=True))
    if len(result.objectives) > 1:
        from nasplug.report.front import front_section

        return front_section(view, result, fmt)
    best = result.best
    assert best is not None
    counts = {s: sum(t.status == s for t in result.trials) for s in ("ok", "cached", "rejected", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    table = top_table(result, view.top_k, fmt)
    lines = ["## Search", "", f"Best architecture: `{fmt(best.model_arch)}` with {result.metric} = {best.score:.6g}",
             "", f"Trials: {len(result.trials)} ({summary})", ""]
    scores = sorted(float(t.score) for t in result.scored)  # type: ignore[arg-type]
    median = scores[len(scores) // 2]
    lines += [f"Scores: median {median:.6g}, worst {scores[0 if result.direction == 'maximize' else -1]:.6g}, "
              f"best {best.score:.6g} over {len(scores)} scored trials", ""]
    layout = view.layout
    for png, alt in ((layout.SEARCH_CURVE_PLOT, "search curve"),
                     (layout.TOP_CHOICES_PLOT, "choices of the top architectures")):
        if layout.plot(png).is_file():
            lines += [f"![{alt}]({png})", ""]
    lines += ["### Top architectures", "", table, ""]
    return lines, table


def top_table(result: Any, k: int = 10, formatter: Any = None) -> str:
    """The k best distinct archs with their metrics."""
    top = result.top(k)
    metric_names = sorted({m for t in top for m in t.metrics if m != result.metric})[:4]
    rows = []
    for rank, trial in enumerate(top, start=1):
        text = formatter(trial.model_arch) if formatter else json.dumps(trial.model_arch, sort_keys=True)
        rows.append([rank, trial.number, text, trial.score] + [trial.metrics.get(m) for m in metric_names])
    return markdown_table(["rank", "trial", "arch", result.metric] + metric_names, rows)


def retrained_archs(view: Any) -> dict[str, Any]:
    """Name -> arch of the models the retrain stage trains (found first), if it applies."""
    recipe, space = view.recipe, view.space
    retrain = recipe.get("retrain")
    if not isinstance(retrain, dict) or space is None:
        return {}
    archs: dict[str, Any] = {}
    if recipe.get("arch"):
        archs["found"] = space.parse(recipe["arch"])
    else:
        top = view.layout.read_top()  # a damaged top.json is one clear line, not a silent gap
        if top:
            archs["found"] = top[0]["arch"]
    archs.update(front_picks(view, retrain, archs.get("found")))
    baselines = retrain.get("baselines") or {}
    for name, text in (baselines.items() if isinstance(baselines, dict) else []):
        try:
            archs[name] = space.unconstrained().parse(text)
        except Exception:  # noqa: BLE001 - the run's recipe was validated; a report shows what it can
            continue
    return archs


def front_picks(view: Any, retrain: dict[str, Any], found: Any) -> dict[str, Any]:
    """``pareto-<i>`` -> arch of the ``retrain.pareto`` picks along the front (none equal to found)."""
    from nasplug.pareto import spread

    k = retrain.get("pareto")
    data = view.layout.read_pareto() if isinstance(k, int) and k > 0 else None
    if data is None:
        return {}
    front = data["front"]
    picks = {f"pareto-{i + 1}": front[j]["arch"] for i, j in enumerate(spread(len(front), k))}
    return {name: arch for name, arch in picks.items() if arch != found}


def retrain_seeds(recipe: dict[str, Any]) -> list[int] | None:
    """The stored recipe's ``retrain.seeds`` (None: one run per model, no seed folders)."""
    retrain = recipe.get("retrain")
    seeds = retrain.get("seeds") if isinstance(retrain, dict) else None
    return [s for s in seeds if isinstance(s, int)] if isinstance(seeds, list) else None


def model_runs(layout: RunLayout, name: str, seeds: list[int] | None = None) -> tuple[list[Path], Path | None]:
    """The training folders of a retrained model (one per seed of the recipe, whether it has
    run yet or not) and its summary file."""
    if seeds is None:
        return [layout.retrain(name)], None
    return [layout.retrain(name, s) for s in seeds], layout.retrain_summary(name)


def _cell(values: list[float]) -> Any:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.4g} ± {std:.2g}"


def retrain_section(view: Any) -> tuple[list[str], str]:
    """Found vs baselines after retraining: a table (mean ± std over seeds), strips, curves."""
    from nasplug.report import plots

    archs = retrained_archs(view)
    if not archs:
        return [], ""
    space, layout = view.space, view.layout
    figures: dict[str, list[dict[str, Any]]] = {}
    names: list[str] = []
    seed_list = retrain_seeds(view.recipe)
    for name in archs:
        folders, _ = model_runs(layout, name, seed_list)
        figures[name] = []
        for folder in folders:
            result = read_json(folder / "result.json")
            if result is None:
                continue
            heldout = result.get("heldout")
            if heldout is not None and not isinstance(heldout, dict):
                raise NasplugError(f"{folder / 'result.json'}: 'heldout' is not a mapping of figures; delete the file "
                                   "and resume to train that model again")
            entry = {k: v for k, v in (heldout or {}).items() if finite_number(v)}
            entry.update({k: v for k, v in (read_json(folder / "test.json") or {}).items() if finite_number(v)})
            figures[name].append(entry)
            names += [m for m in _metric_names(read_log_leniently(folder / "metrics.jsonl")) if m not in names]
    columns = [f"{split}_{m}" for split in ("heldout", "test") for m in names
               if any(f"{split}_{m}" in e for runs in figures.values() for e in runs)]
    seeds = max((len(runs) for runs in figures.values()), default=0)
    rows = []
    for name, arch in archs.items():
        metrics = space.metrics(arch) if space is not None else {}
        runs = figures[name]
        expected = len(model_runs(layout, name, seed_list)[0])
        status = "done" if runs and len(runs) == expected else ("not trained" if not runs else f"{len(runs)} runs")
        rows.append([name, space.format(arch) if space is not None else json.dumps(arch), metrics.get("params"),
                     metrics.get("flops"), *[_cell([e[c] for e in runs if c in e]) for c in columns], status])
    headers = ["model", "architecture", "params", "FLOPs", *[c.replace("_", " ") for c in columns], "status"]
    table = markdown_table(headers, rows)
    how = f"mean ± std over {seeds} seeds" if seeds > 1 else "one seed"
    lines = ["## Found architecture vs baselines (retrained from scratch, same steps)", "", f"Figures: {how}.", "",
             table, ""]
    if space is not None and _drawn(view, layout.ARCHITECTURES_PLOT, lambda path: plots.arch_strips(
            archs, space.choices(), path, title="choices by position", colors=space.colors)):
        lines += [f"![architectures]({layout.ARCHITECTURES_PLOT})", ""]
    series = {name: [r for r in read_log_leniently(model_runs(layout, name, seed_list)[0][0] / "metrics.jsonl")
                     if finite_number(r.get("loss")) and "event" not in r] for name in archs}
    if any(series.values()) and _drawn(view, layout.RETRAIN_LOSS_PLOT, lambda path: plots.training_curves(
            series, "loss", path, "training loss (retrained)")):
        lines += [f"![retrain loss]({layout.RETRAIN_LOSS_PLOT})", ""]
    return lines, table
