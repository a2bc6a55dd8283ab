"""The SearchSpace interface: named categorical choices plus how to build models."""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasplug.arch import Arch, Value
from nasplug.errors import NasplugError

if TYPE_CHECKING:
    import torch.nn as nn

    from nasplug.conditions import Condition
    from nasplug.supernet import Supernet

MAX_SAMPLE_TRIES = 10_000


class SearchSpace(ABC):
    """A set of architectures described by named categorical choices.

    Subclasses implement :meth:`choices`, and :meth:`build_supernet` / :meth:`build` when
    the space has models. Everything else has generic defaults that work from
    :meth:`choices` alone. Constraints on valid combinations (e.g. per-type counts) belong
    in :meth:`violation`, so every strategy and the supernet sampler honour them. A choice
    that matters only under others (a layer's width below the depth) is declared in
    :meth:`conditions`; :meth:`canonical` then gives one name per model.
    """

    #: Registered name, filled in by subclasses (used in logs and errors).
    name: str = "space"
    #: Option -> colour in the report's plots of archs (None: a default colour cycle).
    colors: Mapping[str, str] | None = None
    #: Which way each analytic metric of :meth:`metrics` is better (searches read it when a
    #: recipe names the metric as an objective). A space adding other metrics extends it.
    metric_directions: Mapping[str, str] = {"params": "minimize", "flops": "minimize"}

    @abstractmethod
    def choices(self) -> dict[str, Sequence[Value]]:
        """The named choices and their options, in a fixed order. Called often: cache it."""

    def conditions(self) -> Mapping[str, Condition]:
        """Choice -> when it is active (see :mod:`nasplug.conditions`); choices not listed are
        always active. Default: none. Called often: cache it."""
        return {}

    def canonical(self, arch: Arch) -> Arch:
        """The one name of ``arch``'s model: every inactive choice at its first option. Archs
        with the same canonical form build the same model (``SpaceContract`` checks it), and
        the search scores each canonical arch once. Without conditions: ``arch`` itself."""
        if not self.conditions():
            return arch
        from nasplug.conditions import canonical

        return canonical(self, arch)

    # ----------------------------------------------------------------- validity
    def violation(self, arch: Arch) -> str | None:
        """Why a well-formed arch is outside the space (a constraint), or None if it is fine.

        Called by :meth:`validate` after the keys and values were checked. Override to add
        combination constraints; the message should name the constraint and the limit.
        """
        return None

    def validate(self, arch: Arch) -> Arch:
        """Return ``arch`` if it belongs to the space; raise NasplugError naming the problem."""
        if not isinstance(arch, dict):
            raise NasplugError(f"arch: expected a dict of choices, got {type(arch).__name__}")
        choices = self.choices()
        missing = [k for k in choices if k not in arch]
        if missing:
            raise NasplugError(
                f"arch: missing choice {missing[0]!r} (space {self.name!r} needs {len(choices)} choices)"
            )
        extra = [k for k in arch if k not in choices]
        if extra:
            raise NasplugError(f"arch: unknown choice {extra[0]!r}; allowed: {', '.join(choices)}")
        for key, options in choices.items():
            value = arch[key]
            # Compare types too: 1 == True in Python, but they are different options here.
            if not any(o == value and type(o) is type(value) for o in options):
                allowed = ", ".join(repr(o) for o in options)
                raise NasplugError(f"arch.{key}: {value!r} is not an option; allowed: {allowed}")
        reason = self.violation(arch)
        if reason is not None:
            raise NasplugError(f"arch: {reason}")
        return arch

    def is_valid(self, arch: Arch) -> bool:
        """True when :meth:`validate` would accept ``arch``."""
        try:
            self.validate(arch)
        except NasplugError:
            return False
        return True

    # ----------------------------------------------------------------- sampling
    def sample(self, rng: random.Random) -> Arch:
        """A random valid canonical arch: each choice drawn uniformly, inactive ones then
        fixed (so a depth is as likely as any other, whatever the widths it hides), by
        rejection sampling against :meth:`violation`."""
        choices = self.choices()
        for _ in range(MAX_SAMPLE_TRIES):
            arch = self.canonical({key: rng.choice(list(options)) for key, options in choices.items()})
            if self.violation(arch) is None:
                return arch
        raise NasplugError(
            f"space {self.name!r}: no valid arch found in {MAX_SAMPLE_TRIES} random samples; "
            "the constraints may exclude (almost) everything"
        )

    def mutate(self, arch: Arch, rng: random.Random, p: float = 0.1) -> Arch:
        """Copy of ``arch`` where each choice is, with probability ``p``, redrawn uniformly
        from its options (it may draw its own value again).

        This is the mutation of the SPOS reference search (Guo et al. 2020): with 3 options
        and p = 0.1 a slot changes with probability 0.067. The result may repeat its parent
        or violate constraints; callers check :meth:`is_valid` and skip repeats. With
        conditions the child is canonical, and a choice the mutation made active (a deeper
        model's new layers) is drawn at random.
        """
        child = dict(arch)
        for key, options in self.choices().items():
            if len(options) > 1 and rng.random() < p:
                child[key] = rng.choice(options)
        if not self.conditions():
            return child
        from nasplug.conditions import fill_new

        return self.canonical(fill_new(self, self.canonical(arch), child, rng))

    def crossover(self, a: Arch, b: Arch, rng: random.Random) -> Arch:
        """Uniform crossover: each choice taken from ``a`` or ``b`` with equal probability.
        With conditions, a choice taken from a parent where it is inactive comes from the
        other parent when it is active there; the child is canonical."""
        picks = {key: rng.random() < 0.5 for key in self.choices()}
        if not self.conditions():
            return {key: (a[key] if first else b[key]) for key, first in picks.items()}
        from nasplug.conditions import active

        on = {id(a): active(self, a), id(b): active(self, b)}
        child = {}
        for key, first in picks.items():
            donor, other = (a, b) if first else (b, a)
            if not on[id(donor)][key] and on[id(other)][key]:
                donor = other
            child[key] = donor[key]
        return self.canonical(child)

    def largest(self) -> Arch:
        """The biggest model (the sandwich rule's teacher): every choice whose options are all
        numbers at its largest option, every other choice at its first; canonical."""
        return self.canonical({k: max(o) if _numeric(o) else o[0] for k, o in self.choices().items()})

    def smallest(self) -> Arch:
        """The smallest model: numeric choices at their smallest option, others at their first."""
        return self.canonical({k: min(o) if _numeric(o) else o[0] for k, o in self.choices().items()})

    def unconstrained(self) -> SearchSpace:
        """The same space without its combination constraints (for baselines such as a
        hand-designed arch that a constrained search space excludes). Default: ``self``."""
        return self

    def size(self) -> int:
        """Number of distinct models (canonical archs) ignoring constraints: the product of
        the option counts when no choice is conditional."""
        if not self.conditions():
            return math.prod(len(options) for options in self.choices().values())
        from nasplug.conditions import count_models

        return count_models(self)

    # ----------------------------------------------------------------- metrics and models
    def metrics(self, arch: Arch) -> dict[str, float]:
        """Cheap analytic metrics (e.g. ``params``, ``flops``) computed without a model.

        Called before any expensive evaluation, so constraints can use them. Each one's
        direction is declared in :attr:`metric_directions`.
        """
        return {}

    def parse(self, text: str) -> Arch:
        """Parse an arch written by a user (JSON by default; spaces may add codecs)."""
        from nasplug.arch import arch_from_json

        return self.validate(arch_from_json(text))

    def format(self, arch: Arch) -> str:
        """Short human-readable form of an arch (JSON by default)."""
        from nasplug.arch import arch_to_json

        return arch_to_json(arch)

    def build_supernet(self) -> Supernet:
        """A weight-sharing model holding every candidate's weights."""
        raise NotImplementedError(f"space {self.name!r} has no supernet")

    def build(self, arch: Arch) -> nn.Module:
        """A standalone model for ``arch`` with fresh weights (retraining from scratch).

        Default: the path of ``arch`` extracted from a freshly initialised supernet, so a
        space with a supernet gets standalone models for free.
        """
        try:
            supernet = self.build_supernet()
        except NotImplementedError:
            raise NotImplementedError(f"space {self.name!r} builds no models") from None
        return supernet.extract(self.validate(arch))

    def warm_start(self, supernet: Supernet, task: Any) -> None:
        """Adjust a freshly built supernet's weights with the task's (prepared) data before
        supernet training starts; called by the supernet stage (a resumed training then
        loads its checkpoint over them). Default: nothing. Elastic BERT re-orders a
        pre-trained model's heads and neurons by importance here (DynaBERT)."""
        return None

    def export_model(self, model: nn.Module, arch: Arch, folder: Any, facts: dict[str, Any]) -> None:
        """Make ``folder`` (which holds the trained ``model.safetensors``) usable by other
        tools; called by the retrain stage for each model and by ``nasplug export``.
        ``facts``: ``arch`` (text), ``params``, ``flops``, ``heldout`` figures, ``recipe``,
        ``seed``, ``run_dir``, ``model`` (its name in the run), ``nasplug_version``.
        Default: ``arch.json`` with the arch and the facts. LV-BERT writes a Hugging Face folder."""
        import json
        from pathlib import Path

        from nasplug.io import atomic_write_text

        atomic_write_text(Path(folder) / "arch.json", json.dumps({"arch": arch, **facts}, indent=2, default=str) + "\n")

    def describe(self) -> dict[str, Any]:
        """A small summary for logs and ``nasplug list``."""
        return {"name": self.name, "choices": len(self.choices()), "size": self.size()}


def _numeric(options: Sequence[Value]) -> bool:
    return all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options)
