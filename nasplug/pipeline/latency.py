"""The latency stage: a latency table of the run's space, measured once before training.

A recipe's ``latency:`` section turns it on::

    latency:
      threads: 1         # the device settings of nasplug.cost.Device (cpu)
      batch_size: 1
      seq_len: 64        # default: the space's seq_len
      repeats: 15
      clock: wall        # or thread (steadier on a shared, loaded machine)
      statistic: min     # the fastest round (steadier on a shared machine), or median
      calibrate: 5       # random archs measured whole to fit the constant
      table: null        # or a lut.json written by `nasplug latency-table` (measured for this space)
      measure: table     # or direct: no table; each arch's extracted model is measured when a
                         # search (or a constraint) first asks (nasplug.cost.direct)

The stage writes ``latency_table.json`` in the run directory (or copies ``table``); from then
on the run's space predicts ``latency_ms`` (declared ``minimize``) from it, so a search may
name it as an objective or bound it with a constraint, before any evaluation. A resumed run
reads the stored table back: it is measured once per run, and the search replays the same
values.

With ``measure: direct`` there is no stage: the run's space times the extracted model of each
arch it is asked about (exact, but a measurement per arch, and as noisy as the machine) and
keeps every value in ``latency_measured.jsonl``, which a resumed run reads back.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nasplug.cost.measure import LATENCY_METRIC
from nasplug.errors import NasplugError
from nasplug.layout import RunLayout
from nasplug.pipeline.stage import RunView, Section, Stage

Count = Annotated[int, Field(ge=1, le=100_000)]


class LatencyConfig(BaseModel):
    """The recipe's ``latency:`` section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    measure: Literal["table", "direct"] = "table"
    device: Literal["cpu"] = "cpu"
    threads: Annotated[int, Field(ge=1, le=1024)] = 1
    batch_size: Count = 1
    seq_len: Count | None = None
    warmup: Annotated[int, Field(ge=0, le=10_000)] = 3
    repeats: Count = 15
    calls: Count = 3
    clock: Literal["wall", "thread"] = "wall"
    statistic: Literal["median", "min"] = "min"
    calibrate: Annotated[int, Field(ge=1, le=1000)] = 5
    seed: int = 0
    table: str | None = None


def attach_run_latency(space: Any, recipe: Any, run_dir: Path, read_only: bool = True,
                       started: Callable[[], bool] | None = None) -> Any:
    """``space`` with the run's latency attached (``recipe``: a Recipe or the stored mapping):
    its stored table (``space`` itself when the recipe has no ``latency:`` section or the stage
    has not written the table yet), or with ``measure: direct`` its measurements: read-only
    (an arch the run did not measure has no ``latency_ms``) unless ``read_only`` is False (the
    run itself, on one process), whose values are written once ``started()`` says so."""
    section = recipe.get("latency") if isinstance(recipe, dict) else recipe.section("latency")
    if section is None:
        return space
    cfg = latency_config(section)
    layout = RunLayout(run_dir)
    if cfg.measure == "direct":
        from nasplug.cost.attach import with_measured_latency
        from nasplug.cost.direct import MeasuredLatencies
        from nasplug.distributed import launched_world_size

        if not read_only and launched_world_size() > 1:
            raise NasplugError("latency.measure: direct measures each arch in one process; under torchrun use "
                               "measure: table (a table measured once, read by every rank)")
        measured = MeasuredLatencies(space, checked_device(cfg, space), layout.latency_measured,
                                     started=started, read_only=read_only)
        return with_measured_latency(space, measured)
    if not layout.latency_table.is_file():
        return space
    from nasplug.cost.attach import with_latency
    from nasplug.cost.table import load_table

    return with_latency(space, load_table(layout.latency_table))


def checked_device(cfg: LatencyConfig, space: Any) -> Any:
    """The :class:`~nasplug.cost.measure.Device` of ``cfg`` for ``space`` (NasplugError, one
    line naming the key, when the space has no latency parts or cannot take the settings)."""
    from nasplug.cost.table import parts_of

    if cfg.clock == "thread" and cfg.threads != 1:
        raise NasplugError(f"latency.clock: thread measures one thread's CPU time; it needs threads: 1, got "
                           f"{cfg.threads}")
    device = LatencyStage.device(cfg, space)  # a space without latency parts is refused here
    limit = parts_of(space).latency_lengths()[1]
    if device.seq_len > limit:
        raise NasplugError(f"latency.seq_len: {device.seq_len} is longer than the space's max_positions ({limit})")
    return device


