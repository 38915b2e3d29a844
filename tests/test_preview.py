"""`stylereel preview`: the render's camera path without optimisation, captioned, encoded as renders are."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cluster.cli import app
from engine.targets import resize
from render.images import from_uint8, load_image, to_uint8
from render.plan import plan_scene
from render.preview import caption, overlay, overlay_rows, preview_frames, preview_size
from render.scene import Scene, load_scene
from render.video import VideoWriter, count_frames
from render.video_input import VideoSource
from render.warp import Camera, warp

SCENES = sorted((Path(__file__).resolve().parents[1] / "scenes").glob("*.toml"))


def _scene(folder: Path, text: str, name: str = "scene.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _clip(path: Path, frames: int, size: tuple[int, int] = (24, 32)) -> Path:
    """A tiny video whose frames differ: a bright bar moving right."""
    with VideoWriter(path, size[1], size[0], 12, crf=0, preset="ultrafast") as video:
        for t in range(frames):
            pixels = np.full((*size, 3), 40, np.uint8)
            pixels[:, 4 * t : 4 * t + 6] = (250, 200, 60)
            video.write(pixels)
    return path


@pytest.mark.parametrize("scene", SCENES, ids=lambda p: p.stem)
def test_preview_of_each_bundled_scene_has_all_its_frames(scene, tmp_path):
    out = tmp_path / "preview.mp4"
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["preview", str(scene), "-o", str(out)])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert count_frames(out) == load_scene(scene).frame_count
    print(f"preview of {scene.name}: {seconds:.2f} s")  # reported, not asserted: shared machines vary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview.mp4"]  # no temporary file left


def test_preview_goes_beside_the_scene_by_default(tmp_path):
    scene = _scene(tmp_path, '[output]\nwidth = 64\nheight = 48\nframes = 3\n[styles]\na = "builtin:ihc"\n'
                             '[start]\ncontent = "builtin:chelsea"\n', "short.toml")  # fmt: skip
    result = CliRunner().invoke(app, ["preview", str(scene), "--size", "32"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "short.preview.mp4")
    assert count_frames(tmp_path / "short.preview.mp4") == 3


@pytest.mark.parametrize("border", ["reflection", "content"])
def test_each_frame_is_the_start_carried_by_the_render_warps(tmp_path, border):
    # Zooming out and turning reveals new pixels at the edges every frame: the border mode fills them.
    scene = load_scene(_scene(tmp_path, f"""
[output]
width = 64
height = 48
frames = 6
[styles]
a = "builtin:ihc"
[start]
content = "builtin:chelsea"
[camera]
zoom = "0:(0.93), 5:(0.97)"
angle = "0:(4*sin(t))"
translate_x = 1.5
center_y = 0.4
border = "{border}"
"""))  # fmt: skip
    frames = list(preview_frames(scene, (48, 64)))
    assert [plan.index for plan, _ in frames] == list(range(6))

    start = resize(load_image("builtin:chelsea"), (48, 64))
    expected, revealed = [to_uint8(start)], []
    total = torch.eye(3, dtype=torch.float64)  # output of frame t -> pixels of frame 0
    for plan in plan_scene(scene)[1:]:
        step = plan.camera.matrix(64, 48)
        total = total @ step
        carried, mask = warp(from_uint8(expected[-1]), step, "reflection")  # frame t-1 as written
        if border == "content":  # revealed pixels: the start image seen through the whole path
            carried = carried * mask + warp(start, total, "border")[0] * (1 - mask)
        expected.append(to_uint8(carried))
        revealed.append(1 - float(mask.mean()))
    assert min(revealed) > 0.02  # the test reaches the border filling
    for t, (_, pixels) in enumerate(frames):
        np.testing.assert_array_equal(pixels, expected[t], err_msg=f"frame {t}")


def test_border_modes_differ_only_where_the_camera_revealed_pixels(tmp_path):
    def last(border: str) -> np.ndarray:
        text = (
            '[output]\nwidth = 64\nheight = 48\nframes = 3\n[styles]\na = "builtin:ihc"\n[start]\n'
            f'content = "builtin:chelsea"\n[camera]\nzoom = 0.8\nborder = "{border}"\n'
        )
        return list(preview_frames(load_scene(_scene(tmp_path, text)), (48, 64)))[-1][1]

    reflection, content = last("reflection"), last("content")
    differ = (reflection != content).any(axis=2)
    assert differ.any() and not differ[12:36, 16:48].any()  # zoom 0.8 twice keeps the middle 64 %


def test_a_smaller_preview_moves_the_picture_as_the_output_does(tmp_path):
    def scene(width: int, height: int, tx: float, ty: float) -> Scene:
        return load_scene(_scene(tmp_path, f"""
