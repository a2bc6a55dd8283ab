"""NNI's search algorithms as nasplug strategies (extra ``nni``, imported lazily).

What is NNI's: the search algorithm itself, NNI's own code from ``nni.algorithms.hpo``:

* ``RegularizedEvolution``: ``RegularizedEvolutionTuner`` (aging evolution, Real et al.
  2019: ``population_size`` random archs, then the best of ``sample_size`` random members
  is mutated in one choice and the oldest member dies);
* ``TPE``: ``TpeTuner`` (the tuner that ``nni.nas.strategy.TPE`` wraps);
* ``Random``: ``RandomTuner``.

Each is driven through NNI's tuner interface, the one NNI's dispatcher and its NAS wrapper
``nni.nas.strategy.HPOTunerStrategy`` use: ``update_search_space`` once,
``generate_parameters(id)`` per proposal, ``receive_trial_result(id, params, value)`` and
``trial_end(id, True)`` per score, ``trial_end(id, False)`` per failure. No NNI experiment,
manager, execution engine or thread is involved. (NNI's NAS-side strategies, e.g.
``nni.nas.strategy.RegularizedEvolution``, are written against its execution engine and
model spaces, so they are not used here.)

What is ours, and only this:

* **Search space**: each choice is ``{"_type": "choice", "_value": [0, ..., k-1]}``
  (``layer_choice`` for regularized evolution, the only type that tuner takes) and the
  tuner's index maps back to the option, so option types (int, bool, ...) round-trip exactly.
* **Failures**: ``tell(arch, None)`` is ``trial_end(id, success=False)``, NNI's meaning of
  a failed trial (regularized evolution replaces a failed first-population member).
* **Repeats and invalid archs**: with ``dedup`` (default; NNI 3's NAS regularized
  evolution also deduplicates by default) an arch proposed before is not returned, nor is
  one outside the space (``space.is_valid``): the tuner hears ``trial_end(id, False)`` and
  is asked again, up to ``max_tries`` times; the last try is returned as it is (the search
  loop then answers a repeat from its cache, or rejects an invalid arch).
* **End of search**: ``nni.NoMoreTrialError`` ends the batch; an empty ``ask`` ends the search.
* **Randomness**: TPE and random get ``seed`` (each keeps its own ``numpy`` generator).
  Regularized evolution draws from Python's global ``random`` module, so every call into a
  tuner runs with the global state swapped for this strategy's own (seeded from ``seed``)
  and restored after: proposals depend only on the seed and the tells, and other users of
  ``random`` see no change. (Not thread-safe: do not use ``random`` in another thread meanwhile.)
* **Logging**: ``import nni`` adds a stdout handler to the ``nni`` logger; when this module
  is the one importing NNI it removes that handler again (``nni.runtime.log.silence_stdout``)
  so NNI's records go through standard logging, and NNI's INFO chatter is dropped during
  tuner calls.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import random
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from pydantic import Field

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError
from nasplug.logutil import quiet
from nasplug.registry import checked
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy, Told

log = logging.getLogger(__name__)

#: A count setting (tries, population, tournament size): at least 1, far below anything that could hang.
Count = Annotated[int, Field(ge=1, le=1_000_000)]

MISSING = "strategy 'nni': NNI is not installed; install the extra: pip install 'nasplug[nni]'"

#: Our name -> (module, tuner class, search-space type the tuner accepts).
ALGORITHMS: dict[str, tuple[str, str, str]] = {
    "RegularizedEvolution": (
        "nni.algorithms.hpo.regularized_evolution_tuner",
        "RegularizedEvolutionTuner",
        "layer_choice",
    ),
    "TPE": ("nni.algorithms.hpo.tpe_tuner", "TpeTuner", "choice"),
    "Random": ("nni.algorithms.hpo.random_tuner", "RandomTuner", "choice"),
}


def import_nni() -> Any:
    """``import nni``, or a NasplugError saying how to install it. Silences NNI's stdout handler."""
    first = "nni" not in sys.modules
    try:
        import nni
    except ImportError as exc:
        if exc.name in (None, "nni") or str(exc.name).startswith("nni."):
            raise NasplugError(MISSING) from None
        raise NasplugError(f"strategy 'nni': NNI failed to import ({exc})") from None
    if first:  # undo the side effect of our own import: the CLI owns stdout
        from nni.runtime.log import silence_stdout

        silence_stdout()
    return nni