def latency_config(section: Any) -> LatencyConfig:
    try:
        cfg = LatencyConfig.model_validate(section or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise NasplugError(f"latency.{where}: {err['msg']}") from None
    if cfg.measure == "direct":
        for name in TABLE_ONLY:
            if name in cfg.model_fields_set:
                raise NasplugError(f"latency.{name}: belongs to a latency table; not used with latency.measure: "
                                   "direct (each arch's model is measured)")
    return cfg


#: Keys of the ``latency:`` section that only a table uses.
TABLE_ONLY = ("calibrate", "seed", "table")


class LatencyStage(Stage):
    name = "latency"
    position = 5.0  # before the supernet: the search's objectives and constraints read it
    section = True
    outputs = (RunLayout.LATENCY_TABLE,)

    def applies(self, recipe: Any) -> bool:
        return recipe.section("latency") is not None

    def check(self, ctx: Any) -> None:
        cfg = latency_config(ctx.recipe.section("latency"))
        checked_device(cfg, ctx.space)
        if cfg.table is not None and not Path(cfg.table).is_file():
            raise NasplugError(f"latency.table: {cfg.table}: no such file; write one with nasplug latency-table")

    @staticmethod
    def device(cfg: LatencyConfig, space: Any) -> Any:
        from nasplug.cost.measure import Device
        from nasplug.cost.table import parts_of

        seq_len = cfg.seq_len or parts_of(space).latency_lengths()[0]
        return Device(name=cfg.device, threads=cfg.threads, batch_size=cfg.batch_size, seq_len=seq_len,
                      warmup=cfg.warmup, repeats=cfg.repeats, calls=cfg.calls, clock=cfg.clock,
                      statistic=cfg.statistic)

    def run(self, ctx: Any) -> dict[str, Any]:
        from nasplug.cost.attach import with_latency
        from nasplug.cost.table import build_table, load_table
        cfg = latency_config(ctx.recipe.section("latency"))
        if cfg.measure == "direct":  # nothing to build: the space measures each arch it is asked about
            from nasplug.cost.measure import machine_name

            return {"measure": "direct", "machine": machine_name(),
                    "device": checked_device(cfg, ctx.space).to_json()}
        path = ctx.layout.latency_table
        if cfg.table is not None:
            table = load_table(cfg.table)
            shutil.copyfile(cfg.table, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
        else:
            table = build_table(ctx.space, self.device(cfg, ctx.space), ctx.space_spec(), calibrate=cfg.calibrate,
                                seed=cfg.seed)
            table.save(path)
        with_latency(ctx.space, table)  # the stages after this one, in this process
        return {"machine": table.machine, "device": table.device.to_json(), "constant_ms": table.constant_ms,
                "choices": len(table.choice_names())}

    def report(self, view: RunView) -> Section:
        from nasplug.cost.table import load_table

        if latency_config(view.recipe.get("latency")).measure == "direct":
            return _report_direct(view), ""
        path = view.layout.latency_table
        if not path.is_file():
            return [], ""
        table = load_table(path)
        d = table.device
        per = f" (entries measured per value of {', '.join(table.context)})" if table.context else ""
        lines = ["## Latency table", "",
                 f"`{LATENCY_METRIC}` is predicted from a table measured on {table.machine} ({d.name}, "
                 f"{d.threads} thread(s), batch {d.batch_size}, sequence {d.seq_len}, {d.clock} clock, "
                 f"{d.statistic} of {d.repeats} rounds): the sum of each chosen option's entry{per} plus a constant of "
                 f"{table.constant_ms:.3f} ms fitted on {len(table.calibration)} archs measured whole. "
                 "Check it with `nasplug latency-check latency_table.json`.", ""]
        return lines, ""


def _report_direct(view: RunView) -> list[str]:
    """The report's section on ``measure: direct``: how many archs were measured, where, how."""
    if view.space is None:
        return []
    from nasplug.cost.direct import read_measurements

    device = checked_device(latency_config(view.recipe.get("latency")), view.space).to_json()
    records = {r["key"]: r for r in read_measurements(view.layout.latency_measured) if r["device"] == device}
    if not records:
        return []
    machines = sorted({r["machine"] for r in records.values()})
    values = [r["latency_ms"] for r in records.values()]
    d = device
    return ["## Latency measured", "",
            f"`{LATENCY_METRIC}` was measured on the extracted model of each of the {len(records)} archs the run "
            f"asked about ({min(values):.3f}-{max(values):.3f} ms), on {', '.join(machines)} ({d['name']}, "
            f"{d['threads']} thread(s), batch {d['batch_size']}, sequence {d['seq_len']}, {d['clock']} clock, "
            f"{d.get('statistic', 'median')} of {d['repeats']} rounds): `latency_measured.jsonl`.", ""]
