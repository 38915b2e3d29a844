"""Movies that hold together: the temporal loss, cadence tweens, colour coherence, optical flow, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.stylize import Settings, stylize
from render.cadence import is_key, tweens
from render.coherence import LAG, Coherence, lab_stats, match
from render.flow import carried, warp_along
from render.images import from_uint8, to_uint8
from render.metrics import measure, summary
from render.warp import Camera, warp
from tests.conftest import smooth_image


def test_the_temporal_loss_holds_carried_pixels_and_frees_the_rest(tiny):
    content, target = smooth_image(1), smooth_image(2)
    mask = torch.zeros(1, 1, 32, 40)
    mask[..., :, :20] = 1  # the left half was carried over from the previous frame
    settings = Settings(content_weight=1.0, style_weight=0.0, iterations=30, min_size=40, optimizer="adam",
                        lr=0.05)  # fmt: skip

    def run(weight: float) -> torch.Tensor:
        return stylize(content, None, replace_weight(settings, weight), features=tiny, init=target,
                       temporal=(target, mask))  # fmt: skip

    free, held = run(0.0), run(1e4)
    left = lambda x: (x - target)[..., :20].abs().mean()  # noqa: E731
    assert left(held) < left(free) / 3  # held to the previous frame where it was carried over
    right = lambda x: (x - target)[..., 20:].abs().mean()  # noqa: E731
    assert right(held) > right(free) / 2  # and free to change where the camera revealed pixels


def replace_weight(settings: Settings, weight: float) -> Settings:
    from dataclasses import replace

    return replace(settings, temporal_weight=weight)


def test_keyframes_of_a_cadence():
    assert [t for t in range(8) if is_key(t, 8, 3)] == [0, 3, 6, 7]
    assert all(is_key(t, 5, 1) for t in range(5))


def test_tweens_follow_the_camera_exactly():
    # Keyframes three steps apart on a known camera: the frames between are the first keyframe
    # carried along the camera (up to resampling), away from the pixels the camera reveals.
    first = smooth_image(4, (64, 80))
    step = Camera(zoom=1.03, angle=2.0).matrix(80, 64)
    truth = [warp(first, torch.linalg.matrix_power(step, j))[0] for j in (1, 2, 3)]
    made = tweens(first, truth[-1], [step] * 3)
    assert len(made) == 2
    for image, expected in zip(made, truth, strict=False):
        inner = (..., slice(12, -12), slice(12, -12))
        assert (image - expected)[inner].abs().mean() < 0.01


def test_colour_coherence_moves_lab_statistics_to_the_reference():
    dark = to_uint8(smooth_image(5, (48, 48)) * 0.4)
    # Red and blue swapped: the reference's colours vary together unlike the frame's.
    reference = lab_stats(to_uint8(smooth_image(6, (48, 48))[:, [2, 1, 0]]))
    full, half = match(dark, reference, 1.0), match(dark, reference, 0.5)
    before, after = lab_stats(dark), lab_stats(full)
    spread, reference_spread = np.sqrt(np.diag(after[1])), np.sqrt(np.diag(reference[1]))
    assert np.abs(after[0] - reference[0]).max() < 1.5 and np.abs(spread - reference_spread).max() < 1.5
    # How the channels vary together too, not only each one's spread: the whole covariance matches
    # (0.8 % off; 29 % for a map that scales each channel alone).
    assert np.abs(after[1] - reference[1]).max() < 0.05 * np.abs(reference[1]).max()
    assert np.abs(before[1] - reference[1]).max() > 0.5 * np.abs(reference[1]).max()
    middle = lab_stats(half)[0][0]
    assert min(before[0][0], reference[0][0]) < middle < max(before[0][0], reference[0][0])
    assert np.array_equal(match(dark, reference, 0.0), dark)


def test_lagged_colour_coherence_stops_a_feedback_loop_from_darkening():
    # Each frame is the previous one 3 % darker (a biased loop); the map for frame t is fixed from
    # frame t - LAG, as it must be for pipelined frames.
    start = to_uint8(smooth_image(9, (32, 32)) * 0.6 + 0.2)
    reference = lab_stats(start)
    frames = {0: start}
    coherence = Coherence(0.25, "first", [], lambda t: frames[t])
    coherence.seen(0, start)
    free = start
    for t in range(1, 60):
        raw = (frames[t - 1].astype(np.float32) * 0.97).round().astype(np.uint8)
        colour = coherence.map_for(t, [1.0])
        frames[t] = colour(raw) if colour is not None else raw
        assert (colour is None) == (t < LAG)
        coherence.seen(t, frames[t])
        free = (free.astype(np.float32) * 0.97).round().astype(np.uint8)
    held, drifted = lab_stats(frames[59])[0][0], lab_stats(free)[0][0]
    assert abs(held - reference[0][0]) < 10 < abs(drifted - reference[0][0])


def test_optical_flow_finds_a_shift_and_masks_what_left_the_frame():
    image = to_uint8(smooth_image(7, (96, 128)))
    moved = np.roll(image, 3, axis=1)  # the scene moves 3 px right
    back, mask = carried(image, moved)
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(back[inner][..., 0] + 3).mean() < 0.5 and np.abs(back[inner][..., 1]).mean() < 0.5
    assert mask[inner].mean() > 0.9
    assert np.abs(warp_along(image, back).astype(int) - moved.astype(int))[inner].mean() < 4


def test_metrics_of_an_exact_camera_move_show_no_warp_error_and_no_drift():
    first = smooth_image(8, (64, 80))
    step = Camera(zoom=1.02).matrix(80, 64)
    frames, image = [], first
    for t in range(6):
        frames.append((to_uint8(image), step.numpy() if t else None))
        image = warp(image, step)[0]
    figures = measure(frames, known_motion=True)
    assert figures[0].warp_error is None and all(f.warp_error < 0.01 for f in figures[1:])
    flat = [(to_uint8(from_uint8(frames[0][0]) * 0 + 0.5), None)] * 4
    assert summary(measure(flat, known_motion=False))["luminance_drift"] == 0


VIDEO_SCENE = """
[styles]
coffee = "builtin:coffee"
[output]
width = 96
height = 64
frames = 6
[start]
video = "clip.mp4"
iterations = 3
[frames]
iterations = 3
temporal_weight = 1000
"""
TILES = "tile = 64\ntile_overlap = 16\n"  # in [output]: 96x64 frames in two tiles


def write_clip(path, frames: int = 6) -> None:
    """A camera panning 2 px per frame across a smooth picture."""
    from render.video import VideoWriter

    wide = smooth_image(3, (64, 160))
    writer = VideoWriter(path, 96, 64)
    for t in range(frames):
        writer.write(to_uint8(wide[..., :, 2 * t : 2 * t + 96]))
    writer.close()


@pytest.mark.slow
def test_a_video_input_scene_renders_with_the_temporal_loss_along_its_flow(tmp_path, renders_here):
    import json

    from tests.helpers import cli

    write_clip(tmp_path / "clip.mp4")
    scene = tmp_path / "v.toml"
    scene.write_text(VIDEO_SCENE)
    result = cli("render", str(scene))
    assert result.returncode == 0, result.stderr
    records = json.loads((tmp_path / "v.render" / "manifest.json").read_text())["frames"]
    assert len(records) == 6 and all(records[str(t)]["temporal"] > 0 for t in range(1, 6))
    assert "step" not in records["1"]  # no camera: motion came from the video's optical flow
    figures = json.loads(cli("metrics", str(tmp_path / "v.render")).stdout)
    assert 0 < figures["warp_error"] < 0.1

    # In tiles: a video frame's start canvas is made whole by the driver and carries the temporal loss's
    # mask as a 4th channel; its tiles optimise the whole frame's objective, temporal term included.
    scene.write_text(VIDEO_SCENE.replace("frames = 6", "frames = 3").replace("[start]", TILES + "[start]"))
    tiled = cli("render", str(scene), "--fresh")
    assert tiled.returncode == 0, tiled.stderr
    records = json.loads((tmp_path / "v.render" / "manifest.json").read_text())["frames"]
    assert all(records[str(t)]["temporal"] > 0 for t in (1, 2))

    scene.write_text(VIDEO_SCENE + "[camera]\nzoom = 1.1\n")
    refused = cli("render", str(scene), "--fresh")
    assert refused.returncode == 2 and "start.video: the video replaces camera" in refused.stderr
    scene.write_text(VIDEO_SCENE.replace("frames = 6", "frames = 9"))
    short = cli("render", str(scene), "--fresh")
    assert short.returncode == 2 and "has fewer than 9 frames" in short.stderr


def test_with_a_long_cadence_the_colour_map_reads_no_later_than_the_previous_keyframe():
    # Keyframes 0 and 5: frames 1-4 are made only after 5, so frame 5's map must come from frame 0
    # even though the lag alone would ask for frame 2.
    def unread(t):
        raise AssertionError(f"frame {t} is not finished yet")

    coherence = Coherence(0.25, "first", [], unread)
    coherence.seen(0, to_uint8(smooth_image(10, (16, 16))))
    assert coherence.map_for(5, [1.0], latest=0) is not None
