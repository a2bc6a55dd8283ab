"""The models of the retrain stage: their names, archs and seed runs, read from the recipe
and the search's result. The retrain stage trains them; ``nasplug export``, the model cards and
the GLUE stage read them back.
"""

from __future__ import annotations

from nasplug.arch import Arch
from nasplug.errors import NasplugError
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
    """Name -> arch of every model the retrain stage trains: ``found`` first, then baselines."""
    return {"found": found_arch(ctx), **baseline_archs(ctx)}


def seed_runs(ctx: RunContext) -> list[tuple[int, int, int | None]]:
    """``(weights seed, training seed, folder seed)`` of each training run of one model; the
    folder seed names its folder (:meth:`RunLayout.retrain <nasplug.layout.RunLayout.retrain>`):
    None for the one run of a recipe without ``retrain.seeds``."""
    cfg = ctx.recipe.retrain_config()
    if cfg.seeds is None:
        return [(ctx.recipe.seed, cfg.seed, None)]
    return [(s, s, s) for s in cfg.seeds]


def retrained_names(ctx: RunContext) -> list[str]:
    """Names of the retrained models (``found`` and the baselines), without reading any file."""
    cfg = ctx.recipe.retrain_config()
    return ["found", *(cfg.baselines if cfg else {})]
