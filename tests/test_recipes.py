"""Every recipe in recipes/ loads and builds; the paper recipes carry LVBERT.md's numbers.

No network, no training: spaces, strategies, constraints and archs are built analytically;
supernets are built only where that takes well under a second or two (not LV-BERT-base).
Every number below is copied from /work/shared/LVBERT.md.
"""

from __future__ import annotations

import inspect
import math
import re
import statistics
from pathlib import Path
from typing import Any

import pytest

from nasplug.errors import NasplugError
from nasplug.glue import ELECTRA_BASE_DEV, ELECTRA_SMALL_DEV, ELECTRA_SMALL_OWT_DEV, get_task
from nasplug.glue.stage import glue_config
from nasplug.pipeline import RunContext, build_constraints, build_space, build_strategy, build_task
from nasplug.recipe import Recipe, load_recipe
from nasplug.registry import EVALUATORS

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
PAPER = [p for p in RECIPES if p.name.startswith(("lvbert-", "electra-"))]
HUB_SOURCES = {"Skylion007/openwebtext"}  # corpora that live on the Hugging Face Hub, not in shared data

# ----------------------------------------------------------------- LVBERT.md, copied
SIZES = {  # hidden, heads, FFN inner, embedding, generator hidden
    "small": (256, 4, 1024, 128, 64),
    "medium": (384, 6, 1536, 128, 128),
    "base": (768, 12, 3072, 768, 256),
}
LAYER_PARAMS = {  # attn, ffn, conv per sub-layer
    "small": {"attn": 263_680, "ffn": 526_080, "conv": 275_236},
    "medium": {"attn": 592_128, "ffn": 1_182_336, "conv": 616_374},
    "base": {"attn": 2_363_904, "ffn": 4_723_968, "conv": 2_453_868},
}
SEARCHED_SMALL = "CCAFFACFFACCAFCFACFCAAFA"
SEARCHED_SMALL_INTS = [0, 0, 1, 2, 2, 1, 0, 2, 2, 1, 0, 0, 1, 2, 0, 2, 1, 0, 2, 0, 1, 1, 2, 1]
PARAMS_SEARCHED_SMALL = 12_525_856
PARAMS_ELECTRA_SMALL_SHAPE = 13_483_008
TASKS8 = ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE")
DEV = {  # google-research/electra README, GLUE dev
    "ELECTRA-Small-OWT": dict(zip(TASKS8, (56.8, 88.3, 87.4, 86.8, 88.3, 78.9, 87.9, 68.5))),
    "ELECTRA-Small": dict(zip(TASKS8, (57.0, 91.2, 88.0, 87.5, 89.0, 81.3, 88.4, 66.7))),
    "ELECTRA-Base": dict(zip(TASKS8, (67.7, 95.1, 89.5, 91.2, 91.5, 88.8, 93.2, 82.7))),
}
LVBERT_SMALL_TEST, LVBERT_SMALL_TEST_PDF = 79.8, 78.8
ELECTRA_SMALL_TEST, ELECTRA_BASE_TEST = 77.4, 82.7
SPOS = {"population": 50, "parents": 10, "mutations": 25, "crossovers": 25, "mutation_prob": 0.1, "generations": 20}
SPOS_MARK = "SPOS default, not published by LV-BERT"

# What each paper recipe's `expected:` block must hold besides source, notes and glue_dev_name.
OWT = {"glue_dev": DEV["ELECTRA-Small-OWT"], "glue_dev_average": statistics.mean(DEV["ELECTRA-Small-OWT"].values())}
SMALL_DEV = {"electra_small_glue_dev": DEV["ELECTRA-Small"],
             "electra_small_glue_dev_average": statistics.mean(DEV["ELECTRA-Small"].values())}
