"""LV-BERT space: codecs, constraints, analytic counts, error messages (no models built)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from nasplug.errors import NasplugError
from nasplug.spaces.lvbert import (
    LAYER_TYPES,
    LVBERT_SMALL_SEARCHED,
    LVBERT_SMALL_SEARCHED_INTS,
    LVBertDims,
    LVBertSpace,
    arch_from_ints,
    arch_from_string,
    arch_to_ints,
    arch_to_layers,
    arch_to_string,
    interleaved,
    layer_index,
)

# LVBERT.md, derived from the official code's tensor shapes: (attn, ffn, conv) per sub-layer.
PER_LAYER = {
    "small": (263_680, 526_080, 275_236),
    "medium": (592_128, 1_182_336, 616_374),
    "base": (2_363_904, 4_723_968, 2_453_868),
}


# ---------------------------------------------------------------------------- codecs
def test_searched_sequence_codecs_agree_with_the_official_ints():
    arch = arch_from_string(LVBERT_SMALL_SEARCHED)
    assert list(arch)[:3] == ["L00", "L01", "L02"] and len(arch) == 24
    assert arch_to_ints(arch) == list(LVBERT_SMALL_SEARCHED_INTS)
    assert arch_from_ints(LVBERT_SMALL_SEARCHED_INTS) == arch
    assert arch_to_string(arch) == LVBERT_SMALL_SEARCHED
    assert Counter(arch.values()) == {"conv": 8, "attn": 8, "ffn": 8}


@pytest.mark.parametrize("text", [
    LVBERT_SMALL_SEARCHED.lower(),
    str(list(LVBERT_SMALL_SEARCHED_INTS)),
    ",".join(map(str, LVBERT_SMALL_SEARCHED_INTS)),
    "[" + ", ".join(map(str, LVBERT_SMALL_SEARCHED_INTS)) + "]",
])
def test_parse_accepts_letters_and_int_lists(text):
    space = LVBertSpace()
    arch = space.parse(text)
    assert space.format(arch) == LVBERT_SMALL_SEARCHED


def test_parse_accepts_json_dict_and_round_trips_format():
    space = LVBertSpace(size=None, hidden=64, slots=4)
    assert space.parse('{"L00": "conv", "L01": "attn", "L02": "ffn", "L03": "ffn"}') == arch_from_string("CAFF")
    rng = random.Random(3)
    for _ in range(20):
        arch = space.sample(rng)
        assert space.parse(space.format(arch)) == arch


def test_interleaved_is_attention_then_feed_forward():
    assert interleaved(24) == "AF" * 12
    assert interleaved(3) == "AFA"


def test_slot_keys_widen_past_100_slots():
    space = LVBertSpace(size=None, hidden=64, slots=101)
    keys = list(space.choices())
    assert keys[0] == "L000" and keys[-1] == "L100"
    assert arch_to_layers(space.sample(random.Random(0))) is not None


# ---------------------------------------------------------------------------- analytic counts
@pytest.mark.parametrize("size", ["small", "medium", "base"])
def test_per_layer_parameter_counts_match_lvbert_md(size):
    dims = LVBertDims.from_size(size)
    assert tuple(dims.layer_params(k) for k in ("attn", "ffn", "conv")) == PER_LAYER[size]


def test_reference_architectures_parameter_counts():
    space = LVBertSpace(size="small")
    assert space.metrics(arch_from_string(LVBERT_SMALL_SEARCHED))["params"] == 12_525_856
    assert space.metrics(arch_from_string(interleaved(24)))["params"] == 13_483_008


def test_flops_follow_the_documented_convention():
    dims = LVBertDims.from_size("small")
    t, h = 128, 256
    assert dims.layer_flops("ffn", t) == 2 * 2 * t * h * 1024
    assert dims.layer_flops("attn", t) == 4 * 2 * t * h * h + 4 * t * t * h
    assert dims.layer_flops("conv", t) == 4 * 2 * t * h * h + 2 * t * h * 36 + 4 * t * h * 9
    space = LVBertSpace(size="small", seq_len=t)
    arch = arch_from_string(LVBERT_SMALL_SEARCHED)
    expected = 2 * t * 128 * h + 8 * sum(dims.layer_flops(k, t) for k in LAYER_TYPES)
    assert space.metrics(arch)["flops"] == expected
    assert LVBertSpace(size="small", seq_len=64).metrics(arch)["flops"] < expected


def test_generator_dims_follow_the_size_table():
    assert [LVBertDims.from_size(s).generator().hidden for s in ("small", "medium", "base")] == [64, 128, 256]
    gen = LVBertDims.from_size("base").generator()
    assert (gen.heads, gen.ffn, gen.embedding) == (4, 1024, 768)
    assert LVBertDims.from_size(None, hidden=32).generator().heads == 1


# ---------------------------------------------------------------------------- constraints
def test_allowed_types_define_the_choices_and_size():
    space = LVBertSpace(allowed=["attn", "ffn"])
    assert all(tuple(v) == ("attn", "ffn") for v in space.choices().values())
    assert space.size() == 2**24 == space.num_valid()
    assert space.is_valid(arch_from_string(interleaved(24)))
    assert not space.is_valid(arch_from_string(LVBERT_SMALL_SEARCHED))


def test_exact_counts_admit_the_searched_sequence_and_count_the_space():
    space = LVBertSpace(counts={"conv": 8, "attn": 8, "ffn": 8})
    assert space.is_valid(arch_from_string(LVBERT_SMALL_SEARCHED))
    assert not space.is_valid(arch_from_string(interleaved(24)))
    expected = math.factorial(24) // math.factorial(8) ** 3
    assert space.num_valid() == expected
    assert abs(expected / 3**24 - 0.0335) < 0.0005  # "only 3.35% of the space" (LVBERT.md)


def test_sampling_is_deterministic_valid_and_uniform_over_count_vectors():
    space = LVBertSpace(size=None, hidden=64, slots=4, counts={"conv": [1, 2]})
    a = [space.sample(random.Random(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = random.Random(0)
    draws = [space.format(space.sample(rng)) for _ in range(6000)]
    assert all(space.is_valid(space.parse(d)) for d in set(draws))
    # Valid archs: 1 conv (4 * 2^3 = 32) or 2 conv (6 * 2^2 = 24): 56, each ~1/56.
    assert len(set(draws)) == space.num_valid() == 56
    share_one_conv = sum(d.count("C") == 1 for d in draws) / len(draws)
    assert abs(share_one_conv - 32 / 56) < 0.03


def test_budgets_reject_large_archs_with_a_named_limit():
    space = LVBertSpace(max_params=13e6)
    with pytest.raises(NasplugError, match=r"max_params: 13,483,008 params > limit 13,000,000"):
        space.validate(arch_from_string(interleaved(24)))
    assert space.is_valid(arch_from_string(LVBERT_SMALL_SEARCHED))
    flops = LVBertSpace().metrics(arch_from_string(LVBERT_SMALL_SEARCHED))["flops"]
    tight = LVBertSpace(max_flops=flops)
    assert tight.is_valid(arch_from_string(LVBERT_SMALL_SEARCHED))
    with pytest.raises(NasplugError, match=r"^arch: max_flops: .* FLOPs > limit"):
        tight.validate(arch_from_string(interleaved(24)))
    rng = random.Random(1)
    assert all(tight.metrics(tight.sample(rng))["flops"] <= flops for _ in range(50))


def test_yaml_style_numbers_are_accepted():
    assert LVBertSpace(max_params="13e6").max_params == 13e6


# ---------------------------------------------------------------------------- error messages
def _one_line_error(fn, *fields: str) -> str:
    with pytest.raises(NasplugError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for field in fields:
        assert field in message, message
    return message


@pytest.mark.parametrize("text, fields", [
    ("CCAXFACFFACCAFCFACFCAAFA", ["letter 3", "'X'", "C (conv), A (attn), F (ffn)"]),
    ("CCAF", ["4 layers", "slots=24"]),
    ("[0, 1, 3]", ["arch[2]", "0 (conv), 1 (attn), 2 (ffn)"]),
    ("0,1,x", ["'x'", "0 (conv)"]),
    ('{"L00": "conv"}', ["1 layers", "slots=24"]),
    ("", ["empty"]),
])
def test_bad_arch_strings_give_one_clear_line(text, fields):
    _one_line_error(lambda: LVBertSpace().parse(text), *fields)


def test_bad_arch_values_name_the_key_and_options():
    space = LVBertSpace(allowed="attn,ffn")
    arch = arch_from_string(interleaved(24)) | {"L05": "conv"}
    _one_line_error(lambda: space.validate(arch), "arch.L05", "'attn', 'ffn'")
    _one_line_error(lambda: space.validate(arch | {"L05": "rnn"}), "arch.L05", "'rnn'")
    exact = LVBertSpace(counts={"conv": 8})
    _one_line_error(lambda: exact.validate(arch_from_string("C" * 9 + "A" * 15)), "counts.conv", "9 conv", "exactly 8")


@pytest.mark.parametrize("kwargs, fields", [
    ({"size": "huge"}, ["size:", "'huge'", "small, medium, base"]),
    ({"allowed": ["attn", "rnn"]}, ["allowed:", "'rnn'", "conv, attn, ffn"]),
    ({"allowed": []}, ["allowed:"]),
    ({"counts": {"conv": 30}}, ["counts:", "slots=24"]),
    ({"counts": {"conv": 10, "attn": 10, "ffn": 10}}, ["counts:", "minimums sum to 30"]),
    ({"counts": {"rnn": 3}}, ["counts.rnn", "conv, attn, ffn"]),
    ({"counts": {"conv": [5, 2]}}, ["counts.conv", "min <= max"]),
    ({"counts": {"conv": "many"}}, ["counts.conv", "[min, max]"]),
    ({"counts": {"conv": 2}, "allowed": ["attn", "ffn"]}, ["counts.conv", "not in allowed"]),
    ({"counts": {"attn": 2}, "allowed": ["attn"]}, ["counts:", "slots=24"]),
    ({"max_params": 1e6}, ["max_params:", "smallest"]),
    ({"max_params": "lots"}, ["max_params:", "positive number"]),
    ({"max_flops": -1}, ["max_flops:"]),
    ({"max_flops": 1e3}, ["max_flops:", "smallest"]),
    ({"heads": 5}, ["heads:", "hidden=256"]),
    ({"size": None}, ["hidden:", "required"]),
    ({"slots": 0}, ["slots:"]),
    ({"seq_len": 1000}, ["seq_len:", "1..512"]),
])
def test_bad_constructor_arguments_give_one_clear_line(kwargs, fields):
    _one_line_error(lambda: LVBertSpace(**kwargs), *fields)


# ---------------------------------------------------------------------------- layer-wise LR decay
def test_layer_index_groups_two_sub_layers_per_rate():
    assert layer_index("lvbert.embeddings.word_embeddings.weight", 24) == 0
    assert layer_index("lvbert.embeddings_project.weight", 24) == 0
    assert layer_index("lvbert.layers.0.query.weight", 24) == 1
    assert layer_index("lvbert.layers.1.intermediate.bias", 24) == 1
    assert layer_index("lvbert.layers.2.glu_gate.weight", 24) == 2
    assert layer_index("lvbert.layers.23.output.weight", 24) == 12
    assert layer_index("slots.5.attn.key.weight", 24) == 3
    assert layer_index("classifier.out_proj.weight", 24) == 14  # official: n + 2, no depth 13
    assert layer_index("classifier.out_proj.weight", 5) == 5
