"""The models of the retrain stage: their names, archs and seed runs, read from the recipe
and the search's result. The retrain stage trains them; ``nasplug export``, the model cards and
the GLUE stage read them back.
"""

from __future__ import annotations

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.pareto import spread
from nasplug.pipeline.context import RunContext

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def found_arch(ctx: RunContext) -> Arch:
    """The recipe's fixed arch, or the best arch of the search stage."""
    if ctx.recipe.arch is not None:
        return ctx.space.parse(ctx.recipe.arch)
    result = ctx.extras.get("search")  # this process searched: every rank holds the result
    if result is not None and result.best is not None:
        return dict(result.best.model_arch)
    top = ctx.layout.read_top()
    if not top:
        raise NasplugError(f"retrain: no found architecture yet ({ctx.layout.top} is missing or empty); "
                           "run the search stage first")
    try:
        return ctx.space.unconstrained().validate(top[0]["arch"])
    except NasplugError as exc:
        raise NasplugError(f"{ctx.layout.top}: its best arch is not in the space ({exc}); delete top.json "
                           "and resume: the search stage writes it again from trials.jsonl") from None


def check_model_name(name: str, field: str) -> None:
    """Model names become folder names: letters, digits, ``_ - .`` only, no ``..``."""
    if not name or not set(name) <= NAME_CHARS or name in (".", "..") or name.startswith("."):
        raise NasplugError(f"{field}: {name!r} is not a usable model name; use letters, digits, '_', '-' and '.' "
                           "(it names a folder), not starting with '.'")


def baseline_archs(ctx: RunContext) -> dict[str, Arch]:
    """Name -> arch of the recipe's baselines (a baseline may lie outside a constrained space)."""
    cfg = ctx.recipe.retrain_config()
    free = ctx.space.unconstrained()
    archs: dict[str, Arch] = {}
    for name, text in (cfg.baselines if cfg else {}).items():
        check_model_name(name, f"retrain.baselines.{name}")
        if cfg.pareto is not None and name.startswith("pareto-"):
            raise NasplugError(f"retrain.baselines.{name}: 'pareto-*' names the front's retrained models "
                               "(retrain.pareto); call the baseline otherwise")
        if name == "found":
            raise NasplugError(
                "retrain.baselines.found: 'found' is the searched arch's name; call the baseline otherwise"
            )
        try:
            archs[name] = free.parse(text)
        except NasplugError as exc:
            raise NasplugError(f"retrain.baselines.{name}: {exc}") from None
    return archs


def retrain_archs(ctx: RunContext) -> dict[str, Arch]:
    """Name -> arch of every model the retrain stage trains: ``found`` first, then the front's
    (``retrain.pareto``; an arch equal to ``found`` is not trained twice), then baselines."""
    found = found_arch(ctx)
    front = {name: arch for name, arch in pareto_archs(ctx).items() if arch != found}
    return {"found": found, **front, **baseline_archs(ctx)}


def pareto_archs(ctx: RunContext) -> dict[str, Arch]:
    """``pareto-<i>`` -> arch: ``retrain.pareto`` archs spread along the search's front
    (``pareto.json``, ordered best first in the first objective); ``i`` counts the picks in
    that order. Empty without ``retrain.pareto``."""
    cfg = ctx.recipe.retrain_config()
    if cfg is None or cfg.pareto is None:
        return {}
    if ctx.recipe.arch is not None or ctx.recipe.search is None:
        raise NasplugError("retrain.pareto: the recipe has no search to take a front from; remove retrain.pareto")
    data = ctx.layout.read_pareto()
    if data is None:
        raise NasplugError(f"retrain.pareto: no front at {ctx.layout.pareto}; it needs a finished search with two or "
                           "more search.objectives")
    front = data["front"]
    free = ctx.space.unconstrained()
    picks = {}
    for i, j in enumerate(spread(len(front), cfg.pareto)):
        try:
            picks[f"pareto-{i + 1}"] = free.validate(front[j]["arch"])
        except NasplugError as exc:
            raise NasplugError(f"{ctx.layout.pareto}: front arch {j + 1} is not in the space ({exc}); delete it "
                               "and resume: the search stage writes it again from trials.jsonl") from None
    return picks


def front_models(ctx: RunContext) -> dict[str, Arch]:
    """The retrained models on the front: ``found`` when its arch is on it, and ``pareto-*``."""
    front = pareto_archs(ctx)
    if not front:
        return {}
    found = found_arch(ctx)
    on = {"found": found} if found in front.values() else {}
    return {**on, **{n: a for n, a in front.items() if a != found}}


def seed_runs(ctx: RunContext) -> list[tuple[int, int, int | None]]:
    """``(weights seed, training seed, folder seed)`` of each training run of one model; the
    folder seed names its folder (:meth:`RunLayout.retrain <nasplug.layout.RunLayout.retrain>`):
    None for the one run of a recipe without ``retrain.seeds``."""
    cfg = ctx.recipe.retrain_config()
    if cfg.seeds is None:
        return [(ctx.recipe.seed, cfg.seed, None)]
    return [(s, s, s) for s in cfg.seeds]


def retrained_names(ctx: RunContext) -> list[str]:
    """Names of the retrained models (``found``, ``pareto-1`` .. ``pareto-K`` and the baselines),
    without reading any file (a short front has fewer ``pareto-*`` models than named here)."""
    cfg = ctx.recipe.retrain_config()
    front = [f"pareto-{i + 1}" for i in range(cfg.pareto or 0)] if cfg else []
    return ["found", *front, *(cfg.baselines if cfg else {})]
