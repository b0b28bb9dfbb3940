#!/usr/bin/env bash
# The shipped one-step estimators: each task's diffusion adapter and its coordination-off twin (shipped as
# teamwork_cli/weights/<task>-diffusion[-nocoord].safetensors) continued with `finetune --one-step --init`, both at
# once, one core each, same budget; then stored in float16 as the task's default adapter. Recipes and timings:
# docs/reproducing.md section 3.
#   scripts/one_step.sh svbrdf|intrinsics|shade|inpaint|inpaint-material [--resume]
# Inpainting estimators see each hole pre-filled with its harmonic fill (--hole-fill harmonic) and start from it;
# shade starts from the buffers' deferred shading (deferred.in, teamwork_cli/graphics/deferred.py), and from a fresh
# adapter, as the diffusion adapter's team lacks that teammate. A start is given at noise level 0.1 (--start-level).
set -euo pipefail
wdir() { case $1 in *nocoord*) echo benchmarks/weights ;; *) echo teamwork_cli/weights ;; esac; }  # twins ship apart
cd "$(dirname "$0")/.."
export TEAMWORK_CACHE=${TEAMWORK_CACHE:-runs}   # the procedural material pool (1.6 GB) is cached here
task=${1:?usage: scripts/one_step.sh svbrdf|intrinsics|shade|inpaint|inpaint-material [--resume]}
shift
case $task in
  svbrdf) recipe=(--data procedural:svbrdf --steps 450 --resolution 128) ;;
  intrinsics) recipe=(--data procedural:scenes --steps 600 --resolution 64 --dropout 0.2) ;;
  shade) recipe=(--data procedural:scenes --steps 500 --resolution 64 --start image.out=deferred.in) ;;
  inpaint) recipe=(--data procedural:inpaint --hole-fill harmonic --steps 250 --resolution 128
                   --start image.out=image.in) ;;
  inpaint-material) recipe=(--data procedural:inpaint --hole-fill harmonic --steps 120 --resolution 128
                            --start diffuse.out=diffuse.in,specular.out=specular.in,roughness.out=roughness.in,normals.out=normals.in) ;;
  *) echo "unknown task $task (svbrdf, intrinsics, shade, inpaint, inpaint-material)" >&2; exit 2 ;;
esac
case $task in shade | inpaint*) recipe+=(--start-level 0.1) ;; esac
common=(--preset "$task" "${recipe[@]}" --one-step --batch-size 4 --rank 16 --lr 1e-3 --warmup 20
        --checkpoint-every 25 --threads 1 "$@")
out=${OUT:-runs/os}  # where the float32 runs and their checkpoints go
mkdir -p "$out"
init() { [ "$task" = shade ] || echo "--init $(wdir "x$1")/$task-diffusion$1.safetensors"; }
# shellcheck disable=SC2046  # init's words are meant to split
teamwork finetune "${common[@]}" $(init "") -o "$out/$task.safetensors" \
  --title "teamwork $task, one-step (embedded)" &
# shellcheck disable=SC2046
teamwork finetune "${common[@]}" --no-coordination $(init -nocoord) -o "$out/$task-nocoord.safetensors" \
  --title "teamwork $task, one-step, coordination off (embedded)" &
wait
for f in "$task" "$task-nocoord"; do
  python scripts/half_adapter.py "$out/$f.safetensors" "$(wdir "$f")/$f.safetensors"
done
