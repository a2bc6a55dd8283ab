"""The elastic-BERT space: extraction to transformers' BERT (exact), exported folders that load
without nasplug, a supernet initialised from a saved BERT, DynaBERT's re-ordering."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertModel

from nasplug.errors import NasplugError
from nasplug.oneshot.checkpoint import save_weights
from nasplug.spaces.elastic_bert import ElasticBertForMaskedLM, ElasticBertSpace, is_plain
from nasplug.testing import randomize_state

SPACE = dict(layers=3, hidden=(16, 32), heads=(1, 2), ffn=(24, 48), head_size=16, vocab_size=60, seq_len=16)
BLOCK_NASPLUG = '''
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "nasplug" or name.startswith("nasplug."):
            raise ImportError("nasplug is blocked in this process")
sys.meta_path.insert(0, Block())
'''

pytestmark = pytest.mark.usefixtures("one_thread")


def trained_like(space: ElasticBertSpace, seed: int = 1):
    supernet = space.build_supernet(seed=0)
    randomize_state(supernet, seed)
    return supernet.eval()


def routed_logits(supernet, arch, ids, mask, types) -> torch.Tensor:
    with torch.no_grad(), supernet.using(arch):
        return supernet.masked_logits(supernet(ids, mask, types), None)


@pytest.mark.parametrize("seed", [0, 1])
def test_extract_is_transformers_bert_equal_to_the_routed_supernet(seed: int) -> None:
    space = ElasticBertSpace(**SPACE)
    supernet = trained_like(space, seed)
    ids, mask, types = supernet.example_input(batch=3, seed=seed)
    rng = random.Random(seed)
    for arch in [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(6))]:
        model = supernet.extract(arch, head="mlm").eval()
        plain = is_plain(arch, 16)
        assert type(model) is (BertForMaskedLM if plain else ElasticBertForMaskedLM)
        assert all(type(m).__module__.split(".")[0] in ("torch", "transformers") for m in model.modules()) or not plain
        with torch.no_grad():
            got = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        assert torch.equal(got, routed_logits(supernet, arch, ids, mask, types)), space.format(arch)


def test_uniform_archs_are_plain_bert_and_the_text_form_round_trips() -> None:
    space = ElasticBertSpace(**SPACE)
    uniform = space.parse("d2 h32 a2.2 f48.48")
    assert is_plain(uniform, 16) and not is_plain(space.parse("d2 h32 a1.1 f48.48"), 16)
    assert not is_plain(space.parse("d2 h32 a2.2 f24.48"), 16)
    assert space.format(uniform) == "d2 h32 a2.2 f48.48" and uniform["heads2"] == 1  # inactive: first option
    with pytest.raises(NasplugError, match="depth 2"):
        space.parse("d2 h32 a2 f48.48")


def _load_without_nasplug(folder: Path, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, str]:
    torch.save(inputs, folder / "inputs.pt")
    code = BLOCK_NASPLUG + textwrap.dedent(f"""
        import torch, transformers
        model = transformers.AutoModelForMaskedLM.from_pretrained("{folder}", trust_remote_code=True).eval()
        assert not any(m.startswith("nasplug") for m in sys.modules), "nasplug was imported"
        with torch.no_grad():
            torch.save(model(**torch.load("{folder}/inputs.pt")).logits, "{folder}/logits.pt")
        print(type(model).__name__, type(model).__module__)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(folder / "logits.pt"), done.stdout


@pytest.mark.parametrize("text", ["d3 h32 a2.2.2 f48.48.48", "d2 h32 a1.2 f24.48"])
def test_exported_folders_load_without_nasplug_with_the_supernets_logits(tmp_path: Path, text: str) -> None:
    space = ElasticBertSpace(**SPACE)
    supernet = trained_like(space)
    arch = space.parse(text)
    ids, mask, types = supernet.example_input(batch=3, seed=5)
    model = supernet.extract(arch, head="mlm").eval()
    save_weights(model, tmp_path / "model.safetensors")
    space.export_model(model, arch, tmp_path, {"arch": text, "recipe": "test"})
    logits, printed = _load_without_nasplug(tmp_path, {"input_ids": ids, "attention_mask": mask,
                                                       "token_type_ids": types})
    want = routed_logits(supernet, arch, ids, mask, types)
    assert (logits - want).abs().max() <= 1e-5
    if is_plain(arch, 16):
        assert printed.split() == ["BertForMaskedLM", "transformers.models.bert.modeling_bert"]
        assert not (tmp_path / "modeling_elastic_bert.py").exists()
    else:
        assert "transformers_modules" in printed  # the folder's own code


def _saved_bert(folder: Path, head: bool = True, vocab: int = 60) -> torch.nn.Module:
    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=24, attn_implementation="sdpa")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = (BertForMaskedLM if head else BertModel)(config).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)  # trained-like: LayerNorms and biases off their init
    model.save_pretrained(folder)
    return model


def test_init_from_a_saved_bert_makes_its_largest_arch_that_model(tmp_path: Path) -> None:
    hf = _saved_bert(tmp_path / "bert")
    space = ElasticBertSpace(**SPACE, init_from=str(tmp_path / "bert"))
    supernet = space.build_supernet(seed=0).eval()
    ids, mask, types = supernet.example_input(batch=3, seed=2)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    assert (routed_logits(supernet, space.largest(), ids, mask, types) - want).abs().max() <= 1e-5
    _saved_bert(tmp_path / "encoder", head=False)  # a BertModel folder loads its encoder
    ElasticBertSpace(**SPACE, init_from=str(tmp_path / "encoder")).build_supernet(seed=0)
    with pytest.raises(NasplugError, match="space.init_from: .* has hidden_size 32, the space's largest is 64"):
        ElasticBertSpace(**{**SPACE, "hidden": (16, 64)}, init_from=str(tmp_path / "bert")).build_supernet(seed=0)


def test_dynabert_reordering_sorts_by_importance_and_keeps_the_largest_model(tmp_path: Path) -> None:
    from train_helpers import VOCAB, tiny_task  # the mlm task over tiny packed data

    from nasplug.spaces.elastic_bert.reorder import reorder_by_importance

    _saved_bert(tmp_path / "bert", vocab=VOCAB)
    space = ElasticBertSpace(**{**SPACE, "vocab_size": VOCAB}, init_from=str(tmp_path / "bert"), reorder=True)
    supernet = space.build_supernet(seed=0)
    task = tiny_task()
    ids, mask, types = supernet.eval().example_input(batch=3, seed=2)
    before = routed_logits(supernet, space.largest(), ids, mask, types)
    importance = reorder_by_importance(supernet, task)
    after = routed_logits(supernet, space.largest(), ids, mask, types)
    assert (after - before).abs().max() <= 1e-5  # a permutation: the same function
    again = reorder_by_importance(supernet, task)  # measured again: now in decreasing order
    for kind in ("heads", "ffn"):
        assert torch.equal(again[kind], again[kind].sort(dim=1, descending=True).values)
        assert torch.allclose(again[kind].sort(dim=1).values, importance[kind].sort(dim=1).values, rtol=1e-4)
    assert any(not torch.equal(importance[k], again[k]) for k in importance)  # something moved
