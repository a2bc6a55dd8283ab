"""Conditional choices: a choice that matters only under others.

In a space with a ``depth`` choice and one width per layer, the width of layer 4 exists only
when ``depth >= 4``: two archs that differ only there are one model under two names. A space
declares this in :meth:`~nasplug.space.SearchSpace.conditions`::

    def conditions(self):
        return {f"width{i}": at_least("depth", i + 1) for i in range(self.layers)}

and the rest follows: :func:`canonical` fixes every inactive choice at its first option, so
one model has one canonical arch; sampling, mutation and crossover return canonical archs;
the search loop scores each canonical arch once; :func:`count_models` counts models, not
names; :func:`canonical_archs` enumerates them (ground truth).

A condition reads only the choices it names in ``on`` (which may be conditional themselves);
counting and enumeration go over the combinations of those controlling choices, so they stay
cheap when few choices control the others (a depth, an op type).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasplug.arch import Arch, Value
from nasplug.errors import NasplugError

if TYPE_CHECKING:
    from nasplug.space import SearchSpace

#: Controlling combinations enumerated at most by :func:`count_models` and :func:`canonical_archs`.
MAX_CONTROL_COMBINATIONS = 1_000_000


@dataclass(frozen=True)
class Condition:
    """A choice is active when ``test(arch)`` holds; ``test`` reads only the choices in ``on``.

    Build one with :func:`at_least` or :func:`one_of`, or directly for any other rule:
    ``Condition(("op",), lambda arch: arch["op"] != "skip", "op != skip")``.
    """

    on: tuple[str, ...]
    test: Callable[[Mapping[str, Value]], bool]
    text: str = ""

    def __call__(self, arch: Mapping[str, Value]) -> bool:
        return bool(self.test(arch))


def at_least(choice: str, value: int | float) -> Condition:
    """Active when ``arch[choice] >= value`` (e.g. the width of layer 4: ``at_least("depth", 4)``)."""
    return Condition((choice,), lambda arch: arch[choice] >= value, f"{choice} >= {value}")  # type: ignore[operator]


def one_of(choice: str, values: Sequence[Value]) -> Condition:
    """Active when ``arch[choice]`` is one of ``values`` (e.g. a kernel size only for convolutions)."""
    allowed = tuple(values)
    return Condition((choice,), lambda arch: arch[choice] in allowed, f"{choice} in {list(allowed)}")


def check_conditions(space: SearchSpace) -> None:
    """NasplugError naming the first condition that names a choice the space does not have."""
    choices = space.choices()
    for key, condition in space.conditions().items():
        if key not in choices:
            raise NasplugError(f"space {space.name!r}: a condition is declared for {key!r}, which is not a choice")
        for name in condition.on:
            if name not in choices:
                raise NasplugError(f"space {space.name!r}: the condition of {key!r} reads {name!r}, not a choice")
            if name == key:
                raise NasplugError(f"space {space.name!r}: the condition of {key!r} reads the choice itself")


def active(space: SearchSpace, arch: Mapping[str, Value]) -> dict[str, bool]:
    """Choice -> whether it shapes the model under ``arch``. A choice is inactive when its
    condition fails or when a choice its condition reads is inactive itself."""
    conditions = space.conditions()
    state: dict[str, bool] = {}

    def is_active(key: str, trail: tuple[str, ...] = ()) -> bool:
        if key not in state:
            condition = conditions.get(key)
            if condition is None:
                state[key] = True
            elif key in trail:
                raise NasplugError(f"space {space.name!r}: the conditions of {', '.join(trail)} form a cycle")
            else:
                parents = all(is_active(name, (*trail, key)) for name in condition.on)
                state[key] = parents and condition(arch)
        return state[key]

    return {key: is_active(key) for key in space.choices()}


def canonical(space: SearchSpace, arch: Arch) -> Arch:
    """``arch`` with every inactive choice at its first option (a new dict; keys in choice order)."""
    choices = space.choices()
    flags = active(space, arch)
    return {key: (arch[key] if flags[key] else choices[key][0]) for key in choices if key in arch}


def _controls(space: SearchSpace) -> list[str]:
    """The choices some condition reads, in choice order."""
    read = {name for condition in space.conditions().values() for name in condition.on}
    return [key for key in space.choices() if key in read]


def _control_combinations(space: SearchSpace) -> Iterator[dict[str, Value]]:
    """Each canonical combination of the controlling choices (inactive ones at their first option)."""
    choices, controls = space.choices(), _controls(space)
    total = math.prod(len(choices[k]) for k in controls)
    if total > MAX_CONTROL_COMBINATIONS:
        raise NasplugError(f"space {space.name!r}: {total:,} combinations of the choices that conditions read; "
                           f"counting its models needs at most {MAX_CONTROL_COMBINATIONS:,}")
    for values in itertools.product(*(choices[k] for k in controls)):
        combo = dict(zip(controls, values))
        if canonical_part(space, combo) == combo:
            yield combo


def canonical_part(space: SearchSpace, combo: Mapping[str, Value]) -> dict[str, Value]:
    """``combo`` (values of the controlling choices) with its inactive choices at their first option."""
    choices, conditions = space.choices(), space.conditions()
    out = dict(combo)
    for key in combo:
        condition = conditions.get(key)
        if condition is not None and not _active_in(space, key, out, conditions):
            out[key] = choices[key][0]
    return out


def _active_in(space: SearchSpace, key: str, combo: Mapping[str, Value], conditions: Mapping[str, Any]) -> bool:
    condition = conditions.get(key)
    if condition is None:
        return True
    return all(_active_in(space, name, combo, conditions) for name in condition.on) and condition(combo)


def count_models(space: SearchSpace) -> int:
    """The number of distinct canonical archs (models), constraints aside."""
    choices, conditions = space.choices(), space.conditions()
    controls = set(_controls(space))
    free = [k for k in choices if k not in controls]
    total = 0
    for combo in _control_combinations(space):
        part = 1
        for key in free:
            condition = conditions.get(key)
            on = condition is None or _active_in(space, key, combo, conditions)
            part *= len(choices[key]) if on else 1
        total += part
    return total


def canonical_archs(space: SearchSpace) -> Iterator[Arch]:
    """Every canonical arch once, constraints aside; keys in choice order."""
    choices, conditions = space.choices(), space.conditions()
    controls = set(_controls(space))
    free = [k for k in choices if k not in controls]
    for combo in _control_combinations(space):
        options = [choices[k] if _active_in(space, k, combo, conditions) else choices[k][:1] for k in free]
        for values in itertools.product(*options):
            arch = {**combo, **dict(zip(free, values))}
            yield {key: arch[key] for key in choices}


def fill_new(space: SearchSpace, before: Arch, after: Arch, rng: Any) -> Arch:
    """``after`` with each choice that was inactive under ``before`` and is active now drawn at
    random (a mutation that deepens a model gives its new layers random widths, not the first
    option); draws nothing when no choice became active."""
    was, now = active(space, before), active(space, after)
    choices = space.choices()
    out = dict(after)
    for key in choices:
        if now[key] and not was[key]:
            out[key] = rng.choice(list(choices[key]))
    return out


def every_model(space: SearchSpace) -> Iterator[Arch]:
    """Every model of ``space`` once, constraints aside, in a fixed order: its canonical archs,
    or every combination of options when no choice is conditional."""
    if space.conditions():
        yield from canonical_archs(space)
        return
    choices = space.choices()
    for values in itertools.product(*choices.values()):
        yield dict(zip(choices, values))
