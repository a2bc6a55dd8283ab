"""The text tasks of the reference pipeline: ``mlm`` (BERT masked LM) and ``electra``.

Recipe::

    task:
      name: electra            # or mlm
      corpus: {source: corpus/wikipedia_en_2015, document_by: paragraph, heldout_fraction: 0.02}
      tokenizer: {vocab_size: 8192}
      seq_len: 128
      packing: electra             # stream | document | electra (official builder, two segments)
      masking: electra             # bert | electra (default: bert for mlm, electra for electra)
      mask_prob: 0.15
      generator_weight: 1.0        # electra only
      discriminator_weight: 50.0   # electra only

The data (a WordPiece vocabulary trained on the corpus into the run directory, packed rows
cached under ``$NASPLUG_CACHE``) is built once per run by :meth:`TextTask.prepare`. Training
batches are packed rows masked per step with a generator seeded from ``(seed, step)``;
held-out batches are masked once with a fixed seed and the same masking, so every candidate
sees identical inputs. Segment ids of the rows (``packing: electra``) go with every batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from pydantic import ValidationError
from torch import nn

from nasplug.errors import NasplugError
from nasplug.oneshot.seeds import derive_seed
from nasplug.task import Sums, Task, TaskEnv
from nasplug.text import objectives as obj
from nasplug.text.config import TextConfig  # re-exported: the settings of a text task
from nasplug.text.masking import (
    IGNORE_INDEX,
    MaskedBatch,
    SegmentedBatch,
    fixed_heldout_batches,
    mask_electra,
    mask_tokens,
    unigram_baseline,
)


class ElectraBatch(NamedTuple):
    """A held-out batch of the ELECTRA task: masked ids, labels, and for every position a
    fixed replacement id (used where masked) that the discriminator must spot."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    replacements: torch.Tensor
    token_type_ids: torch.Tensor | None = None


