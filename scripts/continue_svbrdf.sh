#!/usr/bin/env bash
# Continue the one-step svbrdf adapter and its coordination-off twin with the same extra budget (both at once, one
# core each): 420 more steps at 128 px, lr 5e-4 on a fresh cosine schedule, from the float32 outputs of
# `scripts/one_step.sh svbrdf` (runs/os), on new data (--seed 4: a batch is a function of seed and step, so the
# first stage's seed would replay its batches). Then stored in float16 as the shipped svbrdf adapters.
#   scripts/continue_svbrdf.sh [--resume]
set -euo pipefail
wdir() { case $1 in *nocoord*) echo benchmarks/weights ;; *) echo teamwork_cli/weights ;; esac; }  # twins ship apart
cd "$(dirname "$0")/.."
export TEAMWORK_CACHE=${TEAMWORK_CACHE:-runs}   # the procedural material pool (1.6 GB) is cached here
src=${SRC:-runs/os} out=${OUT:-runs/os4}
mkdir -p "$out"
common=(--preset svbrdf --data procedural:svbrdf --steps 420 --resolution 128 --one-step --batch-size 4 --rank 16
        --lr 5e-4 --warmup 20 --checkpoint-every 25 --threads 1 --seed 4 "$@")
teamwork finetune "${common[@]}" --init "$src/svbrdf.safetensors" -o "$out/svbrdf.safetensors" \
  --title "teamwork svbrdf, one-step (embedded)" &
teamwork finetune "${common[@]}" --no-coordination --init "$src/svbrdf-nocoord.safetensors" \
  -o "$out/svbrdf-nocoord.safetensors" --title "teamwork svbrdf, one-step, coordination off (embedded)" &
wait
for f in svbrdf svbrdf-nocoord; do
  python scripts/half_adapter.py "$out/$f.safetensors" "$(wdir "$f")/$f.safetensors"
done
