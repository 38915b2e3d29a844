"""Engine benchmark: prints JSON.

1. Per-iteration time of `stylize` at 256 px against the bare VGG-19
   forward + backward to the deepest layer it uses, in the same run.
2. Where `pastiche` is installed and ../shared/images has the test pair:
   `stylereel still` (defaults) against `pastiche --num-steps 300`, both at
   256 px on tubingen + starry night, wall time and `score` for each.
3. On CUDA: the same per-iteration figures at 512 px, fp32 / bf16 (with the
   network as load_network gives it: deterministic cuDNN, channels_last), then
   cuDNN's fastest algorithms, with and without channels_last; and correctness:
   CUDA against the CPU (first loss, result after 20 L-BFGS evaluations) and
   whether two CUDA runs of the same job give the same pixels.

Usage: python bench/engine.py [--skip-pastiche] [--repeats N]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.score import score  # noqa: E402
from engine.stylize import STYLE_LAYERS, Settings, stylize  # noqa: E402
from engine.targets import StyleBank, StyleTargets  # noqa: E402
from render.images import load_image  # noqa: E402
from render.network import auto_precision, load_network  # noqa: E402

SHARED = ROOT.parent / "shared" / "images"
LAYERS = [*STYLE_LAYERS, "relu4_2"]


def _bare_step(net, x: torch.Tensor, precision: str) -> float:
    """One forward + input-gradient backward to relu5_1, nothing else."""
    x = x.detach().requires_grad_(True)
    t = time.perf_counter()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        feats = net(x, LAYERS)
    sum(f.float().sum() for f in feats.values()).backward()
    _sync(x)
    return time.perf_counter() - t


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize()


def _trimmed_mean(values: list[float]) -> float:
    """Mean of the middle half: the same robust statistic for both sides of a ratio."""
    values = sorted(values)
    middle = values[len(values) // 4 : len(values) - len(values) // 4]
    return sum(middle) / len(middle)


def per_iteration(net, size: int, precision: str, steps: int, device: str) -> dict:
    content = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    style = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    targets = StyleTargets(StyleBank([style]))
    settings = Settings(iterations=steps, min_size=size, precision=precision)  # one scale
    stamps: list[float] = []
    stylize(content, targets, settings, features=net, init=content.clone(),
            callback=lambda p: stamps.append(time.perf_counter()))  # fmt: skip
    engine = _trimmed_mean([b - a for a, b in itertools.pairwise(stamps)])
    bare_mean = _trimmed_mean([_bare_step(net, content, precision) for _ in range(steps)])
    return {
        "size": size,
        "precision": precision,
        "engine_s_per_iter": round(engine, 4),
        "bare_vgg_fwd_bwd_s": round(bare_mean, 4),
        "ratio": round(engine / bare_mean, 3),
    }


def cuda_checks(cpu_net, gpu_net) -> dict:
    """CUDA against the CPU on the same 64-px job, and CUDA against itself."""
    g = torch.Generator().manual_seed(2)
    content, style = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g)

    def run(net, device: str, precision: str) -> tuple[torch.Tensor, float]:
        losses: list[float] = []
        settings = Settings(iterations=20, min_size=64, precision=precision)
        out = stylize(content.to(device), StyleTargets(StyleBank([style.to(device)])), settings,
                      features=net, callback=lambda p: losses.append(p.loss))  # fmt: skip
        return out.cpu(), losses[0]

    ref, ref_loss = run(cpu_net, "cpu", "fp32")
    result: dict = {}
    for precision in ("fp32", "bf16"):
        (a, loss), (b, _) = run(gpu_net, "cuda", precision), run(gpu_net, "cuda", precision)
        result[precision] = {
            "first_loss_rel_to_cpu": abs(loss - ref_loss) / ref_loss,
            "result_rel_to_cpu": ((a - ref).norm() / ref.norm()).item(),
            "repeat_max_abs": (a - b).abs().max().item(),
            "repeat_uint8_equal": bool(torch.equal((a * 255).round(), (b * 255).round())),
            "nan": bool(a.isnan().any()),
        }
    return result


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def against_pastiche(net) -> dict | None:
    content, style = SHARED / "tubingen.jpg", SHARED / "starry_night.jpg"
    pastiche = shutil.which("pastiche")
    stylereel = shutil.which("stylereel")
    if not (pastiche and stylereel and content.is_file() and style.is_file()):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours.png", Path(tmp) / "pastiche.png"
        t_ours = _timed(
            [stylereel, "still", "-c", str(content), "-s", str(style), "-o", str(ours), "--size", "256"]
        )
        t_theirs = _timed(
            [
                pastiche,
                "--size",
                "256",
                "--num-steps",
                "300",
                "--seed",
                "0",
                "-c",
                str(content),
                "-s",
                str(style),
                "-o",
                str(theirs),
            ]
        )
        c, s = load_image(content), load_image(style)
        score_ours = score(load_image(ours), c, s, net, 256)
        score_theirs = score(load_image(theirs), c, s, net, 256)
    return {
        "pair": "tubingen + starry_night, 256 px",
        "stylereel_wall_s": round(t_ours, 1),
        "pastiche_300_wall_s": round(t_theirs, 1),
        "wall_ratio": round(t_ours / t_theirs, 3),
        "stylereel_score": {k: round(v, 4) for k, v in score_ours.items()},
        "pastiche_score": {k: round(v, 4) for k, v in score_theirs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-pastiche", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    net = load_network()
    result: dict = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus".strip(),
        "torch": torch.__version__,
        "default_precision_cpu": str(auto_precision("cpu")),
        "per_iteration_cpu": [per_iteration(net, 256, p, args.steps, "cpu") for p in ("fp32", "bf16")],
    }
    if not args.skip_pastiche:
        result["vs_pastiche"] = against_pastiche(net)
    if torch.cuda.is_available():
        gpu = load_network(device="cuda")
        result["gpu"] = torch.cuda.get_device_name()
        result["per_iteration_cuda"] = [
            per_iteration(gpu, 512, p, args.steps, "cuda") for p in ("fp32", "bf16")
        ]
        result["cuda_checks"] = cuda_checks(net, gpu)
        # What load_network's CUDA settings (deterministic cuDNN, channels_last) cost or gain.
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
        result["cuda_checks_cudnn_fastest"] = cuda_checks(net, gpu)
        result["per_iteration_cuda_cudnn_fastest"] = per_iteration(gpu, 512, "bf16", args.steps, "cuda")
        nchw = gpu.to(memory_format=torch.contiguous_format)
        result["per_iteration_cuda_cudnn_fastest_nchw"] = per_iteration(nchw, 512, "bf16", args.steps, "cuda")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
