"""SupernetEvaluator: fixed held-out inputs, shared-prefix == one-by-one, constraints."""

from __future__ import annotations

import random

import pytest
import torch

from nasplug.spaces.lvbert import LVBertSpace
from nasplug.text.masking import MaskedBatch
from nasplug.text.tasks import text_evaluator

TINY = dict(hidden=32, heads=1, ffn=64, embedding=32, vocab_size=61, max_positions=24)


def batches(num: int = 2, rows: int = 3, length: int = 12, vocab: int = 61, seed: int = 0) -> list[MaskedBatch]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num):
        ids = torch.randint(5, vocab, (rows, length), generator=gen)
        picked = torch.rand(rows, length, generator=gen) < 0.3
        picked[:, 0] = True
        labels = torch.where(picked, ids, torch.full_like(ids, -100))
        out.append(MaskedBatch(torch.where(picked, torch.full_like(ids, 4), ids), labels))
    return out


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    space = LVBertSpace(slots=6, **TINY)
    supernet = space.build_supernet()
    return space, supernet


def children(space, n=30, seed=0):
    """Archs like one evolution generation: mutants of a few parents (long shared prefixes)."""
    rng = random.Random(seed)
    parents = [space.sample(rng) for _ in range(4)]
    return [space.mutate(rng.choice(parents), rng, 0.2) for _ in range(n)] + parents


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_shared_prefix_equals_one_by_one_exactly(setup, precision):
    space, supernet = setup
    archs = children(space)
    shared = text_evaluator(supernet, batches(), space=space, precision=precision).evaluate_batch(archs)
    alone = text_evaluator(supernet, batches(), space=space, prefix_sharing=False,
                           precision=precision).evaluate_batch(archs)
    assert shared == alone  # exact float equality, every metric
    single = [text_evaluator(supernet, batches(), space=space, precision=precision)(a) for a in archs[:5]]
    assert single == shared[:5]
    if precision == "bf16":  # the bf16 path really ran: its figures are not fp32's
        fp32 = text_evaluator(supernet, batches(), space=space, precision="fp32").evaluate_batch(archs)
        assert [r["mlm_loss"] for r in fp32] != [r["mlm_loss"] for r in shared]


def dtype_spy(seen: dict[str, set], where: str):
    """A forward hook adding ``(input dtype, output dtype)`` of each call to ``seen[where]``."""
    def hook(module, args, output):
        seen[where].add((args[0].dtype, output.dtype))
    return hook


def test_bf16_scoring_runs_the_vocabulary_product_in_bf16_and_decides_accuracy_in_fp32(setup, monkeypatch):
    """The layers and the decoder's product run in bf16 (the head's layers before it in fp32);
    the accuracy is what the fp32 head gives on the same hidden states, exactly, and the loss
    within rounding."""
    from nasplug.text import bf16_vocab

    monkeypatch.setattr(bf16_vocab, "MIN_DECODER_WEIGHTS", 0)  # the tiny decoder here would stay in fp32
    space, supernet = setup
    archs = children(space, n=8)
    seen: dict[str, set] = {"layers": set(), "head": set()}
    handles = [supernet.mlm_head.decoder.register_forward_hook(dtype_spy(seen, "head")),
               *(m.register_forward_hook(dtype_spy(seen, "layers")) for name, m in supernet.named_modules()
                 if isinstance(m, torch.nn.Linear) and not name.startswith("mlm_head"))]
    try:
        got = text_evaluator(supernet, batches(), space=space, precision="bf16").evaluate_batch(archs)
    finally:
        for handle in handles:
            handle.remove()
    assert (torch.bfloat16, torch.bfloat16) in seen["layers"], "the layers' products run in bf16"
    # the decoder module runs once per block, on no rows, in fp32 (its input is read off there);
    # its product then runs in bf16 outside the module
    assert seen["head"] == {(torch.float32, torch.float32)}
    monkeypatch.setattr(bf16_vocab, "decoder_of", lambda net: None)  # the whole head in fp32
    fp32_head = text_evaluator(supernet, batches(), space=space, precision="bf16").evaluate_batch(archs)
    assert [r["mlm_acc"] for r in got] == [r["mlm_acc"] for r in fp32_head]
    for mine, theirs in zip(got, fp32_head, strict=True):
        assert mine["mlm_loss"] == pytest.approx(theirs["mlm_loss"], rel=2e-3)
    assert [r["mlm_loss"] for r in got] != [r["mlm_loss"] for r in fp32_head]  # the bf16 product did run


