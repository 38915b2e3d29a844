"""Warp maths: identity, pure zoom about the centre, rotation round trip, the reveal mask."""

from __future__ import annotations

import torch

from render.frames import ShotCamera, WarpedStart
from render.images import from_uint8, to_uint8
from render.plan import FramePlan
from render.warp import Camera, source_region, warp
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


def _plan(camera: Camera, content: str = "feedback") -> FramePlan:
    return FramePlan(5, 0, 5, (1.0,), camera, 4, content, 1.0, 1.0, 0.0, temporal_weight=10.0)


def test_a_tile_warped_from_its_window_equals_its_part_of_the_whole_frame_warp():
    size = (60, 80)
    previous = from_uint8(to_uint8(smooth_image(1, size)))  # as written to disk
    camera = ShotCamera(size, smooth_image(2, size), "reflection", anchor=0.2)
    for cam in (Camera(zoom=1.1, angle=7, translate_x=3), Camera(zoom=0.9, angle=-5, translate_y=-4)):
        plan = _plan(cam)
        matrices = camera.step(plan)
        whole = camera.inputs(plan, matrices, previous)
        for region in ((0, 0, 30, 40), (25, 35, 60, 80), (10, 0, 50, 17)):
            y0, x0, y1, x1 = src = source_region(matrices[0], region, size)
            window = to_uint8(previous[..., y0:y1, x0:x1])
            tile = WarpedStart(plan, matrices, window, src[:2], region).inputs(camera.for_workers("feedback"))
            crop = (..., slice(region[0], region[2]), slice(region[1], region[3]))
            assert torch.allclose(tile.init, whole.init[crop], atol=1e-6)
            assert torch.allclose(tile.content, whole.content[crop], atol=1e-6)
            assert torch.equal(tile.mask, whole.mask[crop])


def test_workers_get_the_start_image_only_where_later_frames_read_it():
    start = smooth_image(2, (20, 30))
    assert ShotCamera((20, 30), start, "reflection").for_workers("feedback").start is None
    assert ShotCamera((20, 30), start, "reflection").for_workers("fixed").start is start
    assert ShotCamera((20, 30), start, "reflection", anchor=0.1).for_workers("feedback").start is start
    assert ShotCamera((20, 30), start, "content").for_workers("feedback").start is start
