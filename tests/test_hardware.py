"""nasplug.hardware: what precision ``auto`` resolves to, and the default thread count."""

from __future__ import annotations

import pytest
import torch

import nasplug.hardware as hw
from nasplug.errors import NasplugError


def cpu_with(monkeypatch: pytest.MonkeyPatch, *flags: str) -> None:
    """Pretend the CPU has exactly ``flags`` (torch's cpuinfo query names)."""
    monkeypatch.setattr(hw, "_cpu_flag", lambda name: name in flags)


def test_explicit_settings_are_kept_whatever_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu_with(monkeypatch, "_is_amx_tile_supported")
    assert hw.resolve_precision("fp32", "cpu") == hw.Choice("fp32", "set in the recipe")
    cpu_with(monkeypatch)
    assert hw.resolve_precision("bf16", "cpu").value == "bf16"


def test_auto_is_bf16_with_amx_or_measured_fast_avx512_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    def probe_must_not_run() -> float:
        raise AssertionError("the flags decide without measuring")

    monkeypatch.setattr(hw, "cpu_bf16_speedup", probe_must_not_run)
    cpu_with(monkeypatch, "_is_amx_tile_supported", "_is_avx512_bf16_supported")
    amx = hw.resolve_precision("auto", torch.device("cpu"))
    assert amx.value == "bf16" and "AMX" in amx.reason
    cpu_with(monkeypatch)
    assert hw.resolve_precision("auto", "cpu").value == "fp32"
    cpu_with(monkeypatch, "_is_avx512_bf16_supported")
    for speedup, expected in ((2.3, "bf16"), (1.25, "bf16"), (1.2, "fp32"), (0.5, "fp32")):
        monkeypatch.setattr(hw, "cpu_bf16_speedup", lambda s=speedup: s)
        avx = hw.resolve_precision("auto", "cpu")
        assert avx.value == expected, speedup
        assert avx.reason.startswith("auto: ") and "avx512_bf16 but no AMX" in avx.reason
        assert f"{speedup:.2f}x as fast as fp32's" in avx.reason


def test_the_probe_times_both_precisions_on_one_thread_and_restores_the_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[torch.dtype, int]] = []
    real_matmul = torch.Tensor.__matmul__

    def spy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        seen.append((a.dtype, torch.get_num_threads()))
        return real_matmul(a, b)

    hw.cpu_bf16_speedup.cache_clear()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
        speedup = hw.cpu_bf16_speedup()
        assert torch.get_num_threads() == 2, "the caller's thread count is restored"
    finally:
        monkeypatch.undo()
        torch.set_num_threads(before)
        hw.cpu_bf16_speedup.cache_clear()
    assert 0 < speedup < 100
    assert [d for d, _ in seen] == [torch.float32, torch.bfloat16] * 6  # warm-up, then 5 timings each in turns
    assert {t for _, t in seen} == {1}


def test_this_machine_resolves_to_its_flags_and_probe() -> None:
    amx = bool(torch.cpu._is_amx_tile_supported())
    avx = bool(torch.cpu._is_avx512_bf16_supported())
    fast = amx or (avx and hw.cpu_bf16_speedup() >= hw.BF16_MIN_SPEEDUP)
    assert hw.resolve_precision("auto", "cpu").value == ("bf16" if fast else "fp32")


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", None, True])
def test_a_bad_precision_names_the_field(bad: object) -> None:
    with pytest.raises(NasplugError, match=r"^evaluator\.precision: .*allowed: auto, fp32, bf16"):
        hw.resolve_precision(bad, "cpu", "evaluator.precision")  # type: ignore[arg-type]


def test_default_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert hw.default_threads().value == hw.DEFAULT_THREADS == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert hw.default_threads() == hw.Choice(3, "from $OMP_NUM_THREADS")
    for bad in ("x", "0", "2.5", "99999"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        with pytest.raises(NasplugError, match="^OMP_NUM_THREADS: must be an integer between 1 and 1024"):
            hw.default_threads()


@pytest.mark.parametrize("bad", [0, -1, 1025, True, 1.0, "2"])
def test_check_threads_refuses(bad: object) -> None:
    with pytest.raises(NasplugError, match="^threads: must be an integer"):
        hw.check_threads(bad)
