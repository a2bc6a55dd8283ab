"""Import the official LV-BERT pre-training checkpoints (TF1) as nasplug / Hugging Face models.

The released checkpoints of yuweihao/LV-BERT (and Google's ELECTRA ones, whose blocks are an
attention + feed-forward pair) hold the whole ELECTRA pre-training state: the discriminator
(``electra/...``), the generator (``generator/...``, sharing ``electra/embeddings``), both heads,
the Adam slots and ``global_step``. No TensorFlow is needed::

    from nasplug.spaces.lvbert import LVBertForPreTraining
    from nasplug.spaces.lvbert.official import import_official
    import_official("LV-BERT-small/model.ckpt-1000000", "out/")  # out/discriminator, out/generator
    LVBertForPreTraining.from_pretrained("out/discriminator")

Sizes (vocabulary, hidden, heads, FFN, embedding, positions, token types, kernel width, the
generator's sizes) and the layer sequence are read from the variable names and shapes. Every
nasplug parameter must receive a value and every checkpoint variable must be used, except
the ones :func:`~nasplug.spaces.lvbert.official_map.ignore_reason` names (optimizer slots,
``global_step``) or the caller's ``ignore`` patterns: a mismatch is an error, never a silent
partial load.

Outputs match the official graph within float32 round-off on unpadded rows. The official
dynamic convolution lets padding leak into its window; nasplug masks padding out unless the
config's ``conv_sees_padding`` is True. Pass ``conv_sees_padding=True`` to :func:`load_official`
/ :func:`import_official` to reproduce the official outputs on padded rows too.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json, make_temp_dir, shareable
from nasplug.spaces.lvbert import LVBertConfig, LVBertForMaskedLM, LVBertForPreTraining
from nasplug.spaces.lvbert.official_map import (
    EncoderPlan,
    Mapping,
    discriminator_head_mapping,
    encoder_mapping,
    generator_head_mapping,
    ignore_reason,
    plan_encoder,
)
from nasplug.spaces.lvbert.tf_checkpoint import (
    list_tf_checkpoint,
    read_tf_checkpoint,
    resolve_tf_checkpoint,
)

logger = logging.getLogger(__name__)

CONVERTER = "nasplug.spaces.lvbert.official"
_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "copy": lambda a: a,
    "transpose": lambda a: a.T,  # TF dense kernel [in, out] -> torch Linear weight [out, in]
    "depthwise": lambda a: a.transpose(1, 2, 0),  # [K, H, 1] -> Conv1d(groups=H) weight [H, 1, K]
    "pointwise": lambda a: a[0].T,  # 1x1 conv kernel [1, H_in, H_out] -> Linear weight [H_out, H_in]
}


@dataclass
class OfficialModels:
    """What :func:`load_official` returns: the two models (eval mode) and a conversion report."""

    discriminator: LVBertForPreTraining
    generator: LVBertForMaskedLM | None
    report: dict[str, Any] = field(default_factory=dict)


def load_official(
    checkpoint: str | os.PathLike[str],
    layers: Any = None,
    num_heads: int | None = None,
    generator_num_heads: int | None = None,
    conv_sees_padding: bool = False,
    ignore: Sequence[str] = (),
    verify: bool = True,
) -> OfficialModels:
    """Build the discriminator and generator of an official checkpoint in memory.

    Called by :func:`import_official` and by tests / notebooks that want the models without
    writing them. The generator is None when the checkpoint has no ``generator_predictions``.

    Args:
        checkpoint: Checkpoint prefix (``.../model.ckpt-1000000``), its ``.index``, or its folder.
        layers: Expected layer sequence (any spelling, e.g. the official int list); checked
            against the one read from the checkpoint (None: take the checkpoint's).
        num_heads, generator_num_heads: Head counts, needed only when a model has no dynamic
            convolution (whose kernel generator fixes them); default hidden / 64, at least 1.
        conv_sees_padding: Written to both configs: True reproduces the official outputs on
            padded rows (see :class:`LVBertConfig`).
        ignore: ``fnmatch`` patterns of further checkpoint variables that may stay unused
            (e.g. a fine-tuning task head); variables the models need are used regardless.
        verify: Check the CRC-32C of every tensor read (the optimizer slots are not read).
    """
    prefix = resolve_tf_checkpoint(checkpoint)
    where = f"{prefix}.index"
    shapes = {name: shape for name, (_, shape) in list_tf_checkpoint(prefix).items()}
    disc_plan, gen_plan = _plan(shapes, where, layers, num_heads, generator_num_heads)
    disc_map = encoder_mapping(disc_plan) + discriminator_head_mapping()
    gen_map = encoder_mapping(gen_plan) + generator_head_mapping() if gen_plan else []
    needed = {name for _, name, _ in disc_map + gen_map}
    ignored = _account(shapes, needed, ignore, where)
    # Only what the models need is read: the optimizer slots (2/3 of the file) never are.
    wanted = sorted(n for n in needed | {"global_step"} if n in shapes)  # absent ones are reported by _fill
    tensors = read_tf_checkpoint(prefix, names=wanted, verify=verify)
    step = _step(prefix, tensors)
    source = {"checkpoint": str(prefix.resolve()), "step": step, "converter": CONVERTER, "layout": disc_plan.layout}
    disc_config = _config(disc_plan, shapes, conv_sees_padding, gen_plan.hidden if gen_plan else None,
                          {**source, "role": "discriminator"})
    discriminator = LVBertForPreTraining(disc_config)
    _fill(discriminator, disc_map, tensors, where)
    generator = None
    if gen_plan is not None:
        gen_config = _config(gen_plan, shapes, conv_sees_padding, None, {**source, "role": "generator"})
        generator = LVBertForMaskedLM(gen_config)
        _fill(generator, gen_map, tensors, where)
    report = {**source, "layers": _letters(disc_plan.layers), "used_variables": len(needed), "ignored": ignored,
              "generator_layers": _letters(gen_plan.layers) if gen_plan else None}
    logger.info("converted %s (step %s): %d variables used, ignored %s", prefix, step, len(needed), ignored)
    return OfficialModels(discriminator.eval(), generator.eval() if generator is not None else None, report)


def import_official(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    layers: Any = None,
    num_heads: int | None = None,
    generator_num_heads: int | None = None,
    conv_sees_padding: bool = False,
    ignore: Sequence[str] = (),
    overwrite: bool = False,
    base_model: str | None = None,
) -> dict[str, Any]:
    """Convert an official checkpoint into Hugging Face folders (safetensors + config.json).

    Called by users once per released checkpoint. Writes
    ``out_dir/discriminator/`` (:class:`LVBertForPreTraining`), ``out_dir/generator/``
    (:class:`LVBertForMaskedLM`, when the checkpoint has one) and ``out_dir/conversion.json``
    (the report). Each config records ``nasplug_source`` (checkpoint, step, converter, role).
    Each folder is written under a temporary name and renamed, so a crash never leaves a
    half-written model. Arguments as in :func:`load_official`.

    Returns:
        The report: checkpoint, step, layers, variable counts, and the written folders.
    """
    out = Path(out_dir)
    targets = [out / "discriminator", out / "generator"]
    for target in targets:
        if target.exists() and any(target.iterdir()) and not overwrite:
            raise NasplugError(f"{target}: already exists and is not empty; pass overwrite=True to replace it")
    models = load_official(checkpoint, layers, num_heads, generator_num_heads, conv_sees_padding, ignore)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(models.report)
    for target, model in zip(targets, (models.discriminator, models.generator)):
        if model is None:
            continue
        partial = make_temp_dir(out, prefix=f".{target.name}.partial-")
        try:
            model.save_pretrained(partial)
            _loads_without_nasplug(model, partial, target.name, report, base_model)
            for path in partial.iterdir():  # transformers writes the weights 0600 whatever the umask
                shareable(path)
            if target.exists():
                shutil.rmtree(target)
            os.replace(partial, target)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        report[target.name] = str(target)
    atomic_write_json(out / "conversion.json", report)
    return report


# ------------------------------------------------------------------------------ internals
def _plan(shapes: dict[str, tuple[int, ...]], where: str, layers: Any, num_heads: int | None,
          generator_num_heads: int | None) -> tuple[EncoderPlan, EncoderPlan | None]:
    """Plans of the discriminator and (when the checkpoint has its head) the generator."""
    if "electra/embeddings/word_embeddings" not in shapes:
        sample = ", ".join(sorted(shapes)[:2]) or "none"
        raise NasplugError(
            f"{where}: not an LV-BERT / ELECTRA pre-training checkpoint (no electra/embeddings/word_embeddings; "
            f"{len(shapes)} variables, e.g. {sample})"
        )
    disc_plan = plan_encoder(shapes, "electra", "electra/embeddings", where, num_heads)
    if layers is not None:
        expected = LVBertConfig(layers=layers).layers  # any spelling: names, letters, official ints
        if expected != disc_plan.layers:
            raise NasplugError(f"layers: {_letters(expected)} given, but {where} holds {_letters(disc_plan.layers)}")
    if "generator_predictions/output_bias" not in shapes:
        return disc_plan, None
    # ELECTRA variants: a generator without its own encoder scope is the discriminator itself
    # (untied_generator=False); untied_generator_embeddings gives it its own tables.
    scope = "generator" if any(n.startswith("generator/encoder/") for n in shapes) else "electra"
    untied = "generator/embeddings/word_embeddings" in shapes
    embeddings = "generator/embeddings" if untied else "electra/embeddings"
    return disc_plan, plan_encoder(shapes, scope, embeddings, where, generator_num_heads)


def _account(shapes: dict[str, tuple[int, ...]], needed: set[str], ignore: Sequence[str], where: str) -> dict[str, int]:
    """Every variable the models do not need must have a reason to be left out: counts per reason."""
    ignored: Counter[str] = Counter()
    unused = []
    for name in shapes:
        if name in needed:
            continue
        reason = ignore_reason(name) or next((f"ignore={p!r}" for p in ignore if fnmatch.fnmatchcase(name, p)), None)
        if reason:
            ignored[reason] += 1
        else:
            unused.append(name)
    if unused:
        raise NasplugError(
            f"{where}: {len(unused)} checkpoint variable(s) not used by the conversion (e.g. {', '.join(unused[:3])}); "
            "pass ignore=[patterns] to leave them out"
        )
    return dict(ignored)


def _config(plan: EncoderPlan, shapes: dict[str, tuple[int, ...]], conv_sees_padding: bool,
            generator_hidden: int | None, source: dict[str, Any]) -> LVBertConfig:
    """The nasplug config of one encoder; sizes the plan did not fix come from the tables."""
    vocab, embedding = shapes[f"{plan.embeddings}/word_embeddings"]
    return LVBertConfig(
        vocab_size=vocab, embedding_size=embedding, hidden_size=plan.hidden, num_attention_heads=plan.heads,
        intermediate_size=plan.ffn, layers=plan.layers, conv_kernel_size=plan.kernel_size,
        max_position_embeddings=shapes[f"{plan.embeddings}/position_embeddings"][0],
        type_vocab_size=shapes[f"{plan.embeddings}/token_type_embeddings"][0],
        hidden_act="gelu",  # the official gelu is the exact erf form, as transformers' "gelu"
        layer_norm_eps=1e-12, generator_hidden_size=generator_hidden, conv_sees_padding=conv_sees_padding,
        nasplug_source=source,
    )


def _fill(model: torch.nn.Module, mapping: Mapping, tensors: dict[str, np.ndarray], where: str) -> None:
    """Copy the mapped checkpoint tensors into ``model`` (called once per model).

    Strict both ways: a mapped variable missing from the checkpoint or of the wrong shape, and
    a model parameter without a value, are errors. Tied parameters (the generator decoder and
    the word embeddings) are one entry of ``named_parameters`` and get one value.
    """
    params = dict(model.named_parameters())
    values: dict[str, np.ndarray] = {}
    for target, name, transform in mapping:
        if name not in tensors:
            raise NasplugError(f"{where}: variable {name} is missing (needed for {target})")
        value = _TRANSFORMS[transform](tensors[name])
        if target not in params:  # a mapping entry without a parameter is a bug in the tables
            raise RuntimeError(f"official mapping names {target}, which {type(model).__name__} does not have")
        if tuple(value.shape) != tuple(params[target].shape):
            raise NasplugError(f"{where}: {name} has shape {list(tensors[name].shape)}, which does not fit "
                               f"{target} {list(params[target].shape)}")
        values[target] = value
    missing = sorted(set(params) - set(values))
    if missing:
        raise NasplugError(f"{where}: no checkpoint variable for {len(missing)} parameters (e.g. {missing[0]})")
    with torch.no_grad():
        for target, value in values.items():
            param = params[target]
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(param.dtype))


def _step(prefix: Path, tensors: dict[str, np.ndarray]) -> int | None:
    if "global_step" in tensors and tensors["global_step"].size == 1:
        return int(tensors["global_step"].reshape(()))
    match = re.search(r"-(\d+)$", prefix.name)
    return int(match.group(1)) if match else None


def _loads_without_nasplug(model: Any, folder: Path, role: str, report: dict[str, Any], base_model: str | None) -> None:
    """What an exported run's folder has (see :mod:`nasplug.spaces.lvbert.export`): ``config.json``
    with ``auto_map``, the model code, and a model card (``base_model``: the Hub repository the
    checkpoint came from, when the user names it; the weights' license is not known here)."""
    from nasplug.spaces.lvbert.export import export_model, model_card

    export_model(model, folder)
    source = f"`{Path(report['checkpoint']).name}` (step {report['step']}, the {role} of a released LV-BERT checkpoint)"
    model_card(folder, {"model": role, "arch": _letters(model.config.layers), "source": source, "step": report["step"],
                        "license": "unknown", "language": ["en"], "base_model": base_model,
                        "head": "mlm" if role == "generator" else None})


def _letters(layers: list[str]) -> str:
    return "".join({"conv": "C", "attn": "A", "ffn": "F"}[kind] for kind in layers)
