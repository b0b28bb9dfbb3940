#!/usr/bin/env bash
# The shipped one-step estimators: each task's diffusion adapter and its coordination-off twin (shipped as
# teamwork_cli/weights/<task>-diffusion[-nocoord].safetensors) continued with `finetune --one-step --init`, both at
# once, one core each, same budget; then stored in float16 as the task's default adapter. README "Design notes".
#   scripts/one_step.sh svbrdf|intrinsics|shade [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
export TEAMWORK_CACHE=${TEAMWORK_CACHE:-runs}   # the procedural material pool (1.6 GB) is cached here
task=${1:?usage: scripts/one_step.sh svbrdf|intrinsics|shade [--resume]}
shift
case $task in
  svbrdf) recipe=(--data procedural:svbrdf --steps 450 --resolution 128) ;;
  intrinsics) recipe=(--data procedural:scenes --steps 600 --resolution 64 --dropout 0.2) ;;
  shade) recipe=(--data procedural:scenes --steps 500 --resolution 64) ;;
  *) echo "unknown task $task (svbrdf, intrinsics, shade)" >&2; exit 2 ;;
esac
common=(--preset "$task" "${recipe[@]}" --one-step --batch-size 4 --rank 16 --lr 1e-3 --warmup 20
        --checkpoint-every 25 --threads 1 "$@")
w=teamwork_cli/weights
mkdir -p runs/os
teamwork finetune "${common[@]}" --init "$w/$task-diffusion.safetensors" -o "runs/os/$task.safetensors" \
  --title "teamwork $task, one-step (embedded)" &
teamwork finetune "${common[@]}" --no-coordination --init "$w/$task-diffusion-nocoord.safetensors" \
  -o "runs/os/$task-nocoord.safetensors" --title "teamwork $task, one-step, coordination off (embedded)" &
wait
for f in "$task" "$task-nocoord"; do
  python scripts/half_adapter.py "runs/os/$f.safetensors" "$w/$f.safetensors"
done
