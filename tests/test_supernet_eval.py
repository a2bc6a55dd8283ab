"""SupernetEvaluator: fixed held-out inputs, shared-prefix == one-by-one, constraints."""

from __future__ import annotations

import random

import pytest
import torch

from nasplug.masking import MaskedBatch
from nasplug.spaces.lvbert import LVBertSpace
from nasplug.supernet_eval import SupernetEvaluator

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


def test_shared_prefix_equals_one_by_one_exactly(setup):
    space, supernet = setup
    archs = children(space)
    shared = SupernetEvaluator(supernet, batches(), space=space).evaluate_batch(archs)
    alone = SupernetEvaluator(supernet, batches(), space=space, prefix_sharing=False).evaluate_batch(archs)
    assert shared == alone  # exact float equality, every metric
    single = [SupernetEvaluator(supernet, batches(), space=space)(a) for a in archs[:5]]
    assert single == shared[:5]


def test_metrics_match_a_plain_forward(setup):
    space, supernet = setup
    arch = space.sample(random.Random(3))
    data = batches(num=1)
    got = SupernetEvaluator(supernet, data, space=space)(arch)
    model = supernet.extract(arch, head="mlm").eval()
    with torch.no_grad():
        out = model(input_ids=data[0].input_ids, labels=data[0].labels)
    target = data[0].labels[data[0].labels != -100]
    assert got["mlm_acc"] == pytest.approx(float((out.logits.argmax(-1) == target).float().mean()))
    assert got["mlm_loss"] == pytest.approx(float(out.loss), rel=1e-5)
    assert got["params"] == space.metrics(arch)["params"] and "flops" in got


def test_different_archs_get_different_scores(setup):
    space, supernet = setup
    results = SupernetEvaluator(supernet, batches(), space=space).evaluate_batch(children(space, n=10))
    assert len({r["mlm_loss"] for r in results}) > 5


def test_padding_is_masked_out(setup):
    space, supernet = setup
    data = batches(num=1)
    padded_ids = torch.cat([data[0].input_ids, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    padded_labels = torch.cat([data[0].labels, torch.full((3, 4), -100)], dim=1)
    arch = space.sample(random.Random(5))
    plain = SupernetEvaluator(supernet, data, pad_id=0)(arch)
    padded = SupernetEvaluator(supernet, [MaskedBatch(padded_ids, padded_labels)], pad_id=0)(arch)
    assert padded["mlm_acc"] == plain["mlm_acc"]
    assert padded["mlm_loss"] == pytest.approx(plain["mlm_loss"], abs=1e-5)


def test_electra_metrics(setup):
    space, supernet = setup
    generator = supernet.generator(seed=1)
    data = batches()
    gen = torch.Generator().manual_seed(9)
    replacements = [torch.randint(5, 61, b.labels.shape, generator=gen) for b in data]
    archs = children(space, n=6)
    shared = SupernetEvaluator(supernet, data, generator=generator, replacements=replacements).evaluate_batch(archs)
    alone = SupernetEvaluator(supernet, data, generator=generator, replacements=replacements,
                              prefix_sharing=False).evaluate_batch(archs)
    assert shared == alone
    assert all(0.0 <= r["gen_mlm_acc"] <= 1.0 and 0.0 <= r["disc_acc"] <= 1.0 for r in shared)


def test_bad_precision_is_one_line(setup):
    from nasplug.errors import NasplugError

    with pytest.raises(NasplugError, match="evaluator.precision"):
        SupernetEvaluator(setup[1], batches(), precision="fp8")
