"""Tiles: the grid covers the frame, blending is exact where tiles agree, and a tiled frame shows no seam."""

from __future__ import annotations

import numpy as np
import torch

from engine.score import score
from engine.stylize import Settings
from engine.targets import StyleBank
from render.images import from_uint8, load_image, to_uint8
from render.job import picture_reference, run_job
from render.tiled import FrameWork, run_frame, serially
from render.tiles import Blender, Mosaic, Tile, feather, grid, grid_offset, overlaps


def test_grid_covers_the_frame_for_any_offset_and_blends_exactly():
    for offset in [(0, 0), (37, 411), (447, 447)]:
        tiles = grid(1080, 1920, 512, 64, offset)
        blender = Blender(1080, 1920, 64)
        for t in tiles:
            assert max(t.size) <= 512 and min(t.size) > 64
            blender.add(t, torch.full((1, 3, *t.size), 0.25))
        assert torch.allclose(blender.result(), torch.tensor(0.25))


def test_grid_moves_every_frame():
    offsets = {grid_offset(3, frame, 512, 64) for frame in range(20)}
    assert len(offsets) > 15


def test_frames_within_the_tile_size_are_one_job():
    work = FrameWork(0, (96, 128), Settings(iterations=3), None, None, (1.0,), seed=0, tile=512)
    assert len(work.rounds) == 1 and len(work.jobs(0, None)[0]) == 1


def test_large_frame_goes_coarse_to_fine_with_tiled_fine_scales():
    work = FrameWork(0, (1080, 1920), Settings(iterations=10), None, None, (1.0,), seed=0, tile=512)
    assert [r.tiled for r in work.rounds] == [False] + [True] * (len(work.rounds) - 1)
    assert max(work.rounds[0].size) <= 512 and work.rounds[-1].size == (1080, 1920)
    jobs, start, _ = work.jobs(len(work.rounds) - 1, torch.zeros(1, 3, 100, 100))
    assert start.shape[-2:] == (1080, 1920)
    assert all(max(j.size) <= 512 and j.canvas == 1920 for j in jobs)
    assert len({j.seed for j in jobs}) == len(jobs)


def seam_ratio(out: torch.Tensor, tiles: list) -> float:
    """Gradient energy across the lines where tiles begin or end, over the energy elsewhere (worst axis)."""
    ratios = []
    for axis, n in ((3, out.shape[3]), (2, out.shape[2])):
        diff = (out.narrow(axis, 1, n - 1) - out.narrow(axis, 0, n - 1)).abs()
        energy = diff.mean(dim=[d for d in range(4) if d != axis])
        lo, hi = ("x0", "x1") if axis == 3 else ("y0", "y1")
        edges = {getattr(t, lo) - 1 for t in tiles if getattr(t, lo) > 0}
        edges |= {getattr(t, hi) - 1 for t in tiles if getattr(t, hi) < n}
        inner = [i for i in range(n - 1) if all(abs(i - e) > 2 for e in edges)]
        ratios.append(float(energy[sorted(edges)].mean() / energy[inner].mean()))
    return max(ratios)


def test_tiled_frame_matches_untiled_statistics_and_shows_no_seam(vgg):
    content = torch.nn.functional.interpolate(load_image("builtin:chelsea"), size=(128, 192), mode="area")
    style = load_image("builtin:ihc")
    bank = StyleBank([style])
    settings = Settings(iterations=15, content_weight=1, min_size=192)  # one scale, like a later frame

    def render(init, tile: int, overlap: int = 32):
        work = FrameWork(1, (128, 192), settings, init, content, (1.0,), seed=4, tile=tile, overlap=overlap)
        out = run_frame(work, serially(lambda job, start, c: run_job(job, start, c, vgg, bank)))
        return out, [job.region for job in work.jobs(0, init)[0]]

    start, _ = render(content, 512)  # a stylised frame, as a later frame's warped start is
    whole, _ = render(start, 512)
    tiled, tiles = render(start, 96)
    hard, hard_tiles = render(start, 96, overlap=0)
    assert len(tiles) >= 4
    s_whole, s_tiled = score(whole, content, style, vgg, 192), score(tiled, content, style, vgg, 192)
    # Tiles of 36-96 px see much less of the picture than real 512-px tiles do. Sharing the picture's
    # statistics they stay within 1.3x of the untiled frame here (1.14x style, content closer); each
    # matching the whole style alone, 1.7x.
    assert s_tiled["style"] < 1.3 * s_whole["style"] and s_tiled["content"] < 1.3 * s_whole["content"]
    assert seam_ratio(tiled, tiles) <= 1.2
    assert seam_ratio(hard, hard_tiles) > 1.2  # the measure does see seams where tiles are not feathered


