"""keep_freed_memory: glibc mallopt settings, off by environment, called by the CLI."""

from __future__ import annotations

import sys

import pytest

from nasplug import allocator, cli


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_takes_the_settings():
    assert allocator.keep_freed_memory() is True


def test_environment_turns_it_off(monkeypatch):
    monkeypatch.setenv("NASPLUG_MALLOC_TUNING", "0")
    assert allocator.keep_freed_memory() is False


def test_the_cli_tunes_the_allocator_at_start(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(True) or True)
    assert cli.main(["list", "strategies"]) == 0
    assert calls == [True]
