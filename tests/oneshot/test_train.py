"""The pre-training loop: schedule, determinism, accumulation, NaN stop, fixed archs, SPOS."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
from train_helpers import (
    one_thread,  # noqa: F401 (autouse fixture: one torch thread)
    read_metrics,
    step_records,
    tiny_cfg,
    tiny_space,
    tiny_supernet,
    tiny_task,
    weights,
)

import nasplug.text.objectives as objectives
from nasplug.errors import NasplugError
from nasplug.oneshot.checkpoint import latest_checkpoint, load_checkpoint
from nasplug.oneshot.config import TrainConfig
from nasplug.oneshot.optim import lr_factor
from nasplug.oneshot.seeds import derive_seed
from nasplug.oneshot.train import train

ARCH = {"L00": "attn", "L01": "ffn", "L02": "conv"}


def test_lr_schedule_warmup_then_linear_decay(tmp_path: Path) -> None:
    assert [lr_factor(s, 4, 12) for s in range(13)] == [0, 0.25, 0.5, 0.75, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8,
                                                         2 / 8, 1 / 8, 0]
    assert lr_factor(0, 0, 10) == 1.0 and lr_factor(10, 0, 10) == 0.0
    assert TrainConfig(steps=200, warmup_fraction=0.05).warmup() == 10
    assert TrainConfig(steps=200, warmup_steps=3).warmup() == 3
    cfg = tiny_cfg(steps=6, warmup_steps=2, lr=1e-3)
    space = tiny_space()
    train(tiny_supernet(space), tiny_task(), cfg, tmp_path, space=space, progress=False)
    lrs = [r["lr"] for r in step_records(tmp_path).values()]  # lr used by steps 1..6
    assert lrs == pytest.approx([1e-3 * lr_factor(s, 2, 6) for s in range(6)])


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=1e-3)


def test_same_seed_same_weights_bit_for_bit(tmp_path: Path) -> None:
    space = tiny_space()
    runs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=3, seed=seed), tmp_path / name, space=space,
                 progress=False)
        runs.append(weights(tmp_path / name / "model.safetensors"))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_supernet_samples_a_valid_arch_every_step(tmp_path: Path) -> None:
    space = tiny_space(slots=4, counts={"attn": [1, 2]})
    train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=8), tmp_path, space=space, progress=False)
    archs = [r["arch"] for r in step_records(tmp_path).values()]
    expected = [space.format(space.sample(random.Random(derive_seed(0, "arch", s)))) for s in range(1, 9)]
    assert archs == expected and len(set(archs)) > 2
    assert all(1 <= a.count("A") <= 2 for a in archs)
    ckpt = load_checkpoint(
        latest_checkpoint(tmp_path / "checkpoint"), torch.nn.ModuleDict({"model": tiny_supernet(space)})
    )
    assert ckpt["data"]["index"] == 8 and "arch" not in ckpt  # the archs come from (seed, step): nothing to store


def test_grad_accumulation_equals_the_big_batch(tmp_path: Path) -> None:
    space = tiny_space()
    for name, accum in (("one", 1), ("two", 2)):
        train(tiny_supernet(space, dropout=0.0), tiny_task(), tiny_cfg(steps=4, batch_size=8, grad_accum=accum),
                 tmp_path / name, space=space, progress=False)
    one, two = step_records(tmp_path / "one"), step_records(tmp_path / "two")
    for step in one:
        assert two[step]["loss"] == pytest.approx(one[step]["loss"], rel=1e-5)
        assert two[step]["grad_norm"] == pytest.approx(one[step]["grad_norm"], rel=1e-4)
    w1, w2 = weights(tmp_path / "one" / "model.safetensors"), weights(tmp_path / "two" / "model.safetensors")
    for key in w1:
        torch.testing.assert_close(w2[key], w1[key], rtol=1e-4, atol=1e-5)


def test_loss_decreases_on_a_repetitive_corpus(tmp_path: Path) -> None:
    space = tiny_space()
    result = train(tiny_supernet(space, dropout=0.0), tiny_task(), tiny_cfg(steps=100, batch_size=32, lr=1e-2,
                      warmup_steps=5, log_every=10), tmp_path, arch=ARCH, progress=False)
    losses = [r["loss"] for r in step_records(tmp_path).values()]
    assert losses[-1] < losses[0] - 0.5
    assert result.heldout["heldout_mlm_acc"] > result.baseline["mlm_acc"] + 0.05
    assert result.eval_archs == [ARCH] and result.throughput > 0 and result.unit == "tokens"


def test_standalone_fixed_arch_trains_and_saves(tmp_path: Path) -> None:
    from safetensors.torch import load_model

    space = tiny_space()
    model = space.build(ARCH, head="mlm", seed=0)
    result = train(model, tiny_task(), tiny_cfg(steps=3), tmp_path, progress=False)
    assert math.isfinite(result.metrics["loss"]) and "mlm_acc" in result.metrics
    assert "arch" not in result.metrics and result.heldout["per_arch"][0].keys() >= {"heldout_mlm_acc"}
    fresh = space.build(ARCH, head="mlm", seed=1)
    load_model(fresh, str(tmp_path / "model.safetensors"))
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values(), strict=True))


def test_bf16_autocast_runs(tmp_path: Path) -> None:
    space = tiny_space()
    result = train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=2, precision="bf16"), tmp_path, space=space,
                      progress=False)
    assert math.isfinite(result.metrics["loss"])
    assert weights(tmp_path / "model.safetensors")["embeddings.word_embeddings.weight"].dtype == torch.float32


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = objectives.mlm_step

    def poisoned(model, batch, num_masked):  # the 5th micro-batch (step 5) returns NaN
        loss, stats = real(model, batch, num_masked)
        calls.append(1)
        if len(calls) >= 5:
            loss, stats = loss * math.nan, {k: v * math.nan for k, v in stats.items()}
        return loss, stats

    monkeypatch.setattr(objectives, "mlm_step", poisoned)
    space = tiny_space()
    with pytest.raises(NasplugError, match=r"training: loss is nan at step 5; the last good checkpoint \(step 4\) "
                                           r"is in .*checkpoint; resume from it with a lower learning rate"):
        train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=8, checkpoint_every=2), tmp_path, space=space,
                 progress=False)
    ckpt = latest_checkpoint(tmp_path / "checkpoint")
    assert ckpt.name == "step-00000004" and not (tmp_path / "model.safetensors").exists()
    state = load_checkpoint(ckpt, torch.nn.ModuleDict({"model": tiny_supernet(space)}))
    assert state["step"] == 4
    # the remedy: resume from the good checkpoint (here the poison is gone) and finish
    monkeypatch.setattr(objectives, "mlm_step", real)
    result = train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=8, checkpoint_every=2, lr=1e-3), tmp_path,
                      space=space, resume=True, progress=False)
    assert result.steps == 8 and (tmp_path / "model.safetensors").exists()


def test_existing_checkpoint_needs_resume_and_bad_arguments_fail_clearly(tmp_path: Path) -> None:
    space = tiny_space()
    train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=1), tmp_path, space=space, progress=False)
    with pytest.raises(NasplugError, match="has a checkpoint"):
        train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=1), tmp_path, space=space, progress=False)
    with pytest.raises(NasplugError, match="batch_size: the checkpoint"):
        train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=1, batch_size=16), tmp_path, space=space,
                 resume=True, progress=False)
    other = tmp_path / "other"
    with pytest.raises(NasplugError, match="needs space= .* or arch="):
        train(tiny_supernet(space), tiny_task(), tiny_cfg(), other, progress=False)
    with pytest.raises(NasplugError, match="not a supernet"):
        train(space.build(ARCH, head="mlm", seed=0), tiny_task(), tiny_cfg(), other, space=space, progress=False)
    with pytest.raises(NasplugError, match="batch_size: 8 is not a multiple"):
        train(tiny_supernet(space), tiny_task(), tiny_cfg(grad_accum=3), other, space=space, progress=False)
    with pytest.raises(NasplugError, match="LVBertForMaskedLM lacks discriminator_logits, make_generator"):
        train(space.build(ARCH, head="mlm", seed=0), tiny_task("electra"), tiny_cfg(), other,
                 progress=False)
    assert not other.exists() or not any(r for r in read_metrics(other) if "event" not in r)


def test_a_diverging_run_keeps_only_sound_checkpoints_as_good(tmp_path: Path, monkeypatch) -> None:
    """The loss runs away from step 5 and turns NaN at step 9: checkpoints 6 and 8 are marked
    unhealthy, the message names step 4, and --resume starts from step 4, not 8."""
    calls = []
    real = objectives.mlm_step

    def exploding(model, batch, num_masked):
        loss, stats = real(model, batch, num_masked)
        calls.append(1)
        n = len(calls)
        if n >= 5:
            scale = math.nan if n >= 9 else 1e3 ** (n - 4)
            loss, stats = loss * scale, {k: v * scale for k, v in stats.items()}
        return loss, stats

    monkeypatch.setattr(objectives, "mlm_step", exploding)
    space = tiny_space()
    with pytest.raises(NasplugError, match=r"loss is nan at step 9; the last good checkpoint \(step 4\)"):
        train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=12, checkpoint_every=2), tmp_path, space=space,
              progress=False)
    monkeypatch.setattr(objectives, "mlm_step", real)
    result = train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=12, checkpoint_every=2, lr=1e-3), tmp_path,
                   space=space, resume=True, progress=False)
    resumed = [r for r in read_metrics(tmp_path) if r.get("event") == "resume"]
    assert resumed[-1]["step"] == 4 and result.steps == 12


def test_without_a_sound_checkpoint_the_message_says_to_start_again(tmp_path: Path, monkeypatch) -> None:
    real = objectives.mlm_step
    monkeypatch.setattr(objectives, "mlm_step", lambda *a: (lambda loss, st: (loss * math.nan, st))(*real(*a)))
    space = tiny_space()
    with pytest.raises(NasplugError, match=r"is nan at step 1; no checkpoint from before the divergence is "
                                           r"usable: delete .* and start again with a lower learning rate"):
        train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=4, checkpoint_every=2), tmp_path, space=space,
              progress=False)


def test_a_run_that_ends_diverged_writes_no_model_and_says_where_to_resume(tmp_path: Path, monkeypatch) -> None:
    """The loss runs away (finite) from step 6 to the end: no model.safetensors, no result.json
    (the stage is not done), a message naming the last healthy checkpoint; --resume from it
    with a lower learning rate finishes."""
    calls = []
    real = objectives.mlm_step

    def running_away(model, batch, num_masked):
        loss, stats = real(model, batch, num_masked)
        calls.append(1)
        if len(calls) >= 6:
            scale = 1e3 ** (len(calls) - 5)
            loss, stats = loss * scale, {k: v * scale for k, v in stats.items()}
        return loss, stats

    monkeypatch.setattr(objectives, "mlm_step", running_away)
    space = tiny_space()
    with pytest.raises(NasplugError, match=r"training: the loss diverged .* by the last step \(8\); the last good "
                                           r"checkpoint \(step 4\) is in .*checkpoint; resume from it with a lower "
                                           r"learning rate \(--resume --set <stage>.lr=...\)"):
        train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=8, checkpoint_every=2), tmp_path, space=space,
              progress=False)
    assert not (tmp_path / "model.safetensors").exists() and not (tmp_path / "result.json").exists()
    monkeypatch.setattr(objectives, "mlm_step", real)
    result = train(tiny_supernet(space), tiny_task(), tiny_cfg(steps=8, checkpoint_every=2, lr=1e-3), tmp_path,
                   space=space, resume=True, progress=False)
    assert [r["step"] for r in read_metrics(tmp_path) if r.get("event") == "resume"] == [4]
    assert result.steps == 8 and (tmp_path / "model.safetensors").exists() and (tmp_path / "result.json").exists()


def test_snapshots_keep_the_weights_of_their_steps(tmp_path: Path) -> None:
    from nasplug.layout import snapshot_folder
    from nasplug.oneshot.checkpoint import load_weights

    space = tiny_space()
    train(tiny_supernet(space), tiny_task("electra"), tiny_cfg(steps=6, checkpoint_every=3), tmp_path, space=space,
          progress=False, snapshots=[3, 6])
    kept = snapshot_folder(tmp_path, 3)
    assert sorted(p.name for p in kept.iterdir()) == ["generator.safetensors", "model.safetensors"]
    trainable = torch.nn.ModuleDict({"model": tiny_supernet(space)})
    trainable["generator"] = objectives.build_generator(trainable["model"], 0)
    load_checkpoint(tmp_path / "checkpoint" / "step-00000003", trainable)  # the loop's own state after step 3
    snapshot, generator = tiny_supernet(space), objectives.build_generator(tiny_supernet(space), 0)
    load_weights(snapshot, kept / "model.safetensors")
    load_weights(generator, kept / "generator.safetensors")
    for mine, theirs in ((snapshot, trainable["model"]), (generator, trainable["generator"])):
        assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    assert weights(snapshot_folder(tmp_path, 6) / "model.safetensors").keys() == weights(
        tmp_path / "model.safetensors").keys()
    final, last = weights(tmp_path / "model.safetensors"), weights(snapshot_folder(tmp_path, 6) / "model.safetensors")
    assert all(torch.equal(final[k], last[k]) for k in final)
    assert not (tmp_path / "snapshots" / "step-00000001").exists()
