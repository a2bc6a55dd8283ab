"""Strict YAML for recipes and --set values: numbers as YAML 1.2 reads them."""

from __future__ import annotations

import pytest

from nasplug.recipe import load_recipe
from nasplug.yamlio import _load, parse_override_value, safe_dump


@pytest.mark.parametrize("text,value", [("1e-3", 1e-3), ("1E5", 1e5), ("-2.5e-4", -2.5e-4), ("2.5e+4", 2.5e4),
                                        ("1.0e5", 1e5), (".5", 0.5), ("-.5", -0.5), ("+.5e3", 500.0),
                                        ("3.0e-05", 3e-5), ("1.", 1.0)])
def test_yaml_12_floats_are_floats(text: str, value: float) -> None:
    assert _load(text) == value and isinstance(_load(text), float)
    assert parse_override_value(text, "supernet.lr") == value


@pytest.mark.parametrize("text,value", [("12", 12), ("-1", -1), ("1_000", 1000), ("1e", "1e"), ("e5", "e5"),
                                        ("1e-3x", "1e-3x"), ("1.2.3", "1.2.3"), ("019", "019"), ("abc", "abc")])
def test_integers_and_words_stay_what_they_were(text: str, value: object) -> None:
    assert _load(text) == value and type(_load(text)) is type(value)


def test_a_recipe_and_an_override_take_1e_minus_3(tmp_path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nspace: {name: toy, slots: 4}\nevaluator: {name: toy}\nsearch: {budget: 5}\n"
                    "supernet: {steps: 10, lr: 1e-3, weight_decay: 1E-2}\n")
    recipe = load_recipe(path)
    assert recipe.supernet.lr == 1e-3 and recipe.supernet.weight_decay == 1e-2
    assert load_recipe(path, ["supernet.lr=2e-4"]).supernet.lr == 2e-4


def test_safe_dump_quotes_strings_that_would_read_back_as_floats() -> None:
    data = {"a": "1e-3", "b": 1e-3, "c": "-.5", "d": 2.5e20, "e": "x1e5", "f": 7}
    text = safe_dump(data)
    assert "'1e-3'" in text and "'-.5'" in text
    back = _load(text)
    assert back == data and all(type(back[k]) is type(v) for k, v in data.items())


def test_a_stored_recipe_reads_back_the_same(tmp_path) -> None:
    """dump_recipe writes run directories' recipe.yaml: a string that looks like a float
    (a description "1e5") must come back a string, the floats floats."""
    from nasplug.recipe import dump_recipe

    path = tmp_path / "r.yaml"
    path.write_text("name: r\ndescription: '1e5'\nspace: {name: toy, slots: 4}\nevaluator: {name: toy}\n"
                    "search: {budget: 5}\nsupernet: {steps: 10, lr: 1e-3}\n")
    recipe = load_recipe(path)
    stored = tmp_path / "stored.yaml"
    stored.write_text(dump_recipe(recipe))
    again = load_recipe(stored)
    assert again.description == "1e5" and again.supernet.lr == 1e-3
    assert again.model_dump() == recipe.model_dump()
