"""The encoders the GLUE stage fine-tunes: retrained LV-BERT backbones and ready-made ones.

Called by :func:`nasplug.glue.stage.run_glue` once per model before its tasks. A model is a
:class:`GlueModel`: a factory ``(num_labels, seed) -> LVBertForSequenceClassification`` with
the backbone weights loaded and a fresh task layer, the tokenizer its inputs need, and the
number of sub-layer slots (for the layer-wise learning rates).

Ready-made encoders come from ``glue.init_from`` (model name -> folder): a folder written by
``nasplug import-official`` (its ``discriminator/`` is used) or any Hugging Face folder of an
LV-BERT model (``config.json`` + weights).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from nasplug.errors import NasplugError

log = logging.getLogger(__name__)

WEIGHTS = ("model.safetensors",)


class InitFrom(BaseModel):
    """One ``glue.init_from`` entry written out: the model folder and, optionally, its tokenizer."""

    model_config = ConfigDict(extra="forbid")

    path: str
    tokenizer: str | None = None  # a folder or hub name (None: found beside the model, else the run's)


@dataclass
class GlueModel:
    """What the GLUE stage needs of one model."""

    name: str
    factory: Callable[[int, int], Any]
    tokenizer: Any
    slots: int
    source: str


def backbone_factory(
    config: Any, backbone: dict[str, Any], where: str, sees_padding: bool
) -> Callable[[int, int], Any]:
    """``(num_labels, seed) -> LVBertForSequenceClassification`` of ``config`` with the given
    backbone state (``embeddings.*``, ``layers.*`` ... without the ``lvbert.`` prefix) and a
    freshly initialised task layer (drawn from the global RNG, which the fine-tuner seeds)."""
    from nasplug.spaces.lvbert import LVBertForSequenceClassification

    def factory(num_labels: int, seed: int) -> Any:
        cfg = config.with_layers(config.layers)
        cfg.num_labels = num_labels
        cfg.conv_sees_padding = bool(sees_padding or getattr(config, "conv_sees_padding", False))
        model = LVBertForSequenceClassification(cfg)
        missing, _ = model.lvbert.load_state_dict(backbone, strict=False)
        if missing:
            raise NasplugError(f"glue: {where} lacks backbone weights, e.g. {missing[0]}")
        return model

    return factory


def read_backbone(weights: Path) -> dict[str, Any]:
    """The ``lvbert.*`` tensors of a model file, prefix removed; NasplugError when none."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights))
    except Exception as exc:  # a truncated or foreign file
        raise NasplugError(
            f"glue: cannot read {weights}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc
    backbone = {k.removeprefix("lvbert."): v for k, v in state.items() if k.startswith("lvbert.")}
    if not backbone:
        raise NasplugError(f"glue: {weights} holds no LV-BERT backbone weights")
    return backbone


def model_folder(path: str | Path, field: str) -> Path:
    """The Hugging Face folder of an ``init_from`` entry: ``DIR/discriminator`` (written by
    ``nasplug import-official``) or ``DIR`` itself."""
    root = Path(path).expanduser()
    for folder in (root / "discriminator", root):
        if (folder / "config.json").is_file():
            missing = [w for w in WEIGHTS if not (folder / w).is_file()]
            if missing:
                raise NasplugError(f"{field}: {folder} has a config.json but no {missing[0]}")
            return folder
    if not root.exists():
        raise NasplugError(f"{field}: {root} does not exist (convert a checkpoint with "
                           "`nasplug import-official CHECKPOINT --out DIR` first)")
    raise NasplugError(f"{field}: {root} holds no model (expected config.json and model.safetensors, "
                       "or a discriminator/ folder written by `nasplug import-official`)")


def init_from_model(name: str, entry: str | dict[str, Any], sees_padding: bool, run_tokenizer: Path | None,
                    fallback_tokenizer: str | None) -> GlueModel:
    """A :class:`GlueModel` of one ``glue.init_from`` entry.

    The tokenizer is, in order: the entry's ``tokenizer``; a tokenizer saved in the model
    folder or beside it (``DIR/tokenizer``, ``DIR``); the run's ``run_dir/tokenizer``; the
    recipe's ``task.tokenizer.pretrained``. NasplugError naming the field when none loads.
    """
    from nasplug.spaces.lvbert import LVBertConfig
    from nasplug.text.tokenizer import load_tokenizer

    field = f"glue.init_from.{name}"
    spec = InitFrom(path=entry) if isinstance(entry, str) else InitFrom.model_validate(entry)
    folder = model_folder(spec.path, field)
    try:
        config = LVBertConfig.from_pretrained(str(folder))
    except Exception as exc:  # noqa: BLE001 - transformers raises many types
        raise NasplugError(
            f"{field}: {folder / 'config.json'} is not an LV-BERT config: {str(exc).splitlines()[0]}"
        ) from exc
    if getattr(config, "model_type", None) != "lvbert":
        raise NasplugError(f"{field}: {folder} holds a {config.model_type!r} model, not LV-BERT")
    backbone = read_backbone(folder / "model.safetensors")
    candidates = [spec.tokenizer] if spec.tokenizer else []
    candidates += [str(p) for p in (folder.parent / "tokenizer", folder / "tokenizer", folder)
                   if (p / "tokenizer.json").is_file() or (p / "vocab.txt").is_file()]
    if run_tokenizer is not None and (run_tokenizer / "tokenizer.json").is_file():
        candidates.append(str(run_tokenizer))
    if fallback_tokenizer:
        candidates.append(fallback_tokenizer)
    if not candidates:
        raise NasplugError(f"{field}: no tokenizer for {folder}; set {field}.tokenizer (e.g. bert-base-uncased for "
                           "the released checkpoints) or pass --vocab to `nasplug import-official`")
    tokenizer = load_tokenizer(candidates[0])
    if len(tokenizer) > config.vocab_size:
        raise NasplugError(f"{field}: the tokenizer {candidates[0]} has {len(tokenizer)} tokens, the model "
                           f"{config.vocab_size}; give the model's own vocabulary")
    log.info("glue %s: backbone from %s, tokenizer %s", name, folder, candidates[0])
    return GlueModel(name, backbone_factory(config, backbone, str(folder), sees_padding), tokenizer,
                     len(config.layers), str(folder))
