"""run.json records the user's plugin code (the file defining each component that is not
nasplug's, with its SHA-256): resuming after that file changed is one line, not a silent mix."""

from __future__ import annotations

import json
from pathlib import Path

from nasplug.cli import main

SPACE = '''
from nasplug.spaces.toy import ToySpace


class MySpace(ToySpace):
    """A user's space: the toy space under another name."""
'''

RECIPE = """\
name: mine
seed: 0
space: {name: "myspace_i27:MySpace", slots: 6}
evaluator: {name: toy}
search: {strategy: {name: random}, budget: 8, batch_size: 4}
"""


def test_a_changed_plugin_module_is_refused_on_resume(tmp_path: Path, capsys) -> None:
    (tmp_path / "myspace_i27.py").write_text(SPACE)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run"
    assert main(["-q", "run", str(recipe), "--out", str(out)]) == 0
    plugins = json.loads((out / "run.json").read_text())["plugins"]
    assert set(plugins) == {"space"} and plugins["space"]["file"].endswith("myspace_i27.py")
    assert main(["-q", "run", str(recipe), "--out", str(out), "--resume"]) == 0  # unchanged: fine
    capsys.readouterr()
    (tmp_path / "myspace_i27.py").write_text(SPACE + "\n# changed\n")
    assert main(["-q", "run", str(recipe), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "space: the code of myspace_i27:MySpace" in err and "changed since the run started" in err
    (tmp_path / "myspace_i27.py").write_text(SPACE)
    assert main(["-q", "run", str(recipe), "--out", str(out), "--resume"]) == 0
