"""Older text recipes: their ``data:`` section and the training sections' objective settings.

Before tasks existed, a recipe said what LV-BERT trained on with ``data:`` (corpus, tokenizer,
seq_len) and ``objective`` / ``mask_prob`` / ``generator_weight`` / ``discriminator_weight``
under ``supernet:`` and ``retrain:``. :func:`migrate` (registered in
:data:`nasplug.recipe.MIGRATIONS`) maps them onto ``task: {name: mlm|electra, ...}`` (and a
``retrain.task`` change when retraining used another objective), so those recipes still run.
"""

from __future__ import annotations

import logging
from typing import Any

from nasplug.errors import NasplugError

log = logging.getLogger(__name__)

#: Keys of ``supernet:`` / ``retrain:`` that belong to the text task now.
TASK_KEYS = ("objective", "generator_weight", "discriminator_weight", "mask_prob")


def migrate(raw: dict[str, Any], source: str = "recipe") -> dict[str, Any]:
    """Map the text settings of an older recipe onto the task: ``data:`` plus the training
    sections' ``objective`` / ``mask_prob`` / ``generator_weight`` / ``discriminator_weight``
    become ``task: {name: mlm|electra, ...}``. Other recipes are returned as they are."""
    moved = {section: {k: v for k, v in (raw.get(section) or {}).items() if k in TASK_KEYS}
             for section in ("supernet", "retrain") if isinstance(raw.get(section), dict)}
    if "data" not in raw and not any(moved.values()):
        return raw
    if raw.get("task") is not None:
        first = "data" if "data" in raw else next(f"{s}.{k}" for s, keys in moved.items() for k in keys)
        raise NasplugError(f"{source}: {first}: the recipe has a task section; move this setting into task:")
    data = raw.get("data")
    if data is not None and not isinstance(data, dict):
        raise NasplugError(
            f"{source}: data: expected a mapping (corpus, tokenizer, seq_len), got {type(data).__name__}"
        )
    raw = {k: v for k, v in raw.items() if k != "data"}
    tasks = {}
    for section, keys in moved.items():
        raw[section] = {k: v for k, v in raw[section].items() if k not in TASK_KEYS}
        tasks[section] = _legacy_task(data, keys)
    tasks.setdefault("supernet", _legacy_task(data, {}))
    raw["task"] = tasks["supernet"]
    if "retrain" in tasks and tasks["retrain"] != raw["task"]:  # e.g. an MLM supernet, ELECTRA retraining
        raw["retrain"]["task"] = {k: v for k, v in tasks["retrain"].items()
                                  if k == "name" or raw["task"].get(k) != v}
    log.info("recipe %s: data/objective settings are the %r task's now (task: {name: %s, ...})", source,
             raw["task"]["name"], raw["task"]["name"])
    return raw


def _legacy_task(data: dict[str, Any] | None, keys: dict[str, Any]) -> dict[str, Any]:
    settings = dict(keys)
    task = {"name": settings.pop("objective", "mlm"), **(data or {}), **settings}
    if task["name"] == "mlm":
        for key in ("generator_weight", "discriminator_weight"):
            task.pop(key, None)  # ELECTRA-only settings the old loop ignored for MLM
    return task
