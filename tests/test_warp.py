"""Warp maths: identity, pure zoom about the centre, rotation round trip, the reveal mask."""

from __future__ import annotations

import torch

from render.warp import Camera, warp
from tests.conftest import smooth_image


def test_identity_is_exact():
    x = smooth_image(0, (20, 30))
    out, mask = warp(x, Camera().matrix(30, 20))
    assert torch.allclose(out, x, atol=1e-5)
    assert mask.min() == 1


def test_zoom_scales_distances_from_the_centre():
    m = Camera(zoom=2.0).matrix(40, 20)
    centre = torch.tensor([20.0, 10.0, 1.0], dtype=torch.float64)
    assert torch.allclose(m @ centre, centre)
    # An output pixel 8 px right of the centre samples the source 4 px right of it.
    assert torch.allclose(
        m @ torch.tensor([28.0, 10.0, 1.0], dtype=torch.float64),
        torch.tensor([24.0, 10, 1], dtype=torch.float64),
    )


def test_zoom_out_reveals_the_border_and_the_mask_says_where():
    _, mask = warp(smooth_image(0, (20, 40)), Camera(zoom=0.5).matrix(40, 20))
    assert abs(float(mask.mean()) - 0.25) < 0.05
    assert mask[0, 0, 10, 20] == 1 and mask[0, 0, 0, 0] == 0


def test_rotation_round_trip():
    x = smooth_image(1, (40, 40))
    turn, back = Camera(angle=20).matrix(40, 40), Camera(angle=-20).matrix(40, 40)
    assert torch.allclose(turn @ back, torch.eye(3, dtype=torch.float64), atol=1e-12)
    once, _ = warp(x, turn)
    twice, _ = warp(once, back)
    inner = (..., slice(12, 28), slice(12, 28))
    assert (twice[inner] - x[inner]).abs().mean() < 0.01


def test_translation_moves_the_picture_right_and_down():
    x = torch.zeros(1, 3, 10, 10)
    x[..., 2, 2] = 1
    out, mask = warp(x, Camera(translate_x=3, translate_y=1).matrix(10, 10))
    assert out[0, 0, 3, 5] == 1
    assert (out * mask)[0, 0].sum() == 1  # inside the mask the impulse is only where it moved to
    assert mask[0, 0, :, :3].sum() == 0 and mask[0, 0, :1].sum() == 0 and mask[0, 0, 1:, 3:].min() == 1
