"""GLUE as the official LV-BERT / ELECTRA code fine-tunes: segment ids of sentence pairs, both
orders for MRPC and STS-B, STS-B on score / 5, the one-layer task head, the official depths of
the layer-wise learning rates, the official optimiser and the pad-to-max_len switch."""

from __future__ import annotations

import math
from pathlib import Path

import datasets
import pytest
import torch
from test_glue_finetune import TinyModel
from transformers import AutoTokenizer

from nasplug.errors import NasplugError
from nasplug.glue import FinetuneConfig, bert_layer_index, finetune, get_task, param_groups
from nasplug.glue.encode import batches, encode, predict
from nasplug.glue.tasks import TASKS
from nasplug.spaces.lvbert import (
    LVBertConfig,
    LVBertForSequenceClassification,
    LVBertSupernet,
    layer_index,
)
from nasplug.text.tokenizer import save_tokenizer, train_tokenizer, with_max_length

WORDS = "the a cat dog sat ran on under mat log big small red blue one two it was is not".split()


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def pairs(n: int, regression: bool = False) -> datasets.Dataset:
    return datasets.Dataset.from_dict({
        "idx": list(range(n)),
        "sentence1": [" ".join(WORDS[(i + k) % 20] for k in range(4 + i % 3)) for i in range(n)],
        "sentence2": [" ".join(WORDS[(i * 3 + k) % 20] for k in range(3)) for i in range(n)],
        "label": [float(i % 6) if regression else i % 2 for i in range(n)],
    })


@pytest.fixture(scope="module")
def saved_tokenizer(tmp_path_factory) -> AutoTokenizer:
    """A vocabulary trained by nasplug, saved and loaded back as a run's GLUE stage does."""
    texts = [" ".join(WORDS[(i + k) % 20] for k in range(8)) for i in range(200)]
    folder = tmp_path_factory.mktemp("tok") / "tokenizer"
    save_tokenizer(with_max_length(train_tokenizer(texts, vocab_size=80), 32), folder)
    return AutoTokenizer.from_pretrained(str(folder))


def test_pair_batches_carry_segment_ids_from_the_saved_tokenizer(saved_tokenizer):
    spec = get_task("RTE")
    enc = encode(saved_tokenizer, pairs(8), spec, 32)
    batch = next(batches(enc, list(range(8)), 8, saved_tokenizer.pad_token_id, False, "cpu"))
    sep = saved_tokenizer.sep_token_id
    for ids, types, mask in zip(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]):
        first_sep = int((ids == sep).nonzero()[0])
        n = int(mask.sum())
        assert (types[: first_sep + 1] == 0).all() and (types[first_sep + 1 : n] == 1).all()
        assert (types[n:] == 0).all()
    single = encode(saved_tokenizer, pairs(4), get_task("SST-2"), 32)
    assert all(set(t) == {0} for t in single["token_type_ids"])


def test_a_tokenizer_without_segment_ids_is_an_error_for_pairs():
    def no_types(*texts, **kwargs):
        return {"input_ids": [[2, 5, 3, 6, 3] for _ in texts[0]]}

    with pytest.raises(NasplugError, match="token_type_ids"):
        encode(no_types, pairs(2), get_task("MRPC"), 16)


def test_mrpc_and_stsb_are_trained_on_both_orders_and_qqp_is_not(saved_tokenizer):
    assert [n for n, t in TASKS.items() if t.symmetric] == ["MRPC", "STS-B"]
    cfg = FinetuneConfig(lr=1e-2, batch_size=8, epochs=1, seeds=[0], progress=False, predict_test=False)
    factory = lambda num_labels, seed: TinyModel(len(saved_tokenizer), num_labels)  # noqa: E731
    for task, doubled in (("MRPC", True), ("STS-B", True), ("QQP", False), ("RTE", False)):
        data = {"train": pairs(12, regression=task == "STS-B"), "validation": pairs(6, regression=task == "STS-B")}
        out = finetune(task, factory, saved_tokenizer, data, cfg)
        assert out["train_examples"] == (24 if doubled else 12), task


def test_stsb_trains_on_score_over_5_and_predicts_on_the_0_5_scale(saved_tokenizer):
    spec = get_task("STS-B")
    assert spec.label_scale == 5.0
    enc = encode(saved_tokenizer, pairs(12, regression=True), spec, 32)
    labels = torch.cat([b["labels"] for b in batches(enc, list(range(12)), 4, 0, True, "cpu", label_scale=5.0)])
    assert labels.max() == 1.0 and labels.min() == 0.0  # scores 0..5 -> 0..1

    class Constant(torch.nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids):
            return torch.full((len(input_ids), 1), 0.6)

    assert predict(Constant(), enc, spec, 4, 0, "cpu").tolist() == pytest.approx([3.0] * 12)