[output]
width = {width}
height = {height}
frames = 5
[styles]
a = "builtin:ihc"
[start]
content = "builtin:astronaut"
[camera]
zoom = 1.1
angle = 5
translate_x = {tx}
translate_y = {ty}
""", f"{width}.toml"))  # fmt: skip

    assert preview_size(128, 96, 64) == (48, 64)
    small = list(preview_frames(scene(128, 96, 4, -2), (48, 64)))
    # The same camera written for a 64x48 output: translations in its pixels are half the output's.
    expected = list(preview_frames(scene(64, 48, 2, -1), (48, 64)))
    assert [p.camera for p, _ in expected][1] == Camera(1.1, 5, 2, -1)
    for t, ((_, got), (_, want)) in enumerate(zip(small, expected, strict=True)):
        diff = np.abs(got.astype(int) - want.astype(int))
        # S⁻¹·M·S and the camera written at 64x48 agree to float64 rounding (equal frames here).
        assert diff.max() <= 1, f"frame {t}: {diff.max()} levels apart"


@pytest.mark.parametrize(
    ("width", "height", "side", "size"),
    [(1920, 1080, 256, (144, 256)), (192, 128, 256, (128, 192)), (1366, 768, 256, (144, 256)),
     (720, 1280, 100, (100, 56)), (64, 48, 32, (24, 32))],
)  # fmt: skip
def test_the_preview_keeps_the_output_aspect_in_even_pixels_never_larger(width, height, side, size):
    assert preview_size(width, height, side) == size


def test_video_shots_show_their_video_and_image_shots_their_camera(tmp_path):
    _clip(tmp_path / "clip.mp4", 4)
    scene = load_scene(_scene(tmp_path, """
[styles]
a = "builtin:ihc"
b = "builtin:hubble_deep_field"
[output]
width = 32
height = 24
[[shot]]
length = 3
start = { video = "clip.mp4" }
[[shot]]
length = 3
start = { content = "builtin:rocket" }
camera = { zoom = 1.2 }
"""))  # fmt: skip
    frames = [pixels for _, pixels in preview_frames(scene, (24, 32))]
    video = VideoSource(tmp_path / "clip.mp4", (24, 32))
    for t in range(3):
        np.testing.assert_array_equal(frames[t], to_uint8(video.frame(t)))
    rocket = to_uint8(resize(load_image("builtin:rocket"), (24, 32)))
    np.testing.assert_array_equal(frames[3], rocket)  # a shot starts again from its own start
    zoomed = to_uint8(warp(from_uint8(rocket), Camera(zoom=1.2).matrix(32, 24))[0])
    np.testing.assert_array_equal(frames[4], zoomed)


def test_a_shot_without_start_content_starts_from_the_seeded_noise(tmp_path):
    def first(seed: int) -> np.ndarray:
        text = f'seed = {seed}\n[output]\nwidth = 32\nheight = 24\nframes = 2\n[styles]\na = "builtin:ihc"\n'
        return next(preview_frames(load_scene(_scene(tmp_path, text)), (24, 32)))[1]

    assert np.array_equal(first(1), first(1)) and not np.array_equal(first(1), first(2))
    assert first(1).std() > 20  # noise, not a flat grey


def test_caption_names_the_frame_and_the_blend_leader_first(tmp_path):
    scene = load_scene(_scene(tmp_path, """
