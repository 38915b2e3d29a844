"""Stochastic multiscale patches and localized style, measured: prints JSON.

memory:   a 4096x4096 still in 512-px patches on local Ray; peak memory of the
          whole render and of one worker (bounded by the patch, not the canvas).
quality:  `style` (as `stylereel score` reports it) at several long sides of a
          1024-px output, patches against plain whole-image multi-scale, with
          the wall time of each (choose the settings so the times are close).
locality: texture from a photo with and without --localized; the style
          distance of each output half to each half of the style image.

Usage: python bench/patches.py [memory] [quality] [locality] [--workers N]
       [--patch-steps N] [--patch-rounds N]
       [--patch-scale-bias P] [--plain-iterations N]
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
SHARED = ROOT.parent / "shared" / "images"

from bench.memory import peak_memory  # noqa: E402

STYLEREEL = [sys.executable, "-m", "cluster.cli"]


def image(name: str, builtin: str) -> str:
    """A shared test image when present, else a builtin one."""
    found = sorted(SHARED.glob(f"{name}.*")) if SHARED.is_dir() else []
    return str(found[0]) if found else f"builtin:{builtin}"


def run(args: list[str], threads: int) -> float:
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run([*STYLEREEL, *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr)
    return round(time.perf_counter() - start, 1)


def memory(tmp: Path, args: argparse.Namespace) -> dict:
    """The same patches on a 1024 and a 4096 canvas: a worker's peak should not grow with the canvas."""
    return {f"{side}x{side}": memory_at(tmp, args.workers, side) for side in (1024, 4096)}


def memory_at(tmp: Path, workers: int, side: int) -> dict:
    from PIL import Image

    from engine.stylize import Settings
    from render.images import builtin_images
    from render.patches import PatchWork
    from render.scene import Patches

    patch, rounds, steps, seed = 512, 3, 2, 0
    content = tmp / f"rocket{side}.png"
    Image.open(builtin_images()["rocket"]).convert("RGB").resize((side, side), Image.BICUBIC).save(content)
    cmd = [*STYLEREEL, "still", "-c", str(content), "-s", "builtin:ihc", "-o", str(tmp / "big.png"),
           "--size", str(side), "--patches", "--patch-size", str(patch), "--patch-rounds", str(rounds),
           "--patch-steps", str(steps), "--workers", str(workers), "--seed", str(seed)]  # fmt: skip
    work = PatchWork(0, (side, side), Settings(), None, None, (1.0,), seed, Patches(patch, rounds, steps))
    drawn = [{"region": r.region[0], "patches": len(work.regions(i))} for i, r in enumerate(work.rounds)]
    setup = {
        "size": f"{side}x{side}",
        "patch_size": patch,
        "rounds": drawn,
        "steps": steps,
        "workers": workers,
    }
    return setup | peak_memory(cmd)


def style_at(out: Path, style: str, sides: list[int]) -> dict[int, float]:
    from engine.score import score
    from render.images import load_image
    from render.network import load_network

    net, picture, target = load_network(), load_image(str(out)), load_image(style)
    return {side: round(score(picture, None, target, net, long_side=side)["style"], 5) for side in sides}


def quality(tmp: Path, args: argparse.Namespace) -> dict:
    content, style = image("tubingen", "chelsea"), image("starry_night", "ihc")
    sides = [256, 512, 1024]
    threads = os.cpu_count() or 1
    common = ["-c", content, "-s", style, "--size", "1024"]
    patches = ["--patches", "--patch-size", "256", "--patch-rounds", str(args.patch_rounds), "--patch-steps",
               str(args.patch_steps), "--patch-scale-bias", str(args.patch_scale_bias)]  # fmt: skip
    plain_iterations, workers = args.plain_iterations, args.workers
    out: dict = {"content": content, "style": style, "output_long_side": 1024}
    seconds = run(["still", *common, *patches, "--workers", str(workers), "-o", str(tmp / "p.png")],
                  max(1, threads // workers))  # fmt: skip
    out["patches"] = {
        "args": " ".join(patches),
        "wall_s": seconds,
        "style": style_at(tmp / "p.png", style, sides),
    }
    if not plain_iterations:
        return out
    seconds = run(["still", *common, "--iterations", str(plain_iterations), "--tile", "1024",
                   "-o", str(tmp / "m.png")], threads)  # fmt: skip
    out["multiscale"] = {"args": f"--iterations {plain_iterations}", "wall_s": seconds,
                         "style": style_at(tmp / "m.png", style, sides)}  # fmt: skip
    return out


def locality(tmp: Path, args: argparse.Namespace) -> dict:
    import torch

    from engine.score import score
    from render.images import load_image
    from render.network import load_network

    style = "builtin:astronaut"  # flag and person on the left, shuttle and helmet on the right
    net, target = load_network(), load_image(style)
    halves = lambda x: (x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :])  # noqa: E731
    out: dict = {"style": style, "size": 256}
    for localized in (True, False):
        path = tmp / f"loc{localized}.png"
        command = ["still", "--mode", "texture", "-s", style, "--size", "256", "--patches", "--patch-size",
                   "64", "--patch-rounds", "6", "--patch-steps", "10", "-o", str(path)]  # fmt: skip
        run(command + (["--localized"] if localized else []), os.cpu_count() or 1)
        picture = load_image(str(path))
        distance = {}
        for side, part in zip(("left", "right"), halves(picture), strict=True):
            for target_side, target_part in zip(("left", "right"), halves(target), strict=True):
                with torch.no_grad():
                    d = score(part, None, target_part, net, long_side=128)["style"]
                distance[f"out_{side}_to_style_{target_side}"] = round(d, 5)
        out["localized" if localized else "global"] = distance
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("parts", nargs="*", default=["memory", "quality", "locality"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--patch-steps", type=int, default=10, help="quality: steps per patch")
    parser.add_argument("--patch-rounds", type=int, default=6, help="quality: patch rounds")
    parser.add_argument("--patch-scale-bias", type=float, default=0.5, help="quality: binomial p of scales")
    parser.add_argument(
        "--plain-iterations", type=int, default=20, help="quality: the multi-scale still's (0: skip it)"
    )
    args = parser.parse_args()
    result: dict = {"date": datetime.date.today().isoformat(), "machine": f"{os.cpu_count()} cpus, CPU only"}
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts:
            result[part] = {"memory": memory, "quality": quality, "locality": locality}[part](Path(tmp), args)
            print(json.dumps({part: result[part]}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
