"""Elastic BERT and Hugging Face folders: the supernet from a pre-trained BERT, and exports.

:func:`build_supernet` initialises the supernet as transformers initialises BERT, or from a
local BERT folder (``init_from``): every weight of that model lands on the supernet's
largest slice, so the largest arch computes what the folder's model computes.
:func:`export_model` writes what a retrained model's folder needs to load without nasplug.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasplug.errors import NasplugError
from nasplug.io import atomic_write_text

HERE = Path(__file__).resolve().parent
AUTO_MAP = {"AutoConfig": "modeling_elastic_bert.ElasticBertConfig",
            "AutoModel": "modeling_elastic_bert.ElasticBertModel",
            "AutoModelForMaskedLM": "modeling_elastic_bert.ElasticBertForMaskedLM"}
#: Hugging Face BERT names (after ``bert.``) -> supernet names, per layer (``{i}``) and overall.
LAYER_NAMES = {"attention.self.query": "attention.q", "attention.self.key": "attention.k",
               "attention.self.value": "attention.v", "attention.output.dense": "attention.out",
               "attention.output.LayerNorm": "attention_norm", "intermediate.dense": "ffn.fc1",
               "output.dense": "ffn.fc2", "output.LayerNorm": "ffn_norm"}
NAMES = {"embeddings.word_embeddings": "word_embeddings", "embeddings.position_embeddings": "position_embeddings",
         "embeddings.token_type_embeddings": "token_type_embeddings", "embeddings.LayerNorm": "embedding_norm",
         "cls.predictions.transform.dense": "transform", "cls.predictions.transform.LayerNorm": "transform_norm"}


def build_supernet(space: Any, seed: int | None) -> Any:
    """The space's supernet, BERT-initialised from ``seed`` (a generator of its own; None:
    the global RNG), then loaded from ``space.init_from`` when set."""
    from nasplug.nn import ElasticEmbedding, ElasticLayerNorm, ElasticLinear
    from nasplug.spaces.elastic_bert.supernet import ElasticBertSupernet

    supernet = ElasticBertSupernet(space.config())
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    std = space.initializer_range
    with torch.no_grad():
        for module in supernet.modules():  # transformers' BertPreTrainedModel._init_weights
            if module is supernet.decoder:  # tied to the word embeddings: its bias only
                module.bias.zero_()
            elif isinstance(module, (ElasticLinear, ElasticEmbedding)):
                module.weight.normal_(0.0, std, generator=gen)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
                if getattr(module, "padding_idx", None) is not None:
                    module.weight[module.padding_idx].zero_()
            elif isinstance(module, ElasticLayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
    if space.init_from is not None:
        load_pretrained(supernet, space, Path(space.init_from).expanduser())
    return supernet


def _read_state(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(folder / "model.safetensors"))
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise NasplugError(f"space.init_from: {folder} holds no model.safetensors or pytorch_model.bin")


def load_pretrained(supernet: nn.Module, space: Any, folder: Path) -> None:
    """Copy a Hugging Face BERT (``BertForMaskedLM`` or ``BertModel``) into the supernet's
    largest slice; NasplugError naming the first size that does not fit the space."""
    if not (folder / "config.json").is_file():
        raise NasplugError(f"space.init_from: {folder} has no config.json (a Hugging Face BERT folder)")
    config = json.loads((folder / "config.json").read_text())
    heads = config.get("num_attention_heads", 0)
    wanted = {"hidden_size": space.hidden[-1], "num_hidden_layers": space.depths[-1], "num_attention_heads":
              space.heads[-1], "intermediate_size": space.ffn[-1], "vocab_size": space.vocab_size,
              "type_vocab_size": space.type_vocab_size}
    for key, value in wanted.items():
        if config.get(key) != value:
            raise NasplugError(f"space.init_from: {folder} has {key} {config.get(key)}, the space's largest is "
                               f"{value}; make the space's largest options the model's sizes")
    if heads and config["hidden_size"] // heads != space.head_size:
        raise NasplugError(f"space.head_size: {space.head_size}, but {folder} has heads of "
                           f"{config['hidden_size'] // heads}")
    if config.get("max_position_embeddings", 0) < space.seq_len:
        raise NasplugError(f"space.init_from: {folder} has {config.get('max_position_embeddings')} positions, fewer "
                           f"than seq_len {space.seq_len}")
    state = {k.removeprefix("bert."): v for k, v in _read_state(folder).items()}
    own = dict(supernet.named_parameters())
    with torch.no_grad():
        for name, tensor in state.items():
            target = _supernet_name(name)
            if target is None:
                continue
            param = own[target]
            param.copy_(tensor[: param.shape[0]] if target == "position_embeddings.weight" else tensor)


def _supernet_name(name: str) -> str | None:
    """The supernet parameter a BERT tensor goes to (None: one the supernet has no use for)."""
    if name in ("cls.predictions.bias", "cls.predictions.decoder.bias"):
        return "decoder.bias"
    stem, _, leaf = name.rpartition(".")
    if stem.startswith("encoder.layer."):
        index, _, rest = stem.removeprefix("encoder.layer.").partition(".")
        return f"layers.blocks.{index}.{LAYER_NAMES[rest]}.{leaf}" if rest in LAYER_NAMES else None
    return f"{NAMES[stem]}.{leaf}" if stem in NAMES else None


def export_model(model: Any, folder: str | Path, facts: dict[str, Any]) -> Path:
    """``config.json`` (plain BERT, or elastic BERT with ``auto_map`` and its code) and
    ``README.md`` beside the model's ``model.safetensors``."""
    from nasplug.spaces.elastic_bert.modeling import ElasticBertConfig

    folder = Path(folder)
    config = model.config.to_dict()
    config["architectures"] = [type(model).__name__]
    config.pop("_attn_implementation_autoset", None)
    if isinstance(model.config, ElasticBertConfig):
        config["auto_map"] = AUTO_MAP
        atomic_write_text(folder / "modeling_elastic_bert.py", (HERE / "modeling.py").read_text())
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
    plain = not isinstance(model.config, ElasticBertConfig)
    load = ("AutoModelForMaskedLM.from_pretrained(PATH)" if plain
            else "AutoModelForMaskedLM.from_pretrained(PATH, trust_remote_code=True)  # the code is in this folder")
    heldout = {k: v for k, v in dict(facts.get("heldout") or {}).items() if isinstance(v, (int, float))}
    lines = ["---", 'library_name: "transformers"', 'tags: ["nasplug", "elastic-bert", "neural-architecture-search"]',
             "---", "", f"# Elastic-BERT model from nasplug run `{facts.get('recipe', '?')}`", "",
             f"A BERT encoder ({'plain BERT' if plain else 'BERT with per-layer heads and FFN widths'}) whose sizes "
             "were found or chosen by nasplug's elastic-bert space and trained from scratch.", "", "| | |", "|---|---|",
             f"| architecture | `{facts.get('arch')}` |", f"| parameters | {facts.get('params')} |",
             f"| recipe | {facts.get('recipe')} (seed {facts.get('seed')}) |",
             f"| nasplug | {facts.get('nasplug_version')} |", ""]
    if heldout:
        lines += ["## Held-out figures", "", "| figure | value |", "|---|---|",
                  *(f"| {k} | {v:.4g} |" for k, v in heldout.items()), ""]
    lines += ["## Use", "", "```python", "from transformers import AutoModelForMaskedLM", f"model = {load}", "```", ""]
    atomic_write_text(folder / "README.md", "\n".join(lines))
    return folder
