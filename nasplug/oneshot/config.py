"""Training settings of the one-shot loop (supernet pre-training and retraining).

Recipe keys under ``supernet:`` and ``retrain:`` map 1:1 onto :class:`TrainConfig`'s fields
(:meth:`TrainConfig.of` reads them from a section, with changes); what the task trains on
(data, objective, masking) lives in the recipe's ``task:``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Keys of ``supernet:`` / ``retrain:`` that now belong to the task (older recipes put them there).
TASK_KEYS = ("objective", "generator_weight", "discriminator_weight", "mask_prob")


class TrainConfig(BaseModel):
    """Training settings; recipe keys map 1:1 onto these fields.

    ``batch_size`` is global (all ranks and micro-batches together); ``warmup_steps`` wins
    over ``warmup_fraction`` (of ``steps``) when set; ``clip`` None disables clipping;
    ``eval_every`` / ``checkpoint_every`` 0 mean "only at the end". ``eval_archs`` is how
    many fixed sampled archs a supernet's held-out figures average over. ``optimizer``:
    ``adamw`` (torch AdamW, linear warm-up then decay) or ``official`` (BERT/ELECTRA's
    AdamWeightDecay without bias correction, warm-up multiplying the linear decay: the
    LV-BERT recipe; see :mod:`nasplug.oneshot.optim`). ``precision``: ``bf16`` (autocast) or
    ``fp32``; ``auto`` is bf16 where the device has fast bf16 matrix units, else fp32
    (:mod:`nasplug.hardware`; a run resolves it once and records it in ``run.json``).
    """

    # strict: a recipe's `steps: true` or `lr: "1e-3"` is an error, not 1 or a guess
    model_config = ConfigDict(extra="forbid", strict=True)

    steps: int = Field(1000, ge=1, le=10**9)
    batch_size: int = Field(128, ge=1, le=2**20)
    grad_accum: int = Field(1, ge=1, le=2**16)
    optimizer: Literal["adamw", "official"] = "adamw"
    lr: float = Field(5e-4, gt=0, le=100, allow_inf_nan=False)
    weight_decay: float = Field(0.01, ge=0, le=100, allow_inf_nan=False)
    warmup_steps: int | None = Field(None, ge=0, le=10**9)
    warmup_fraction: float = Field(0.1, ge=0, le=1)
    clip: float | None = Field(1.0, gt=0, allow_inf_nan=False)
    betas: tuple[float, float] = Field((0.9, 0.999), strict=False)  # a YAML list is fine here
    eps: float = Field(1e-6, gt=0, allow_inf_nan=False)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: bool = False
    eval_every: int = Field(0, ge=0, le=10**9)
    eval_batches: int = Field(20, ge=1, le=10**6)
    eval_archs: int = Field(4, ge=1, le=10**4)
    checkpoint_every: int = Field(0, ge=0, le=10**9)
    log_every: int = Field(10, ge=1, le=10**9)
    seed: int = Field(0, ge=0, lt=2**63)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @classmethod
    def of(cls, section: BaseModel, **changes: Any) -> TrainConfig:
        """The training settings of a recipe section with ``changes`` over them.

        ``section``: ``supernet:`` or ``retrain:`` (a TrainConfig with keys of its own, such as
        the sampler or the baselines, which are left out) or a TrainConfig. Raises pydantic's
        ``ValidationError`` when a change is out of range (the caller names its field).
        """
        return cls.model_validate({**section.model_dump(include=set(cls.model_fields)), **changes})

    def warmup(self) -> int:
        """Warm-up length in optimizer steps."""
        return self.warmup_steps if self.warmup_steps is not None else round(self.warmup_fraction * self.steps)


@dataclass
class TrainResult:
    """What :func:`train` returns (also written to ``run_dir/result.json``).

    ``metrics`` holds the last step's training figures (the task's, plus ``lr`` and
    ``grad_norm``); ``heldout`` the last evaluation (``heldout_<metric>`` for each of the
    task's metrics, the mean over the eval archs, and ``per_arch``); ``baseline`` the task's
    trivial-predictor figures; ``throughput`` the task's units (tokens, examples) per second.
    """

    steps: int
    metrics: dict[str, Any]
    heldout: dict[str, Any]
    baseline: dict[str, float]
    throughput: float
    unit: str
    wall_s: float
    run_dir: str
    eval_archs: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