def test_a_rounds_tiles_share_the_start_canvas_statistics_and_pipelined_tiles_do_not(tiny):
    work = FrameWork(2, (200, 300), Settings(iterations=2, min_size=300), None, None, (1.0,), seed=1,
                     tile=96, overlap=16)  # fmt: skip
    start = torch.rand(1, 3, 200, 300)
    jobs, canvas, _ = work.jobs(0, start)
    assert all(job.shared for job in jobs) and canvas.shape[-2:] == (200, 300)
    assert not any(job.shared for job in work.tile_jobs(0))  # a pipelined tile gets a window only
    on_grid = to_uint8(start)
    settings = jobs[0].settings
    here = picture_reference(from_uint8(on_grid), settings, tiny, "cpu")  # in process: a float canvas
    there = picture_reference(on_grid, settings, tiny, "cpu")  # through Ray: the uint8 array
    assert here.keys() == there.keys() and all(torch.allclose(here[n], there[n], atol=1e-6) for n in here)
    assert picture_reference(on_grid.copy(), settings, tiny, "cpu") is there  # measured once
    masked = np.concatenate([on_grid, np.full((200, 300, 1), 255, np.uint8)], axis=2)
    assert picture_reference(masked, settings, tiny, "cpu") is there  # a temporal loss's 4th channel
    assert picture_reference(255 - on_grid, settings, tiny, "cpu") is not there


def test_a_mosaic_is_final_cell_by_cell_and_equals_the_whole_blend():
    work = FrameWork(3, (300, 200), Settings(iterations=2, min_size=300), None, None, (1.0,), seed=1,
                     tile=96, overlap=16)  # fmt: skip
    g = torch.Generator().manual_seed(0)
    results = [(job.region, (torch.rand(*job.region.size, 3, generator=g) * 255).byte().numpy())
               for job in work.tile_jobs(0)]  # fmt: skip
    mosaic = Mosaic(dict(enumerate(t for t, _ in results)), 300, 200, 16)
    window = Tile(90, 50, 170, 130)
    needed = [i for i, (t, _) in enumerate(results) if overlaps(t, window)]
    for i in reversed(range(len(results))):  # out of order, as results come back
        assert mosaic.ready(window) == all(j > i for j in needed)
        mosaic.add(i, results[i][1])
    assert mosaic.ready(window)
    whole = to_uint8(work.blend(0, results))
    assert (mosaic.pixels == whole).all()
    assert (mosaic.window(window) == whole[window.y0 : window.y1, window.x0 : window.x1]).all()


def test_feather_weights_are_shared_but_never_changed():
    tile = grid(300, 200, 96, 16, (5, 7))[4]
    first = feather(tile, 300, 200, 16).clone()
    blender = Blender(300, 200, 16, window=tile)
    blender.add(tile, torch.rand(1, 3, *tile.size))
    blender.result()
    assert feather(tile, 300, 200, 16) is feather(tile, 300, 200, 16)  # kept: the driver reuses it
    assert torch.equal(feather(tile, 300, 200, 16), first)
    big = Tile(0, 0, 1100, 1000)  # over a megapixel: computed afresh, not kept
    assert feather(big, 2000, 2000, 16) is not feather(big, 2000, 2000, 16)