EXPECTED = {
    "lvbert-small.yaml": {
        "glue_test": LVBERT_SMALL_TEST,
        "glue_test_findings_pdf": LVBERT_SMALL_TEST_PDF,
        "params": PARAMS_SEARCHED_SMALL,
        "baseline_glue_test": ELECTRA_SMALL_TEST,
        **OWT,
        **SMALL_DEV,
    },
    "lvbert-small-official.yaml": {
        "arch": SEARCHED_SMALL,
        "glue_test": LVBERT_SMALL_TEST,
        "glue_test_findings_pdf": LVBERT_SMALL_TEST_PDF,
        "params": PARAMS_SEARCHED_SMALL,
        "baseline_glue_test": ELECTRA_SMALL_TEST,
        **OWT,
        **SMALL_DEV,
    },
    "electra-small-interleaved.yaml": {
        "arch": "AF" * 12,
        "glue_test": ELECTRA_SMALL_TEST,
        "params": PARAMS_ELECTRA_SMALL_SHAPE,
        "lvbert_small_glue_test": LVBERT_SMALL_TEST,
        **OWT,
        **SMALL_DEV,
    },
    "lvbert-medium.yaml": {"layer_params": LAYER_PARAMS["medium"], **OWT},
    "lvbert-base.yaml": {
        "layer_params": LAYER_PARAMS["base"],
        "baseline_glue_test": ELECTRA_BASE_TEST,
        "glue_dev": DEV["ELECTRA-Base"],
        "glue_dev_average": statistics.mean(DEV["ELECTRA-Base"].values()),
    },
    "lvbert-micro.yaml": {**OWT},
}
GPU_RECIPES = {  # name -> (size, pre-training lr, batch, fine-tuning lr)
    "lvbert-small.yaml": ("small", 5e-4, 128, 3e-4),
    "lvbert-medium.yaml": ("medium", 5e-4, 128, 3e-4),
    "lvbert-base.yaml": ("base", 2e-4, 256, 1e-4),
    "lvbert-small-official.yaml": ("small", 5e-4, 128, 3e-4),
    "electra-small-interleaved.yaml": ("small", 5e-4, 128, 3e-4),
}


def ids(path: Path) -> str:
    return path.stem


def load(path: Path) -> tuple[Recipe, Any]:
    recipe = load_recipe(path)
    return recipe, build_space(recipe.space)


def parse_baseline(space: Any, text: str) -> Any:
    """``interleaved`` names the AFAF... sequence (the space parses named orders)."""
    return space.parse(text)


def data(recipe: Recipe) -> Any:
    """The text settings of the recipe's task (corpus, tokenizer, seq_len, mask_prob)."""
    return build_task(recipe.task).config


def glue(recipe: Recipe) -> Any:
    return glue_config(recipe.section("glue"))


# ----------------------------------------------------------------- every recipe
def test_recipes_found():
    names = {p.name for p in RECIPES}
    assert set(EXPECTED) | set(GPU_RECIPES) | {"compare-micro.yaml"} <= names
    assert {p.name for p in PAPER} == set(EXPECTED), "every paper recipe needs its numbers checked here"


@pytest.mark.parametrize("path", RECIPES, ids=ids)
def test_recipe_loads_and_builds(path: Path):
    recipe, space = load(path)
    if recipe.search is not None:
        build_strategy(recipe.search.strategy, space, seed=recipe.seed)
        build_constraints(recipe.search.constraints, space)
        assert recipe.evaluator is not None, "a search needs an evaluator"
    if recipe.evaluator is not None:  # names and arguments only: the supernet evaluator needs a trained run
        factory = EVALUATORS.get(recipe.evaluator.name)
        params = inspect.signature(factory).parameters
        for key in recipe.evaluator.kwargs():
            assert key in params, f"evaluator.{key}: not an argument of {recipe.evaluator.name!r}"
    if recipe.arch is not None:
        space.parse(recipe.arch)
    for text in (recipe.retrain.baselines if recipe.retrain else {}).values():
        parse_baseline(space, text)
    if recipe.supernet is not None or recipe.retrain is not None:
        assert recipe.task is not None, "training stages need a task"
        build_task(recipe.task)
        RunContext(recipe, Path("unused")).retrain_task  # noqa: B018 (builds the retrain task)
    if recipe.section("glue") is not None:
        assert recipe.retrain is not None or glue(recipe).init_from, "the GLUE stage needs models to fine-tune"
        for task in glue(recipe).tasks:
            get_task(task)


