"""A fresh process's first job: what a Ray worker pays once, before its jobs run at their pace. Prints JSON.

Each figure is a fresh interpreter, as a worker is (median of `--repeats`, alternated):
- `import_torch`: `import torch`;
- `import_dynamo`: `import torch._dynamo` after torch, what torch.optim's first use would cost without
  `engine.stylize._optimizers_without_dynamo`;
- `first_job` and `second_job`: one `stylize` of `--iterations` L-BFGS evaluations at `--size` on VGG-19,
  then the same again, and whether the first imported torch._dynamo.

Usage: python bench/first_job.py [--size 48x32] [--iterations 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_TORCH = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
IMPORT_DYNAMO = (
    "import time, torch; t = time.perf_counter(); import torch._dynamo; print(time.perf_counter() - t)"
)
JOBS = """
import json, sys, time, torch
from engine.stylize import Settings, stylize
from engine.targets import StyleBank, StyleTargets, resize_long_side
from render.images import load_image
from render.network import load_network
w, h, n = {w}, {h}, {n}
net = load_network()
content = torch.nn.functional.interpolate(load_image("builtin:astronaut"), size=(h, w), mode="area")
targets = StyleTargets(StyleBank([resize_long_side(load_image("builtin:coffee"), max(w, h))]))
seconds = []
for _ in range(2):
    t = time.perf_counter()
    stylize(content, targets, Settings(iterations=n, min_size=max(w, h)), features=net, init=content)
    seconds.append(time.perf_counter() - t)
print(json.dumps([*seconds, "torch._dynamo" in sys.modules]))
"""


def _run(code: str) -> str:
    """Run `code` in a fresh interpreter in the project's root; its last line of output."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="48x32", help="WxH of the jobs")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    w, h = map(int, args.size.split("x"))
    jobs = JOBS.format(w=w, h=h, n=args.iterations)
    torch_s, dynamo_s, first, second, dynamo_imported = [], [], [], [], set()
    for _ in range(args.repeats):
        torch_s.append(float(_run(IMPORT_TORCH)))
        dynamo_s.append(float(_run(IMPORT_DYNAMO)))
        a, b, imported = json.loads(_run(jobs))
        first.append(a)
        second.append(b)
        dynamo_imported.add(imported)
    print(json.dumps({
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "size": args.size, "iterations": args.iterations, "repeats": args.repeats,
        "import_torch_s": round(statistics.median(torch_s), 3),
        "import_dynamo_s": round(statistics.median(dynamo_s), 3),
        "first_job_s": round(statistics.median(first), 3),
        "second_job_s": round(statistics.median(second), 3),
        "first_job_imported_dynamo": sorted(dynamo_imported),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
