"""LV-BERT supernet: routing, exact extraction, heads, ELECTRA generator, HF export."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
)

from nasplug.errors import NasplugError
from nasplug.spaces.lvbert import (
    LVBertConfig,
    LVBertForMaskedLM,
    LVBertForPreTraining,
    LVBertForSequenceClassification,
    LVBertModel,
    LVBertSpace,
    LVBertSupernet,
    arch_from_string,
    layer_index,
    mlm_loss,
)

VOCAB = 100


def tiny_space(**kwargs) -> LVBertSpace:
    return LVBertSpace(size=None, hidden=32, heads=2, embedding=16, slots=4, vocab_size=VOCAB,
                       max_positions=64, **kwargs)


def batch(seed: int = 0, b: int = 3, t: int = 12):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (b, t), generator=gen)
    lengths = torch.tensor([t, t - 3, t - 7][:b])
    mask = (torch.arange(t)[None, :] < lengths[:, None]).long()
    labels = torch.where((torch.rand(b, t, generator=gen) < 0.3) & mask.bool(), ids, -100)
    labels[0, 1] = ids[0, 1]  # at least one masked token
    return ids * mask, mask, labels, torch.randint(0, 2, (b, t), generator=gen)


@pytest.fixture(scope="module")
def space() -> LVBertSpace:
    return tiny_space()


@pytest.fixture(scope="module")
def supernet(space) -> LVBertSupernet:
    return space.build_supernet(num_labels=3, seed=0).eval()


# ---------------------------------------------------------------------------- extraction
def test_extract_equals_routed_supernet_exactly_for_random_archs(space, supernet):
    ids, mask, _, types = batch()
    rng = random.Random(0)
    for _ in range(6):
        arch = space.sample(rng)
        model = supernet.extract(arch).eval()
        assert isinstance(model, LVBertModel) and model.config.layers == list(arch.values())
        with torch.no_grad(), supernet.using(arch):
            for kwargs in ({}, {"attention_mask": mask, "token_type_ids": types}):
                assert torch.equal(model(ids, **kwargs).last_hidden_state, supernet(ids, **kwargs))
            example = supernet.example_input(batch=2, seed=len(arch))
            assert example[1][-1].sum() < example[1][0].sum()  # the example has padding
            assert torch.equal(model(*example).last_hidden_state, supernet(*example))


def test_extracted_heads_equal_the_supernet_heads(space, supernet):
    ids, mask, labels, _ = batch(1)
    arch = arch_from_string("CAFC")
    with torch.no_grad(), supernet.using(arch):
        hidden = supernet(ids, mask)
        mlm = supernet.extract(arch, head="mlm").eval()
        out = mlm(ids, mask, labels=labels)
        assert torch.equal(out.logits, supernet.mlm_logits(hidden, labels))
        assert torch.equal(out.loss, mlm_loss(out.logits, labels))
        disc = supernet.extract(arch, head="discriminator").eval()
        assert torch.equal(disc(ids, mask).logits, supernet.discriminator_logits(hidden))
        cls = supernet.extract(arch, head="classification").eval()
        assert isinstance(cls, LVBertForSequenceClassification) and cls.config.num_labels == 3
        assert torch.equal(cls(ids, mask).logits, supernet.classify(hidden))


def test_extracted_weights_are_copies_and_tied(supernet):
    arch = arch_from_string("AAFF")
    model = supernet.extract(arch, head="mlm")
    assert model.mlm_head.decoder.weight is model.lvbert.embeddings.word_embeddings.weight
    before = supernet.slots[0]["attn"].query.weight.clone()
    with torch.no_grad():
        model.lvbert.layers[0].query.weight.add_(1.0)
    assert torch.equal(supernet.slots[0]["attn"].query.weight, before)
    assert supernet.mlm_head.decoder.weight is supernet.embeddings.word_embeddings.weight


def test_pieces_compose_to_the_forward_pass(supernet):
    ids, mask, _, _ = batch(2)
    arch = arch_from_string("FCAC")
    with torch.no_grad(), supernet.using(arch):
        hidden = supernet.embed(ids)
        for i, kind in enumerate(arch.values()):
            hidden = supernet.run_layer(i, kind, hidden, mask)
        assert torch.equal(hidden, supernet(ids, mask))


def test_mlm_logits_only_at_masked_positions(supernet):
    ids, mask, labels, _ = batch(3)
    arch = arch_from_string("CAFA")
    model = supernet.extract(arch, head="mlm").eval()
    with torch.no_grad():
        sparse = model(ids, mask, labels=labels)
        dense = model(ids, mask).logits
    n_masked = int((labels != -100).sum())
    assert sparse.logits.shape == (n_masked, VOCAB) and dense.shape == (*ids.shape, VOCAB)
    torch.testing.assert_close(sparse.logits, dense[labels != -100])
    expected = torch.nn.functional.cross_entropy(dense.view(-1, VOCAB), labels.view(-1))
    torch.testing.assert_close(sparse.loss, expected)


def test_routing_errors_name_the_problem(supernet):
    with pytest.raises(RuntimeError, match="activate"):
        supernet(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(NasplugError, match="3 choices, this supernet has 4 slots"):
        supernet.activate(arch_from_string("CAF"))
    small = tiny_space(allowed=["attn", "ffn"]).build_supernet()
    assert set(small.slots[0].keys()) == {"attn", "ffn"}
    with pytest.raises(NasplugError, match=r"L02: 'conv' is not held; allowed layer types: attn, ffn"):
        small.extract(arch_from_string("AFCA"))
    with pytest.raises(NasplugError, match="head: 'lm' is not a head"):
        small.extract(arch_from_string("AFFA"), head="lm")
    with pytest.raises(NasplugError, match="no 'classification' head"):
        small.extract(arch_from_string("AFFA"), head="classification")


def test_supernet_training_step_only_touches_the_active_path(space):
    supernet = space.build_supernet(seed=0).train()
    ids, mask, labels, _ = batch(4)
    arch = arch_from_string("CAFF")
    with supernet.using(arch):
        loss = mlm_loss(supernet.mlm_logits(supernet(ids, mask), labels), labels)
    loss.backward()
    assert supernet.slots[0]["conv"].glu_gate.weight.grad is not None
    assert supernet.slots[0]["attn"].query.weight.grad is None
    assert supernet.slots[3]["ffn"].intermediate.weight.grad is not None


def test_seeded_supernets_are_identical_and_differ_across_seeds(space):
    a, b, c = space.build_supernet(seed=5), space.build_supernet(seed=5), space.build_supernet(seed=6)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.slots[0]["conv"].kernel.weight, c.slots[0]["conv"].kernel.weight)
    assert torch.equal(a.slots[0]["conv"].kernel.bias, torch.zeros(2 * 9))


# ---------------------------------------------------------------------------- ELECTRA generator
def test_generator_shares_embeddings_at_the_generator_width():
    config = LVBertConfig.from_size("small", layers="CAF")
    gen_config = config.generator_config()
    assert (gen_config.hidden_size, gen_config.num_attention_heads, gen_config.intermediate_size) == (64, 1, 256)
    assert gen_config.embedding_size == 128 and gen_config.layers == config.layers
    disc = tiny_space().build_supernet(seed=0)
    gen = disc.generator(seed=1)
    assert gen.embeddings is disc.embeddings
    assert gen.mlm_head.decoder.weight is disc.embeddings.word_embeddings.weight
    assert gen.discriminator_head is None and gen.config.hidden_size == 8
    ids, mask, labels, _ = batch(5)
    arch = arch_from_string("AFCF")
    with torch.no_grad(), gen.using(arch):
        assert gen.mlm_logits(gen(ids, mask), labels).shape == ((labels != -100).sum(), VOCAB)
    shared = LVBertForMaskedLM(gen_config, embeddings=LVBertModel(config).embeddings)
    assert shared.mlm_head.decoder.weight is shared.lvbert.embeddings.word_embeddings.weight


# ---------------------------------------------------------------------------- Hugging Face export
@pytest.mark.parametrize("head, auto", [
    (None, AutoModel),
    ("mlm", AutoModelForMaskedLM),
    ("discriminator", AutoModelForPreTraining),
    ("classification", AutoModelForSequenceClassification),
])
def test_save_pretrained_from_pretrained_gives_identical_logits(supernet, tmp_path, head, auto):
    ids, mask, labels, _ = batch(6)
    arch = tiny_space().sample(random.Random(11))
    model = supernet.extract(arch, head=head).eval()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).layers == list(arch.values())
    loaded = auto.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    kwargs = {"labels": labels} if head == "mlm" else {}
    with torch.no_grad():
        assert torch.equal(loaded(ids, mask, **kwargs)[0 if head is None else "logits"],
                           model(ids, mask, **kwargs)[0 if head is None else "logits"])
    if head == "mlm":
        assert loaded.mlm_head.decoder.weight is loaded.lvbert.embeddings.word_embeddings.weight


def test_build_gives_fresh_seeded_models(space):
    arch = arch_from_string("CAFA")
    a = space.build(arch, head="discriminator", seed=3)
    b = space.build(arch, head="discriminator", seed=3)
    assert isinstance(a, LVBertForPreTraining)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    c = space.build(arch, head="classification", num_labels=1)
    ids, mask, _, _ = batch(7)
    out = c(ids, mask, labels=torch.tensor([0.5, -1.0, 2.0]))
    assert out.logits.shape == (3, 1) and out.loss.ndim == 0  # regression (MSE)
    names = [n for n, _ in c.named_parameters()]
    depths = {layer_index(n, 4) for n in names}
    assert depths == {0, 1, 2, 4}  # embeddings, two blocks of two sub-layers, head (official: n + 2)


def test_fill_mask_pipeline_loads_a_found_architecture(supernet, tmp_path):
    """The ecosystem path: save an extracted model + tokenizer, use it through ``pipeline``.
    (The ``Trainer`` needs ``accelerate``, which this environment does not install.)"""
    from transformers import BertTokenizer, pipeline

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(tmp_path / "vocab.txt"))
    model = supernet.extract(arch_from_string("CAFA"), head="mlm").eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    best = pipeline("fill-mask", model=str(tmp_path), tokenizer=str(tmp_path))("w1 w2 [MASK] w3", top_k=1)[0]
    ids = tokenizer("w1 w2 [MASK] w3", return_tensors="pt")
    with torch.no_grad():
        probs = model(**ids).logits[0, 3].softmax(-1)
    assert best["token"] == int(probs.argmax())
    assert abs(best["score"] - float(probs.max())) < 1e-5
