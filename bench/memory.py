"""Peak memory of an 8K (7680x4320) render on the CPU, as a still and as a one-frame scene: prints JSON.

The resident memory of the command and all its descendants (the Ray head,
raylet and workers included) is summed every 0.2 s; the peak of that sum is
reported. Target: under 4 GB, because memory per job depends on the tile
size, not on the frame size.

With --stand-in the scene's worker is bench/cluster.py's SleepWorker: the
driver, Ray and the object store do their real work in a minute, which is
what to watch when changing the driver.

Usage: python bench/memory.py [--iterations N] [--skip-scene] [--skip-still] [--stand-in]
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
WIDTH, HEIGHT = 7680, 4320


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _memory_of_tree(root: int) -> dict[int, tuple[int, int, str]]:
    """pid -> (RSS, PSS, command line) of `root` and all its descendants. PSS splits shared pages
    (Ray's object store, mapped libraries) between the processes that map them, so PSS sums to
    what the processes together hold; summed RSS counts shared pages once per process."""
    tree, out, stack = _children(), {}, [root]
    while stack:
        pid = stack.pop()
        stack += tree.get(pid, [])
        try:
            fields = {}
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
                key, value = line.split(":", 1)
                fields[key] = int(value.split()[0]) * 1024
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            out[pid] = (fields.get("Rss", 0), fields.get("Pss", 0), cmdline)
        except (OSError, ValueError):
            pass
    return out


def peak_memory(cmd: list[str]) -> dict:
    """Run `cmd`; peaks of the summed RSS and PSS of its process tree, and of one worker's RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rss = pss = worker = worker_pss = driver_pss = 0
    while proc.poll() is None:
        tree = _memory_of_tree(proc.pid)
        driver_pss = max(driver_pss, tree.get(proc.pid, (0, 0, ""))[1])
        rss = max(rss, sum(r for r, _, _ in tree.values()))
        pss = max(pss, sum(p for _, p, _ in tree.values()))
        worker = max([worker] + [r for r, _, c in tree.values() if "FrameWorker" in c])
        worker_pss = max([worker_pss] + [p for _, p, c in tree.values() if "FrameWorker" in c])
        time.sleep(0.2)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    gb = lambda n: round(n / 2**30, 3)  # noqa: E731
    result = {"peak_rss_gb": gb(rss), "peak_pss_gb": gb(pss), "peak_driver_pss_gb": gb(driver_pss),
              "wall_s": round(time.perf_counter() - start, 1)}  # fmt: skip
    return result | (
        {"peak_worker_rss_gb": gb(worker), "peak_worker_pss_gb": gb(worker_pss)} if worker else {}
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--iterations", type=int, default=1, help="at the final scale (coarser scales get more)"
    )
    parser.add_argument("--skip-still", action="store_true")
    parser.add_argument("--skip-scene", action="store_true")
    parser.add_argument("--stand-in", action="store_true", help="the scene with stand-in workers")
    parser.add_argument("--render-with-stand-ins", metavar="SCENE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render_with_stand_ins:  # the child process that --stand-in measures
        return _render_with_stand_ins(Path(args.render_with_stand_ins))
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from render.images import builtin_images

    stylereel = [sys.executable, "-m", "cluster.cli"]
    result: dict = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cpus, CPU only",
        "size": f"{WIDTH}x{HEIGHT}",
        "tile": 512,
        "iterations_final_scale": args.iterations,
    }
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "rocket8k.png"
        Image.open(builtin_images()["rocket"]).convert("RGB").resize((WIDTH, HEIGHT), Image.BICUBIC).save(big)
        if not args.skip_still:
            out = Path(tmp) / "still.png"
            cmd = [*stylereel, "still", "-c", str(big), "-s", "builtin:ihc", "-o", str(out),
                   "--size", str(WIDTH), "--iterations", str(args.iterations)]  # fmt: skip
            result["still"] = peak_memory(cmd)
            # Said at once too, in case the scene runs past a time limit.
            print(json.dumps({"still": result["still"]}), file=sys.stderr, flush=True)
        if not args.skip_scene:
            scene = Path(tmp) / "one.toml"
            scene.write_text(
                f'[output]\nwidth = {WIDTH}\nheight = {HEIGHT}\nframes = 1\n[styles]\nihc = "builtin:ihc"\n'
                f'[start]\ncontent = "{big}"\niterations = {args.iterations}\n'
            )
            if args.stand_in:
                cmd = [sys.executable, __file__, "--render-with-stand-ins", str(scene)]
                result["one_frame_scene_stand_in_worker"] = peak_memory(cmd)
            else:
                result["one_frame_scene"] = peak_memory([*stylereel, "render", str(scene)])
    print(json.dumps(result, indent=2))


def _render_with_stand_ins(scene: Path) -> None:
    import importlib.util

    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("cluster_bench", ROOT / "bench" / "cluster.py")
    bench = importlib.util.module_from_spec(spec)  # not `import cluster`: that is the project's package
    spec.loader.exec_module(bench)
    bench.SleepWorker.seconds_per_megapixel = 0.05
    bench.init_ray(None)
    pool = bench.ray_pool(None, "cpu", None, bench.SleepWorker)
    bench.render_scene(bench.load_scene(scene), scene.with_suffix(".render"), pool=pool)


if __name__ == "__main__":
    main()
