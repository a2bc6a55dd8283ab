"""Two-segment pre-training rows (the official ELECTRA / LV-BERT example builder) and their
segment ids through packing, the cache, training batches, held-out batches and the lanes."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from train_helpers import TOKENS, tiny_cfg, tiny_space, tiny_supernet

from nasplug.text.corpus import CorpusConfig
from nasplug.text.examples import ExampleBuilder, build_examples, line_stream, split_sentences
from nasplug.text.packing import PackedData, build_dataset
from nasplug.text.tasks import ElectraTask, MLMTask
from nasplug.text.tokenizer import train_tokenizer

L = 32


def doc_lines(doc: int, lines: int, length: int) -> list[list[int]]:
    """Lines of one document; token ids encode (document, line) so rows can be traced back."""
    return [[10 + doc] * length for _ in range(lines)]


def stream(docs: list[list[list[int]]]) -> list[list[int] | None]:
    out: list[list[int] | None] = []
    for lines in docs:
        out.extend(lines)
        out.append(None)
    return out


def check_layout(rows: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Every row is [CLS] A [SEP] (B [SEP]) [PAD]...; segment 1 exactly on B [SEP]. Returns
    whether each row has two segments."""
    two = []
    for row, seg in zip(rows, segments):
        real = row[row != TOKENS.pad_id]
        assert (row[: len(real)] == real).all(), "padding only at the end"
        assert real[0] == TOKENS.cls_id and real[-1] == TOKENS.sep_id
        seps = np.flatnonzero(real == TOKENS.sep_id)
        assert len(seps) in (1, 2)
        expected = np.zeros(L, dtype=np.int8)
        if len(seps) == 2:
            expected[seps[0] + 1 : seps[1] + 1] = 1
        assert (seg == expected).all()
        two.append(len(seps) == 2)
    return np.array(two)


def test_official_builder_makes_two_segment_rows_within_documents():
    docs = [doc_lines(d, lines=200, length=3 + d % 5) for d in range(6)]
    rows, segments = build_examples(stream(docs), L, TOKENS, seed=0)
    two = check_layout(rows, segments)
    assert 0.8 < two.mean() < 0.95  # 90% two-segment, less the documents' short last rows
    for row in rows:  # document-aware: a row never mixes two documents
        body = set(row[(row >= 10)].tolist())
        assert len(body) == 1
    lengths = (rows != TOKENS.pad_id).sum(1)
    assert lengths.max() <= L and (lengths < L - 4).mean() > 0.02  # some random-length targets (5%)
    again, again_segments = build_examples(stream(docs), L, TOKENS, seed=0)
    assert (again == rows).all() and (again_segments == segments).all()
    other, _ = build_examples(stream(docs), L, TOKENS, seed=1)
    assert other.shape != rows.shape or (other != rows).any()


def test_builder_follows_the_official_rules_step_by_step():
    rng = random.Random(3)
    builder = ExampleBuilder(16, rng)
    assert builder.add_line([7] * 4) is None and builder.add_line([8] * 4) is None  # 8 < 16 tokens
    assert builder.add_line([9] * 4) is None
    replay = random.Random(3)
    example = builder.add_line([6] * 20)  # 32 >= 16: an example
    first_target = 100_000 if replay.random() < 0.1 else (16 - 3) // 2
    assert first_target == 6  # (seed 3 draws two segments)
    first, second = example
    # line 1 starts A; line 2 would make A 8 >= 6, and B is empty: a 50% draw decides
    assert first[:4] == [7] * 4
    assert len(first) <= 14 and len(second) == max(0, 16 - len(first) - 3)
    assert builder.length == 0 and builder.sentences == []
    assert builder.flush() is None  # nothing pending at a document end


def test_line_stream_skips_blank_lines_and_marks_document_ends():
    calls = []

    def tokenize(texts):
        calls.append(list(texts))
        return [[len(t)] for t in texts]

    out = list(line_stream(["a b\n\n  cc  \n", "ddd"], tokenize))
    assert out == [[3], [2], None, [3], None]
    assert split_sentences('It rained. "So?" she said. Then it stopped') == [
        "It rained.", '"So?" she said.', "Then it stopped"]


