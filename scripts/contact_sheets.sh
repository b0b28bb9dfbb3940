#!/usr/bin/env bash
# The contact sheets of docs/embedded-model.md: each task command on the bundled examples (scripts/make_examples.py)
# with the shipped adapters, tiled into docs/<task>_sheet.jpg. Outputs go to runs/sheets/ (overwritten).
set -euo pipefail
cd "$(dirname "$0")/.."
o=runs/sheets
mkdir -p "$o" docs
tile() { python scripts/tile.py "$@"; }

teamwork intrinsics examples/scene.png -o "$o/intrinsics" --overwrite
i="$o/intrinsics/scene"
tile -o docs/intrinsics_sheet.jpg --columns 5 photo=examples/scene.png "albedo=${i}_albedo.png" \
  "inverse shading=${i}_inverseshading.png" "residual=${i}_residual.png" "normals=${i}_normals.png" \
  "depth=${i}_depth.png" "roughness=${i}_roughness.png" "metallic=${i}_metallic.png" \
  "diffuse=${i}_diffuse.png" "specular=${i}_specular.png"

teamwork inpaint examples/scene.png --mask examples/scene_mask.png -o "$o/inpaint" --overwrite
teamwork inpaint --maps examples/material --mask examples/material_mask.png -o "$o/inpaint-material" --overwrite
tile -o docs/inpaint_sheet.jpg --columns 3 image=examples/scene.png mask=examples/scene_mask.png \
  "filled=$o/inpaint/scene_image.png"
m=$(ls "$o/inpaint-material" | sed -n 's/_diffuse\.png$//p' | head -1)
tile -o docs/inpaint_material_sheet.jpg --columns 5 mask=examples/material_mask.png \
  diffuse=examples/material/diffuse.png specular=examples/material/specular.png \
  roughness=examples/material/roughness.png normals=examples/material/normals.png \
  "filled mask=examples/material_mask.png" "filled diffuse=$o/inpaint-material/${m}_diffuse.png" \
  "filled specular=$o/inpaint-material/${m}_specular.png" "filled roughness=$o/inpaint-material/${m}_roughness.png" \
  "filled normals=$o/inpaint-material/${m}_normals.png"

b=examples/buffers
teamwork shade --albedo $b/albedo.png --normals $b/normals.png --roughness $b/roughness.png \
  --metallic $b/metallic.png --depth $b/depth.png --basecolor $b/basecolor.png -o "$o/shade.png" --overwrite
tile -o docs/shade_sheet.jpg --columns 8 albedo=$b/albedo.png normals=$b/normals.png roughness=$b/roughness.png \
  metallic=$b/metallic.png depth=$b/depth.png basecolor=$b/basecolor.png "teamwork shade=$o/shade.png" \
  "true render=$b/truth_image.png"

teamwork synthesize -n 4 --size 128 --seed 1 -o "$o/synthesize" --overwrite
args=()
for k in 000 001 002 003; do
  for c in diffuse specular roughness normals image; do args+=("$k $c=$o/synthesize/material_${k}_$c.png"); done
done
tile -o docs/synthesize_sheet.jpg --columns 5 "${args[@]}"
