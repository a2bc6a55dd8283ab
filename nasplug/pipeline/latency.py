"""The latency stage: a latency table of the run's space, measured once before training.

A recipe's ``latency:`` section turns it on::

    latency:
      threads: 1         # the device settings of nasplug.cost.Device (cpu)
      batch_size: 1
      seq_len: 64        # default: the space's seq_len
      repeats: 15
      clock: wall        # or thread (steadier on a shared, loaded machine)
      calibrate: 5       # random archs measured whole to fit the constant
      table: null        # or a lut.json written by `nasplug latency-table` (measured for this space)

The stage writes ``latency_table.json`` in the run directory (or copies ``table``); from then
on the run's space predicts ``latency_ms`` (declared ``minimize``) from it, so a search may
name it as an objective or bound it with a constraint, before any evaluation. A resumed run
reads the stored table back: it is measured once per run, and the search replays the same
values.
"""

from __future__ import annotations

import shutil
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

    device: Literal["cpu"] = "cpu"
    threads: Annotated[int, Field(ge=1, le=1024)] = 1
    batch_size: Count = 1
    seq_len: Count | None = None
    warmup: Annotated[int, Field(ge=0, le=10_000)] = 3
    repeats: Count = 15
    calls: Count = 3
    clock: Literal["wall", "thread"] = "wall"
    calibrate: Annotated[int, Field(ge=1, le=1000)] = 5
    seed: int = 0
    table: str | None = None


def latency_config(section: Any) -> LatencyConfig:
    try:
        return LatencyConfig.model_validate(section or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise NasplugError(f"latency.{where}: {err['msg']}") from None


class LatencyStage(Stage):
    name = "latency"
    position = 5.0  # before the supernet: the search's objectives and constraints read it
    section = True
    outputs = (RunLayout.LATENCY_TABLE,)

    def applies(self, recipe: Any) -> bool:
        return recipe.section("latency") is not None

    def check(self, ctx: Any) -> None:
        from nasplug.cost.table import parts_of

        cfg = latency_config(ctx.recipe.section("latency"))
        if cfg.clock == "thread" and cfg.threads != 1:
            raise NasplugError(f"latency.clock: thread measures one thread's CPU time; it needs threads: 1, got "
                               f"{cfg.threads}")
        seq_len = self.device(cfg, ctx.space).seq_len  # a space without latency parts is refused here
        limit = parts_of(ctx.space).latency_lengths()[1]
        if seq_len > limit:
            raise NasplugError(f"latency.seq_len: {seq_len} is longer than the space's max_positions ({limit})")
        if cfg.table is not None and not Path(cfg.table).is_file():
            raise NasplugError(f"latency.table: {cfg.table}: no such file; write one with nasplug latency-table")

    @staticmethod
    def device(cfg: LatencyConfig, space: Any) -> Any:
        from nasplug.cost.measure import Device
        from nasplug.cost.table import parts_of

        seq_len = cfg.seq_len or parts_of(space).latency_lengths()[0]
        return Device(name=cfg.device, threads=cfg.threads, batch_size=cfg.batch_size, seq_len=seq_len,
                      warmup=cfg.warmup, repeats=cfg.repeats, calls=cfg.calls, clock=cfg.clock)

    def run(self, ctx: Any) -> dict[str, Any]:
        from nasplug.cost.attach import with_latency
        from nasplug.cost.table import build_table, load_table
        from nasplug.pipeline.context import space_spec

        cfg = latency_config(ctx.recipe.section("latency"))
        path = ctx.layout.latency_table
        if cfg.table is not None:
            table = load_table(cfg.table)
            shutil.copyfile(cfg.table, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
        else:
            spec = space_spec(ctx.recipe.space, ctx.task if ctx.recipe.task is not None else None)
            table = build_table(ctx.space, self.device(cfg, ctx.space), spec, calibrate=cfg.calibrate, seed=cfg.seed)
            table.save(path)
        with_latency(ctx.space, table)  # the stages after this one, in this process
        return {"machine": table.machine, "device": table.device.to_json(), "constant_ms": table.constant_ms,
                "choices": len(table.entries)}

    def report(self, view: RunView) -> Section:
        from nasplug.cost.table import load_table

        path = view.layout.latency_table
        if not path.is_file():
            return [], ""
        table = load_table(path)
        d = table.device
        lines = ["## Latency table", "",
                 f"`{LATENCY_METRIC}` is predicted from a table measured on {table.machine} ({d.name}, "
                 f"{d.threads} thread(s), batch {d.batch_size}, sequence {d.seq_len}, {d.clock} clock, median of "
                 f"{d.repeats} rounds): the sum of each chosen option's entry plus a constant of "
                 f"{table.constant_ms:.3f} ms fitted on {len(table.calibration)} archs measured whole. "
                 "Check it with `nasplug latency-check latency_table.json`.", ""]
        return lines, ""
