"""Movie quality over long feedback loops: temporal loss, cadence and drift, measured. Prints JSON.

Renders a zoom scene and a drift scene (small, CPU) several ways and runs
`stylereel metrics` on each: warping error, luminance and saturation drift
(last 50 frames against the first 50) and `style` per frame against the
frame's leading style.

- temporal: warping error with the temporal loss <= 50 % of warped-init-only,
  style within 10 %;
- drift: luminance and saturation of the last 50 frames within 5 % of the
  first 50, with the defaults;
- cadence 3: compute time <= 40 % of cadence 1, warping error <= 1.2x.

Usage: python bench/movie.py [--frames 300] [--size 96x64] [--weights 0,300,1000] [--angle 0.5]
       [--only zoom_defaults] [--set color_coherence=0.5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENE = """
seed = 1
[output]
width = {width}
height = {height}
frames = {frames}
[styles]
coffee = "builtin:coffee"
ihc = "builtin:ihc"
[start]
content = "builtin:astronaut"
iterations = {start_iterations}
[frames]
{frames_keys}
[camera]
{camera}
"""
ZOOM = {"style": 'style = "ihc"'}  # its camera: zoom = 1.02, angle = --angle
# Two styles, 25 frames each: frames t and t + 250 are at the same point of the rotation, so the
# first and last 50 frames have the same style mix and any difference between them is drift.
DRIFT = {
    "camera": "zoom = 1.01",
    "style": '[drift]\nstyles = ["ihc", "coffee"]\nframes_per_style = 25\ncrossfade = 8',
}


def render(
    tmp: Path,
    name: str,
    kind: dict,
    frames: int,
    size: tuple[int, int],
    keys: dict,
    plots: Path | None = None,
    start_iterations: int = 30,
) -> dict:
    from engine.score import score
    from render.images import from_uint8, load_image
    from render.metrics import measure, plot, rendered_frames, summary
    from render.network import load_network
    from render.plan import plan_scene
    from render.scene import load_scene

    lines = [f"{k} = {v}" for k, v in keys.items()]
    drift = kind["style"].startswith("[drift]")
    text = SCENE.format(width=size[0], height=size[1], frames=frames, camera=kind["camera"],
                        start_iterations=start_iterations,
                        frames_keys="\n".join(lines + ([] if drift else [kind["style"]])))  # fmt: skip
    if drift:
        text += kind["style"] + "\n"
    path = tmp / f"{name}.toml"
    path.write_text(text)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "render", str(path)], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    seconds = time.perf_counter() - start
    scene = load_scene(path)
    plans = plan_scene(scene)
    net = load_network()
    styles = [load_image(s) for s in scene.styles.values()]
    lead = iter([max(range(len(p.style_weights)), key=p.style_weights.__getitem__) for p in plans])

    def style_of(pixels):  # against the frame's leading style
        return score(from_uint8(pixels), None, styles[next(lead)], net, long_side=max(size))["style"]

    out = tmp / f"{name}.render"
    manifest = json.loads((out / "manifest.json").read_text())
    compute = sum(r.get("job_seconds", 0) for r in manifest["frames"].values())
    figures = measure(rendered_frames(out), True, style_of)
    if plots is not None:
        plot(figures, plots / f"metrics_{name}.png", f"{name}: {frames} frames at {size[0]}x{size[1]}")
    result = summary(figures)
    return {"keys": keys, "wall_s": round(seconds, 1), "job_seconds": round(compute, 1), **result}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="96x64")
    parser.add_argument("--weights", default="", help="temporal weights to sweep on the zoom scene instead")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a [frames] key for every run, as TOML (repeatable): --set color_coherence=0.5",
    )  # fmt: skip
    parser.add_argument(
        "--angle", type=float, default=0.5,
        help="the zoom scene's rotation per frame: the loops are chaotic, another camera shows the spread",
    )  # fmt: skip
    parser.add_argument(
        "--start-iterations", type=int, default=30,
        help="frame 0's iterations: the temporal loss holds what frame 0 reached",
    )  # fmt: skip
    parser.add_argument("--plots", type=Path, help="write each run's metrics plot into this folder")
    parser.add_argument(
        "--only", default="", help="comma list of runs: zoom, zoom_temporal, zoom_cadence3, ..."
    )
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    result: dict = {"date": datetime.date.today().isoformat(), "machine": f"{os.cpu_count()} cpus, CPU only",
                    "frames": args.frames, "size": args.size, "zoom_angle": args.angle,
                    "start_iterations": args.start_iterations}  # fmt: skip
    from render.scene import Frames

    default_weight = Frames().temporal_weight
    zoom = ZOOM | {"camera": f"zoom = 1.02\nangle = {args.angle}"}
    runs = {
        "zoom_init_only": (zoom, {"temporal_weight": 0}),
        "zoom_defaults": (zoom, {}),
        "zoom_cadence3": (zoom, {"cadence": 3}),
        "drift_init_only": (DRIFT, {"temporal_weight": 0}),
        "drift_defaults": (DRIFT, {}),
    }
    if args.weights:
        runs = {f"zoom_w{w}": (zoom, {"temporal_weight": float(w)}) for w in args.weights.split(",")}
    if args.only:
        runs = {k: v for k, v in runs.items() if k in args.only.split(",")}
    extra = dict(item.split("=", 1) for item in args.set)
    runs = {name: (kind, extra | keys) for name, (kind, keys) in runs.items()}
    result["default_temporal_weight"] = default_weight
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, keys) in runs.items():
            result[name] = render(
                Path(tmp), name, kind, args.frames, size, keys, args.plots, args.start_iterations
            )
            print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
