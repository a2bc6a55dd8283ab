"""The ``nasplug`` command. It owns the terminal: progress, tables, one-line errors.

Errors a user can cause (NasplugError) print one line and exit with status 2. The logging
options (``-q``, ``-v``, ``--log-level``) work before or after the subcommand. Building the
parser imports nothing heavy: each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nasplug import __version__
from nasplug.errors import NasplugError

log = logging.getLogger("nasplug")

LEVELS = ("debug", "info", "warning", "error")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _logging_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """-q / -v / --log-level. On subcommands their defaults are SUPPRESS, so a value given
    before the subcommand is not reset by the subcommand's parser."""
    default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False),
                        help="warnings, errors and the final table only (no progress)")
    parser.add_argument("-v", "--verbose", action="count", default=default(0),
                        help="nasplug's debug messages too (-vv: every library's)")
    parser.add_argument(
        "--log-level", choices=LEVELS, default=default(None), help="the logging level (wins over -q/-v)"
    )


def build_parser() -> argparse.ArgumentParser:
    from nasplug.cli import commands, official
    from nasplug.compare.cli import add_compare_parser
    from nasplug.cost.cli import add_latency_parsers
    from nasplug.rankcorr.cli import add_rank_corr_parser
    from nasplug.study.cli import add_study_parser

    parser = _Parser(
        prog="nasplug", description="Neural architecture search with pluggable spaces, tasks and strategies."
    )
    parser.add_argument("--version", action="version", version=f"nasplug {__version__}")
    _logging_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _logging_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parsers(sub, common)
    official.add_parser(sub, common)
    for add in (add_compare_parser, add_rank_corr_parser, add_study_parser, add_latency_parsers):
        add(sub, common)
    return parser


def _level(args: argparse.Namespace) -> int:
    if args.log_level:
        return getattr(logging, args.log_level.upper())
    if args.verbose:
        return logging.DEBUG
    return logging.WARNING if args.quiet else logging.INFO


def main(argv: Sequence[str] | None = None) -> int:
    from nasplug.allocator import keep_freed_memory

    args = build_parser().parse_args(argv)
    _set_up_logging(args)
    keep_freed_memory()
    try:
        _one_process_unless_run(args.command)
        return _command(args.command)(args)
    except NasplugError as exc:
        print(f"nasplug: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nasplug: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nasplug list ... | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0


#: Commands that join torchrun's process group, and read-only ones that write nothing; every
#: other one would do its work (and write its files) once per process.
MULTI_PROCESS = frozenset({"run"})
READ_ONLY = frozenset({"list", "show"})


def _one_process_unless_run(command: str) -> None:
    """Under torchrun, a command made for one process would write the same files from every
    rank (and fine-tune GLUE once per rank): refuse it on every rank alike, so none hangs."""
    world = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    if command not in MULTI_PROCESS | READ_ONLY and world.isdigit() and int(world) > 1:
        raise NasplugError(f"{command}: runs in one process, but WORLD_SIZE={world} (torchrun); only "
                           f"`nasplug run` uses several processes, so start `nasplug {command}` without torchrun")


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    from nasplug.cli import commands, official
    from nasplug.compare.cli import cmd_compare
    from nasplug.cost.cli import cmd_latency_check, cmd_latency_table
    from nasplug.rankcorr.cli import cmd_rank_corr
    from nasplug.study.cli import cmd_study

    table: dict[str, Any] = {"run": commands.cmd_run, "list": commands.cmd_list, "show": commands.cmd_show,
                             "export": commands.cmd_export, "import-official": official.cmd_import_official,
                             "compare": cmd_compare, "rank-corr": cmd_rank_corr, "study": cmd_study,
                             "latency-table": cmd_latency_table, "latency-check": cmd_latency_check}
    return table[name]


#: Our own progress is enough: no per-file, per-shard or weight-loading bars (carriage returns
#: in a log), and no chatter from `datasets` (its errors reach us as exceptions, which become our
#: one line). Read by each library when it is imported; a value the user set wins.
LIBRARY_ENVIRONMENT = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
                       "DATASETS_VERBOSITY": "critical"}


def _quiet_imported_libraries() -> None:
    """The same for a library imported already (``main`` called from Python), without
    importing one that is not."""
    datasets = sys.modules.get("datasets")
    if datasets is not None:
        datasets.disable_progress_bars()
        datasets.logging.set_verbosity(logging.CRITICAL)
    hub = sys.modules.get("huggingface_hub")
    if hub is not None:
        hub.utils.disable_progress_bars()
    transformers = sys.modules.get("transformers")
    if transformers is not None:
        transformers.utils.logging.disable_progress_bar()


def _set_up_logging(args: argparse.Namespace) -> None:
    """nasplug's loggers at the level asked for; other libraries' at INFO or above unless -vv
    or ``--log-level debug`` (``-v`` is for nasplug's debug lines, not matplotlib's font search)."""
    for name, value in LIBRARY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    _quiet_imported_libraries()
    logging.basicConfig(level=_level(args), format="%(levelname)s %(name)s: %(message)s", force=True)
    if not (args.log_level == "debug" or (args.verbose or 0) >= 2):
        for handler in logging.getLogger().handlers:
            handler.addFilter(_no_library_debug)


def _no_library_debug(record: logging.LogRecord) -> bool:
    """Drop the debug lines of loggers not nasplug's."""
    return record.levelno > logging.DEBUG or record.name == "nasplug" or record.name.startswith("nasplug.")


if __name__ == "__main__":
    sys.exit(main())
