"""Scenes end to end (their jobs run in this process): video, status, encode, resume after SIGKILL (a
render on Ray, resumed here to the same frames), changed scenes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from render.video import count_frames
from tests.helpers import CLI, cli, pixels, snapshot, until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("renders_here")]

SCENE = """
seed = 5
[output]
width = 64
height = 48
fps = 12
frames = 8
[styles]
coffee = "builtin:coffee"
ihc = "builtin:ihc"
[start]
content = "builtin:astronaut"
iterations = 4
[frames]
iterations = 6
temporal_weight = 500
cadence = 2
color_coherence = 0.5
anchor = 0.1
[drift]
styles = ["coffee", "ihc"]
frames_per_style = 4
crossfade = 2
[camera]
zoom = "0:(1.04), 7:(1.08)"
angle = 1.5
border = "content"
"""
FRAMES = 8


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """An uninterrupted render of the scene."""
    root = tmp_path_factory.mktemp("render")
    scene = root / "scene.toml"
    scene.write_text(SCENE)
    result = cli("render", str(scene))
    assert result.returncode == 0, result.stderr
    return scene, root / "scene.render"


def test_render_writes_frames_manifest_and_a_video_that_decodes(reference):
    scene, out = reference
    assert len(pixels(out)) == FRAMES
    assert count_frames(out / "scene.mp4") == FRAMES
    status = cli("status", str(out))
    assert status.returncode == 0 and f"{FRAMES}/{FRAMES} frames done" in status.stdout
    frames = pixels(out)
    assert all(f.shape == (48, 64, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[-1])  # the camera and the drift move the picture
    records = json.loads((out / "manifest.json").read_text())["frames"]
    assert records["1"]["tween"] == [0, 2] and records["2"]["jobs"] == 1 and records["2"]["temporal"] > 0
    assert [t for t in range(FRAMES) if "tween" not in records[str(t)]] == [0, 2, 4, 6, 7]
    metrics = cli("metrics", str(out), "--per-frame", str(out / "m.json"))
    assert metrics.returncode == 0, metrics.stderr
    figures = json.loads(metrics.stdout)
    assert figures["frames"] == FRAMES and 0 < figures["warp_error"] < 0.1
    assert (out / "metrics.png").stat().st_size > 1000
    assert json.loads((out / "m.json").read_text())[0]["warp_error"] is None  # nothing before frame 0


def test_encode_rebuilds_the_video(reference, tmp_path):
    _, out = reference
    copy = tmp_path / "copy.render"
    shutil.copytree(out, copy)
    (copy / "scene.mp4").unlink()
    result = cli("encode", str(copy))
    assert result.returncode == 0, result.stderr
    assert count_frames(copy / "scene.mp4") == FRAMES


def test_sigkilled_render_resumes_to_the_identical_frames(reference, tmp_path, ray_head):
    """The render that is killed is a process of its own (the kill must take the driver) on the session's
    `ray start` head (its worker there has this machine's cores, as a local Ray's would); the one that
    resumes it runs its jobs here."""
    scene = tmp_path / "scene.toml"
    scene.write_text(SCENE)
    out = tmp_path / "scene.render"
    proc = subprocess.Popen(
        [*CLI, "render", str(scene), "--address", ray_head.address],
        env=ray_head.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the kill takes the whole process group, as a terminal's would
    )
    assert until(lambda: (out / "frames" / "000002.png").exists() or proc.poll() is not None, 120)
    assert proc.poll() is None, "render ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(pixels(out))
    assert partial < FRAMES and not (out / "scene.mp4").exists()
    # The interrupted render still yields a playable file.
    assert cli("encode", str(out)).returncode == 0
    assert count_frames(out / "scene.mp4") >= 2

    result = cli("render", str(scene))
    assert result.returncode == 0, result.stderr
    for mine, theirs in zip(pixels(out), pixels(reference[1]), strict=True):
        assert np.array_equal(mine, theirs)
    assert count_frames(out / "scene.mp4") == FRAMES


def test_a_corrupt_frame_in_the_middle_is_rerendered_with_everything_after(reference, tmp_path):
    scene = tmp_path / "scene.toml"
    scene.write_text(SCENE)
    out = tmp_path / "scene.render"
    shutil.copytree(reference[1], out)
    victim = out / "frames" / "000004.png"  # after a tween: the render goes back to keyframe 2
    victim.write_bytes(victim.read_bytes()[:100])
    later = out / "frames" / "000006.png"
    later.write_bytes(b"")
    result = cli("render", str(scene))
    assert result.returncode == 0, result.stderr
    for mine, theirs in zip(pixels(out), pixels(reference[1]), strict=True):
        assert np.array_equal(mine, theirs)


def render_over_reference(
    reference, tmp_path, scene_text: str
) -> tuple[subprocess.CompletedProcess, dict, Path]:
    """Render `scene_text` into a copy of the reference output; return the result and the copy before."""
    scene = tmp_path / "scene.toml"
    scene.write_text(scene_text)
    out = tmp_path / "scene.render"
    shutil.copytree(reference[1], out)
    before = snapshot(out)
    return cli("render", str(scene)), before, out


def test_a_changed_scene_is_refused_and_nothing_is_touched(reference, tmp_path):
    result, before, out = render_over_reference(
        reference, tmp_path, SCENE.replace("angle = 1.5", "angle = 2.5")
    )
    assert result.returncode == 2
    assert "camera.angle: 1.5 -> 2.5" in result.stderr and "--fresh" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(out) == before


def test_a_bad_scene_changes_nothing_in_the_output_folder(reference, tmp_path):
    result, before, out = render_over_reference(
        reference, tmp_path, SCENE.replace("frames = 8", "frames = 0")
    )
    assert result.returncode == 2 and "output.frames: must be >= 1" in result.stderr
    assert snapshot(out) == before
