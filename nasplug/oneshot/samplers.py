"""Which architectures a supernet trains at each step (single-path one-shot sampling).

A sampler is called once per optimizer step with the step number and returns the archs whose
paths that step trains; their gradients are accumulated into one update (the mean over the
paths). Every choice is derived from ``(seed, step)``, so a resumed run draws the same archs
again: a sampler holds no state and a checkpoint stores none for it.

Recipe: ``supernet.sampler`` is a name (``uniform``, ``fair``, ``sandwich``) or the name with
settings, ``{name: sandwich, random: 2, distill: true}``. A sampler with ``distill`` true
makes its first path the teacher of the others (:class:`PathLosses`).
"""

from __future__ import annotations

import random
from typing import Annotated, Any, Protocol

from pydantic import Field

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.oneshot.seeds import derive_seed
from nasplug.registry import checked
from nasplug.space import SearchSpace


class ArchSampler(Protocol):
    """What the training loop calls: ``sampler(step) -> archs``; ``distill`` says whether the
    first arch of each step teaches the others (in-place distillation)."""

    distill: bool

    def __call__(self, step: int) -> list[Arch]: ...


class UniformSampler:
    """SPOS (Guo et al. 2020): one arch per step, uniform over the space's valid archs."""

    name = "uniform"
    distill = False

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space, self.seed = space, seed

    def __call__(self, step: int) -> list[Arch]:
        return [self.space.sample(random.Random(derive_seed(self.seed, "arch", step)))]


class FairSampler:
    """FairNAS strict fairness (Chu et al., ICCV 2021): every step trains m paths, m = the
    most options any choice has; for each choice a random permutation of its options gives
    path j its j-th option, so every option of every choice is trained exactly once per step
    (choices with fewer options repeat random ones). The loop accumulates the paths'
    gradients (their mean) into one update. A step costs m single-path steps: compare it with
    uniform sampling at ``steps / m``.

    A space with constraints may make a path invalid; the step's permutations are then drawn
    again (up to ``max_tries`` times), and the invalid paths are replaced by uniform samples.
    """

    name = "fair"
    distill = False

    @checked("sampler")
    def __init__(self, space: SearchSpace, seed: int,
                 max_tries: Annotated[int, Field(ge=1, le=1_000_000)] = 100) -> None:
        self.space, self.seed, self.max_tries = space, seed, max_tries
        self.paths = max(len(options) for options in space.choices().values())

    def __call__(self, step: int) -> list[Arch]:
        rng = random.Random(derive_seed(self.seed, "arch", step))
        choices = self.space.choices()
        archs: list[Arch] = []
        for _ in range(self.max_tries):
            orders = {}
            for key, options in choices.items():
                order = list(options)
                rng.shuffle(order)
                orders[key] = order + [rng.choice(list(options)) for _ in range(self.paths - len(order))]
            archs = [{key: orders[key][j] for key in choices} for j in range(self.paths)]
            if all(self.space.is_valid(a) for a in archs):
                return archs
        return [a if self.space.is_valid(a) else self.space.sample(rng) for a in archs]


class SandwichSampler:
    """The sandwich rule (Yu & Huang 2019; BigNAS, Yu et al. 2020; Once-for-all): every step
    trains the largest arch, the smallest and ``random`` uniformly sampled ones (``random + 2``
    paths: compare with uniform sampling at ``steps / (random + 2)``). With ``distill``
    (in-place distillation) the largest arch learns from the data and every other path from
    the largest arch's outputs on the same batch (:meth:`nasplug.task.Task.distill_loss`).

    Largest and smallest come from :meth:`~nasplug.space.SearchSpace.largest` and
    :meth:`~nasplug.space.SearchSpace.smallest` (every numeric choice at its largest or
    smallest option); both must be valid archs of the space.
    """

    name = "sandwich"

    @checked("supernet.sampler")
    def __init__(self, space: SearchSpace, seed: int, random: Annotated[int, Field(ge=0, le=64)] = 2,
                 distill: Annotated[bool, Field(strict=True)] = True) -> None:
        self.space, self.seed, self.random, self.distill = space, seed, random, distill
        self.largest, self.smallest = space.largest(), space.smallest()
        for which, arch in (("largest", self.largest), ("smallest", self.smallest)):
            reason = space.violation(arch)
            if reason is not None:
                raise NasplugError(f"supernet.sampler: the sandwich rule needs the space's {which} arch, which its "
                                   f"constraints exclude ({reason})")

    def __call__(self, step: int) -> list[Arch]:
        rng = random.Random(derive_seed(self.seed, "arch", step))
        return [dict(self.largest), dict(self.smallest), *(self.space.sample(rng) for _ in range(self.random))]


class PathLosses:
    """The loss of one path on one micro-batch of a step: the task's own, or, when the sampler
    distils, the task's loss for path 0 (the teacher, whose outputs are kept per micro-batch)
    and the distillation loss toward those outputs for every later path."""

    def __init__(self, task: Any, distill: bool) -> None:
        self.task, self.distill = task, distill
        self.targets: list[Any] = []  # the teacher's outputs, one per micro-batch

    def __call__(self, model: Any, path: int, index: int, batch: Any, counts: Any, aux: Any) -> tuple[Any, Any]:
        if not self.distill:
            return self.task.loss(model, batch, counts, aux)
        if path == 0:
            loss, stats, target = self.task.teacher_loss(model, batch, counts, aux)
            self.targets.append(target)
            return loss, stats
        return self.task.distill_loss(model, batch, counts, aux, self.targets[index])


SAMPLERS: dict[str, type[Any]] = {"uniform": UniformSampler, "fair": FairSampler, "sandwich": SandwichSampler}


def build_sampler(spec: Any, space: SearchSpace, seed: int) -> ArchSampler:
    """The sampler ``spec`` names (a name, or a component with its settings); NasplugError
    listing the known ones or naming the bad setting."""
    name = spec if isinstance(spec, str) else spec.name
    settings = {} if isinstance(spec, str) else spec.kwargs()
    if name not in SAMPLERS:
        raise NasplugError(f"supernet.sampler: {name!r} is not a sampler; allowed: {', '.join(SAMPLERS)}")
    try:
        return SAMPLERS[name](space, seed, **settings)
    except TypeError:
        import inspect

        allowed = [p for p in inspect.signature(SAMPLERS[name]).parameters if p not in ("space", "seed")]
        bad = next((k for k in settings if k not in allowed), None)
        if bad is None:
            raise
        raise NasplugError(f"supernet.sampler.{bad}: not a setting of the {name} sampler; allowed: "
                           f"{', '.join(allowed) or 'none'}") from None