@pytest.mark.parametrize("path", [p for p in RECIPES if load_recipe(p).space.name == "lvbert"], ids=ids)
def test_lvbert_recipe_dims_fit_data(path: Path):
    recipe, space = load(path)
    dims = space.dims
    if recipe.task is not None:
        cfg = data(recipe)
        assert cfg.seq_len <= dims.max_positions
        assert space.seq_len == cfg.seq_len, "FLOPs should be counted at the training length"
        tok = cfg.tokenizer
        if tok.pretrained is None:
            assert tok.vocab_size <= dims.vocab_size
        else:
            assert tok.pretrained == "bert-base-uncased" and dims.vocab_size == 30522
    if recipe.section("glue") is not None:
        assert glue(recipe).max_len <= dims.max_positions
    if dims.hidden < 768:  # well under a second each; LV-BERT-base's supernet takes > 2 s
        supernet = space.build_supernet(seed=0)
        assert supernet.embeddings.word_embeddings.weight.shape == (dims.vocab_size, dims.embedding)


@pytest.mark.parametrize("path", RECIPES, ids=ids)
def test_local_data_exists(path: Path, shared_data: Path):
    recipe = load_recipe(path)
    if recipe.task is not None:
        corpus = data(recipe).corpus
        sources = [corpus.source] if isinstance(corpus.source, str) else list(corpus.source or [])
        local = [s for s in sources if s not in HUB_SOURCES]
        for src in local:
            assert (shared_data / src).exists(), f"{src} is not under {shared_data}"
        if local and corpus.max_bytes is not None:
            total = sum(f.stat().st_size for s in local for f in
                        ([shared_data / s] if (shared_data / s).is_file() else (shared_data / s).rglob("*.txt")))
            assert total >= corpus.max_bytes, "the slice asks for more text than the sources hold"
    if recipe.section("glue") is not None and glue(recipe).source != "hub":
        assert (shared_data / glue(recipe).source).is_dir()


# ----------------------------------------------------------------- paper recipes
def test_reference_tables_match_library():
    """The tables copied here equal nasplug.glue.reference's (both from LVBERT.md)."""
    assert ELECTRA_SMALL_DEV["scores"] == DEV["ELECTRA-Small"]
    assert ELECTRA_SMALL_OWT_DEV["scores"] == DEV["ELECTRA-Small-OWT"]
    assert ELECTRA_BASE_DEV["scores"] == DEV["ELECTRA-Base"]


@pytest.mark.parametrize("path", PAPER, ids=ids)
def test_paper_expected_block(path: Path):
    expected = load_recipe(path).expected
    assert expected is not None, "paper recipes need an expected: block"
    source = expected.get("source")
    assert isinstance(source, str) and ("2106.11740" in source or "electra" in source.lower())
    assert isinstance(expected.get("notes"), str) and expected["notes"].strip()
    numbers = {k: v for k, v in expected.items() if k not in ("source", "notes", "glue_dev_name")}
    want = EXPECTED[path.name]
    assert numbers.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float):
            assert numbers[key] == pytest.approx(value, abs=1e-9), key
        else:
            assert numbers[key] == value, key
    # the dev table's name says which model it is; the average is the mean of its 8 tasks
    name = expected["glue_dev_name"]
    model = max((m for m in DEV if name.startswith(m + " ")), key=len)
    assert expected["glue_dev"] == DEV[model]
    assert list(expected["glue_dev"]) == list(TASKS8)
    assert expected["glue_dev_average"] == pytest.approx(statistics.mean(expected["glue_dev"].values()), abs=1e-9)


@pytest.mark.parametrize("name", sorted(GPU_RECIPES))
def test_paper_sizes(name: str):
    recipe, space = load(REPO / "recipes" / name)
    size, *_ = GPU_RECIPES[name]
    d = space.dims
    assert (d.hidden, d.heads, d.ffn, d.embedding, d.generator_hidden) == SIZES[size]
    assert (d.slots, d.vocab_size, d.max_positions, d.type_vocab_size, d.kernel_size) == (24, 30522, 512, 2, 9)
    assert {k: d.layer_params(k) for k in LAYER_PARAMS[size]} == LAYER_PARAMS[size]
    assert space.size() == 3**24