def test_the_task_head_is_dropout_and_one_glorot_dense_layer():
    config = LVBertConfig.from_size(None, hidden=32, heads=1, ffn=64, embedding=16, slots=2, vocab_size=50,
                                    num_labels=3)
    model = LVBertForSequenceClassification(config)
    head = dict(model.classifier.named_parameters())
    assert set(head) == {"out_proj.weight", "out_proj.bias"}
    assert sum(p.numel() for p in head.values()) == 32 * 3 + 3
    bound = math.sqrt(6 / (32 + 3))  # Glorot uniform, as tf.layers.dense without an initializer
    weight = model.classifier.out_proj.weight
    assert weight.abs().max() <= bound and weight.abs().max() > 0.5 * bound
    supernet = LVBertSupernet(config, num_labels=3, seed=0)
    assert sum(p.numel() for p in supernet.classifier.parameters()) == 32 * 3 + 3


def test_layer_wise_rates_use_the_official_depths():
    config = LVBertConfig.from_size(None, hidden=32, heads=1, ffn=64, embedding=16, slots=24, vocab_size=50,
                                    num_labels=2)
    model = LVBertForSequenceClassification(config)
    groups = param_groups(model, lr=1.0, decay=0.8, weight_decay=0.01, layer_index=lambda n: layer_index(n, 24))
    rate = {n: g["lr"] for g in groups for n in g["param_names"]}
    assert rate["classifier.out_proj.weight"] == 1.0  # task layer: depth n + 2
    assert rate["lvbert.layers.23.output.weight"] == pytest.approx(0.64)  # top block: depth n, 0.8^2
    assert rate["lvbert.layers.22.output.weight"] == pytest.approx(0.64)  # two sub-layers per block
    assert rate["lvbert.layers.0.output.weight"] == pytest.approx(0.8**13)
    assert rate["lvbert.embeddings.word_embeddings.weight"] == pytest.approx(0.8**14)
    assert rate["lvbert.embeddings_project.weight"] == pytest.approx(0.8**14)
    bert = bert_layer_index(12)
    assert bert("classifier.weight") - bert("bert.encoder.layer.11.output.dense.weight") == 2


def test_official_optimizer_and_padding_switch(saved_tokenizer):
    spec = get_task("RTE")
    enc = encode(saved_tokenizer, pairs(8), spec, 32)
    padded = next(batches(enc, list(range(8)), 8, 0, False, "cpu", pad_to=32))
    assert padded["input_ids"].shape == (8, 32)
    cfg = FinetuneConfig(lr=1e-2, batch_size=4, epochs=2, seeds=[0], progress=False, predict_test=False,
                         optimizer="official", official_padding=True, max_len=32)
    factory = lambda num_labels, seed: TinyModel(len(saved_tokenizer), num_labels)  # noqa: E731
    data = {"train": pairs(16), "validation": pairs(8)}
    out = finetune("RTE", factory, saved_tokenizer, data, cfg)
    again = finetune("RTE", factory, saved_tokenizer, data, cfg)
    assert out["per_seed"] == again["per_seed"]
    plain = finetune("RTE", factory, saved_tokenizer, data, cfg.model_copy(update={"optimizer": "adamw"}))
    assert plain["per_seed"][0]["epoch_loss"] != out["per_seed"][0]["epoch_loss"]
    with pytest.raises(NasplugError, match="optimizer"):
        FinetuneConfig.parse({"optimizer": "sgd"})


def test_stage_factory_lets_the_convolution_see_padding_when_asked(tmp_path: Path):
    from nasplug.glue.models import backbone_factory

    config = LVBertConfig.from_size(None, hidden=32, heads=1, ffn=64, embedding=16, slots=2, vocab_size=50,
                                    layers="CA")
    backbone = {k.removeprefix("lvbert."): v for k, v in LVBertForSequenceClassification(config).state_dict().items()
                if k.startswith("lvbert.")}
    masked = backbone_factory(config, backbone, "x", sees_padding=False)(2, 0)
    official = backbone_factory(config, backbone, "x", sees_padding=True)(2, 0)
    assert not masked.lvbert.layers[0].sees_padding and official.lvbert.layers[0].sees_padding
