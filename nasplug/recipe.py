"""Recipes: YAML files validated into typed models.

Each component (space, strategy, evaluator, constraint) is ``{name: ..., <constructor
arguments>}``: the keys besides ``name`` are passed 1:1 to the registered class, so a
recipe reads like the Python call it stands for. ``--set a.b=c`` overrides any key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from nasplug.text.corpus import CorpusConfig
from nasplug.errors import NasplugError
from nasplug.glue.finetune import FinetuneConfig
from nasplug.glue.tasks import BENCHMARK_TASKS
from nasplug.oneshot.train import TrainConfig


class Component(BaseModel):
    """A registered thing plus its constructor arguments: ``{name: evolution, population: 50}``."""

    model_config = ConfigDict(extra="allow")

    name: str

    def kwargs(self) -> dict[str, Any]:
        """The constructor arguments (every key but ``name``)."""
        return dict(self.model_extra or {})


class SearchConfig(BaseModel):
    """How to search: strategy, budget, objective, constraints."""

    model_config = ConfigDict(extra="forbid")

    strategy: Component = Field(default_factory=lambda: Component(name="evolution"))
    budget: PositiveInt = 1000
    batch_size: PositiveInt = 50
    metric: str = "score"
    direction: Literal["maximize", "minimize"] = "maximize"
    constraints: list[Component] = Field(default_factory=list)
    top_k: PositiveInt = 10


class TokenizerConfig(BaseModel):
    """Train a WordPiece vocabulary on the corpus, or load a pretrained tokenizer."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(8192, ge=32)
    pretrained: str | None = None  # a hub name or a folder; skips training
    max_bytes: int | None = Field(50_000_000, ge=1)  # train the vocabulary on this much text
    lowercase: bool = True
    min_frequency: int = Field(2, ge=1)


class DataConfig(BaseModel):
    """Pre-training data: the corpus, the tokenizer, the sequence length."""

    model_config = ConfigDict(extra="forbid")

    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    seq_len: int = Field(128, ge=8)
    packing: Literal["stream", "document"] = "stream"
    cache_dir: str | None = None  # default: $NASPLUG_CACHE or ~/.cache/nasplug


class RetrainConfig(TrainConfig):
    """Retraining from scratch: the found arch plus baselines trained for the same steps.

    ``baselines`` maps a name to an arch (compact string, official int list, or
    ``interleaved``, the ELECTRA-style attn/ffn alternation).
    """

    baselines: dict[str, str] = Field(default_factory=dict)


class GlueConfig(FinetuneConfig):
    """GLUE fine-tuning of every retrained model: which tasks, from where."""

    source: str = "hub"  # "hub" (nyu-mll/glue) or a folder in the GLUE TSV layout
    tasks: list[str] = Field(default_factory=lambda: list(BENCHMARK_TASKS))


class Recipe(BaseModel):
    """A whole run: the space, how to train its supernet, search it, retrain, fine-tune."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    seed: int = 0
    space: Component
    data: DataConfig | None = None
    supernet: TrainConfig | None = None  # single-path one-shot pre-training of the supernet
    evaluator: Component | None = None
    search: SearchConfig | None = None
    arch: str | None = None  # a fixed architecture: skips supernet and search
    retrain: RetrainConfig | None = None
    glue: GlueConfig | None = None
    expected: dict[str, Any] | None = None  # the paper's numbers, with their source


def load_recipe(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override and validate a recipe file. Every problem is one NasplugError line."""
    path = Path(path)
    if not path.is_file():
        raise NasplugError(f"recipe: file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NasplugError(f"recipe {path}: malformed YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise NasplugError(f"recipe {path}: not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise NasplugError(f"recipe {path}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    for override in overrides:
        apply_override(raw, override)
    return validate_recipe(raw, source=str(path))


def validate_recipe(raw: dict[str, Any], source: str = "recipe") -> Recipe:
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise NasplugError(f"{source}: {describe_error(exc)}") from None


def describe_error(exc: ValidationError) -> str:
    """One line for the first validation error: the dotted field and what is wrong."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown key"
    if error["type"] == "missing":
        return f"{field}: required key is missing"
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"{field}: {error['msg']} (got {error.get('input')!r}){more}"


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply ``a.b.c=value`` to the raw recipe dict; the value is parsed as YAML."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise NasplugError(f"--set {override!r}: expected KEY=VALUE, e.g. search.budget=200")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    node: Any = raw
    parts = key.strip().split(".")
    for i, part in enumerate(parts[:-1]):
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise NasplugError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a mapping")
    node[parts[-1]] = value


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML (defaults filled in), for the run directory."""
    # Nulls are kept: some are meaningful (space.size: null means "custom dims").
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