@pytest.mark.parametrize("name", sorted(GPU_RECIPES))
def test_paper_training_settings(name: str):
    recipe, _ = load(REPO / "recipes" / name)
    _, lr, batch, ft_lr = GPU_RECIPES[name]
    cfg = data(recipe)
    assert cfg.seq_len == 128
    assert cfg.tokenizer.pretrained == "bert-base-uncased"
    assert cfg.corpus.source in HUB_SOURCES  # OpenWebText
    r = recipe.retrain
    assert r is not None
    task = RunContext(recipe, Path("unused")).retrain_task
    assert (task.name, task.generator_weight, task.discriminator_weight, task.config.mask_prob) == \
        ("electra", 1.0, 50.0, 0.15)
    assert (r.steps, r.warmup(), r.weight_decay, r.lr, r.batch_size) == (1_000_000, 10_000, 0.01, lr, batch)
    # LVBERT.md "Training recipe": the official example builder, masking and optimiser
    assert cfg.packing == "electra" and not cfg.split_sentences
    assert task.masking == "electra" and task.config.masking == "electra"  # explicit in the recipe
    assert r.optimizer == "official"
    if recipe.supernet is not None:
        assert recipe.supernet.optimizer == "official" and cfg.masking == "bert"  # an MLM supernet: BERT masking
    g = glue(recipe)
    assert g is not None and g.source == "hub"
    assert (g.lr, g.layerwise_decay, g.weight_decay, g.warmup, g.batch_size, g.max_len) == (
        ft_lr,
        0.8,
        0.01,
        0.1,
        32,
        128,
    )
    assert g.optimizer == "official"
    assert g.epochs is None  # the task table: 3 epochs, RTE and STS-B 10
    assert g.seeds == list(range(10)) and g.both_orders
    assert set(TASKS8) <= set(g.tasks)
    if recipe.arch is not None:  # fixed arch: retrain + GLUE only
        assert recipe.supernet is None and recipe.search is None and recipe.evaluator is None
    else:
        assert recipe.supernet is not None and recipe.search is not None
        assert recipe.evaluator is not None and recipe.evaluator.name == "supernet"


OFFICIAL_KEYS = ("packing", "masking", "optimizer", "layerwise_decay", "both_orders", "official_padding")


@pytest.mark.parametrize("name", sorted(GPU_RECIPES))
def test_paper_official_settings_say_where_they_come_from(name: str):
    """Every line setting an official-code detail carries a comment naming its source."""
    lines = (REPO / "recipes" / name).read_text().splitlines()
    for key in OFFICIAL_KEYS:
        found = [ln for ln in lines if re.match(rf"\s+{key}:", ln)]
        assert found, f"{name}: no {key} line"
        for line in found:
            comment = line.partition("#")[2]
            assert "paper" in comment or "chosen here" in comment, f"{name}: {line.strip()}"


@pytest.mark.parametrize("name", [n for n in sorted(GPU_RECIPES) if "official" not in n and "electra" not in n])
def test_paper_search_is_spos_and_marked(name: str):
    """Unpublished settings are SPOS defaults, each marked on its line."""
    path = REPO / "recipes" / name
    recipe, _ = load(path)
    assert recipe.search is not None
    args = recipe.search.strategy.kwargs()
    assert recipe.search.strategy.name == "evolution"
    assert {k: args[k] for k in SPOS} == SPOS
    assert recipe.search.budget == 1000 == SPOS["population"] * SPOS["generations"]
    lines = path.read_text().splitlines()
    for key in (*SPOS, "budget"):
        line = next(ln for ln in lines if re.match(rf"\s+{key}:", ln))
        assert SPOS_MARK in line, f"{key}: mark it '# {SPOS_MARK}'"
    steps = next(ln for ln in lines if re.match(r"\s+steps: 200000", ln))
    assert "not published by LV-BERT" in steps


