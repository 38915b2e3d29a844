"""Does a tiled movie look like the whole one? Render one scene whole and in tiles, compare; print JSON.

    python bench/tiles.py --kind zoom --frames 48            # 384x256, tiles of 160 with 32 overlap
    python bench/tiles.py --kind drift --stylereel "/path/to/old/stylereel"   # another build's CLI

Both renders go through the CLI with the same workers. Reported per movie: `stylereel metrics`'s
warp error and style (against the scene's first style), and per frame the relative relu4_2
distance of the tiled frame to the whole movie's frame t, ‖F(tiled) − F(whole)‖ / ‖F(whole)‖.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from render import metrics as m  # noqa: E402
from render.images import from_uint8  # noqa: E402
from render.network import load_network  # noqa: E402

# What both scenes share: the output with its tiles, and the start (30 iterations from the astronaut).
SHARED = """
seed = {seed}
[output]
width = {width}
height = {height}
fps = 12
frames = {frames}
tile = {tile}
tile_overlap = {overlap}
[start]
content = "builtin:astronaut"
iterations = 30
"""

ZOOM = (
    SHARED
    + """
[styles]
ihc = "builtin:ihc"
[frames]
iterations = 8
[camera]
zoom = 1.02
angle = 0.3
"""
)

DRIFT = (
    SHARED
    + """
[styles]
ihc = "builtin:ihc"
hubble = "builtin:hubble_deep_field"
coffee = "builtin:coffee"
[frames]
iterations = 8
content = "feedback"
content_weight = 5
style_weight = 100
[drift]
styles = ["ihc", "hubble", "coffee"]
frames_per_style = {per_style}
crossfade = {crossfade}
"""
)


def render(cli: list[str], scene: Path, workers: int) -> tuple[Path, float]:
    began = time.perf_counter()
    out = scene.resolve().with_suffix(".render")
    command = [*cli, "render", str(scene.resolve()), "-o", str(out), "--workers", str(workers), "--fresh"]
    # Run where no checkout lies beside it: another build's CLI (and its Ray workers) must import its
    # own packages, not this folder's.
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=out.parent)
    return out, time.perf_counter() - began


def summary(folder: Path, style: str) -> dict:
    """`stylereel metrics --style` of this checkout, whichever CLI rendered the folder."""
    command = [sys.executable, "-m", "cluster.cli", "metrics", str(folder), "--style", style]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    report = json.loads(done.stdout)
    return {k: v for k, v in report.items() if k in ("warp_error", "style", "flicker")}


def feature_distance(whole: Path, tiled: Path) -> list[float]:
    net = load_network()
    out = []
    for (a, _), (b, _) in zip(m.rendered_frames(whole), m.rendered_frames(tiled), strict=True):
        with torch.no_grad():
            fa, fb = (net(from_uint8(x), ["relu4_2"])["relu4_2"] for x in (a, b))
        out.append(round(float((fa - fb).norm() / fa.norm()), 4))
    return out


def distances(whole: Path, other: Path) -> dict:
    distance = feature_distance(whole, other)
    return {"per_frame": distance, "first": distance[0], "last": distance[-1],
            "mean": round(float(np.mean(distance)), 4)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kind", choices=["zoom", "drift"], default="zoom")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--tile", type=int, default=160)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--stylereel", default=f"{sys.executable} -m cluster.cli", help="the CLI to run")
    p.add_argument("--out", type=Path, default=Path("bench-tiles"))
    p.add_argument("--reuse", action="store_true", help="keep existing whole and tiled renders")
    p.add_argument("--tag", default="", help="appended to the tiled render's name (another build's)")
    p.add_argument("--reference-seed", type=int, default=None,
                   help="also render the whole movie with this seed, as a reference")  # fmt: skip
    args = p.parse_args()
    cli = shlex.split(args.stylereel)
    args.out.mkdir(parents=True, exist_ok=True)
    template = ZOOM if args.kind == "zoom" else DRIFT
    values = {"seed": 3, "width": args.width, "height": args.height, "frames": args.frames,
              "overlap": args.overlap,
              "per_style": max(6, args.frames // 3), "crossfade": max(1, args.frames // 6)}  # fmt: skip
    result: dict = {"kind": args.kind, "frames": args.frames, "size": [args.width, args.height],
                    "tile": args.tile,
                    "overlap": args.overlap, "workers": args.workers, "cli": args.stylereel}  # fmt: skip
    folders = {}
    for name, tile in (("whole", max(args.width, args.height)), ("tiled", args.tile)):
        scene = args.out / f"{args.kind}-{name}{args.tag if name == 'tiled' else ''}.toml"
        scene.write_text(template.format(tile=tile, **values))
        if args.reuse and (scene.with_suffix(".render") / "manifest.json").exists():
            folders[name] = scene.with_suffix(".render")
            continue
        folders[name], seconds = render(cli, scene, args.workers)
        result[f"{name}_seconds"] = round(seconds, 1)
    for name, folder in folders.items():
        result[name] = summary(folder, "builtin:ihc")
    result["ratio"] = {k: round(result["tiled"][k] / result["whole"][k], 3) for k in ("warp_error", "style")}
    result["relu4_2_distance"] = distances(folders["whole"], folders["tiled"])
    if args.reference_seed is not None:
        # A feedback loop carries any difference at frame 0 forward, so the tiled movie's distance is
        # read against two whole movies that differ only in their seed.
        scene = args.out / f"{args.kind}-whole-seed{args.reference_seed}.toml"
        whole = max(args.width, args.height)
        scene.write_text(template.format(tile=whole, **{**values, "seed": args.reference_seed}))
        reference, seconds = render(cli, scene, args.workers)
        result["reference_seconds"] = round(seconds, 1)
        result["reference"] = summary(reference, "builtin:ihc")
        result["reference_relu4_2_distance"] = distances(folders["whole"], reference)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
