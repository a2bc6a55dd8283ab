"""Cost: what a model costs to run, beside the analytic ``params`` and ``flops``.

Three sources of rising price (DESIGN.md, "Cost"):

* analytic: ``params``/``flops`` from the arch alone (the space's :meth:`~nasplug.space.SearchSpace.metrics`);
* a **latency table** (:mod:`nasplug.cost.table`), measured once per device: each option of
  each choice at its position, alone; an arch's predicted latency is the sum of its options'
  entries plus one measured constant (what the table's blocks leave out: embeddings, heads,
  the calls between blocks), never below 0. Where a block's cost depends on other choices
  (a shared width), the space declares them as its latency context and the table holds
  entries per context value. Cheap, so a search can use it before any evaluation, as an
  objective or a constraint;
* **direct measurement** of the extracted model (:mod:`nasplug.cost.measure`): the fastest of N
  timed calls after a warm-up, on a named device (CPU threads, batch, sequence length),
  recorded with the machine's name.

Every latency is ``latency_ms``, declared ``minimize``. This package is generic: it imports
no space or task. A space offers what the table and the measurement need through the
:class:`~nasplug.cost.table.LatencyParts` interface, and optionally
:class:`~nasplug.cost.table.LatencyContext` (LV-BERT and elastic-BERT implement the first,
elastic-BERT the second).
"""

from __future__ import annotations

from nasplug.cost.measure import LATENCY_METRIC, Device, machine_name, measure_many

__all__ = ["LATENCY_METRIC", "Device", "machine_name", "measure_many"]
