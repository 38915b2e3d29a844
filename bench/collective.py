"""What one all-reduce costs between N processes on this machine (gloo over loopback): prints JSON.

A tiled round runs three all-reduces an evaluation (VGG-19's sums, the shared pixels' gradients,
L-BFGS's dots; `engine/joint.py`). bench/cluster.py's simulated cluster puts 8 worker processes on
this machine's cores; this measures what each all-reduce costs there by itself, at the round's
real sizes, so the cluster figure can be read: the time of one is latency (sequential ring steps
between processes that share the cores) more than bytes.

    python bench/collective.py [--processes 2,4,8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

# The round's buffers at 1080p in 384-px tiles: L-BFGS's dots, VGG-19's sums, the shared pixels.
SIZES = {"dots": 4 * 1024, "sums": 2_450_000, "shared": 7_800_000}


def member(rank: int, n: int, port: int, repeats: int, out: mp.Queue) -> None:
    os.nice(15)  # as Ray's workers run
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=n)
    seconds = {}
    for name, size in SIZES.items():
        t = torch.ones(size // 4)
        dist.all_reduce(t)  # warm the connections
        dist.barrier()
        began = time.perf_counter()
        for _ in range(repeats):
            dist.all_reduce(t)
        seconds[name] = (time.perf_counter() - began) / repeats
    if rank == 0:
        out.put(seconds)
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", default="2,4,8")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    context = mp.get_context("spawn")
    report = {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count(), "bytes": SIZES,
              "load_average": os.getloadavg()[0], "ms_per_all_reduce": {}}  # fmt: skip
    for n in (int(v) for v in args.processes.split(",")):
        out = context.Queue()
        port = free_port()
        procs = [context.Process(target=member, args=(r, n, port, args.repeats, out)) for r in range(n)]
        for p in procs:
            p.start()
        seconds = out.get(timeout=600)
        for p in procs:
            p.join()
        report["ms_per_all_reduce"][n] = {k: round(1000 * v, 1) for k, v in seconds.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