def test_metrics_match_a_plain_forward(setup):
    space, supernet = setup
    arch = space.sample(random.Random(3))
    data = batches(num=1)
    got = text_evaluator(supernet, data, space=space, precision="fp32")(arch)  # against an fp32 forward
    model = supernet.extract(arch, head="mlm").eval()
    with torch.no_grad():
        out = model(input_ids=data[0].input_ids, labels=data[0].labels)
    target = data[0].labels[data[0].labels != -100]
    assert got["mlm_acc"] == pytest.approx(float((out.logits.argmax(-1) == target).float().mean()))
    assert got["mlm_loss"] == pytest.approx(float(out.loss), rel=1e-5)
    assert got["params"] == space.metrics(arch)["params"] and "flops" in got


def test_different_archs_get_different_scores(setup):
    space, supernet = setup
    results = text_evaluator(supernet, batches(), space=space).evaluate_batch(children(space, n=10))
    assert len({r["mlm_loss"] for r in results}) > 5


def test_padding_is_masked_out(setup):
    space, supernet = setup
    data = batches(num=1)
    padded_ids = torch.cat([data[0].input_ids, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    padded_labels = torch.cat([data[0].labels, torch.full((3, 4), -100)], dim=1)
    arch = space.sample(random.Random(5))
    plain = text_evaluator(supernet, data, pad_id=0)(arch)
    padded = text_evaluator(supernet, [MaskedBatch(padded_ids, padded_labels)], pad_id=0)(arch)
    assert padded["mlm_acc"] == plain["mlm_acc"]
    assert padded["mlm_loss"] == pytest.approx(plain["mlm_loss"], abs=1e-5)


def electra_inputs(supernet):
    """A generator, held-out batches and a fixed replacement id per masked position."""
    data = batches()
    gen = torch.Generator().manual_seed(9)
    replacements = [torch.randint(5, 61, b.labels.shape, generator=gen) for b in data]
    return supernet.generator(seed=1), data, replacements


def test_electra_metrics(setup):
    space, supernet = setup
    generator, data, replacements = electra_inputs(supernet)
    archs = children(space, n=6)
    shared = text_evaluator(supernet, data, generator=generator, replacements=replacements).evaluate_batch(archs)
    alone = text_evaluator(supernet, data, generator=generator, replacements=replacements,
                              prefix_sharing=False).evaluate_batch(archs)
    assert shared == alone
    assert all(0.0 <= r["gen_mlm_acc"] <= 1.0 and 0.0 <= r["disc_acc"] <= 1.0 for r in shared)


def test_bf16_electra_scoring_runs_the_discriminator_head_in_fp32(setup):
    space, supernet = setup
    generator, data, replacements = electra_inputs(supernet)
    seen: dict[str, set] = {"gen": set(), "disc": set()}
    handles = [generator.mlm_head.decoder.register_forward_hook(dtype_spy(seen, "gen")),
               supernet.discriminator_head.register_forward_hook(dtype_spy(seen, "disc"))]
    try:
        bf16 = text_evaluator(supernet, data, generator=generator, replacements=replacements,
                              precision="bf16").evaluate_batch(children(space, n=3))
    finally:
        for handle in handles:
            handle.remove()
    # the generator's decoder module: read off on no rows in fp32 (its product then in bf16,
    # nasplug.text.bf16_vocab)
    assert seen == {"gen": {(torch.float32, torch.float32)}, "disc": {(torch.float32, torch.float32)}}
    assert all(0.0 <= r["disc_acc"] <= 1.0 for r in bf16)


def test_bad_precision_is_one_line(setup):
    from nasplug.errors import NasplugError

    with pytest.raises(NasplugError, match="evaluator.precision"):
        text_evaluator(setup[1], batches(), precision="fp8")


# ---------------------------------------------------------------------- states kept between calls
@pytest.fixture
def fresh():
    """A supernet of the tests' own, for tests that wrap its methods or change its weights."""
    torch.manual_seed(0)
    space = LVBertSpace(slots=6, **TINY)
    return space, space.build_supernet()


def counting_layers(supernet):
    """Wrap ``run_layer`` to count the layers the evaluator computes."""
    calls = {"layers": 0}
    original = supernet.run_layer

    def run_layer(*args, **kwargs):
        calls["layers"] += 1
        return original(*args, **kwargs)

    supernet.run_layer = run_layer
    return calls


def test_children_start_from_their_parents_kept_states_and_match_one_by_one(fresh):
    space, supernet = fresh
    rng = random.Random(1)
    parents = [space.sample(rng) for _ in range(3)]
    kids = [space.mutate(rng.choice(parents), rng, 0.3) for _ in range(12)]
    alone = text_evaluator(supernet, batches(), space=space, prefix_sharing=False)
    expected = alone.evaluate_batch(kids)

    warm = text_evaluator(supernet, batches(), space=space, keep=3)
    warm.evaluate_batch(parents)
    assert warm.cache_bytes > 0 and all(len(cache) == 3 for cache in warm.caches)
    calls = counting_layers(supernet)
    assert warm.evaluate_batch(kids) == expected  # exact, every metric
    warm_layers = calls["layers"]
    calls["layers"] = 0
    cold = text_evaluator(supernet, batches(), space=space, keep=0)
    assert cold.evaluate_batch(kids) == expected
    assert cold.cache_bytes == 0
    assert warm_layers < calls["layers"], (warm_layers, calls["layers"])


def test_only_layers_no_exact_evaluator_could_skip_are_computed(fresh):
    """Children scored after a better sibling still resume from their parent: a parent pushed
    out of the kept best during a call keeps its states until the call ends."""
    space, supernet = fresh
    rng = random.Random(3)
    parents = [space.sample(rng) for _ in range(3)]
    kids = [space.mutate(rng.choice(parents), rng, 0.3) for _ in range(12)]
    data = batches()
    warm = text_evaluator(supernet, data, keep=3, rank_metric="mlm_loss", rank_direction="minimize")
    warm.evaluate_batch(parents)
    kept_before = set(warm.caches[0].kept)
    calls = counting_layers(supernet)
    assert warm.evaluate_batch(kids) == text_evaluator(supernet, data, prefix_sharing=False).evaluate_batch(kids)
    assert set(warm.caches[0].kept) != kept_before, "some child must have pushed a parent out"
    routes = [tuple(supernet.route(a)) for a in kids]
    held = {tuple(supernet.route(a))[:d] for a in parents for d in range(1, space.slots + 1)}
    unavoidable = {r[:d] for r in routes for d in range(1, space.slots + 1)} - held
    assert calls["layers"] == len(unavoidable) * len(data)
    assert all(cache.retired == [] for cache in warm.caches), "states of archs out of the best go when the call ends"


def test_kept_states_are_the_best_archs_by_the_rank_metric(fresh):
    space, supernet = fresh
    archs = [space.sample(random.Random(s)) for s in range(8)]
    evaluator = text_evaluator(supernet, batches(num=1), rank_metric="mlm_loss", rank_direction="minimize", keep=2)
    results = evaluator.evaluate_batch(archs)
    best = sorted(range(8), key=lambda i: results[i]["mlm_loss"])[:2]
    assert set(evaluator.caches[0].kept) == {tuple(supernet.route(archs[i])) for i in best}


def test_cache_budget_bounds_the_kept_states(fresh):
    space, supernet = fresh
    data = batches(num=1)
    state_bytes = data[0].input_ids.numel() * TINY["hidden"] * 4  # one hidden state [rows, length, hidden] fp32
    archs = [space.sample(random.Random(s)) for s in range(8)]
    budget_mb = 8 * state_bytes / 2**20  # room for 8 states: one full route of 6 plus a bit
    evaluator = text_evaluator(supernet, data, keep=5, cache_mb=budget_mb)
    assert evaluator.evaluate_batch(archs) == text_evaluator(supernet, data, prefix_sharing=False).evaluate_batch(archs)
    assert 0 < evaluator.cache_bytes <= 8 * state_bytes
    assert len(evaluator.caches[0]) < 5


def test_kept_states_are_dropped_when_the_weights_change(fresh):
    space, supernet = fresh
    arch = space.sample(random.Random(0))
    evaluator = text_evaluator(supernet, batches())
    before = evaluator(arch)
    assert evaluator.cache_bytes > 0
    with torch.no_grad():
        for p in supernet.parameters():
            p.mul_(1.5)
    after = evaluator(arch)
    assert after != before
    assert after == text_evaluator(supernet, batches(), prefix_sharing=False)(arch)


def test_kept_states_are_dropped_when_a_buffer_changes_in_place(fresh):
    """BatchNorm-like statistics are weights too: states made before they changed are stale."""
    space, supernet = fresh
    supernet.register_buffer("running_stat", torch.zeros(3))
    arch = space.sample(random.Random(0))
    evaluator = text_evaluator(supernet, batches())
    cleared = []
    original = evaluator.clear_cache
    evaluator.clear_cache = lambda: (cleared.append(True), original())[1]
    evaluator(arch)
    evaluator(arch)
    before = len(cleared)
    supernet.running_stat.add_(1.0)
    evaluator(arch)
    assert len(cleared) == before + 1


def test_electra_kept_states_match_one_by_one(setup):
    space, supernet = setup
    generator, data, replacements = electra_inputs(supernet)
    rng = random.Random(4)
    parents = [space.sample(rng) for _ in range(3)]
    kids = [space.mutate(rng.choice(parents), rng, 0.3) for _ in range(8)]
    shared = text_evaluator(supernet, data, generator=generator, replacements=replacements, keep=3)
    shared.evaluate_batch(parents)
    alone = text_evaluator(supernet, data, generator=generator, replacements=replacements, prefix_sharing=False)
    assert shared.evaluate_batch(kids) == alone.evaluate_batch(kids)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"keep": -1}, "evaluator.keep"),
        ({"cache_mb": -1}, "evaluator.cache_mb"),
        ({"rank_direction": "up"}, "evaluator.rank_direction"),
    ],
)
def test_bad_cache_settings_are_one_line(setup, kwargs, field):
    from nasplug.errors import NasplugError

    with pytest.raises(NasplugError, match=field):
        text_evaluator(setup[1], batches(), **kwargs)


