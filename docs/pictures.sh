#!/usr/bin/env bash
# Makes the README's pictures from images that ship with scikit-image. Run from the repository root.
set -euo pipefail
out=docs/img
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
python - "$tmp" <<'PY'
import sys
from PIL import Image
from render.images import builtin_images
cat = Image.open(builtin_images()["chelsea"]).convert("RGB")  # 451x300
w, h = cat.size
cat.crop((0, 0, w // 2, h)).resize((w // 8, h // 4), Image.LANCZOS).save(f"{sys.argv[1]}/cat_left_lowres.png")
cat.crop((w // 2, 0, w, h)).save(f"{sys.argv[1]}/cat_right.png")
PY
stylereel still -c builtin:chelsea -s builtin:ihc -o "$out/transfer.jpg" --size 320
stylereel still -c builtin:chelsea -s builtin:ihc -o "$out/transfer_colors.jpg" --size 320 --preserve-colors
stylereel still -c builtin:astronaut -s builtin:ihc:0.5 -s builtin:hubble_deep_field:0.5 -o "$out/blend.jpg" --size 256 --content-weight 20
stylereel still --mode reconstruct -c builtin:astronaut -o "$out/reconstruct.jpg" --size 192 \
  --trajectory "$tmp/reconstruct.mp4" --save-every 10
stylereel still --mode superres -c "$tmp/cat_left_lowres.png" -s "$tmp/cat_right.png" -o "$out/superres.jpg" --size 224
cp "$tmp/cat_left_lowres.png" "$out/superres_input.png"
stylereel still --mode texture -s builtin:gravel -o "$out/texture.jpg" --size 256
python - "$tmp/reconstruct.mp4" "$out/reconstruct_path.jpg" <<'PY'
import sys, av
from PIL import Image
frames = [f.to_image() for f in av.open(sys.argv[1]).decode(video=0)]
pick = [frames[round(i * (len(frames) - 1) / 5)] for i in range(6)]
w, h = pick[0].size
strip = Image.new("RGB", (w * 6, h))
for i, im in enumerate(pick):
    strip.paste(im, (i * w, 0))
strip.resize((w * 6 // 2, h // 2)).save(sys.argv[2], quality=85)
PY

# Strips of every 8th frame of the bundled drift and zoom scenes.
for scene in drift zoom; do
  stylereel render "scenes/$scene.toml" --fresh  # today's code, not the frames of an earlier render
  python - "scenes/$scene.render/frames" "$out/$scene.jpg" <<'PY'
import sys
from pathlib import Path
from PIL import Image
frames = sorted(Path(sys.argv[1]).glob("*.png"))[::8][:9]
w, h = Image.open(frames[0]).size
strip = Image.new("RGB", (w * len(frames), h))
for i, f in enumerate(frames):
    strip.paste(Image.open(f).convert("RGB"), (i * w, 0))
strip.save(sys.argv[2], quality=85)
PY
done

# The animatic of the zoom scene: frames 0, 12, 24 and 36 of its preview, 4 px apart.
stylereel preview scenes/zoom.toml -o "$tmp/zoom.preview.mp4"
python - "$tmp/zoom.preview.mp4" "$out/preview_strip.jpg" <<'PY'
import sys
import av
from PIL import Image
with av.open(sys.argv[1]) as video:
    frames = [f.to_image() for i, f in enumerate(video.decode(video=0)) if i in (0, 12, 24, 36)]
w, h = frames[0].size
strip = Image.new("RGB", (4 * w + 12, h), "white")
for i, frame in enumerate(frames):
    strip.paste(frame, (i * (w + 4), 0))
strip.resize((900, round(h * 900 / strip.width)), Image.LANCZOS).save(sys.argv[2], quality=85)
PY

# The live page, on the drift render above replayed as live at frame 39.
python docs/serve_shot.py scenes/drift.render "$out/serve.jpg" 39

# Large pictures: localized style (texture from a photo, with and without) and a patch still.
stylereel still --mode texture -s builtin:astronaut -o "$out/texture_global.jpg" --size 320 \
  --patches --patch-size 80 --patch-rounds 6
stylereel still --mode texture -s builtin:astronaut -o "$out/texture_localized.jpg" --size 320 \
  --localized --patch-size 80 --patch-rounds 6
stylereel still -c builtin:chelsea -s builtin:ihc -o "$out/patches.jpg" --size 900 --patches --patch-rounds 6 --workers 2
python - "$out" <<'PY'
import sys
from PIL import Image
from render.images import builtin_images
out = sys.argv[1]
Image.open(builtin_images()["astronaut"]).convert("RGB").resize((320, 320), Image.LANCZOS).save(f"{out}/astronaut.jpg", quality=85)
big = Image.open(f"{out}/patches.jpg")
big.crop((300, 100, 620, 420)).save(f"{out}/patches_crop.jpg", quality=90)
PY

# tiles_joint.jpg is not remade here: its middle panel (tiles optimised each on its own, with the
# start canvas's statistics) needs the code before 2026-12-01 (commit 507b2dd). Its panels, left to
# right, are
#   stylereel still -c builtin:astronaut -s builtin:ihc -o OUT --size 384 --iterations 20 --seed 5 --tile T
# with T = 512 (untiled), T = 160 at 507b2dd, and T = 160 now, side by side with 10 px between.
# tiles_movie.jpg: frame 47 of `python bench/tiles.py --kind zoom --frames 48` (whole, the tiled render of
# commit 507b2dd through `--stylereel` and `--tag`, the tiled render now), side by side with 10 px between.
