"""Objectives: ELECTRA (acceptance 4), sampling, loss normalisation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from train_helpers import (
    TOKENS,
    one_thread,  # noqa: F401 (autouse fixture: one torch thread)
    step_records,
    tiny_cfg,
    tiny_data,
    tiny_space,
    tiny_supernet,
    tiny_task,
    weights,
)

from nasplug.oneshot.train import train
from nasplug.spaces.lvbert import LVBertSupernet
from nasplug.text import objectives
from nasplug.text.masking import mask_tokens


def test_electra_supernet_run_logs_both_accuracies_and_shares_the_layer_sequence(tmp_path: Path, monkeypatch) -> None:
    seen: list[tuple[int, dict]] = []  # (hidden size, active arch) of every supernet forward
    forward = LVBertSupernet.forward

    def spy(self, *args, **kwargs):
        seen.append((self.config.hidden_size, dict(self.require_active())))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(LVBertSupernet, "forward", spy)
    space = tiny_space(slots=4)
    model = tiny_supernet(space)
    result = train(model, tiny_task("electra"), tiny_cfg(steps=6, eval_archs=1), tmp_path, space=space,
                      progress=False)
    records = step_records(tmp_path)
    for rec in records.values():
        assert 0 <= rec["gen_mlm_acc"] <= 1 and 0 <= rec["disc_acc"] <= 1 and math.isfinite(rec["loss"])
        want = 1.0 * rec["gen_mlm_loss"] + 50.0 * rec["disc_loss"]
        assert rec["loss"] == pytest.approx(want)
    assert len({rec["arch"] for rec in records.values()}) > 1
    # Each training step: the generator (hidden 8) runs first, then the discriminator (hidden
    # 32), both through the same sampled arch.
    train_calls = seen[: 2 * 6]
    for step in range(6):
        (gh, garch), (dh, darch) = train_calls[2 * step], train_calls[2 * step + 1]
        assert (gh, dh) == (8, 32) and garch == darch
        assert space.format(darch) == records[step + 1]["arch"]
    assert {"heldout_gen_mlm_acc", "heldout_disc_acc"} <= result.heldout.keys()
    gen = weights(tmp_path / "generator.safetensors")
    disc = weights(tmp_path / "model.safetensors")
    assert any(k.startswith("slots.0.attn") for k in gen) and "discriminator_head.dense.weight" in disc
    # tied token embeddings: the generator file's embedding equals the discriminator's
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(gen.get(key, gen.get("mlm_head.decoder.weight")), disc[key])


def test_electra_standalone_generator_shares_embeddings_and_layers(tmp_path: Path) -> None:
    space = tiny_space()
    arch = {"L00": "conv", "L01": "attn", "L02": "ffn"}
    model = space.build(arch, head="discriminator", seed=0)
    gen = objectives.build_generator(model, seed=3)
    assert gen.lvbert.embeddings is model.lvbert.embeddings
    assert gen.mlm_head.decoder.weight is model.lvbert.embeddings.word_embeddings.weight
    assert gen.config.layers == model.config.layers and gen.config.hidden_size == 8
    result = train(model, tiny_task("electra"), tiny_cfg(steps=3), tmp_path, progress=False)
    assert {"gen_mlm_acc", "disc_acc"} <= result.metrics.keys()


def test_sample_tokens_follows_the_softmax() -> None:
    logits = torch.tensor([[0.0, 0.0, 50.0, 0.0], [math.log(3), 0.0, -1e9, -1e9]])
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0))
    assert objectives.sample_tokens(logits[:1].expand(5, 4), u[:5]).tolist() == [2] * 5
    draws = objectives.sample_tokens(logits[1:].expand(20000, 4), u)
    assert set(draws.tolist()) == {0, 1}
    assert (draws == 0).float().mean().item() == pytest.approx(0.75, abs=0.02)
    assert objectives.sample_tokens(logits[1:], torch.tensor([0.999999])).item() == 1


def test_mlm_loss_split_over_micro_batches_sums_to_the_batch_loss() -> None:
    space = tiny_space()
    model = tiny_supernet(space, dropout=0.0).eval()
    model.activate({"L00": "attn", "L01": "conv", "L02": "ffn"})
    rows = tiny_data().train[:8].long()
    ids, labels = mask_tokens(rows, TOKENS, torch.Generator().manual_seed(0))
    n = int((labels != -100).sum())

    def batch(sl: slice) -> objectives.MicroBatch:
        return objectives.MicroBatch(ids[sl], labels[sl], rows[sl], (rows[sl] != 0).long())

    whole, stats = objectives.mlm_step(model, batch(slice(0, 8)), n)
    parts = [objectives.mlm_step(model, batch(slice(i, i + 2)), n) for i in range(0, 8, 2)]
    assert sum(p[0] for p in parts).item() == pytest.approx(whole.item(), rel=1e-5)
    assert sum(p[1]["mlm_correct"] for p in parts) == stats["mlm_correct"]


@pytest.mark.parametrize("vocab", [7, 300])
def test_argmax_hits_counts_the_rows_whose_first_maximum_is_the_goal(vocab: int) -> None:
    """Against argmax on logits full of ties (few distinct values), NaN-free, where goals are
    often a tied maximum that comes after another one (argmax says no) or before (yes)."""
    gen = torch.Generator().manual_seed(vocab)
    for trial in range(20):
        logits = torch.randint(0, 3 if trial % 2 else 1000, (64, vocab), generator=gen).float()
        goal = torch.where(torch.rand(64, generator=gen) < 0.5, logits.argmax(-1),
                           torch.randint(0, vocab, (64,), generator=gen))
        top, picked = logits.amax(-1), logits.gather(1, goal[:, None]).squeeze(1)
        before = logits.clone()
        got = objectives.argmax_hits(logits, goal, picked, top)
        assert got == int((logits.argmax(-1) == goal).sum())
        assert torch.equal(logits, before)
