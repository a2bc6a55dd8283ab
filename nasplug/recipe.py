"""Recipes: YAML files validated into typed models.

Each component (space, task, strategy, evaluator, constraint) is ``{name: ..., <constructor
arguments>}``: the keys besides ``name`` are passed 1:1 to the registered class, so a
recipe reads like the Python call it stands for. ``--set a.b=c`` overrides any key.

Recipes are code in the way Hydra's ``_target_`` configs are: a ``name`` may be a
``package.module:attr`` path that is imported and called. nasplug only calls what resolves to
a plugin of the right kind (see :mod:`nasplug.registry`), but importing a module runs its
top-level code: run recipes you trust, as you would run their Python.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nasplug.errors import NasplugError
from nasplug.oneshot.config import TrainConfig
from nasplug.registry import STAGES, Registry
from nasplug.tracking import TrackingConfig
from nasplug.yamlio import parse_override_value, safe_load_recipe


class Component(BaseModel):
    """A registered thing plus its constructor arguments: ``{name: evolution, population: 50}``."""

    model_config = ConfigDict(extra="allow")

    name: str

    def kwargs(self) -> dict[str, Any]:
        """The constructor arguments (every key but ``name``)."""
        return dict(self.model_extra or {})


#: Constructor arguments the run passes to a component itself (a recipe may not replace them).
RESERVED = {"strategy": ("space",), "constraint": ("space",), "evaluator": ("space", "context")}


def refuse_reserved(spec: Component, kind: str, field: str) -> None:
    """NasplugError naming ``field.key`` when a recipe sets an argument the run passes itself
    (the run's space, its context): replaced, it would pass every check and fail later."""
    for key in RESERVED[kind]:
        if key in spec.kwargs():
            raise NasplugError(f"{field}.{key}: reserved: the run passes its own {key} to the {kind}; remove this key")


MetricName = Annotated[str, Field(min_length=1, max_length=200)]
Direction = Literal["maximize", "minimize"]


class SearchConfig(BaseModel):
    """How to search: strategy, budget, objectives, constraints.

    The objectives (see :mod:`nasplug.objectives`): ``metric`` (one) or ``objectives`` (one or
    more names); without either, the task's ``default_metric``. Each direction is the one its
    producer declares (task, space, evaluator) unless ``direction`` (one metric) or
    ``directions`` (per metric) overrides it. ``reference_point``: per objective, the value
    that bounds the hypervolume of the front (default: the worst value seen).
    A run stores them resolved (every direction spelt out) in its ``recipe.yaml``.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    strategy: Component = Field(default_factory=lambda: Component(name="evolution"))
    budget: int = Field(1000, ge=1, le=10**7)
    batch_size: int = Field(50, ge=1, le=10**6)
    metric: MetricName | None = None
    direction: Direction | None = None
    objectives: list[MetricName] | None = Field(None, min_length=1, max_length=16)
    directions: dict[str, Direction] | None = None
    reference_point: dict[str, Annotated[float, Field(allow_inf_nan=False)]] | None = None
    constraints: list[Component] = Field(default_factory=list)
    top_k: int = Field(10, ge=1, le=10**4)

    @property
    def archs_per_ask(self) -> int:
        """Archs asked per ``ask`` and evaluated together: the recipe key ``batch_size``, read
        under its glossary name here only (the glossary: ``nasplug.__doc__``)."""
        return self.batch_size


class SplitConfig(BaseModel):
    """Few-shot supernet: after ``after`` of the steps, split on the choice ``choice``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    choice: str = Field(min_length=1)
    after: float = Field(0.5, gt=0, lt=1)


class SupernetConfig(TrainConfig):
    """Supernet pre-training: the training settings plus how paths are sampled each step
    (``uniform``: SPOS; ``fair``: FairNAS, several paths per step; ``sandwich``: the largest,
    the smallest and n random archs, with in-place distillation: ``{name: sandwich, random: 2,
    distill: true}``) and, optionally, a few-shot split (``split: {choice: L00, after: 0.5}``:
    a copy of the supernet per option of that choice for the rest of the steps). ``snapshots``:
    steps after which the supernet's weights are kept (``supernet/snapshots/``), so ``nasplug
    rank-corr --checkpoints`` can rank archs with the supernet as it was then (a training-budget
    curve)."""

    sampler: str | Component = "uniform"
    split: SplitConfig | None = None
    snapshots: list[int] = Field(default_factory=list, max_length=1000)

    @field_validator("snapshots")
    @classmethod
    def _check_snapshots(cls, snapshots: list[int], info: ValidationInfo) -> list[int]:
        steps = info.data.get("steps", 1)
        bad = next((s for s in snapshots if not 1 <= s <= steps), None)
        if bad is not None:
            raise ValueError(f"step {bad} is not one of the supernet's steps (1..{steps})")
        if len(set(snapshots)) != len(snapshots):
            raise ValueError("a step is listed twice")
        if snapshots and info.data.get("split") is not None:
            raise ValueError("not available with a few-shot split (the supernet changes shape at the split)")
        return sorted(snapshots)


class RetrainConfig(TrainConfig):
    """Retraining from scratch: the found arch plus baselines trained for the same steps.

    ``baselines`` maps a name to an arch in the space's text form (LV-BERT: a letter string,
    the official int list, or a named order such as ``interleaved``). ``seeds``: train each
    model once per seed (weights and data order) and report mean and standard deviation;
    None trains once, with the recipe's seed for the weights and ``seed`` for the data.
    ``pareto``: also retrain this many archs spread along a multi-objective search's front
    (``pareto-1`` .. ``pareto-K``, best first in the first objective; see
    :mod:`nasplug.pipeline.retrained`).
    """

    baselines: dict[str, str] = Field(default_factory=dict)
    pareto: int | None = Field(None, ge=1, le=1000)
    seeds: list[int] | None = Field(None, min_length=1, max_length=1000)
    task: Component | None = (
        None  # changes to the recipe's task for retraining (e.g. {name: electra} after an MLM supernet)
    )


def training_settings(recipe: Recipe) -> TrainConfig | None:
    """The section whose training settings models trained outside the retrain stage use
    (``nasplug rank-corr``, ``nasplug study``): ``retrain:``, else ``supernet:``; None without
    either. Read it with :meth:`TrainConfig.of <nasplug.oneshot.config.TrainConfig.of>`."""
    return recipe.retrain if recipe.retrain is not None else recipe.supernet


#: A recipe's name becomes a folder name (runs/<name>): letters, digits, "-", "_", "." only.
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"


Section = TypeVar("Section")


def _present(value: Section | None, key: str, recipe: str) -> Section:
    if value is None:
        raise NasplugError(f"{key}: recipe {recipe!r} has no {key} section, and this step needs one")
    return value


class Recipe(BaseModel):
    """A whole run: the space, the task, how to train its supernet, search it, retrain.

    Besides these keys, a recipe may hold the settings of a plugin stage under the stage's
    name (GLUE: ``glue:``), when the stage declares :attr:`~nasplug.pipeline.stage.Stage.section`;
    the stage's ``check`` validates them. :meth:`section` reads them.
    """

    model_config = ConfigDict(extra="allow", strict=True)

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field("", max_length=100_000)
    seed: int = Field(0, ge=0, lt=2**63)
    threads: int | None = Field(None, ge=1, le=1024)  # CPU threads (None: $OMP_NUM_THREADS, else 1; nasplug.hardware)
    space: Component
    task: Component | None = None  # data + objective (mlm, electra, or a user's)
    supernet: SupernetConfig | None = None  # single-path one-shot pre-training of the supernet
    evaluator: Component | None = None
    search: SearchConfig | None = None
    arch: str | None = None  # a fixed architecture: skips supernet and search
    retrain: RetrainConfig | None = None
    study: dict[str, Any] | None = None  # rows of archs retrained K times (nasplug study; see nasplug.study.config)
    expected: dict[str, Any] | None = None  # the paper's numbers, with their source
    tracking: TrackingConfig | None = None  # TensorBoard / MLflow (nasplug.tracking)

    _folder: str | None = PrivateAttr(None)  # where the recipe file is: its plugins' modules may live there

    @property
    def folder(self) -> str | None:
        return self._folder

    def supernet_config(self) -> SupernetConfig:
        """The ``supernet:`` section; a one-line error when the recipe has none."""
        return _present(self.supernet, "supernet", self.name)

    def search_config(self) -> SearchConfig:
        """The ``search:`` section; a one-line error when the recipe has none."""
        return _present(self.search, "search", self.name)

    def retrain_config(self) -> RetrainConfig:
        """The ``retrain:`` section; a one-line error when the recipe has none."""
        return _present(self.retrain, "retrain", self.name)

    def section(self, name: str) -> dict[str, Any] | None:
        """A plugin stage's settings (the recipe's top-level key ``name``), None if absent."""
        return (self.model_extra or {}).get(name)

    @model_validator(mode="after")
    def _check(self) -> Recipe:
        for key, value in (self.model_extra or {}).items():
            _check_section(key, value)
        if self.evaluator is not None:
            refuse_reserved(self.evaluator, "evaluator", "evaluator")
        if self.search is not None:
            refuse_reserved(self.search.strategy, "strategy", "search.strategy")
            for i, constraint in enumerate(self.search.constraints):
                refuse_reserved(constraint, "constraint", f"search.constraints[{i}]")
        return self


def _check_section(key: str, value: Any) -> None:
    """A top-level key the recipe has no field for: a plugin stage's settings, or an error."""
    stage = STAGES.get(key) if key in STAGES.names() else None
    if stage is None or not stage.section:  # STAGES holds Stage subclasses: ``section`` is declared there
        raise NasplugError(f"{key}: unknown key")
    if value is not None and not isinstance(value, dict):
        raise NasplugError(f"{key}: expected a mapping of the {key} stage's settings, got {type(value).__name__}")


def shipped_recipes() -> dict[str, str]:
    """Name -> description of the recipes installed with nasplug (``nasplug run NAME``)."""
    from importlib.resources import files

    out = {}
    for entry in sorted(files("nasplug.recipes").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            description = ""
            try:
                raw = safe_load_recipe(Path(str(entry)))
                description = " ".join(str(raw.get("description", "")).split()) if isinstance(raw, dict) else ""
            except NasplugError:
                pass
            out[entry.name.removesuffix(".yaml")] = description
    return out


def resolve_recipe(name_or_path: str | os.PathLike[str]) -> Path:
    """A recipe file: the path when it exists, else the shipped recipe of that name
    (``lvbert-micro`` or ``lvbert-micro.yaml``); NasplugError naming the shipped ones."""
    path = Path(name_or_path)
    if path.exists() or len(path.parts) > 1:
        return path
    from importlib.resources import files

    name = path.name.removesuffix(".yaml")
    shipped = files("nasplug.recipes") / f"{name}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    raise NasplugError(f"recipe: no file {path} and no shipped recipe {name!r}; shipped: "
                       f"{', '.join(shipped_recipes())}")


def load_recipe(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override and validate a recipe file. Every problem is one NasplugError line."""
    path = Path(path)
    if not path.is_file():
        raise NasplugError(f"recipe: file not found: {path}")
    raw = safe_load_recipe(path)
    if not isinstance(raw, dict):
        raise NasplugError(f"recipe {path}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    for override in overrides:
        apply_override(raw, override)
    from nasplug.registry import add_import_dir

    add_import_dir(path.parent)  # a user's space or task module next to the recipe
    recipe = validate_recipe(raw, source=str(path))
    recipe._folder = str(path.parent.resolve())
    return recipe


def validate_recipe(raw: dict[str, Any], source: str = "recipe") -> Recipe:
    try:
        return Recipe.model_validate(migrate(raw, source))
    except ValidationError as exc:
        raise NasplugError(f"{source}: {describe_error(exc)}") from None


#: Rewrites of older recipes, applied in name order before validation: ``(raw, source) -> raw``.
#: A plugin whose settings moved registers one (the text plugin: ``data:`` and the objective
#: settings of the training sections -> ``task:``); each returns a recipe it does not know as it is.
MIGRATIONS = Registry("recipe migration")
MIGRATIONS.register("text", "nasplug.text.legacy:migrate")


def migrate(raw: dict[str, Any], source: str = "recipe") -> dict[str, Any]:
    """``raw`` with every registered migration applied."""
    for name in MIGRATIONS.names():
        raw = MIGRATIONS.get(name)(raw, source)
    return raw


def describe_error(exc: ValidationError) -> str:
    """One line for the first validation error: the dotted field and what is wrong."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown key"
    if error["type"] == "missing":
        return f"{field}: required key is missing"
    if field == "name" and error["type"] == "string_pattern_mismatch":
        return (f"name: {str(error.get('input'))[:60]!r} cannot name a run folder; use up to 100 letters, digits, "
                "'_', '-' and '.', not starting with '.' or '-'")
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    if error["type"] == "value_error":  # our own validators: their message says it all
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"{message}{more}" if not error["loc"] else f"{field}: {message}{more}"
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"{field}: {error['msg']} (got {shown}){more}"


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply ``a.b.c=value`` to the raw recipe dict; the value is parsed as YAML."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise NasplugError(f"--set {override!r}: expected KEY=VALUE, e.g. search.budget=200")
    value = parse_override_value(text, key.strip())
    node: Any = raw
    parts = key.strip().split(".")
    if any(not p for p in parts):
        raise NasplugError(f"--set {key}: empty part in the key; expected a.b.c=value")
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict):
            raise NasplugError(f"--set {key}: {'.'.join(parts[:i])} is not a mapping")
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    if not isinstance(node, dict):
        raise NasplugError(f"--set {key}: {'.'.join(parts[:-1])} is not a mapping")
    node[parts[-1]] = value


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML (defaults filled in), for the run directory."""
    from nasplug.yamlio import safe_dump

    # Nulls are kept: some are meaningful (space.size: null means "custom dims"). The dumper
    # quotes strings that YAML 1.2 reads as numbers ("1e5"), so a resumed run reads the same.
    return safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