class TextTask(Task):
    """Shared by ``mlm`` and ``electra``: data preparation, batches, held-out batches."""

    unit = "tokens"
    #: (mask, random) fractions of the picked positions under ``bert`` masking: 80/10/10
    fractions = (0.8, 0.1)
    #: the masking when the recipe names none
    default_masking = "bert"

    def __init__(self, **settings: Any) -> None:
        try:
            self.config = TextConfig.model_validate(settings)
        except ValidationError as exc:
            from nasplug.recipe import describe_error

            raise NasplugError(f"task: {describe_error(exc)}") from None
        self.data: Any = None
        #: Padding id masked out of attention when the task scores given batches without data
        #: (:func:`text_evaluator`; None: no padding). With data, the tokenizer's pad id is used.
        self.batches_pad_id: int | None = None

    @classmethod
    def from_data(cls, data: Any, **settings: Any) -> TextTask:
        """A task over already packed data (``PackedData``: ``train``, ``heldout``, ``tokens``),
        for tests and benchmarks; no corpus, no tokenizer."""
        task = cls(**settings)
        task.data = data
        return task

    # ------------------------------------------------------------------ data
    def prepare(self, env: TaskEnv) -> None:
        if self.data is None:
            from nasplug.text.prepare import prepare_text

            self.tokenizer, self.data = prepare_text(self.config, env)

    @property
    def tokens(self) -> Any:
        if self.data is None:
            raise RuntimeError(f"task {self.name!r}: call prepare() before reading data")
        return self.data.tokens

    @property
    def masking(self) -> str:
        """``bert`` or ``electra``: the recipe's ``masking``, else the task's default."""
        return self.config.masking or self.default_masking

    def split(self, name: str) -> tuple[torch.Tensor, ...] | None:
        rows = {"train": self.data.train, "heldout": self.data.heldout}.get(name) if self.data is not None else None
        return None if rows is None else (rows,)

    def segments(self, name: str) -> torch.Tensor | None:
        """Segment ids [N, L] of a split's rows (None: one segment; packing stream/document)."""
        if self.data is None:
            return None
        return {"train": self.data.train_segments, "heldout": self.data.heldout_segments}.get(name)

    def training_batches(self, batch_size: int, seed: int) -> Any:
        """Rows [B, L], or ``(rows, segment ids)`` when the rows have two segments."""
        from nasplug.oneshot.batches import BatchIterator

        segments = self.segments("train")
        return BatchIterator(self.data.train if segments is None else (self.data.train, segments), batch_size, seed)

    def export_assets(self, run_dir: Path, folder: Path) -> None:
        """The run's tokenizer files beside the model (each written atomically), so the folder
        loads with ``AutoTokenizer`` as well as ``AutoModel*`` (a standard ``BertTokenizerFast``)."""
        from nasplug.io import atomic_write_bytes
        from nasplug.layout import RunLayout
        from nasplug.text.tokenizer import as_bert_folder

        source = RunLayout(run_dir).tokenizer
        if not (source / "tokenizer.json").is_file():
            return
        for path in sorted(source.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                data = path.read_bytes()
                atomic_write_bytes(Path(folder) / path.name, data)
        as_bert_folder(folder)  # a run's tokenizer saved by an older nasplug: made standard here

    def card_facts(self) -> dict[str, Any]:
        from nasplug.text.corpus import corpus_card

        language = {"language": [self.config.language]} if self.config.language else {}
        return {**corpus_card(self.config.corpus), **language}

    def baseline(self) -> dict[str, float]:
        """Accuracy of always predicting the most frequent token (over the held-out tokens)."""
        if self.data is None or not len(self.data.heldout):
            return {}
        return {self.primary_metric(): unigram_baseline(self.data.train, self.data.heldout, self.tokens)}

    def model_settings(self) -> dict[str, Any]:
        """``seq_len``, and ``vocab_size`` when the vocabulary is trained (a pretrained
        tokenizer's size is known once it is loaded: :meth:`check_model` checks it then)."""
        trained = self.config.tokenizer.pretrained is None
        return {"seq_len": self.config.seq_len, **({"vocab_size": self.config.tokenizer.vocab_size} if trained else {})}

    def missing(self, model: nn.Module) -> list[str]:
        """The methods of the text-model interface (:mod:`nasplug.text.interface`) that this
        task calls and ``model`` lacks; for ELECTRA also those its generator lacks."""
        from nasplug.text.interface import MLM, missing_methods, text_model

        names = missing_methods(model, self.interface)
        if not names and "make_generator" in self.interface:
            names = [f"generator.{n}" for n in missing_methods(text_model(model).make_generator(0), MLM)]
        return names

    def check_model(self, model: nn.Module) -> None:
        obj.check_interface(model, self.interface, self.name)
        config = model.config if isinstance(model, obj.ConfiguredModel) else None
        vocab = getattr(config, "vocab_size", None)  # an optional field of a Hugging Face config
        if self.data is not None and vocab is not None and self.tokens.vocab_size > vocab:
            raise NasplugError(f"space.vocab_size: {vocab} is smaller than the tokenizer's vocabulary "
                               f"({self.tokens.vocab_size}); set space.vocab_size to at least {self.tokens.vocab_size}")

    def _mask(self, rows: torch.Tensor, gen: torch.Generator) -> MaskedBatch:
        """The task's masking of ``rows`` [B, L] from ``gen`` (training and held-out alike)."""
        if self.masking == "electra":
            return mask_electra(rows, self.tokens, gen, self.config.mask_prob, self.config.max_predictions)
        return mask_tokens(rows, self.tokens, gen, self.config.mask_prob, *self.fractions)

    def _fixed_heldout(self, batch_size: int, seed: int, num_batches: int | None) -> list[Any]:
        return fixed_heldout_batches(self.data.heldout, self.tokens, batch_size, seed, num_batches,
                                     self.config.mask_prob, segments=self.segments("heldout"), mask=self._mask)

    def _counts(self, rows: torch.Tensor, labels: torch.Tensor) -> dict[str, int]:
        return {"masked": int((labels != IGNORE_INDEX).sum()), "real": int((rows != self.tokens.pad_id).sum()),
                "tokens": rows.numel(), "examples": len(rows)}

    def _mask_of(self, ids: torch.Tensor) -> torch.Tensor | None:
        pad_id = self.tokens.pad_id if self.data is not None else self.batches_pad_id
        return None if pad_id is None else (ids != pad_id).long()

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, model: nn.Module, batches: Sequence[Any], aux: Mapping[str, nn.Module] | None = None,
                 device: torch.device | None = None) -> Sums:
        device = device or next(model.parameters()).device
        sums: Sums = {}
        with torch.no_grad():
            for batch in batches:
                obj.run_lanes(self.lanes(model, batch, aux or {}, device), sums)
        return sums

    def differentiable_input(self, model: nn.Module,
                             batch: Any) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """The word embeddings of the micro-batch's ids (:func:`~nasplug.text.objectives.embedding_input`)."""
        return obj.embedding_input(model, batch, self.name)

    def prefix_lanes(self, supernet: nn.Module, batches: Sequence[Any], aux: Mapping[str, nn.Module],
                     device: torch.device) -> list[list[obj.Lane]]:
        """Per held-out batch, its lanes for the prefix-sharing evaluator."""
        return [self.lanes(supernet, batch, aux, device) for batch in batches]