@pytest.fixture(scope="module")
def corpus_and_tokenizer(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    sentences = [
        f"The {w} sat on the {v} near the river." for w in ("cat", "dog", "owl", "fox") for v in ("mat", "log", "hill")
    ]
    docs = ["\n".join(" ".join(sentences[(d + i) % 12] for i in range(3)) for _ in range(6)) for d in range(40)]
    (root / "docs.txt").write_text("\n\n".join(docs) + "\n")
    cfg = CorpusConfig(source=str(root / "docs.txt"), document_by="paragraph", heldout_fraction=0.1)
    tok = train_tokenizer(docs, vocab_size=120)
    return cfg, tok


def test_packed_electra_rows_carry_segment_ids_through_the_cache(corpus_and_tokenizer, tmp_path):
    cfg, tok = corpus_and_tokenizer
    data = build_dataset(cfg, tok, L, tmp_path / "packed", packing="electra", split_sentences=True)
    assert data.train_segments is not None and data.train_segments.shape == data.train.shape
    assert data.heldout_segments is not None and data.heldout_segments.dtype == torch.int8
    two = check_layout(data.train.numpy(), data.train_segments.numpy())
    assert two.mean() > 0.5
    cached = build_dataset(cfg, tok, L, tmp_path / "packed", packing="electra", split_sentences=True)
    assert cached.meta == data.meta and torch.equal(cached.train_segments, data.train_segments)
    assert list((tmp_path / "packed").glob(".*")) == []  # no temporary file left behind
    stream_data = build_dataset(cfg, tok, L, tmp_path / "packed", packing="stream")
    assert stream_data.train_segments is None  # one segment: all zero
    lines = build_dataset(cfg, tok, L, tmp_path / "packed", packing="electra")
    assert lines.meta["key"] != data.meta["key"]  # the sentence split is part of the key


def segmented_data() -> PackedData:
    """Tiny rows with a second segment in every other row."""
    gen = torch.Generator().manual_seed(0)
    n, seq = 72, 16
    ids = 5 + torch.randint(0, 115, (n, seq), generator=gen)
    ids[:, 0], ids[:, -1] = TOKENS.cls_id, TOKENS.sep_id
    segments = torch.zeros(n, seq, dtype=torch.int8)
    ids[::2, 7] = TOKENS.sep_id
    segments[::2, 8:] = 1
    return PackedData(
        ids[:64].int(), ids[64:].int(), TOKENS, train_segments=segments[:64], heldout_segments=segments[64:]
    )


@pytest.mark.parametrize("cls", [MLMTask, ElectraTask])
def test_segment_ids_reach_training_batches_held_out_batches_and_lanes(cls):
    data = segmented_data()
    task = cls.from_data(data)
    batches = task.training_batches(8, seed=0)
    rows, types = next(batches)
    micro, _ = task.micro_batches((rows, types), 1, 0, [slice(0, 4), slice(4, 8)], torch.device("cpu"))
    assert torch.equal(torch.cat([m.token_type_ids for m in micro]), types.long())
    assert (types.sum(1) > 0).any()
    held = task.heldout_batches(4, seed=0)
    assert torch.equal(torch.cat([b.token_type_ids for b in held]), data.heldout_segments.long())
    space = tiny_space(slots=2)
    model = tiny_supernet(space)
    aux = task.auxiliary(model, 0)
    lanes = task.lanes(model, held[0], aux, torch.device("cpu"))
    assert all(torch.equal(lane.embed_args[1], held[0].token_type_ids) for lane in lanes)


def test_the_type_one_embedding_is_trained_and_changes_held_out_figures(tmp_path):
    from nasplug.oneshot.train import train

    space = tiny_space(slots=2)
    model = tiny_supernet(space)
    before = model.embeddings.token_type_embeddings.weight.detach().clone()
    task = MLMTask.from_data(segmented_data())
    train(model, task, tiny_cfg(steps=3), tmp_path, space=space, progress=False)
    after = model.embeddings.token_type_embeddings.weight.detach()
    assert not torch.equal(before[1], after[1])  # segment 1 gets gradients (it never did before)
    arch = space.sample(random.Random(0))
    held = task.heldout_batches(4, seed=0)
    model.eval()
    with model.using(arch):
        base = task.figures(task.evaluate(model, held))
        with torch.no_grad():  # not a constant shift: LayerNorm would remove it
            model.embeddings.token_type_embeddings.weight[1] += torch.linspace(-1, 1, before.shape[1])
        moved = task.figures(task.evaluate(model, held))
    assert base != moved


def test_prefix_sharing_evaluator_passes_segment_ids_like_plain_evaluation():
    from nasplug.oneshot.evaluator import InheritedWeights

    space = tiny_space(slots=3)
    model = tiny_supernet(space).eval()
    task = ElectraTask.from_data(segmented_data())
    aux = task.auxiliary(model, 0)
    held = task.heldout_batches(4, seed=0)
    archs = [space.sample(random.Random(i)) for i in range(3)]
    shared = InheritedWeights(model, task, held, space=space, aux=aux)
    alone = InheritedWeights(model, task, held, space=space, aux=aux, prefix_sharing=False)
    assert shared.prefix_sharing and shared.evaluate_batch(archs) == alone.evaluate_batch(archs)
    flat = [b._replace(token_type_ids=torch.zeros_like(b.token_type_ids)) for b in held]
    ignored = InheritedWeights(model, task, flat, space=space, aux=aux).evaluate_batch(archs)
    assert ignored != shared.evaluate_batch(archs)  # the segment ids matter
