#!/usr/bin/env bash
# Reproduce the shipped diffusion adapters of intrinsics, inpaint, inpaint-material and synthesize (embedded base);
# the shipped intrinsics, inpaint and inpaint-material defaults are one-step estimators continued from them, and
# shade a one-step estimator from scratch (scripts/one_step.sh).
# Each preset trains twice at once on two cores: the adapter and its coordination-off twin, same budget.
# A killed job continues with the same line plus --resume. Timings on a 2-core CPU are in docs/reproducing.md.
#   scripts/train_tasks.sh [PRESET...]        (default: all four, in this order)
set -euo pipefail
wdir() { case $1 in *nocoord*) echo benchmarks/weights ;; *) echo teamwork_cli/weights ;; esac; }  # twins ship apart
cd "$(dirname "$0")/.."
export TEAMWORK_CACHE=${TEAMWORK_CACHE:-runs}   # the procedural material pool (1.6 GB) is cached here
common=(--batch-size 4 --resolution 128 --rank 16 --lr 2e-3 --warmup 30 --checkpoint-every 50 --threads 1)
declare -A recipe=(
  [inpaint]="--data procedural:inpaint --steps 1000"
  [synthesize]="--data procedural:synthesize --steps 700"
  [intrinsics]="--data procedural:scenes --steps 330 --timestep-mean 1.0 --dropout 0.2"
  [inpaint-material]="--data procedural:inpaint --steps 400"
)
mkdir -p runs/tasks
for preset in "${@:-inpaint synthesize intrinsics inpaint-material}"; do
  for p in $preset; do
    # shellcheck disable=SC2086
    teamwork finetune --preset "$p" ${recipe[$p]} "${common[@]}" -o "runs/tasks/$p.safetensors" \
      --title "teamwork $p (embedded)" &
    # shellcheck disable=SC2086
    teamwork finetune --preset "$p" ${recipe[$p]} "${common[@]}" --no-coordination \
      -o "runs/tasks/$p-nocoord.safetensors" --title "teamwork $p, coordination off (embedded)" &
    wait
    for f in "$p" "$p-nocoord"; do  # shipped in float16: half the size, same results (docs/reproducing.md)
      # intrinsics continues in scripts/continue_intrinsics.sh; shipped estimators are then made one-step
      # (scripts/one_step.sh), from the diffusion adapters kept as <preset>-diffusion[-nocoord]
      case $p in intrinsics) continue ;; synthesize) dest=$f ;; *) dest=$p-diffusion${f#"$p"} ;; esac
      python scripts/half_adapter.py "runs/tasks/$f.safetensors" "$(wdir "$f")/$dest.safetensors"
    done
  done
done
