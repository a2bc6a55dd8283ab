"""The ``study:`` section of a recipe: which architectures to retrain, how often, against what.

::

    study:
      seeds: [0, 1, 2]          # K: every arch is trained once per seed (weights and data order)
      reference: interleaved    # the row every other row is tested against (paired by seed)
      metric: mlm_acc           # the headline metric (default: the task's first)
      train: {steps: 600}       # changes to the retrain settings for these runs
      rows:
        searched: {search: {}}                                  # evolution in the recipe's space
        searched-attn-ffn: {search: {space: {allowed: [attn, ffn]}}}   # ... in a sub-space
        interleaved: {arch: interleaved}                        # a fixed arch (the space's text form)
        random: {random: 5, seed: 0}                            # N random archs of the space

A ``search`` row runs the recipe's search (strategy, budget, metric; ``search`` may change
them) with the strategy over the recipe's space changed by ``space`` (a sub-space), scored by
the run's trained supernet; its best arch is the row's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StudyRow(BaseModel):
    """One row: exactly one of ``search``, ``arch``, ``random``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    search: dict[str, Any] | None = None  # {space: {...}, budget: ..., strategy: {...}}
    arch: str | None = None
    random: int | None = Field(None, ge=1, le=1000)
    seed: int = Field(0, ge=0, lt=2**63)  # for random rows

    @model_validator(mode="after")
    def _one_kind(self) -> StudyRow:
        kinds = [k for k in ("search", "arch", "random") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a row needs exactly one of search, arch, random; got {', '.join(kinds) or 'none'}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("search", "arch", "random") if getattr(self, k) is not None)


class StudyConfig(BaseModel):
    """The study: rows of archs, K seeds each, the reference row, the headline metric."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rows: dict[str, StudyRow] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1, max_length=100)
    reference: str | None = None
    metric: str | None = None
    train: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        if self.reference is not None and self.reference not in self.rows:
            raise ValueError(f"reference: {self.reference!r} is not a row; rows: {', '.join(self.rows)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: {self.seeds} repeats a seed")
        return self
