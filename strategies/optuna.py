"""Optuna samplers as nasplug strategies, driven through Optuna's ask/tell interface.

What is Optuna's: the sampler (any class in ``optuna.samplers``, chosen by name; TPE by
default), the study and its storage. With ``storage="sqlite:///runs/x/optuna.db"`` the
study can be watched live with ``optuna-dashboard sqlite:///runs/x/optuna.db``.

What is ours, and only this: one ``CategoricalDistribution`` per choice of the space (in
``space.choices()`` order; with conditional choices a trial suggests only those active under
the ones suggested before, Optuna's define-by-run, so its archs are canonical), the
bookkeeping that maps each told arch back to its pending Optuna trial (a FIFO per arch key,
since a sampler may propose the same arch twice), and four policies:

* **Objectives**: the study has one direction per objective of the search, as the run
  declares them (``study.directions``), and holds every trial's values in the metrics'
  own units: a minimised loss is a *minimize* study of the losses as measured, so
  ``study.best_trials``, ``optuna-dashboard`` and ``plot_pareto_front`` read like the run.
  Every metric of a trial (``params``, other task figures ...) is a user attribute. With
  several objectives the samplers that take them work as they are: ``NSGAIISampler``,
  ``NSGAIIISampler``, ``TPESampler`` (multi-objective TPE), ``RandomSampler``. The study is
  created at the first ask, once the search has told the strategy its objectives.

* **Failed or rejected archs** (``tell(arch, None)``) are told to the study as
  ``TrialState.FAIL``; samplers ignore failed trials, which is Optuna's own meaning.
* **Archs outside the space** (``space.is_valid`` false, e.g. a per-type count constraint)
  are never returned: they are told FAIL at once (user attribute ``nasplug_invalid``) and
  the sampler is asked again, up to ``max_tries`` times; the last try is returned as it
  is, so the search loop rejects it and the search cannot hang on a space the sampler
  cannot satisfy.
* **The study on a storage**: the sampler works on a study in memory (resume replays the
  log into a *fresh* strategy, which must not see the old trials twice), and every finished
  trial is copied to the ``storage`` study (same directions, values and user attributes),
  created when the first trial finishes (a strategy built only to check a recipe creates
  nothing). With ``study_name``, a resumed search finds its study again: the trials it holds
  are the first ones of the replay (checked: parameters, state and values), so they are not
  copied twice, and the new ones are added to it, as adding trials to an Optuna study does. A
  study of that name holding other trials is another search's: it is left as it is, and the
  first free name among ``study_name-2``, ``study_name-3``, ... gets this search's trials.
  Without ``study_name`` Optuna picks a unique name (a resumed search then writes a new study
  with the whole history).

Determinism: the sampler gets ``seed``, and a seeded Optuna sampler proposes the same
parameters for the same sequence of asks and tells (TPE, random, NSGA-II, QMC, brute
force: each keeps its own seeded ``numpy`` generator; no global RNG is used). Sharing one
study between several processes gives up that determinism (and resume by replay with it).

Batches: the search loop asks a whole batch before telling any of it, so the batch's
trials are RUNNING while the rest of it is sampled. Optuna 5's ``TPESampler`` defaults
(multivariate TPE, ``constant_liar=True``: pending trials count as bad ones, so a batch
spreads out) suit that and are left as they are; ``sampler_kwargs`` overrides them.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import math
import warnings
from collections import deque
from collections.abc import Mapping
from typing import Annotated, Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import Trial, TrialState
from pydantic import Field

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError
from nasplug.logutil import quiet
from nasplug.registry import checked
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy, Told

log = logging.getLogger(__name__)

#: Samples drawn per proposal while they fall outside the space.
Tries = Annotated[int, Field(ge=1, le=1_000_000)]

#: Samplers that cannot be built from a space alone (abstract, or wrapping another sampler).
_NOT_STANDALONE = {"BaseSampler", "BaseGASampler", "PartialFixedSampler"}


def available_samplers() -> list[str]:
    """Names of the ``optuna.samplers`` classes this strategy can build, sorted."""
    names = []
    for name in getattr(optuna.samplers, "__all__", dir(optuna.samplers)):
        obj = getattr(optuna.samplers, name, None)
        if (inspect.isclass(obj) and issubclass(obj, optuna.samplers.BaseSampler)
                and not inspect.isabstract(obj) and name not in _NOT_STANDALONE):
            names.append(name)
    return sorted(names)


class OptunaStrategy(Strategy):
    """An Optuna sampler proposing archs; see the module docstring for what is whose.

    Args:
        space: the search space; one categorical distribution per choice.
        seed: passed to the sampler as ``seed``.
        sampler: a class name in ``optuna.samplers`` (``TPESampler``, ``RandomSampler``,
            ``NSGAIISampler``, ...). ``CmaEsSampler`` and ``QMCSampler`` have no categorical
            model (they fall back to random sampling); ``GPSampler`` works but costs seconds
            per proposal on a CPU.
        sampler_kwargs: keyword arguments for the sampler (not ``seed``). ``GridSampler``
            gets the space's choices as its ``search_space`` unless one is given.
        storage: an Optuna storage URL (e.g. ``sqlite:///runs/x/optuna.db``); in memory if None.
        study_name: the study's name on the storage (see the module docstring); unique if None.
        max_tries: samples drawn per proposal while they fall outside the space.
    """

    name = "optuna"
    vector_tell = True

    @checked("strategy")
    def __init__(self, space: SearchSpace, seed: int = 0, sampler: str = "TPESampler",
                 sampler_kwargs: dict[str, Any] | None = None, storage: str | None = None,
                 study_name: str | None = None, max_tries: Tries = 100) -> None:
        super().__init__(space, seed)
        self.max_tries = max_tries
        self.distributions = {key: CategoricalDistribution(list(options)) for key, options in space.choices().items()}
        self.sampler = _build_sampler(sampler, seed, dict(sampler_kwargs or {}), space)
        self.storage, self.study_name = storage, study_name
        self._study: optuna.Study | None = None  # in memory: what the sampler reads
        self.published = None
        if storage is not None:
            _study_names(storage)  # an unusable storage fails now, before anything trains
            self.published = _Published(storage, study_name)
        self.pending: dict[str, deque[Trial]] = {}
        self.observed: dict[str, dict[str, float]] = {}  # arch key -> metrics, until told
        self.finished = False  # the sampler stopped the study (grid / brute force exhausted)

    def set_objectives(self, objectives: Any) -> None:
        """The objectives become the study's directions; they cannot change once it exists."""
        before = self.objectives
        super().set_objectives(objectives)
        if self._study is not None and self.objectives != before:
            raise RuntimeError("optuna strategy: the objectives changed after the study was created")

    @property
    def study(self) -> optuna.Study:
        """The sampler's study (in memory), created at first use with one direction per
        objective; the storage's study gets the same directions."""
        if self._study is None:
            directions = [o.direction for o in self.objectives]
            with quiet("optuna"):
                self._study = optuna.create_study(directions=directions, sampler=self.sampler)
            if self.published is not None:
                self.published.directions = directions
            log.debug("optuna strategy: %s, study %r on %s", type(self.sampler).__name__,
                      self.study_name, self.storage or "memory")
        return self._study

    def ask(self, n: int = 1) -> list[Arch]:
        """Ask the study for ``n`` trials; each becomes one arch (resampled while invalid).

        Returns an empty list once the sampler has stopped the study.
        """
        out: list[Arch] = []
        if self.finished:
            return out
        with quiet("optuna"):
            for _ in range(n):
                for attempt in range(self.max_tries):
                    trial, arch = self._ask_one()
                    if attempt == self.max_tries - 1 or self.space.is_valid(arch):
                        break
                    trial.set_user_attr("nasplug_invalid", True)
                    self._finish(trial, None)
                self.pending.setdefault(arch_key(arch), deque()).append(trial)
                out.append(arch)
        log.debug("optuna asked %d archs", len(out))
        return out

    def _ask_one(self) -> tuple[Trial, Arch]:
        """One trial and its arch. In a space with conditional choices the trial suggests only
        the choices that are active (Optuna's define-by-run), so the arch is canonical and the
        sampler models each choice only where it matters."""
        if not self.space.conditions():
            trial = self.study.ask(self.distributions)
            params = trial.params  # a copy per access: take it once
            return trial, {key: params[key] for key in self.distributions}
        trial = self.study.ask()
        conditions, arch, on = self.space.conditions(), {}, {}
        pending = list(self.distributions)
        while pending:  # a choice once every choice its condition reads is decided
            key = next(k for k in pending if all(n in arch for n in getattr(conditions.get(k), "on", ())))
            pending.remove(key)
            cond = conditions.get(key)
            on[key] = cond is None or (all(on[n] for n in cond.on) and cond(arch))
            options = self.distributions[key].choices
            arch[key] = trial.suggest_categorical(key, options) if on[key] else options[0]
        return trial, {key: arch[key] for key in self.distributions}

    def observe(self, arch: Arch, metrics: Mapping[str, float]) -> None:
        """Keep the arch's metrics: :meth:`tell` stores them as the trial's user attributes,
        so the study (and optuna-dashboard) shows what ``trials.jsonl`` holds."""
        self.observed[arch_key(arch)] = {k: float(v) for k, v in metrics.items()}

    def tell(self, arch: Arch, score: Told) -> None:
        """Finish the arch's oldest pending trial: its values (one per objective, in the
        metrics' own units), or FAIL for None / a non-finite value. Its metrics (from
        :meth:`observe`) become user attributes.

        An arch that was never asked is added to the study as a finished trial (a way to
        warm-start the sampler with known archs).
        """
        values = self.told_values(score)
        told = list(values) if values is not None and all(math.isfinite(v) for v in values) else None
        failed = told is None
        key = arch_key(arch)
        metrics = self.observed.pop(key, {})
        queue = self.pending.get(key)
        with quiet("optuna"):
            if queue:
                trial = queue.popleft()
                if not queue:
                    del self.pending[key]
                for name, value in metrics.items():
                    trial.set_user_attr(name, value if math.isfinite(value) else None)
                self._finish(trial, told)
                log.debug("optuna told trial %d: %s", trial.number, "FAIL" if failed else told)
                return
            self.space.validate(arch)
            params = self._active_params(arch)
            self.study.add_trial(optuna.trial.create_trial(
                params=params, distributions={k: self.distributions[k] for k in params}, values=told,
                state=TrialState.FAIL if failed else TrialState.COMPLETE,
                user_attrs={k: v if math.isfinite(v) else None for k, v in metrics.items()},
            ))
            self._publish(self.study.trials[-1].number)
            log.debug("optuna added a finished trial for an arch it did not propose")

    def _active_params(self, arch: Arch) -> dict[str, Any]:
        """The choices of ``arch`` that shape its model (all of them without conditions)."""
        if not self.space.conditions():
            return dict(arch)
        from nasplug.conditions import active

        flags = active(self.space, arch)
        return {k: v for k, v in self.space.canonical(arch).items() if flags[k]}

    def _finish(self, trial: Trial, values: list[float] | None) -> None:
        """``study.tell``: the values (one number for one objective), or FAIL for None; then
        the trial is copied to the storage."""
        try:
            if values is None:
                self.study.tell(trial, state=TrialState.FAIL)
            else:
                self.study.tell(trial, values[0] if len(values) == 1 else values)
            self._publish(trial.number)
        except RuntimeError as exc:
            # Grid and brute-force samplers call study.stop() once every combination was
            # tried; outside study.optimize() that raises, after the trial was stored. It
            # means the sampler has nothing new to propose: the search ends.
            if "Study.stop" not in str(exc):
                raise
            log.debug("optuna sampler %s has tried every arch", type(self.sampler).__name__)
            self._publish(trial.number)
            self.finished = True

    def _publish(self, number: int) -> None:
        if self.published is not None:
            self.published.add(self.study.get_trials(deepcopy=False)[number])


class _Published:
    """The study on the user's storage that receives a copy of every finished trial (see the
    module docstring): opened when the first trial finishes."""

    def __init__(self, storage: str, study_name: str | None) -> None:
        self.storage, self.name = storage, study_name
        self.directions: list[str] = ["maximize"]  # the sampler's study sets them when it is made
        self.study: optuna.Study | None = None
        self.stored: list[optuna.trial.FrozenTrial] = []  # the opened study's finished trials, in order
        self.sent: list[optuna.trial.FrozenTrial] = []  # this search's finished trials, in order

    def add(self, trial: optuna.trial.FrozenTrial) -> None:
        index = len(self.sent)
        self.sent.append(trial)
        with quiet("optuna"):
            if self.study is None:
                self.study, self.stored = self._open()
            if self.study is None or (index < len(self.stored) and not _same(self.stored[index], trial)):
                self._move_to_a_fresh_study()  # the named study holds another search's trials
            elif index >= len(self.stored):
                self.study.add_trial(trial)
            # else a resumed search: the study holds this trial already

    def _open(self) -> tuple[optuna.Study | None, list[optuna.trial.FrozenTrial]]:
        """The named study and its finished trials if the storage has it (None when its
        directions are not this search's: another search's), else a new study."""
        if self.name is not None and self.name in _study_names(self.storage):
            study = optuna.load_study(study_name=self.name, storage=self.storage,
                                      sampler=optuna.samplers.RandomSampler(seed=0))
            if [d.name.lower() for d in study.directions] != self.directions:
                return None, []
            return study, [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        return _create_study(self.storage, self.name, self.directions), []

    def _move_to_a_fresh_study(self) -> None:
        """The named study holds another search's trials: leave it, and copy this search's to
        the first free ``name-N``."""
        taken = set(_study_names(self.storage))
        suffix = 2
        while f"{self.name}-{suffix}" in taken:
            suffix += 1
        log.info("optuna study %r in %s holds another search's trials; this search writes to %r", self.name,
                 self.storage, f"{self.name}-{suffix}")
        self.study = _create_study(self.storage, f"{self.name}-{suffix}", self.directions)
        self.study.add_trials(self.sent)
        self.stored = list(self.sent)


def _same(a: optuna.trial.FrozenTrial, b: optuna.trial.FrozenTrial) -> bool:
    return a.params == b.params and a.state == b.state and a.values == b.values


def _build_sampler(name: str, seed: int, kwargs: dict[str, Any], space: SearchSpace) -> optuna.samplers.BaseSampler:
    known = available_samplers()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise NasplugError(f"strategy 'optuna': unknown sampler {name!r}{hint}; allowed: {', '.join(known)}")
    cls = getattr(optuna.samplers, name)
    if "seed" in kwargs:
        raise NasplugError("strategy.sampler_kwargs.seed: not allowed; the strategy's seed is the sampler's seed")
    params = inspect.signature(cls).parameters
    if "seed" in params:
        kwargs["seed"] = seed
    if name == "GridSampler":
        kwargs.setdefault("search_space", {k: list(v) for k, v in space.choices().items()})
    try:
        with warnings.catch_warnings():  # named in the recipe: a chosen sampler, experimental or not
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return cls(**kwargs)
    except TypeError as exc:
        raise NasplugError(f"strategy.sampler_kwargs: {name}: {exc}") from None


def _study_names(storage: str) -> list[str]:
    try:
        return optuna.get_all_study_names(storage)
    except Exception as exc:
        raise NasplugError(f"strategy.storage: cannot open {storage!r} ({exc})") from None


def _create_study(storage: str, name: str | None, directions: list[str]) -> optuna.Study:
    """A new, empty study on the storage (it only stores trials: a plain sampler)."""
    try:
        return optuna.create_study(directions=directions, storage=storage, study_name=name, load_if_exists=False,
                                   sampler=optuna.samplers.RandomSampler(seed=0))
    except (ValueError, ImportError, optuna.exceptions.OptunaError) as exc:
        raise NasplugError(f"strategy.storage: cannot create a study in {storage!r} ({exc})") from None


def optuna_factory(sampler: str) -> Any:
    """A factory for ``optuna:<sampler>`` names: sampler keyword arguments given flat."""

    def factory(space: SearchSpace, seed: int = 0, storage: str | None = None, study_name: str | None = None,
                max_tries: Tries = 100, **sampler_kwargs: Any) -> OptunaStrategy:
        return OptunaStrategy(space, seed=seed, sampler=sampler, sampler_kwargs=sampler_kwargs,
                              storage=storage, study_name=study_name, max_tries=max_tries)

    factory.__name__ = factory.__qualname__ = sampler
    factory.__doc__ = f"``OptunaStrategy(sampler={sampler!r})``; extra keyword arguments go to the sampler."
    return factory


TPESampler = optuna_factory("TPESampler")
RandomSampler = optuna_factory("RandomSampler")
NSGAIISampler = optuna_factory("NSGAIISampler")
NSGAIIISampler = optuna_factory("NSGAIIISampler")
