"""The wheel works without the repository: recipes by name, ``--version``, ``list recipes``.

Builds the wheel from this checkout (no build isolation: the test environment's setuptools),
installs it into a fresh virtual environment, and runs the installed ``nasplug`` from a
folder outside the repository. The fresh environment borrows its dependencies (torch,
transformers, ...) from the test environment through a ``.pth`` line: installing them again
would download gigabytes. nasplug itself comes from the wheel (checked).
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp / "dist")], capture_output=True, text=True, cwd=tmp)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp / "dist").glob("nasplug-*.whl"))
    env_dir = tmp / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, cwd=tmp)
    assert install.returncode == 0, install.stderr[-3000:]
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    deps = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "borrowed_dependencies.pth").write_text("\n".join(deps) + "\n")
    return env_dir


def nasplug(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(env_dir / "bin" / "nasplug"), *args], capture_output=True, text=True, cwd=cwd,
                          env={**environ, "OMP_NUM_THREADS": "1"}, timeout=300)


@pytest.mark.slow
def test_the_installed_wheel_runs_a_shipped_recipe_by_name(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import nasplug; print(nasplug.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert str(installed) in where.stdout, f"nasplug must come from the wheel: {where.stdout}{where.stderr}"
    version = nasplug(installed, "--version", cwd=tmp_path)
    from nasplug import __version__

    assert version.returncode == 0 and version.stdout.strip() == f"nasplug {__version__}"
    listed = nasplug(installed, "list", "recipes", cwd=tmp_path)
    assert listed.returncode == 0 and "toy-evolution" in listed.stdout and "lvbert-micro" in listed.stdout
    run = nasplug(installed, "run", "toy-evolution", "--out", str(tmp_path / "X"), "--set", "search.budget=20", "-q",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len((tmp_path / "X" / "trials.jsonl").read_text().splitlines()) >= 20
    typed = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import importlib.resources as r; print(r.files('nasplug').joinpath('py.typed').is_file())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert typed.stdout.strip() == "True"
    unknown = nasplug(installed, "run", "no-such-recipe", cwd=tmp_path)
    assert unknown.returncode == 2 and "shipped: " in unknown.stderr and "Traceback" not in unknown.stderr
