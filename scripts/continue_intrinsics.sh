#!/usr/bin/env bash
# Continue the shipped intrinsics adapter and its coordination-off twin with the same extra budget (both at once,
# one core each): 500 more steps at 64 px, from the 330-step adapters of scripts/train_tasks.sh.
#   scripts/continue_intrinsics.sh [--resume]
set -euo pipefail
wdir() { case $1 in *nocoord*) echo benchmarks/weights ;; *) echo teamwork_cli/weights ;; esac; }  # twins ship apart
cd "$(dirname "$0")/.."
export TEAMWORK_CACHE=${TEAMWORK_CACHE:-runs}
mkdir -p runs/tasks
for f in intrinsics intrinsics-nocoord; do  # the 330-step adapters of scripts/train_tasks.sh, kept as the init
  [ -f runs/tasks/$f-330.safetensors ] || cp runs/tasks/$f.safetensors runs/tasks/$f-330.safetensors
done
common=(--preset intrinsics --data procedural:scenes --steps 500 --timestep-mean 1.0 --dropout 0.2 --batch-size 4
        --resolution 64 --rank 16 --lr 1e-3 --warmup 30 --checkpoint-every 50 --threads 1 "$@")
teamwork finetune "${common[@]}" --init runs/tasks/intrinsics-330.safetensors \
  -o runs/tasks/intrinsics.safetensors --title "teamwork intrinsics (embedded)" &
teamwork finetune "${common[@]}" --no-coordination --init runs/tasks/intrinsics-nocoord-330.safetensors \
  -o runs/tasks/intrinsics-nocoord.safetensors --title "teamwork intrinsics, coordination off (embedded)" &
wait
for f in intrinsics intrinsics-nocoord; do  # float16, as shipped: the diffusion adapters that scripts/one_step.sh
  python scripts/half_adapter.py "runs/tasks/$f.safetensors" "$(wdir "$f")/${f/intrinsics/intrinsics-diffusion}.safetensors"
done
# then: scripts/one_step.sh intrinsics (the shipped one-step adapters)
