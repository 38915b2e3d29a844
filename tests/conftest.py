from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.tiny import TinyFeatures

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"

# A scene that renders in seconds (48x32, a slow zoom): TINY_SCENE.format(frames=N, iterations=K).
TINY_SCENE = """
seed = 5
[output]
width = 48
height = 32
fps = 12
frames = {frames}
[styles]
ihc = "builtin:ihc"
[start]
content = "builtin:astronaut"
iterations = 2
[frames]
iterations = {iterations}
[camera]
zoom = 1.04
"""


@pytest.fixture
def tiny() -> TinyFeatures:
    return TinyFeatures()


def smooth_image(seed: int, size: tuple[int, int] = (32, 40)) -> torch.Tensor:
    """A (1, 3, H, W) image with some structure: upsampled seeded noise."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand((1, 3, size[0] // 4, size[1] // 4), generator=g)
    return torch.nn.functional.interpolate(small, size=size, mode="bilinear", align_corners=False)


@pytest.fixture(scope="session")
def vgg():
    from render.network import load_network

    return load_network()