def _rows_and_types(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A training batch -> (rows [B, L] int64, segment ids [B, L] or None)."""
    if isinstance(batch, (tuple, list)):
        rows, types = batch
        return rows.long(), types.long()
    return batch, None


class MLMTask(TextTask):
    """Masked language modelling; BERT's masking by default (15% picked, 80/10/10)."""

    name = "mlm"
    metrics = {"mlm_acc": "maximize", "mlm_loss": "minimize"}
    head = "mlm"
    interface = ("encode", "masked_logits")

    def micro_batches(self, batch: torch.Tensor, step: int, seed: int, slices: Sequence[slice],
                      device: torch.device) -> tuple[list[obj.MicroBatch], dict[str, int]]:
        batch, types = _rows_and_types(batch)
        gen = torch.Generator().manual_seed(derive_seed(seed, "mask", step))
        ids, labels = self._mask(batch, gen)
        return ([obj.MicroBatch.of(ids[s], labels[s], batch[s], self.tokens.pad_id, None, device,
                                   None if types is None else types[s]) for s in slices],
                self._counts(batch, labels))

    def loss(self, model: nn.Module, batch: obj.MicroBatch, counts: Mapping[str, int],
             aux: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return obj.mlm_step(model, batch, counts["masked"])

    def teacher_loss(self, model: nn.Module, batch: obj.MicroBatch, counts: Mapping[str, int],
                     aux: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor], Any]:
        kept: list[torch.Tensor] = []
        loss, stats = obj.mlm_step(model, batch, counts["masked"], keep=kept)
        return loss, stats, kept[0]  # the masked positions' logits [N, V]

    def distill_loss(self, model: nn.Module, batch: obj.MicroBatch, counts: Mapping[str, int],
                     aux: Mapping[str, nn.Module], target: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return obj.mlm_step(model, batch, counts["masked"], teacher=target)

    def step_metrics(self, sums: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
        n = max(counts["masked"], 1)
        loss = sums["mlm_loss_sum"] / n
        return {"loss": loss, "mlm_loss": loss, "mlm_acc": sums["mlm_correct"] / n}

    def heldout_batches(self, batch_size: int, seed: int = 0, num_batches: int | None = None,
                        split: str = "heldout") -> list[Any]:
        if self.data is None or not len(self.data.heldout):
            return []
        return self._fixed_heldout(batch_size, seed, num_batches)

    def lanes(self, model: nn.Module, batch: Any, aux: Mapping[str, nn.Module], device: torch.device) -> list[obj.Lane]:
        ids, labels = batch.input_ids.to(device), batch.labels.to(device)
        return [obj.Lane(model, ids, self._mask_of(ids), obj.score_mlm(model, labels), _types(batch, device))]

    def figures(self, sums: Mapping[str, float]) -> dict[str, float]:
        n = max(sums.get("mlm_count", 0), 1)
        return {"mlm_acc": sums.get("mlm_correct", 0) / n, "mlm_loss": sums.get("mlm_loss_sum", 0.0) / n}


class ElectraTask(TextTask):
    """ELECTRA replaced-token detection with an MLM generator. Masking: the official fixed
    count by default; under ``bert`` masking Bernoulli picks with 85% [MASK] / 15% kept (no
    random tokens either way: the generator does the replacing)."""

    name = "electra"
    metrics = {"gen_mlm_acc": "maximize", "gen_mlm_loss": "minimize", "disc_acc": "maximize"}
    head = "discriminator"
    interface = ("encode", "discriminator_logits", "make_generator")
    distillation = False  # two networks per path: no teacher outputs defined (yet)
    fractions = (0.85, 0.0)
    default_masking = "electra"

    def __init__(self, generator_weight: float = 1.0, discriminator_weight: float = 50.0, **settings: Any) -> None:
        for field, value in (("generator_weight", generator_weight), ("discriminator_weight", discriminator_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise NasplugError(f"task.{field}: expected a number >= 0, got {value!r}")
        super().__init__(**settings)
        self.generator_weight, self.discriminator_weight = float(generator_weight), float(discriminator_weight)

    def auxiliary(self, model: nn.Module, seed: int) -> dict[str, nn.Module]:
        return {"generator": obj.build_generator(model, seed)}

    def micro_batches(self, batch: torch.Tensor, step: int, seed: int, slices: Sequence[slice],
                      device: torch.device) -> tuple[list[obj.MicroBatch], dict[str, int]]:
        batch, types = _rows_and_types(batch)
        gen = torch.Generator().manual_seed(derive_seed(seed, "mask", step))
        ids, labels = self._mask(batch, gen)
        uniforms = torch.rand(batch.shape, generator=gen)
        return ([obj.MicroBatch.of(ids[s], labels[s], batch[s], self.tokens.pad_id, uniforms[s], device,
                                   None if types is None else types[s])
                 for s in slices], self._counts(batch, labels))

    def loss(self, model: nn.Module, batch: obj.MicroBatch, counts: Mapping[str, int],
             aux: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return obj.electra_step(model, aux["generator"], batch, counts["masked"], counts["real"],
                                self.generator_weight, self.discriminator_weight)

    def step_metrics(self, sums: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
        n_masked, n_real = max(counts["masked"], 1), max(counts["real"], 1)
        mlm_loss, disc_loss = sums["mlm_loss_sum"] / n_masked, sums["disc_loss_sum"] / n_real
        return {"loss": self.generator_weight * mlm_loss + self.discriminator_weight * disc_loss,
                "gen_mlm_loss": mlm_loss, "gen_mlm_acc": sums["mlm_correct"] / n_masked, "disc_loss": disc_loss,
                "disc_acc": sums["disc_correct"] / n_real, "replaced_frac": sums["replaced"] / n_real}

    def heldout_batches(self, batch_size: int, seed: int = 0, num_batches: int | None = None,
                        split: str = "heldout") -> list[Any]:
        """Masked once with ``seed`` (the training masking); a fixed random replacement per
        position drawn with ``seed + 1`` (uniform over the non-special tokens)."""
        if self.data is None or not len(self.data.heldout):
            return []
        held = self._fixed_heldout(batch_size, seed, num_batches)
        gen = torch.Generator().manual_seed(seed + 1)
        special = set(self.tokens.special_ids)
        table = torch.tensor([i for i in range(self.tokens.vocab_size) if i not in special])
        return [ElectraBatch(b.input_ids, b.labels, table[torch.randint(len(table), b.labels.shape, generator=gen)],
                             _segment_ids(b)) for b in held]

    def lanes(self, model: nn.Module, batch: Any, aux: Mapping[str, nn.Module], device: torch.device) -> list[obj.Lane]:
        """The generator's MLM run and the discriminator's run on the fixed corruption."""
        generator = aux["generator"]
        ids, labels = batch.input_ids.to(device), batch.labels.to(device)
        mask = self._mask_of(ids)
        masked = labels != IGNORE_INDEX
        original = torch.where(masked, labels, ids)
        corrupted = torch.where(masked, batch.replacements.to(device), original)
        is_replaced = (corrupted != original).float()
        valid = torch.ones_like(is_replaced, dtype=torch.bool) if mask is None else mask.bool()
        types = _types(batch, device)
        return [obj.Lane(generator, ids, mask, obj.score_mlm(generator, labels), types),
                obj.Lane(model, corrupted, mask, obj.score_disc(model, is_replaced, valid), types)]

    def figures(self, sums: Mapping[str, float]) -> dict[str, float]:
        n = max(sums.get("mlm_count", 0), 1)
        out = {"gen_mlm_acc": sums.get("mlm_correct", 0) / n, "gen_mlm_loss": sums.get("mlm_loss_sum", 0.0) / n}
        if "disc_count" in sums:
            out["disc_acc"] = sums["disc_correct"] / max(sums["disc_count"], 1.0)
        return out


def _segment_ids(batch: Any) -> torch.Tensor | None:
    """A held-out batch's segment ids [B, L] (None: one segment; a ``MaskedBatch`` has none)."""
    return batch.token_type_ids if isinstance(batch, (SegmentedBatch, ElectraBatch)) else None


def _types(batch: Any, device: torch.device) -> torch.Tensor | None:
    """A held-out batch's segment ids on ``device`` (None: one segment)."""
    types = _segment_ids(batch)
    return None if types is None else types.to(device)


def text_evaluator(supernet: nn.Module, batches: Sequence[Any], *, space: Any = None, pad_id: int | None = None,
                   generator: nn.Module | None = None, replacements: Sequence[torch.Tensor] | None = None,
                   **kwargs: Any) -> Any:
    """An inherited-weights evaluator of an LV-BERT-like supernet on given pre-masked batches
    (``MaskedBatch``: ``input_ids``, ``labels``; or ``SegmentedBatch`` with ``token_type_ids``), without a
    corpus: MLM figures, or with an
    ELECTRA ``generator`` supernet and fixed ``replacements`` (one id per position of each
    batch), the generator's MLM and the discriminator's accuracy. ``pad_id`` None: no padding.
    ``kwargs`` go to :class:`~nasplug.oneshot.evaluator.InheritedWeights`."""
    from nasplug.oneshot.evaluator import InheritedWeights

    if generator is None:
        task: TextTask = MLMTask()
        aux: dict[str, nn.Module] = {}
    else:
        task, aux = ElectraTask(), {"generator": generator}
        if replacements is not None:
            batches = [ElectraBatch(b.input_ids, b.labels, r, _segment_ids(b))
                       for b, r in zip(batches, replacements, strict=True)]
        else:  # no corruption: every position keeps its original token
            batches = [ElectraBatch(b.input_ids, b.labels, torch.where(b.labels != IGNORE_INDEX, b.labels, b.input_ids),
                                    _segment_ids(b)) for b in batches]
    task.batches_pad_id = pad_id
    return InheritedWeights(supernet, task, batches, space=space, aux=aux, **kwargs)
