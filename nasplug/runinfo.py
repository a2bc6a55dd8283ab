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


def run_info(seed: int, recipe_dir: str | None = None) -> dict[str, Any]:
    """What ``run.json`` records: the command, versions, git revision, seed, and the recipe
    file's folder (where a user's plugin modules are found again by later commands)."""
    return {
        "recipe_dir": recipe_dir,
        "argv": sys.argv,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_revision(),
        "seed": seed,
    }