def test_every_batch_ranks_its_kept_archs_on_the_final_figures(fresh):
    space, supernet = fresh
    archs = [space.sample(random.Random(s)) for s in range(12)]
    evaluator = text_evaluator(supernet, batches(num=4), keep=3, rank_metric="mlm_loss", rank_direction="minimize")
    results = evaluator.evaluate_batch(archs)
    final = {tuple(supernet.route(a)): r["mlm_loss"] for a, r in zip(archs, results)}
    assert len(set(final.values())) == 12
    for cache in evaluator.caches:
        assert cache.kept == {route: final[route] for route in cache.kept}
    # the last batch's offers are ranked on every batch: it keeps the final top 3
    top3 = sorted(final, key=final.get)[:3]
    assert sorted(final[r] for r in evaluator.caches[-1].kept) == sorted(final[r] for r in top3)


def test_duplicates_and_weights_replaced_through_data(fresh):
    space, supernet = fresh
    arch = space.sample(random.Random(0))
    evaluator = text_evaluator(supernet, batches())
    first, again = evaluator.evaluate_batch([arch, arch])
    assert first == again == text_evaluator(supernet, batches(), prefix_sharing=False)(arch)
    for p in supernet.parameters():
        p.data = p.data * 0.5  # a new tensor: no in-place version bump
    assert evaluator(arch) == text_evaluator(supernet, batches(), prefix_sharing=False)(arch) != first


def test_rank_metric_must_be_measured(setup):
    from nasplug.errors import NasplugError

    space, supernet = setup
    with pytest.raises(NasplugError, match="evaluator.rank_metric: 'mlm_accuracy'"):
        text_evaluator(supernet, batches(), rank_metric="mlm_accuracy")
    generator, data, replacements = electra_inputs(supernet)
    with pytest.raises(NasplugError, match="allowed: gen_mlm_acc, gen_mlm_loss, disc_acc"):
        text_evaluator(supernet, data, generator=generator, replacements=replacements, rank_metric="mlm_acc")


def test_close_releases_the_kept_states_and_nothing_keeps_the_evaluator_alive(fresh):
    import weakref

    space, supernet = fresh
    evaluator = text_evaluator(supernet, batches())
    evaluator.evaluate_batch([space.sample(random.Random(s)) for s in range(3)])
    assert evaluator.cache_bytes > 0
    evaluator.close()
    assert evaluator.cache_bytes == 0
    evaluator.evaluate_batch([space.sample(random.Random(7))])
    alive = weakref.ref(evaluator)
    del evaluator
    assert alive() is None, "a reference cycle would keep the kept states until the next gc run"
