"""What may change when something resumes: one policy for runs, trainings and comparisons.

Three things resume, and each refuses a change that would mix two experiments in one place:

- a **training** (:func:`nasplug.oneshot.checkpoint.check_resume_config`): its checkpoint
  accepts other :attr:`ResumePolicy.training` settings and other :attr:`ResumePolicy.held_out`
  settings, nothing else;
- a **run directory** (``nasplug run --resume``, ``nasplug study``;
  :func:`nasplug.pipeline.identity.check_run_dir`): the recipe may differ from the stored one
  only in :attr:`ResumePolicy.recipe` keys, the training sections' :attr:`ResumePolicy.training`
  settings, what a stage declares (:attr:`~nasplug.pipeline.stage.Stage.may_change`: a plugin
  stage's own keys, e.g. the GLUE task list) and the study settings
  :meth:`ResumePolicy.study_may_change` allows; a study fixes its training settings
  (:attr:`ResumePolicy.study_fixed`);
- a **comparison** (``nasplug compare --resume``): its :attr:`ResumePolicy.comparison` settings
  must be those it started with.

:data:`RESUME` is the policy nasplug uses; everything above consults it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResumePolicy:
    """Which settings may change on resume (see the module docstring for who asks)."""

    #: Training settings a resumed training may change: they leave the weights trained so far
    #: as they are (the learning rate and the precision are the remedies after a divergence).
    training: tuple[str, ...] = ("log_every", "checkpoint_every", "eval_every", "device", "compile", "lr",
                                 "precision")
    #: How held-out figures are taken: a checkpoint accepts a change (no weight changes), the
    #: recipe check refuses it (the reported figures would change).
    held_out: tuple[str, ...] = ("eval_batches", "eval_archs")
    #: Recipe sections that hold training settings (each may change :attr:`training`).
    training_sections: tuple[str, ...] = ("supernet", "retrain")
    #: Other dotted recipe keys (or prefixes) that cannot alter what a run wrote already.
    #: (``threads``: the CPU thread count, recorded in run.json; it changes results in their last bits only.)
    recipe: tuple[str, ...] = ("description", "expected", "search.budget", "search.top_k", "tracking",
                               "supernet.snapshots", "threads")
    #: Allowed changes a study refuses: its models must all train alike, so the remedies a
    #: single run may change (lr, precision, glue.lr) would mix two trainings in one table.
    study_fixed: tuple[str, ...] = ("retrain.", "supernet.", "glue.lr")
    #: The settings of a comparison that change scores or trajectories.
    comparison: tuple[str, ...] = ("space", "evaluator", "metric", "direction", "objectives", "constraints",
                                   "batch_size", "from_run")

    # ------------------------------------------------------------------ trainings
    def checkpoint_may_change(self, key: str) -> bool:
        """Whether a checkpoint resumes under another value of training setting ``key``."""
        return key in self.training or key in self.held_out

    # ------------------------------------------------------------------ run directories
    def recipe_keys(self, stage_keys: Iterable[str] = ()) -> tuple[str, ...]:
        """Dotted recipe keys (or prefixes) that may differ on ``--resume``: this policy's and
        ``stage_keys``, what the stages declare (:attr:`~nasplug.pipeline.stage.Stage.may_change`)."""
        training = (f"{section}.{key}" for section in self.training_sections for key in self.training)
        return tuple(dict.fromkeys([*self.recipe, *training, *stage_keys]))

    def first_recipe_difference(self, old: Mapping[str, Any], new: Mapping[str, Any],
                                stage_keys: Iterable[str] = ()) -> str | None:
        """The first dotted key (of two flattened recipes) whose value differs and may not change."""
        allowed = self.recipe_keys(stage_keys)
        if any((k == "study" or k.startswith("study.")) and v is not None for k, v in old.items()):
            allowed = tuple(a for a in allowed if not a.startswith(self.study_fixed))
        for key in sorted(set(old) | set(new)):
            if old.get(key) == new.get(key) or _under(key, allowed) or self.study_may_change(key, old):
                continue
            return key
        return None

    @staticmethod
    def study_may_change(key: str, old: Mapping[str, Any]) -> bool:
        """Study settings that cannot alter a result the study wrote already: its models are kept
        per row, arch and seed (``study/models/<row>/<i>-<arch>/seed-<k>/``), so new rows, archs
        and seeds add runs, and the headline metric and the reference row change only the table.
        Not allowed: the training settings (``study.train``), and an existing search row's
        settings (its trials log is kept by row name) other than its budget."""
        if not key.startswith("study.") or key == "study.train" or key.startswith("study.train."):
            return False
        parts = key.split(".")
        if len(parts) >= 4 and parts[1] == "rows" and parts[3] == "search":
            searched = f"study.rows.{parts[2]}.search"
            existed = any(k == searched or k.startswith(searched + ".") for k in old)
            return not existed or key == f"{searched}.budget"
        return True

    # ------------------------------------------------------------------ comparisons
    def first_comparison_difference(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
        """The first :attr:`comparison` setting whose value differs between two fingerprints."""
        return next((key for key in self.comparison if old.get(key) != new.get(key)), None)


def _under(key: str, allowed: tuple[str, ...]) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in allowed)


#: The policy every resume consults.
RESUME = ResumePolicy()
