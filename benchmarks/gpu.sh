#!/usr/bin/env bash
# One command for the GPU figures (<= 8 minutes on one H100): environment, the card's bf16 peak,
# LV-BERT-small supernet / standalone / HF BERT bf16 train steps with MFU, torch.compile on and off,
# the evaluator's candidates/s, and a 2-process torchrun NCCL smoke test when a second GPU exists.
#
#   benchmarks/gpu.sh              # on a CUDA machine, from the repository root
#   benchmarks/gpu.sh --dry-run    # every section on the CPU at tiny sizes (tests/test_benchmarks.py runs it)
#
# Sections print as they finish, so a cut run still shows what it measured. PYTHON picks the
# interpreter (default: .venv/bin/python if present, else python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
limit=480
[[ "${1:-}" == "--dry-run" ]] && limit=300
exec timeout --signal=INT --kill-after=20 "$limit" "$python" "$here/gpu.py" "$@"
