"""Fine-tuning: layer-wise learning rates, a tiny run that learns and repeats bit for bit,
both sentence orders, regression, MNLI + AX, missing data, a tiny transformers BERT."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

from nasplug.errors import NasplugError
from nasplug.glue import (
    FinetuneConfig,
    bert_layer_index,
    finetune,
    get_task,
    load_task,
    param_groups,
    write_submission,
)
from nasplug.glue.data import TaskData


class TinyModel(nn.Module):
    """Mean of token embeddings -> LayerNorm -> tanh layer (dropout) -> classifier."""

    def __init__(self, vocab: int, num_labels: int, dim: int = 16) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.hidden = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(dim, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, labels: None = None) -> SimpleNamespace:
        mask = attention_mask.unsqueeze(-1).float()  # [B, T, 1]
        pooled = (self.embeddings(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)  # [B, D]
        h = self.dropout(torch.tanh(self.hidden(self.norm(pooled))))
        return SimpleNamespace(logits=self.classifier(h))  # [B, num_labels]


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def tiny_depth(name: str) -> int:
    return {"embeddings": 0, "norm": 0, "hidden": 1, "classifier": 2}[name.split(".")[0]]


@pytest.fixture(scope="module")
def sst(shared_data: Path) -> TaskData:
    return load_task("SST-2", shared_data / "glue")


@pytest.fixture(scope="module")
def tokenizer(sst: TaskData) -> PreTrainedTokenizerFast:
    """A WordPiece vocabulary trained here on 2,000 SST-2 sentences."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tok.train_from_iterator(sst.splits["train"]["sentence1"][:2000],
                            trainers.WordPieceTrainer(vocab_size=600, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def factory_for(tokenizer: PreTrainedTokenizerFast):
    return lambda num_labels, seed: TinyModel(len(tokenizer), num_labels)


FAST = dict(lr=3e-2, batch_size=8, max_train_examples=64, max_eval_examples=64, epochs=6,
            progress=False)


def test_layerwise_learning_rates() -> None:
    model = TinyModel(50, 2)
    groups = param_groups(model, lr=1.0, decay=0.5, weight_decay=0.01, layer_index=tiny_depth)
    rates = {n: (g["lr"], g["weight_decay"]) for g in groups for n in g["param_names"]}
    assert rates == {
        "classifier.weight": (1.0, 0.01), "classifier.bias": (1.0, 0.0),
        "hidden.weight": (0.5, 0.01), "hidden.bias": (0.5, 0.0),
        "embeddings.weight": (0.25, 0.01), "norm.weight": (0.25, 0.0), "norm.bias": (0.25, 0.0),
    }
    flat = param_groups(model, lr=3e-4, decay=0.8, weight_decay=0.01)
    assert {g["lr"] for g in flat} == {3e-4}
    # the optimiser keeps these rates, and the schedule scales them together
    opt = torch.optim.AdamW(groups, lr=1.0)
    assert sorted(g["lr"] for g in opt.param_groups) == [0.25, 0.25, 0.5, 0.5, 1.0, 1.0]


def test_bert_layer_index_on_a_tiny_bert() -> None:
    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    model = BertForSequenceClassification(cfg)
    depth = bert_layer_index(2)
    names = dict(model.named_parameters())
    assert depth("bert.embeddings.word_embeddings.weight") == 0
    assert depth("bert.encoder.layer.0.attention.self.query.weight") == 1
    assert depth("bert.encoder.layer.1.output.LayerNorm.bias") == 2
    assert depth("classifier.weight") == depth("bert.pooler.dense.weight") == 4  # official: n + 2
    groups = param_groups(model, 1e-4, 0.8, 0.01, depth)
    assert sum(len(g["params"]) for g in groups) == len(names)
    emb = next(g for g in groups if g["depth"] == 0)
    assert emb["lr"] == pytest.approx(1e-4 * 0.8**4)


def test_tiny_sst2_run_learns_and_repeats(tokenizer, sst: TaskData, tmp_path: Path) -> None:
    cfg = FinetuneConfig(**FAST, seeds=[0, 1, 2])
    before = torch.random.get_rng_state()
    result = finetune("sst2", factory_for(tokenizer), tokenizer, sst, cfg, layer_index=tiny_depth)
    assert torch.equal(before, torch.random.get_rng_state())  # the caller's RNG is untouched
    assert result["status"] == "ok" and result["train_examples"] == 64
    assert result["eval_examples"] == {"validation": 64}
    for run in result["per_seed"]:
        assert len(run["epoch_loss"]) == 6
        assert run["epoch_loss"][-1] < 0.5 * run["epoch_loss"][0]
    accs = sorted(r["metrics"]["accuracy"] for r in result["per_seed"])
    assert result["median"] == {"accuracy": accs[1]}
    assert [r["metrics"]["accuracy"] for r in result["per_seed"]
            if r["seed"] == result["median_seed"]] == [accs[1]]
    again = finetune("SST-2", factory_for(tokenizer), tokenizer, sst,
                     cfg.model_copy(update={"seeds": [1]}), layer_index=tiny_depth)
    assert again["per_seed"][0] == result["per_seed"][1]  # same seed, same run, bit for bit
    test = result["test_predictions"]["SST-2"]
    assert len(test["prediction"]) == 1821 and set(test["prediction"]) <= {0, 1}
    assert write_submission(result["test_predictions"], tmp_path)["files"]["SST-2"]["rows"] == 1821
    import json
    json.dumps(result)


def test_paraphrase_both_orders_and_regression(tokenizer, shared_data: Path) -> None:
    mrpc = load_task("MRPC", shared_data / "glue", ["train", "validation"])
    cfg = FinetuneConfig(**{**FAST, "max_train_examples": 16, "epochs": 1}, seeds=[0])
    out = finetune("MRPC", factory_for(tokenizer), tokenizer, mrpc, cfg)
    assert out["train_examples"] == 32 and set(out["median"]) == {"f1", "accuracy"}
    assert out["status"] == "partial" and "test" in out["missing"]
    one = finetune("MRPC", factory_for(tokenizer), tokenizer, mrpc,
                   cfg.model_copy(update={"both_orders": False}))
    assert one["train_examples"] == 16
    sts = load_task("STS-B", shared_data / "glue", ["train", "validation"])
    reg = finetune("stsb", factory_for(tokenizer), tokenizer, sts,
                   FinetuneConfig(**{**FAST, "epochs": None, "max_train_examples": 16}, seeds=[0]))
    assert reg["epochs"] == 10 and set(reg["median"]) == {"pearson", "spearman"}
    assert reg["per_seed"][0]["epoch_loss"][-1] < reg["per_seed"][0]["epoch_loss"][0]


def _nli(n: int, labelled: bool = True) -> datasets.Dataset:
    words = ["good", "bad", "film", "plot", "actor", "great", "dull", "story"]
    return datasets.Dataset.from_dict({
        "idx": list(range(n)),
        "sentence1": [f"the {words[i % 8]} {words[(i * 3) % 8]}" for i in range(n)],
        "sentence2": [f"a {words[(i + 1) % 8]}" for i in range(n)],
        "label": [i % 3 if labelled else -1 for i in range(n)],
    })


def test_mnli_with_ax(tokenizer, shared_data: Path) -> None:
    """In-memory splits (a mapping) work as well as load_task output."""
    mnli = {"train": _nli(24), "validation_matched": _nli(9), "validation_mismatched": _nli(6),
            "test_matched": _nli(5, False), "test_mismatched": _nli(4, False)}
    ax = load_task("AX", shared_data / "glue")
    out = finetune("MNLI", factory_for(tokenizer), tokenizer, mnli,
                   FinetuneConfig(**{**FAST, "epochs": 2}, seeds=[0, 1]), ax_data=ax)
    assert out["status"] == "ok" and out["eval_examples"] == {"validation_matched": 9,
                                                              "validation_mismatched": 6}
    assert set(out["median"]) == {"accuracy_m", "accuracy_mm"}
    preds = out["test_predictions"]
    assert {k: len(v["prediction"]) for k, v in preds.items()} == {"MNLI-m": 5, "MNLI-mm": 4,
                                                                   "AX": 1104}
    assert set(preds["AX"]["prediction"]) <= {0, 1, 2}
    no_ax = finetune("MNLI", factory_for(tokenizer), tokenizer, mnli,
                     FinetuneConfig(**{**FAST, "epochs": 1}, seeds=[0]), ax_data={})
    assert no_ax["status"] == "partial" and no_ax["missing"] == {"AX test": "not loaded"}
    with pytest.raises(NasplugError, match="fine-tune MNLI"):
        finetune("AX", factory_for(tokenizer), tokenizer, ax)
    with pytest.raises(NasplugError, match="only the MNLI run predicts AX, not RTE"):
        finetune("RTE", factory_for(tokenizer), tokenizer, {}, ax_data=ax)


def test_missing_training_data_is_reported(tokenizer, shared_data: Path) -> None:
    qnli = load_task("QNLI", shared_data / "glue")
    out = finetune("QNLI", factory_for(tokenizer), tokenizer, qnli, FinetuneConfig(**FAST))
    assert out["status"] == "missing" and "QNLI/train.tsv" in out["missing"]["train"]
    assert out["per_seed"] == [] and out["median"] == {}


def test_tiny_transformers_bert(tokenizer, sst: TaskData) -> None:
    def factory(num_labels: int, seed: int) -> nn.Module:
        cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=64, num_labels=num_labels)
        return BertForSequenceClassification(cfg)

    cfg = FinetuneConfig(lr=1e-3, batch_size=16, max_train_examples=32, max_eval_examples=32,
                         max_len=32, epochs=2, seeds=[0], predict_test=False, progress=False)
    a = finetune("SST-2", factory, tokenizer, sst, cfg, layer_index=bert_layer_index(2))
    b = finetune("SST-2", factory, tokenizer, sst, cfg, layer_index=bert_layer_index(2))
    assert a["per_seed"] == b["per_seed"] and a["test_predictions"] == {}


def test_config_is_strict() -> None:
    assert FinetuneConfig().model_dump()["lr"] == 3e-4
    assert FinetuneConfig().seeds == list(range(10))
    with pytest.raises(NasplugError, match="finetune.learning_rate: Extra inputs"):
        FinetuneConfig.parse({"learning_rate": 1e-4})
    with pytest.raises(NasplugError, match="finetune.warmup"):
        FinetuneConfig.parse({"warmup": 2})
    assert get_task("rte").epochs == 10


def test_fine_tuning_progress_in_a_log_has_no_carriage_returns(tokenizer, shared_data: Path, capfd) -> None:
    """stderr is not a terminal here (a log file, CI): progress is log lines, never a bar's
    carriage-return updates; `nasplug -q` turns it off altogether (the GLUE stage's plan)."""
    mrpc = load_task("MRPC", shared_data / "glue", ["train", "validation"])
    cfg = FinetuneConfig(**{**FAST, "max_train_examples": 16, "epochs": 1, "progress": True}, seeds=[0])
    finetune("MRPC", factory_for(tokenizer), tokenizer, mrpc, cfg)
    assert "\r" not in capfd.readouterr().err