class NNIStrategy(Strategy):
    """An NNI tuner proposing archs; see the module docstring for what is whose.

    Args:
        space: the search space; one categorical choice per entry.
        seed: seeds the tuner (its own generator, or the swapped-in global ``random`` state).
        algorithm: ``RegularizedEvolution``, ``TPE`` or ``Random``.
        dedup: do not propose an arch twice (as long as ``max_tries`` finds a new one).
        max_tries: proposals drawn per returned arch while they are repeats or invalid.
        **algorithm_kwargs: keyword arguments of the NNI tuner, e.g. ``population_size``
            and ``sample_size`` (regularized evolution), ``tpe_args`` (TPE). Not
            ``optimize_mode``: strategies always maximise.
    """

    name = "nni"

    @checked("strategy")
    def __init__(self, space: SearchSpace, seed: int = 0, algorithm: str = "RegularizedEvolution",
                 dedup: bool = True, max_tries: Count = 100, population_size: Count | None = None,
                 sample_size: Count | None = None, **algorithm_kwargs: Any) -> None:
        super().__init__(space, seed)
        if algorithm not in ALGORITHMS:
            raise NasplugError(f"strategy 'nni': unknown algorithm {algorithm!r}; allowed: {', '.join(ALGORITHMS)}")
        if "optimize_mode" in algorithm_kwargs:
            raise NasplugError("strategy.optimize_mode: not allowed; strategies always maximise "
                               "(the search loop flips the sign for search.direction: minimize)")
        sizes = {"population_size": population_size, "sample_size": sample_size}  # regularized evolution's
        algorithm_kwargs = {**{k: v for k, v in sizes.items() if v is not None}, **algorithm_kwargs}
        nni = import_nni()
        self._no_more = nni.NoMoreTrialError
        module, cls_name, self.space_type = ALGORITHMS[algorithm]
        cls = getattr(importlib.import_module(module), cls_name)
        params = inspect.signature(cls).parameters
        kwargs = dict(algorithm_kwargs)
        if "optimize_mode" in params:
            kwargs["optimize_mode"] = "maximize"
        if "seed" in params:
            kwargs["seed"] = seed
        self.algorithm, self.dedup, self.max_tries = algorithm, dedup, max_tries
        self.choices = {key: list(options) for key, options in space.choices().items()}
        # Our own state for the global `random` module, swapped in around every tuner call.
        self._random_state = random.Random(seed).getstate()
        with self._tuner_call():
            try:
                self.tuner = cls(**kwargs)
            except TypeError as exc:
                raise NasplugError(f"strategy 'nni' ({algorithm}): {exc}") from None
            self.tuner.update_search_space(
                {
                    key: {"_type": self.space_type, "_value": list(range(len(options)))}
                    for key, options in self.choices.items()
                }
            )
        self.next_id = 0
        self.seen: set[str] = set()
        self.pending: dict[str, deque[tuple[int, Any]]] = {}
        log.debug("nni strategy: %s(%s)", cls_name, kwargs)

    @contextmanager
    def _tuner_call(self) -> Iterator[None]:
        """Run tuner code with our own global-``random`` state and without NNI's INFO logs."""
        saved = random.getstate()
        random.setstate(self._random_state)
        try:
            with quiet("nni"):
                yield
        finally:
            self._random_state = random.getstate()
            random.setstate(saved)

    def ask(self, n: int = 1) -> list[Arch]:
        """Up to ``n`` archs from ``generate_parameters``; fewer if NNI has no more."""
        out: list[Arch] = []
        with self._tuner_call():
            for _ in range(n):
                arch = self._propose()
                if arch is None:
                    break
                out.append(arch)
        log.debug("nni asked %d, proposed %d", n, len(out))
        return out

    def _propose(self) -> Arch | None:
        for attempt in range(self.max_tries):
            pid = self.next_id
            self.next_id += 1
            try:
                params = self.tuner.generate_parameters(pid)
            except self._no_more:
                log.debug("nni %s has no more proposals", self.algorithm)
                return None
            arch = self._to_arch(params)
            key = arch_key(arch)
            fresh = not (self.dedup and key in self.seen)
            if attempt == self.max_tries - 1 or (fresh and self.space.is_valid(arch)):
                break
            self.tuner.trial_end(pid, False)  # discarded: a repeat, or outside the space
        self.seen.add(key)
        self.pending.setdefault(key, deque()).append((pid, params))
        return arch

    def _to_arch(self, params: dict[str, Any]) -> Arch:
        arch: Arch = {}
        for key, options in self.choices.items():
            value = params[key]
            index = value["_idx"] if self.space_type == "layer_choice" else value
            arch[key] = options[int(index)]
        return arch

    def tell(self, arch: Arch, score: Told) -> None:
        """Report the arch's oldest pending proposal: a result and a success, or a failure.
        NNI's tuners take one number per trial: this strategy optimises one objective (the
        search refuses it for several, see :meth:`Strategy.set_objectives`)."""
        key = arch_key(arch)
        queue = self.pending.get(key)
        if not queue:
            log.warning("nni strategy: told an arch it did not propose; NNI tuners cannot take it, ignored")
            return
        if score is not None and not isinstance(score, (int, float)):
            raise TypeError("nni strategy: NNI tuners take one number per trial (higher is better)")
        pid, params = queue.popleft()
        if not queue:
            del self.pending[key]
        with self._tuner_call():
            if score is None or not math.isfinite(score):
                self.tuner.trial_end(pid, False)
            else:
                self.tuner.receive_trial_result(pid, params, float(score))
                self.tuner.trial_end(pid, True)
        log.debug("nni told %d: %s", pid, score)


def nni_factory(algorithm: str) -> Any:
    """A factory for ``nni:<algorithm>`` names: tuner keyword arguments given flat."""

    def factory(space: SearchSpace, seed: int = 0, dedup: bool = True, max_tries: Count = 100,
                population_size: Count | None = None, sample_size: Count | None = None,
                **algorithm_kwargs: Any) -> NNIStrategy:
        return NNIStrategy(space, seed=seed, algorithm=algorithm, dedup=dedup, max_tries=max_tries,
                           population_size=population_size, sample_size=sample_size, **algorithm_kwargs)

    factory.__name__ = factory.__qualname__ = algorithm
    factory.__doc__ = f"``NNIStrategy(algorithm={algorithm!r})``; extra keyword arguments go to the NNI tuner."
    return factory


RegularizedEvolution = nni_factory("RegularizedEvolution")
TPE = nni_factory("TPE")
Random = nni_factory("Random")
