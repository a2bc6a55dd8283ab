"""What a run directory records about how it was made: recipe, versions, seeds, git revision."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("nasplug", "torch", "numpy", "optuna", "nni", "transformers", "datasets", "tokenizers", "pydantic")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> dict[str, Any]:
    """The nasplug source checkout's commit and whether it had uncommitted changes."""
    source = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return {"commit": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                               capture_output=True, text=True, timeout=10)
        return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


#: The recipe's components whose code a run depends on (field, registry name).
COMPONENTS = (("space", "SPACES"), ("task", "TASKS"), ("evaluator", "EVALUATORS"), ("search.strategy", "STRATEGIES"))


def plugin_sources(recipe: Any) -> dict[str, dict[str, str]]:
    """For each component of ``recipe`` whose code is not nasplug's (a ``module:attr`` path,
    an entry point): the file that defines it and the SHA-256 of its bytes. nasplug's own
    code is recorded by its version and git revision instead. Called when a run starts and
    when it resumes (a changed file is refused: :func:`changed_plugin`)."""
    import hashlib
    import inspect

    from nasplug import registry

    out: dict[str, dict[str, str]] = {}
    for field, reg_name in COMPONENTS:
        spec: Any = recipe
        for part in field.split("."):
            spec = getattr(spec, part, None)
        name = getattr(spec, "name", None)
        if not isinstance(name, str):
            continue
        factory, _ = getattr(registry, reg_name).resolve(name)
        module = getattr(factory, "__module__", "") or ""
        if module == "nasplug" or module.startswith("nasplug."):
            continue
        try:
            path = Path(inspect.getsourcefile(factory) or "")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except (TypeError, OSError):
            continue  # no source file (a compiled module): nothing to compare
        out[field] = {"name": name, "module": module, "file": str(path), "sha256": digest}
    return out


def changed_plugin(stored: Any, now: dict[str, dict[str, str]]) -> str | None:
    """The first component whose code differs from what ``run.json`` recorded (``stored``,
    its ``plugins``), as one line; None when none does (or an older run recorded none)."""
    if not isinstance(stored, dict):
        return None
    for field, then in stored.items():
        current = now.get(field)
        if not isinstance(then, dict) or current is None or then.get("sha256") == current["sha256"]:
            continue
        return f"{field}: the code of {current['name']} ({current['file']}) changed since the run started"
    return None


def run_info(seed: int, recipe_dir: str | None = None, plugins: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``run.json`` records: the command, versions, git revision, seed, the recipe file's
    folder (where a user's plugin modules are found again by later commands) and the user's
    plugin code (:func:`plugin_sources`)."""
    return {
        "plugins": plugins or {},
        "recipe_dir": recipe_dir,
        "argv": sys.argv,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_revision(),
        "seed": seed,
    }
