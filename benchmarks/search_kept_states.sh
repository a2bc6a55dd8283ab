#!/usr/bin/env bash
# Whole-search effect of keeping the best archs' hidden states between generations: the
# search stage of recipes/lvbert-micro.yaml (evolution, 250 evaluations, 8 held-out batches
# of 64 x 64) on the trained supernet of runs/lvbert-micro, with evaluator.keep=10 (default)
# and evaluator.keep=0 (within-generation prefix sharing only), run alternately. The two
# trials.jsonl must be identical; the wall-clock ratio is printed.
#
#   bash benchmarks/search_kept_states.sh [SRC_RUN=runs/lvbert-micro] [REPEATS=1]
set -eu
cd "$(dirname "$0")/.."
SRC=${1:-runs/lvbert-micro}
REPEATS=${2:-1}
export NASPLUG_DATA_DIR=${NASPLUG_DATA_DIR:-$(cd .. && pwd)/shared/data} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -f "$SRC/supernet/model.safetensors" ] || { echo "no trained supernet in $SRC (run recipes/lvbert-micro.yaml first)" >&2; exit 2; }
for rep in $(seq 1 "$REPEATS"); do
  for keep in 10 0; do
    out=runs/kept-states/keep$keep; rm -rf "$out"; mkdir -p "$out/stages"
    cp -r "$SRC/supernet" "$SRC/tokenizer" "$out/"; cp "$SRC/stages/supernet.json" "$out/stages/"
    t0=$(date +%s.%N)
    .venv/bin/nasplug -q run recipes/lvbert-micro.yaml --stages search --set evaluator.keep=$keep --out "$out" > /dev/null
    t1=$(date +%s.%N)
    secs[$keep]=$(python3 -c "print(round($t1 - $t0, 1))")
  done
  cmp -s runs/kept-states/keep10/trials.jsonl runs/kept-states/keep0/trials.jsonl && same=identical || same=DIFFERENT
  n=$(wc -l < runs/kept-states/keep10/trials.jsonl)
  echo "repeat $rep: $n trials; keep=10 ${secs[10]} s, keep=0 ${secs[0]} s, speed-up $(python3 -c "print(round(${secs[0]} / ${secs[10]}, 2))"); trials.jsonl $same"
done
