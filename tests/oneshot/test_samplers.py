"""Supernet training rules besides uniform single-path sampling: FairNAS and few-shot splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from train_helpers import (
    one_thread,  # noqa: F401 (autouse fixture: one torch thread)
    read_metrics,
    tiny_cfg,
    tiny_space,
    tiny_supernet,
    tiny_task,
    weights,
)

from nasplug.errors import NasplugError
from nasplug.oneshot.fewshot import FewShotSupernet
from nasplug.oneshot.samplers import FairSampler, UniformSampler, build_sampler
from nasplug.oneshot.train import train

TINY_PIPELINE = Path(__file__).resolve().parents[1] / "data" / "tiny-pipeline.yaml"


def test_fair_sampling_trains_every_option_of_every_slot_once_per_step() -> None:
    space = tiny_space(slots=5)
    sampler = FairSampler(space, seed=0)
    for step in range(1, 6):
        archs = sampler(step)
        assert len(archs) == 3 and all(space.is_valid(a) for a in archs)
        for key in space.choices():
            assert Counter(a[key] for a in archs) == Counter(space.choices()[key])
    assert sampler(3) == FairSampler(space, seed=0)(3) != sampler(4)
    assert len(UniformSampler(space, 0)(1)) == 1
    with pytest.raises(NasplugError, match="sampler: 'fare' is not a sampler; allowed: uniform, fair"):
        build_sampler("fare", space, 0)


def test_a_fair_step_accumulates_its_paths_and_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    import nasplug.oneshot.train as loop

    space = tiny_space(slots=3)
    cfg = tiny_cfg(steps=6, checkpoint_every=2)
    result = train(tiny_supernet(space), tiny_task(), cfg, tmp_path / "a", space=space,
                   sampler=FairSampler(space, cfg.seed), progress=False)
    steps = [r for r in read_metrics(tmp_path / "a") if "event" not in r]
    assert all(isinstance(r["arch"], list) and len(r["arch"]) == 3 for r in steps)
    assert result.metrics["tokens_per_s"] > 0
    real = loop._Run._train_step

    def crash_at_5(self, step):  # the process dies in step 5, after the checkpoint of step 4
        if step == 5:
            raise KeyboardInterrupt
        return real(self, step)

    monkeypatch.setattr(loop._Run, "_train_step", crash_at_5)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_supernet(space), tiny_task(), cfg, tmp_path / "b", space=space, sampler=FairSampler(space, cfg.seed),
              progress=False)
    monkeypatch.undo()
    train(tiny_supernet(space), tiny_task(), cfg, tmp_path / "b", space=space, sampler=FairSampler(space, cfg.seed),
          resume=True, progress=False)
    a, b = weights(tmp_path / "a" / "model.safetensors"), weights(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_few_shot_supernet_routes_each_arch_to_the_copy_of_its_option() -> None:
    space = tiny_space(slots=3)
    base = tiny_supernet(space, dropout=0.0)
    few = FewShotSupernet(base, "L00", space.choices()["L00"])
    assert set(few.copies) == {"conv", "attn", "ffn"} and few.route is None  # no prefix walk across copies
    with torch.no_grad():
        for copy in few.copies.values():  # make the copies differ, as training would
            for p in copy.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(p.shape))) * 0.1)
    few.eval()
    ids = torch.randint(5, 100, (2, 10), generator=torch.Generator().manual_seed(0))
    outs = {}
    for first in ("conv", "attn", "ffn"):
        arch = {"L00": first, "L01": "ffn", "L02": "attn"}
        with torch.no_grad(), few.using(arch):
            outs[first] = few(ids)
            logits = few.mlm_logits(outs[first])  # heads are the active copy's
        extracted = few.extract(arch).eval()
        with torch.no_grad():
            assert torch.equal(extracted(ids).last_hidden_state, outs[first])
        assert logits.shape[-1] == base.config.vocab_size
    names = {n for n, _ in few.named_parameters()}
    assert all(n.startswith("copies.") for n in names), "each copy registered once"


def test_few_shot_and_fair_supernets_through_the_pipeline(tmp_path: Path, shared_data: Path, monkeypatch) -> None:
    from nasplug.pipeline import run_recipe
    from nasplug.recipe import load_recipe

    monkeypatch.setenv("NASPLUG_DATA_DIR", str(shared_data))
    monkeypatch.setenv("NASPLUG_CACHE", str(tmp_path / "cache"))
    few = load_recipe(TINY_PIPELINE, ["supernet.steps=12", "supernet.eval_every=0", "supernet.checkpoint_every=4",
                                      "supernet.split={choice: L00, after: 0.5}", "search.budget=6"])
    run_recipe(few, tmp_path / "few", stages=["supernet", "search"], progress=False)
    assert (tmp_path / "few" / "supernet" / "oneshot" / "model.safetensors").is_file()
    assert any(k.startswith("copies.attn.") for k in weights(tmp_path / "few" / "supernet" / "model.safetensors"))
    assert len((tmp_path / "few" / "trials.jsonl").read_text().splitlines()) == 6
    fair = load_recipe(TINY_PIPELINE, ["supernet.steps=4", "supernet.eval_every=0", "supernet.sampler=fair",
                                       "search.budget=6"])
    run_recipe(fair, tmp_path / "fair", stages=["supernet", "search"], progress=False)
    assert len((tmp_path / "fair" / "trials.jsonl").read_text().splitlines()) == 6
    with pytest.raises(NasplugError, match="supernet.split.choice: 'L09' is not a choice"):
        run_recipe(load_recipe(TINY_PIPELINE, ["supernet.split={choice: L09}"]), tmp_path / "bad", progress=False)

