#!/usr/bin/env bash
# Issue 5, acceptance 1: on the trained CPU-sized supernet (runs/lvbert-micro), each strategy
# runs 200 evaluations from the recipe; one run is SIGKILLed mid-search and resumed, and its
# trials.jsonl is compared with an uninterrupted run's.
set -u
cd "$(dirname "$0")/.."
export NASPLUG_DATA_DIR=${NASPLUG_DATA_DIR:-$(cd .. && pwd)/shared/data} OMP_NUM_THREADS=1
SRC=runs/lvbert-micro
for S in evolution random optuna:TPESampler nni:RegularizedEvolution; do
  slug=${S/:/_}
  for kind in ref killed; do
    out=runs/acc5/$slug-$kind; rm -rf $out; mkdir -p $out/stages
    cp -r $SRC/supernet $SRC/tokenizer $out/; cp $SRC/stages/supernet.json $out/stages/
  done
  args=(recipes/lvbert-micro.yaml --stages search --set search.strategy.name=$S --set search.budget=200 --set search.batch_size=50 --set evaluator.batches=1)
  [ "$S" != evolution ] && args+=(--set search.strategy="{name: $S}")
  t0=$(date +%s)
  .venv/bin/nasplug -q run "${args[@]}" --out runs/acc5/$slug-ref > /dev/null 2>runs/acc5/$slug-ref.err
  t1=$(date +%s)
  .venv/bin/nasplug -q run "${args[@]}" --out runs/acc5/$slug-killed > /dev/null 2>&1 &
  pid=$!
  while [ "$(cat runs/acc5/$slug-killed/trials.jsonl 2>/dev/null | wc -l)" -lt 100 ] && kill -0 $pid 2>/dev/null; do sleep 0.2; done
  kill -9 $pid; wait $pid 2>/dev/null
  at=$(wc -l < runs/acc5/$slug-killed/trials.jsonl)
  .venv/bin/nasplug -q run "${args[@]}" --out runs/acc5/$slug-killed --resume > /dev/null 2>runs/acc5/$slug-killed.err
  n=$(grep -c '"status":"ok"\|"status":"cached"' runs/acc5/$slug-ref/trials.jsonl)
  if cmp -s runs/acc5/$slug-ref/trials.jsonl runs/acc5/$slug-killed/trials.jsonl; then same=identical; else same=DIFFERENT; fi
  best=$(python3 -c "import json; print(json.load(open('runs/acc5/$slug-ref/top.json'))[0]['score'], json.load(open('runs/acc5/$slug-ref/top.json'))[0]['text'])")
  echo "$S: $n scored trials in $((t1-t0)) s; killed after $at trials, resumed: $same; best mlm_acc $best"
done
