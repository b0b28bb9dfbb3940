#!/usr/bin/env bash
# Reproduce the embedded model and its shipped adapters on a CPU (see docs/reproducing.md for timings).
# Each step checkpoints; rerun the same line with --resume (pretrain: --resume too) to continue a killed job.
set -euo pipefail
wdir() { case $1 in *nocoord*) echo benchmarks/weights ;; *) echo teamwork_cli/weights ;; esac; }  # twins ship apart
cd "$(dirname "$0")/.."
export TEAMWORK_CACHE=${TEAMWORK_CACHE:-runs}   # the procedural material pool (1.6 GB) is cached here

# 1. The base: rectified flow on procedural material maps, 1600 steps of 8 views at 128 px.
python -m teamwork_cli.training.pretrain --steps 1600 --batch-size 8 --size 128 --lr 5e-4 \
  --out teamwork_cli/weights/base --work runs/pretrain --threads 1

# 2. The svbrdf adapter and its coordination-off twin (same budget); run both at once on two cores.
#    Phase a: 1000 steps (cosine schedule over 1000); phase b: the same runs resumed with --steps 2000, which
#    continues from step 1000 with the schedule recomputed for 2000 steps (a warm restart of the learning rate).
common=(--preset svbrdf --data procedural:svbrdf --batch-size 4 --resolution 128 --rank 16
        --lr 2e-3 --warmup 50 --timestep-mean 1.0 --checkpoint-every 50 --threads 1)
for phase in "--steps 1000" "--steps 2000 --resume"; do
  # shellcheck disable=SC2086
  teamwork finetune "${common[@]}" $phase -o runs/svbrdf/svbrdf.safetensors --title "teamwork svbrdf (embedded)" &
  # shellcheck disable=SC2086
  teamwork finetune "${common[@]}" $phase --no-coordination -o runs/svbrdf/svbrdf-nocoord.safetensors \
    --title "teamwork svbrdf, coordination off (embedded)" &
  wait
done
for f in svbrdf svbrdf-nocoord; do  # stored in float16, as shipped: the init of step 3
  python scripts/half_adapter.py "runs/svbrdf/$f.safetensors" "$(wdir "$f")/${f/svbrdf/svbrdf-diffusion}.safetensors"
done

# 3. The shipped one-step estimators (the default svbrdf adapter and its twin): 450 steps of finetune --one-step
#    from those, written to teamwork_cli/weights/svbrdf.safetensors (the twin to benchmarks/weights/).
scripts/one_step.sh svbrdf
