"""Registries: names -> factories, for spaces, tasks, strategies, evaluators and constraints.

A name resolves in this order: a registered name; a ``package.module:attr`` path; an
``importlib.metadata`` entry point of the registry's group (how third-party packages add
spaces and strategies without touching nasplug). Built-ins are stored as import paths so
importing nasplug stays cheap (no torch until a space needs it).

A ``package.module:attr`` path comes from a recipe, so it is checked before it is called: it
must resolve to a plugin of the registry's kind (a SearchSpace / Task / Strategy /
EvaluatorPlugin subclass; an evaluator or constraint class with ``__call__``; or a function
marked with :func:`plugin`). Arguments are checked against the plugin's type hints, bounds
declared there included (``Annotated[int, Field(ge=1)]``), before it is called.
Anything else (``os:system``, ``builtins:eval``) is refused without being called. Importing
the module still runs its top-level code: recipes are code, run the ones you trust.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from nasplug.errors import NasplugError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """A dict of named factories plus a ``register`` decorator."""

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, Any] = {}

    def register(self, name: str, target: Any = None) -> Any:
        """Register ``target`` (an object or a ``module:attr`` string) under ``name``.

        Without ``target`` it returns a decorator: ``@SPACES.register("toy")``.
        """
        if target is None:
            def decorator(obj: T) -> T:
                self._entries[name] = obj
                return obj

            return decorator
        self._entries[name] = target
        return target

    def _entry_points(self) -> dict[str, importlib.metadata.EntryPoint]:
        if self.group is None:
            return {}
        return {ep.name: ep for ep in importlib.metadata.entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Every name this registry knows: registered ones and installed entry points."""
        return sorted(set(self._entries) | set(self._entry_points()))

    def get(self, name: str) -> Any:
        """The factory for ``name``; a NasplugError naming the known ones if there is none."""
        return self.resolve(name)[0]

    def resolve(self, name: str) -> tuple[Any, bool]:
        """``(factory, trusted)``: registered names and entry points are trusted; a
        ``module:attr`` path from a recipe is not (callers check it with :func:`check_plugin`)."""
        if not isinstance(name, str) or not name:
            raise NasplugError(f"{self.kind}: the name must be a non-empty string, got {name!r}")
        if name in self._entries:
            target = self._entries[name]
            if isinstance(target, str):
                target = self._entries[name] = import_path(target, field=f"{self.kind} {name!r}")
            return target, True
        if ":" in name:
            return import_path(name, field=self.kind), False
        entry_points = self._entry_points()
        if name in entry_points:
            try:
                return entry_points[name].load(), True
            except Exception as exc:  # a broken plugin should say which one
                raise NasplugError(f"{self.kind} {name!r}: entry point failed to load ({exc})") from None
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise NasplugError(
            f"unknown {self.kind} {name!r}{hint} Known: {', '.join(known)} "
            "(or give a 'package.module:attr' path)"
        )

    def build(self, name: str, **kwargs: Any) -> Any:
        """Call the factory for ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)


def add_import_dir(folder: str | Path) -> None:
    """Let ``module:attr`` names find modules in ``folder`` (a recipe's own folder, so a
    user's space and task can live next to their recipe). Searched after nothing else: a
    module on the normal path wins."""
    folder = str(Path(folder).resolve())
    if folder not in sys.path:
        sys.path.append(folder)


def import_path(path: str, field: str = "path") -> Any:
    """Import ``package.module:attr`` (attr may be dotted)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise NasplugError(f"{field}: {path!r} is not of the form 'package.module:attr'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise NasplugError(f"{field}: cannot import module {module_name!r} ({exc})") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise NasplugError(f"{field}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def plugin(kind: str) -> Callable[[T], T]:
    """Mark a factory function as a plugin of ``kind`` (``"evaluator"``, ``"constraint"``,
    ...), so a recipe may name it by ``module:attr`` path."""
    def mark(fn: T) -> T:
        fn.__nasplug_plugin__ = kind  # type: ignore[attr-defined]
        return fn

    return mark


def check_plugin(factory: Any, kind: str, base: type | None, field: str, name: str) -> None:
    """NasplugError unless ``factory`` (resolved from a recipe path) is a plugin of ``kind``."""
    import inspect

    if getattr(factory, "__nasplug_plugin__", None) == kind:
        return
    if inspect.isclass(factory):
        if base is not None and issubclass(factory, base):
            return
        if base is None and any("__call__" in vars(c) for c in factory.__mro__[:-1]) and not issubclass(factory, type):
            return
    what = f"a {base.__module__}.{base.__name__} subclass" if base is not None else \
        "a class whose instances are called, or a function marked with nasplug.registry.plugin"
    raise NasplugError(
        f"{field}: {name!r} is not a {kind} plugin (it is {type(factory).__name__} "
        f"{getattr(factory, '__qualname__', '')!s}); a path must name {what}; refused without calling it"
    )


def build_plugin(registry: Registry, name: str, kwargs: dict[str, Any], field: str, kind: type | None = None) -> Any:
    """Resolve ``name`` in ``registry``, check an untrusted path, call it with ``kwargs``
    (argument names and types checked), and check the result is a ``kind``."""
    factory, trusted = registry.resolve(name)
    if not trusted:
        check_plugin(factory, registry.kind, kind, field, name)
    built = build_callable(factory, kwargs, field=field)
    if kind is not None and not isinstance(built, kind):
        raise NasplugError(f"{field}: {name!r} built a {type(built).__name__}, not a nasplug {kind.__name__}")
    return built


SPACES = Registry("space", group="nasplug.spaces")
TASKS = Registry("task", group="nasplug.tasks")
STRATEGIES = Registry("strategy", group="nasplug.strategies")
EVALUATORS = Registry("evaluator", group="nasplug.evaluators")
CONSTRAINTS = Registry("constraint", group="nasplug.constraints")
#: The stages of ``nasplug run`` (see :mod:`nasplug.pipeline.stage`); here, beside the other
#: registries, so the recipe can ask which plugin stages have a section without importing the pipeline.
STAGES = Registry("stage", group="nasplug.stages")

SPACES.register("toy", "nasplug.spaces.toy:ToySpace")
SPACES.register("lvbert", "nasplug.spaces.lvbert:LVBertSpace")
SPACES.register("elastic-bert", "nasplug.spaces.elastic_bert:ElasticBertSpace")
STRATEGIES.register("random", "nasplug.strategies.random:RandomSearch")
STRATEGIES.register("evolution", "nasplug.strategies.evolution:Evolution")
STRATEGIES.register("regularized", "nasplug.strategies.evolution:RegularizedEvolution")
STRATEGIES.register("optuna", "nasplug.strategies.optuna:OptunaStrategy")
STRATEGIES.register("optuna:TPESampler", "nasplug.strategies.optuna:TPESampler")
STRATEGIES.register("optuna:RandomSampler", "nasplug.strategies.optuna:RandomSampler")
STRATEGIES.register("optuna:NSGAIISampler", "nasplug.strategies.optuna:NSGAIISampler")
STRATEGIES.register("optuna:NSGAIIISampler", "nasplug.strategies.optuna:NSGAIIISampler")
STRATEGIES.register("nni", "nasplug.strategies.nni:NNIStrategy")
STRATEGIES.register("nni:RegularizedEvolution", "nasplug.strategies.nni:RegularizedEvolution")
STRATEGIES.register("nni:TPE", "nasplug.strategies.nni:TPE")
STRATEGIES.register("nni:Random", "nasplug.strategies.nni:Random")
EVALUATORS.register("toy", "nasplug.spaces.toy:ToyObjective")
EVALUATORS.register("supernet", "nasplug.pipeline.evaluators:SupernetEvaluator")
EVALUATORS.register("synflow", "nasplug.zerocost.evaluators:SynFlow")
EVALUATORS.register("grad_norm", "nasplug.zerocost.evaluators:GradNorm")
EVALUATORS.register("snip", "nasplug.zerocost.evaluators:Snip")
EVALUATORS.register("jacov", "nasplug.zerocost.evaluators:JacobianCovariance")
TASKS.register("mlm", "nasplug.text.tasks:MLMTask")
TASKS.register("electra", "nasplug.text.tasks:ElectraTask")
CONSTRAINTS.register("max_metric", "nasplug.constraints:MaxMetric")
CONSTRAINTS.register("min_metric", "nasplug.constraints:MinMetric")
STAGES.register("latency", "nasplug.pipeline.latency:LatencyStage")
STAGES.register("supernet", "nasplug.pipeline.supernet:SupernetStage")
STAGES.register("search", "nasplug.pipeline.search:SearchStage")
STAGES.register("retrain", "nasplug.pipeline.retrain:RetrainStage")
STAGES.register("rank_corr", "nasplug.rankcorr.stage:RankCorrStage")
STAGES.register("glue", "nasplug.glue.stage:GlueStage")
STAGES.register("report", "nasplug.pipeline.report:ReportStage")


def build_callable(factory: Callable[..., T], kwargs: dict[str, Any], field: str) -> T:
    """Call ``factory(**kwargs)``, turning bad argument names and types into one clear line."""
    kwargs = check_kwargs(factory, kwargs, field)
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise NasplugError(f"{field}: {exc}") from None


def check_kwargs(factory: Callable[..., Any], kwargs: dict[str, Any], field: str) -> dict[str, Any]:
    """``kwargs`` checked against ``factory``'s signature and type hints, strictly (``"8"`` or
    ``true`` for a number is an error, not converted; a YAML list is accepted for a tuple and
    returned as one), without calling it; NasplugError naming the first bad argument."""
    import inspect

    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return kwargs
    params = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        allowed = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                   and n not in ("self", "space", "context")]
        for key in kwargs:
            if key not in params:
                raise NasplugError(f"{field}.{key}: unknown argument; allowed: {', '.join(allowed) or '(none)'}")
    return _check_types(factory, kwargs, field)


def _check_types(factory: Callable[..., Any], kwargs: dict[str, Any], field: str) -> dict[str, Any]:
    """Validate each argument against the factory's type hints, strictly: ``"8"`` or ``true``
    for a number is an error, not a guess (a YAML list is accepted for a tuple). Bounds
    declared in a hint (``Annotated[int, Field(ge=1, le=1000)]``) are checked with it."""
    import inspect

    target = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    hints = _hints(target)
    checked = dict(kwargs)
    for key, value in kwargs.items():
        if key in hints:
            checked[key] = _check_value(hints[key], value, f"{field}.{key}", lists_as_tuples=True)
    return checked


def _hints(fn: Callable[..., Any], constrained_only: bool = False) -> dict[str, Any]:
    """``fn``'s parameter type hints with their ``Annotated`` metadata (with ``constrained_only``
    only those that declare bounds or allowed values: ``Annotated``, ``Literal``); none when
    they cannot be resolved (e.g. names imported only for type checking)."""
    import typing

    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        return {}
    if not constrained_only:
        return hints
    return {k: hint for k, hint in hints.items() if k != "return" and _constrained(hint)}


def _constrained(hint: Any) -> bool:
    import typing

    if typing.get_origin(hint) in (typing.Annotated, typing.Literal):
        return True
    return any(_constrained(arg) for arg in typing.get_args(hint))


def _check_value(hint: Any, value: Any, where: str, lists_as_tuples: bool = False) -> Any:
    """``value`` validated strictly against ``hint`` (pydantic); NasplugError ``where: what
    is allowed (got value)``. A hint pydantic cannot check lets the value through as it is."""
    import pydantic

    try:
        adapter = pydantic.TypeAdapter(hint)
        if isinstance(value, bool) and not _accepts_bool(adapter):
            raise NasplugError(f"{where}: expected a number, not {value!r} (a boolean)")
        try:
            return adapter.validate_python(value, strict=True)
        except pydantic.ValidationError:
            if not (lists_as_tuples and isinstance(value, list)):
                raise
            return adapter.validate_python(tuple(value), strict=True)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise NasplugError(f"{where}: {first['msg']} (got {_shown(value)})") from None
    except NasplugError:
        raise
    except Exception:  # a hint pydantic cannot check: leave the value as it is
        return value


def _shown(value: Any) -> str:
    """``repr(value)`` cut to one short line (a YAML integer may have thousands of digits)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        return "a huge number"
    return text if len(text) <= 80 else text[:77] + "..."


def check_argument(factory: Callable[..., Any], name: str, value: Any, where: str) -> Any:
    """``value`` for ``factory``'s argument ``name`` checked against its hint and the bounds
    declared there, the error naming ``where`` (e.g. the CLI flag that sets the argument):
    the bound lives in one place, the signature."""
    import inspect

    target = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    hint = _hints(target).get(name)
    return value if hint is None else _check_value(hint, value, where)


def checked(field: str) -> Callable[[F], F]:
    """Check the bounds a plugin declares in its signature (``Annotated[int, Field(ge=1)]``)
    on every call, from Python too: NasplugError ``field.argument: what is allowed (got
    value)``. Decorates a plugin's ``__init__`` (or factory function); a recipe's arguments
    meet the same check earlier, in :func:`build_plugin`, under the recipe's own key. Only
    the constrained arguments are checked here, and their values are passed on unchanged."""
    import functools
    import inspect
    import typing

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        constrained: dict[str, Any] | None = None  # resolved on the first call (names defined later)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal constrained
            if constrained is None:
                constrained = _hints(fn, constrained_only=True)
            try:
                arguments = signature.bind(*args, **kwargs).arguments
            except TypeError:  # the call itself says what is wrong
                return fn(*args, **kwargs)
            for name, hint in constrained.items():
                if name in arguments:
                    _check_value(hint, arguments[name], f"{field}.{name}")
            return fn(*args, **kwargs)

        return typing.cast(F, call)

    return decorate


def _accepts_bool(adapter: Any) -> bool:
    """Whether a type accepts a boolean as itself (lax pydantic would take True for 1)."""
    import pydantic

    try:
        return adapter.validate_python(True, strict=True) is True
    except pydantic.ValidationError:
        return False
