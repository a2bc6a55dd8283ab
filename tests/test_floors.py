"""The dependency floors in pyproject.toml are versions the project is tested with.

``make floors`` builds a venv at the lowest declared versions of transformers, optuna and
datasets (``NASPLUG_FLOORS`` names them) and runs the tests that use them; there this test
checks the venv really holds those versions. Everywhere else it checks that what is
installed satisfies the floors.
"""

from __future__ import annotations

import os
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def floor(name: str) -> Version:
    found = re.search(rf'"{re.escape(name)}>=([^,"]+)"', PYPROJECT.read_text())
    assert found, f"pyproject.toml declares no floor for {name}"
    return Version(found.group(1))


@pytest.mark.parametrize("name", ["transformers", "optuna", "datasets", "torch", "tokenizers", "numpy"])
def test_installed_versions_meet_the_declared_floors(name: str) -> None:
    assert Version(version(name)) >= floor(name)


@pytest.mark.skipif(not os.environ.get("NASPLUG_FLOORS"), reason="only in the venv of `make floors`")
def test_the_floors_venv_holds_the_declared_floors() -> None:
    for name in os.environ["NASPLUG_FLOORS"].split():
        assert Version(version(name)) == floor(name), name