def test_lvbert_small_count_constraint():
    recipe, space = load(REPO / "recipes" / "lvbert-small.yaml")
    assert space.counts == {"conv": (8, 8), "attn": (8, 8), "ffn": (8, 8)}
    valid = math.factorial(24) // math.factorial(8) ** 3
    assert space.num_valid() == valid and round(100 * valid / space.size(), 2) == 3.35  # LVBERT.md: 3.35%
    # every 8/8/8 arch has the searched sequence's parameter count
    assert space.count_metrics({"conv": 8, "attn": 8, "ffn": 8})["params"] == PARAMS_SEARCHED_SMALL
    assert "official" in recipe.retrain.baselines
    assert space.format(parse_baseline(space, recipe.retrain.baselines["official"])) == SEARCHED_SMALL
    with pytest.raises(NasplugError):  # why the interleaved baseline is not in this recipe
        parse_baseline(space, "interleaved")


def test_official_sequence():
    from nasplug.spaces.lvbert import LVBERT_SMALL_SEARCHED, arch_to_ints

    recipe, space = load(REPO / "recipes" / "lvbert-small-official.yaml")
    arch = space.parse(recipe.arch)
    assert space.format(arch) == LVBERT_SMALL_SEARCHED == SEARCHED_SMALL
    assert arch_to_ints(arch) == SEARCHED_SMALL_INTS
    assert space.metrics(arch)["params"] == PARAMS_SEARCHED_SMALL


def test_electra_small_interleaved():
    from nasplug.spaces.lvbert import interleaved

    recipe, space = load(REPO / "recipes" / "electra-small-interleaved.yaml")
    arch = space.parse(recipe.arch)
    assert space.format(arch) == interleaved(24) == "AF" * 12
    assert space.metrics(arch)["params"] == PARAMS_ELECTRA_SMALL_SHAPE


# ----------------------------------------------------------------- CPU recipes
def test_lvbert_micro():
    path = REPO / "recipes" / "lvbert-micro.yaml"
    recipe, space = load(path)
    d = space.dims
    assert (d.hidden, d.slots, d.vocab_size, space.seq_len) == (128, 12, 8192, 64)
    assert data(recipe).seq_len == 64 and data(recipe).tokenizer.vocab_size == 8192
    assert 20e6 <= data(recipe).corpus.max_bytes <= 30e6
    assert recipe.supernet.batch_size == 32 and recipe.supernet.device == "cpu"
    assert space.num_valid() == space.size() == 3**12  # unconstrained
    assert recipe.evaluator.name == "supernet" and recipe.evaluator.kwargs()["batches"] == 8
    assert 200 <= recipe.search.budget <= 300
    assert recipe.retrain.baselines == {"interleaved": "interleaved"}
    g = glue(recipe)
    assert {"CoLA", "SST-2", "MRPC", "STS-B", "RTE"} <= set(g.tasks)
    assert g.max_len == 64 and 1 <= (g.epochs or 0) <= 3 and 1 <= len(g.seeds) <= 3 and g.max_train_examples
    assert "Time budget" in path.read_text().split("\nname:")[0]
    # the official details at CPU size: two-segment rows, the official optimiser everywhere
    cfg = data(recipe)
    assert cfg.packing == "electra" and cfg.split_sentences and cfg.masking == "bert"
    assert g.optimizer == "official"
    # AdamW for the short pre-training (the official optimiser stalls there: see the recipe)
    assert recipe.supernet.optimizer == recipe.retrain.optimizer == "adamw"


def test_compare_micro():
    path = REPO / "recipes" / "compare-micro.yaml"
    recipe, space = load(path)
    assert "DRAFT" not in path.read_text()
    assert space.size() == 3**8 == 6561
    assert recipe.evaluator.name == "supernet" and recipe.supernet is not None and recipe.task is not None
    micro = load_recipe(REPO / "recipes" / "lvbert-micro.yaml")
    assert recipe.task == micro.task  # one packed-data cache for both
    assert space.dims.hidden == 128 and space.seq_len == data(recipe).seq_len == 64


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_resolved_recipe_round_trips(path, tmp_path):
    """The run directory's recipe.yaml rebuilds the same recipe (nulls such as size: null kept)."""
    from nasplug.recipe import dump_recipe

    recipe = load_recipe(path)
    again = tmp_path / "recipe.yaml"
    again.write_text(dump_recipe(recipe))
    assert load_recipe(again).model_dump() == recipe.model_dump()
