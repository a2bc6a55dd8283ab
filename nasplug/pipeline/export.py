"""Exporting trained models: the files other tools need, beside or copied from a run.

The retrain stage calls :func:`export_folder` for every model it trains; ``nasplug export``
calls :func:`export_run` for one retrained model into a folder of its own. What the folder
holds is the space's business (:meth:`~nasplug.space.SearchSpace.export_model`: a Hugging
Face folder for LV-BERT) and the task's (:meth:`~nasplug.task.Task.export_assets`: the
tokenizer of a text task). Every file is written atomically and ``export.json`` last, so an
export is finished when ``export.json`` is there, and redoing an unfinished one is safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasplug.arch import Arch
from nasplug.errors import NasplugError

#: Written last by :func:`export_folder`: the facts the folder was exported with.
EXPORTED = "export.json"


def facts(ctx: Any, name: str, arch: Arch, folder: Path, seeds: tuple[int, int]) -> dict[str, Any]:
    """What a model card says about a model of a run; ``seeds``: (weights seed, training seed)."""
    from nasplug import __version__
    from nasplug.pipeline.retrained import seed_runs
    from nasplug.pipeline.stage import all_stages
    from nasplug.runfiles import read_json

    result = read_json(folder / "result.json") or {}
    stored = result.get("heldout")
    heldout: dict[str, Any] = stored if isinstance(stored, dict) else {}
    metrics = ctx.space.metrics(arch)
    glue = any(stage.name == "glue" and stage.applies(ctx.recipe) for stage in all_stages())
    return {"model": name, "arch": ctx.space.format(arch), "params": metrics.get("params"),
            "flops": metrics.get("flops"), "heldout": {k: v for k, v in heldout.items() if k != "per_arch"},
            "recipe": ctx.recipe.name, "seed": seeds[0], "train_seed": seeds[1], "run_dir": str(ctx.run_dir),
            "nasplug_version": __version__, "head": ctx.retrain_task.head,
            **ctx.retrain_task.card_facts(),
            # the GLUE stage (when the recipe has one) fine-tunes the first seed's weights only
            "glue_tuned": glue and tuple(seeds) == tuple(seed_runs(ctx)[0][:2])}


def exported(folder: Path) -> bool:
    """True when :func:`export_folder` finished in ``folder``."""
    return (folder / EXPORTED).is_file()


def export_folder(ctx: Any, name: str, arch: Arch, model: Any, folder: Path, seeds: tuple[int, int]) -> None:
    """Make a trained model's folder usable outside nasplug (space and task hooks), then
    write ``export.json``. Safe to call again on a folder a kill left half exported."""
    from nasplug.io import atomic_write_json

    card = facts(ctx, name, arch, folder, seeds)
    ctx.space.unconstrained().export_model(model, arch, folder, card)
    ctx.retrain_task.export_assets(ctx.run_dir, folder)
    atomic_write_json(folder / EXPORTED, card)


def export_run(run_dir: Path, name: str, out: Path, seed: int | None = None) -> Path:
    """Copy retrained model ``name`` of ``run_dir`` into ``out`` as an exported folder.

    ``seed``: which of the run's ``retrain.seeds`` (default: the first); only for a run that
    trained each model once per seed.
    """
    from nasplug.io import atomic_write_bytes
    from nasplug.oneshot.build import build_model
    from nasplug.oneshot.checkpoint import load_weights, save_weights
    from nasplug.pipeline.context import RunContext
    from nasplug.pipeline.identity import check_out_path, stored_recipe
    from nasplug.pipeline.retrained import retrain_archs, seed_runs
    from nasplug.pipeline.run import make_run_dir

    recipe = stored_recipe(run_dir) if run_dir.is_dir() else None
    if recipe is None:
        raise NasplugError(f"RUN_DIR: {run_dir} is not a nasplug run directory (no recipe.yaml)")
    if recipe.retrain is None:
        raise NasplugError(f"{run_dir}: the run's recipe has no retrain section; there is no trained model to export")
    check_out_path(out)
    if out.exists() and any(out.iterdir()):
        raise NasplugError(f"--out: {out} is not empty; export into a new folder")
    ctx = RunContext(recipe=recipe, run_dir=run_dir, progress=False)
    archs = retrain_archs(ctx)
    if name not in archs:
        raise NasplugError(f"--model: {name!r} is not a retrained model of this run; models: {', '.join(archs)}")
    init_seed, train_seed, folder_seed = _seed_run(seed_runs(ctx), recipe.retrain.seeds, seed)
    source = ctx.layout.retrain(name, folder_seed)
    if not (source / "model.safetensors").is_file():
        raise NasplugError(f"{source}: no trained model.safetensors; run (or resume) the retrain stage first")
    model = build_model(ctx.space.unconstrained(), archs[name], ctx.retrain_task, seed=init_seed)
    load_weights(model, source / "model.safetensors")
    make_run_dir(out)
    save_weights(model, out / "model.safetensors")
    for extra in ("result.json", "test.json"):
        if (source / extra).is_file():
            atomic_write_bytes(out / extra, (source / extra).read_bytes())
    export_folder(ctx, name, archs[name], model, out, seeds=(init_seed, train_seed))
    return out


def _seed_run(runs: list[tuple[int, int, int | None]], seeds: list[int] | None,
              seed: int | None) -> tuple[int, int, int | None]:
    """The (weights seed, training seed, folder seed) of ``--seed`` (None: the first run)."""
    if seed is None:
        return runs[0]
    if seeds is None:
        raise NasplugError(f"--seed: {seed} given, but the run trained each model once (its recipe sets no "
                           "retrain.seeds); leave --seed out")
    if seed not in seeds:
        raise NasplugError(f"--seed: {seed} is not one of the run's retrain.seeds: {', '.join(map(str, seeds))}")
    return runs[seeds.index(seed)]
