"""Registry resolution, recipe validation and overrides, arch helpers."""

from __future__ import annotations

import pytest

from nasplug.arch import arch_from_json, arch_key, arch_to_json
from nasplug.errors import NasplugError
from nasplug.recipe import apply_override, load_recipe
from nasplug.registry import SPACES, STRATEGIES, build_callable
from nasplug.spaces.toy import ToySpace


def test_names_and_paths_resolve():
    assert SPACES.get("toy") is ToySpace
    assert SPACES.get("nasplug.spaces.toy:ToySpace") is ToySpace
    assert {"random", "evolution", "regularized"} <= set(STRATEGIES.names())


def test_unknown_name_lists_known_and_closest():
    with pytest.raises(NasplugError, match=r"unknown strategy 'evolutoin'; did you mean 'evolution'\?.*random"):
        STRATEGIES.get("evolutoin")


@pytest.mark.parametrize("path,match", [("nope.mod:X", "cannot import"), ("nasplug.spaces.toy:Nope", "no attribute"),
                                         ("nasplug.spaces.toy:", "not of the form")])
def test_bad_paths(path, match):
    with pytest.raises(NasplugError, match=match):
        SPACES.get(path)


def test_constructor_arguments_are_checked_by_name_and_type():
    assert build_callable(ToySpace, {"slots": 4}, field="space").slots == 4
    with pytest.raises(NasplugError, match=r"space\.slots: Input should be a valid integer \(got '4'\)"):
        build_callable(ToySpace, {"slots": "4"}, field="space")  # strict: a string is not a number
    with pytest.raises(NasplugError, match=r"space\.slots: expected a number, not True"):
        build_callable(ToySpace, {"slots": True}, field="space")
    with pytest.raises(NasplugError, match=r"space\.slotz: unknown argument; allowed: slots, seed"):
        build_callable(ToySpace, {"slotz": 4}, field="space")
    with pytest.raises(NasplugError, match=r"space\.slots: .*integer"):
        build_callable(ToySpace, {"slots": "many"}, field="space")


def test_overrides_parse_yaml_values():
    raw = {"search": {"budget": 10}}
    apply_override(raw, "search.budget=200")
    apply_override(raw, "search.strategy.name=random")
    apply_override(raw, "space.allowed=[attn, ffn]")
    assert raw == {"search": {"budget": 200, "strategy": {"name": "random"}}, "space": {"allowed": ["attn", "ffn"]}}
    with pytest.raises(NasplugError, match="KEY=VALUE"):
        apply_override(raw, "search.budget")


def test_recipe_defaults_and_overrides(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nspace: {name: toy, slots: 4}\nevaluator: {name: toy}\nsearch: {budget: 5}\n")
    recipe = load_recipe(path, ["search.strategy.name=random", "seed=3"])
    assert recipe.search.strategy.name == "random" and recipe.seed == 3
    assert recipe.space.kwargs() == {"slots": 4}
    assert recipe.search.batch_size == 50 and recipe.search.direction is None  # the metric's producer declares it


def test_arch_helpers():
    arch = {"b": 1, "a": "x", "c": True}
    assert arch_key(arch) == '{"a":"x","b":1,"c":true}'
    assert arch_from_json(arch_to_json(arch)) == arch
    for bad, match in [("[1,2]", "JSON object"), ("{", "not valid JSON"), ('{"a": [1]}', "arch.a")]:
        with pytest.raises(NasplugError, match=match):
            arch_from_json(bad)


def test_bool_and_int_options_are_distinct():
    from nasplug.space import SearchSpace

    class Flags(SearchSpace):
        def choices(self):
            return {"k": (1, 2), "on": (True, False)}

    space = Flags()
    space.validate({"k": 1, "on": True})
    with pytest.raises(NasplugError, match="arch.k"):
        space.validate({"k": True, "on": True})


@pytest.mark.parametrize(
    "section, match",
    [
        ("search: {budget: 5, strategy: {name: random, space: x}}", r"search.strategy.space: reserved"),
        ("evaluator: {name: toy, context: 1}\nsearch: {budget: 5}", r"evaluator.context: reserved"),
        (
            "search: {budget: 5, constraints: [{name: max_params, max: 3, space: x}]}",
            r"search.constraints\[0\].space: reserved",
        ),
    ],
)
def test_arguments_the_run_passes_itself_are_refused(tmp_path, section, match):
    path = tmp_path / "r.yaml"
    evaluator = "" if "evaluator:" in section else "evaluator: {name: toy}\n"
    path.write_text(f"name: r\nspace: {{name: toy, slots: 4}}\n{evaluator}{section}\n")
    with pytest.raises(NasplugError, match=match):
        load_recipe(path)