[output]
frames = 30
[styles]
ihc = "builtin:ihc"
hubble = "builtin:hubble_deep_field"
[drift]
styles = ["ihc", "hubble"]
frames_per_style = 12
crossfade = 6
"""))  # fmt: skip
    plans, names = plan_scene(scene), list(scene.styles)
    assert caption(plans[0], names) == "0  ihc 1.00"
    # Crossfading over frames 6-11: smoothstep of 3/7 is 0.39, of 4/7 0.61.
    assert caption(plans[8], names) == "8  ihc 0.61 | hubble 0.39"
    assert caption(plans[9], names) == "9  hubble 0.61 | ihc 0.39"
    assert caption(plans[12], names) == "12  hubble 1.00"


def test_the_caption_changes_only_its_strip(tmp_path):
    text = '[output]\nwidth = 192\nheight = 128\nframes = 2\n[styles]\na = "builtin:ihc"\n'
    scene = load_scene(_scene(tmp_path, text + '[start]\ncontent = "builtin:chelsea"\n'))
    plan, pixels = next(preview_frames(scene, (128, 192)))
    captioned = overlay(pixels, "12  ihc 0.75 | hubble 0.25")
    rows = overlay_rows(128)
    assert 8 <= rows.stop - rows.start <= 24 and rows.stop == 128  # small, along the bottom
    changed = np.flatnonzero((captioned != pixels).any(axis=(1, 2)))
    assert changed.size and changed.min() >= rows.start
    np.testing.assert_array_equal(captioned[: rows.start], pixels[: rows.start])
    assert (captioned[rows].min(axis=2) > 200).any()  # white letters (antialiased) on the strip
    assert captioned[rows].mean() < pixels[rows].mean() / 2  # a dark strip


def _broken_scenes(folder: Path) -> list[Path]:
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image")
    _clip(folder / "short.mp4", 2)
    head = '[output]\nwidth = 32\nheight = 24\nframes = 4\n[styles]\na = "builtin:ihc"\n'
    scenes = {
        "schedule": head + '[camera]\nzoom = "0:(1), 3:(-1)"\n',  # zoom <= 0 from frame 2: plan_scene
        "key": head + "[camera]\nzoomm = 1.1\n",
        "empty_start": head + '[start]\ncontent = "empty.png"\n',
        "broken_style": head.replace("builtin:ihc", "notes.png"),
        "short_video": head + '[start]\nvideo = "short.mp4"\n',
    }
    return [_scene(folder, text, f"{name}.toml") for name, text in scenes.items()]


def test_a_scene_with_an_error_is_refused_as_render_refuses_it(tmp_path):
    for scene in _broken_scenes(tmp_path):
        render = CliRunner().invoke(app, ["render", str(scene), "-o", str(tmp_path / "out")])
        preview = CliRunner().invoke(app, ["preview", str(scene), "-o", str(tmp_path / "p.mp4")])
        assert render.exit_code == preview.exit_code == 2, (scene.name, render.stderr, preview.stderr)
        lines = preview.stderr.strip().splitlines()
        assert len(lines) == 1 and lines == render.stderr.strip().splitlines(), scene.name
        assert not (tmp_path / "p.mp4").exists() and not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".p.*"))  # nor a temporary video


def test_bad_preview_options_are_one_line_and_exit_2(tmp_path):
    scene = SCENES[0]
    for args, message in [
        (["--size", "4"], "--size must be at least 16 pixels, not 4"),
        (["-o", str(tmp_path / "p.avi")], "p.avi: unknown video format"),
        (["-o", str(tmp_path / "no" / "p.mp4")], "does not exist"),
    ]:
        result = CliRunner().invoke(app, ["preview", str(scene), *args])
        assert result.exit_code == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
