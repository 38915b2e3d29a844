"""render_scene with its pool injected: whole renders in this process, without Ray or VGG-19, in a
second. What the scheduler does (resume, cadence, shots, the video, the manifest) does not depend on
where the jobs run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cluster.local_pool import LocalPool
from cluster.scheduler import render_scene
from render.render_folder import RenderFolder
from render.scene import load_scene
from render.video import count_frames
from tests.conftest import TINY_SCENE
from tests.test_video_colour import _sine, _sound
from tests.tiny import TinyFeatures

SCENE = TINY_SCENE.format(frames=6, iterations=3).replace("frames = 6\n", "") + (
    "\n[[shot]]\nlength = 3\n[[shot]]\nlength = 3\n"  # two shots: two chains, side by side
)


def here(styles):
    return LocalPool(styles, TinyFeatures(), threads=1)


def frames(folder: Path) -> list[np.ndarray]:
    store = RenderFolder(folder).frames
    return [store.read(t) for t in sorted(store.indices())]


@pytest.fixture
def scene(tmp_path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(SCENE)
    return path


def test_a_scene_renders_in_process_on_an_injected_pool(scene, tmp_path):
    out = tmp_path / "out"
    video = render_scene(load_scene(scene), out, pool=here)
    manifest = RenderFolder(out).load_manifest()
    assert sorted(manifest.frames) == list(range(6)) and manifest.shots == [3, 3]
    assert all(r["workers"] == ["this process"] for r in manifest.frames.values())
    assert count_frames(video) == 6 and manifest.video_bytes == video.stat().st_size


def test_a_render_with_a_soundtrack_has_it_for_the_movie_s_length(scene, tmp_path):
    """`output.audio` through a whole render (the encoder's cuts and pads: tests/test_video_colour.py)."""
    _sine(tmp_path / "tone.wav", 2.0)
    scene.write_text(SCENE.replace("[output]\n", '[output]\naudio = "tone.wav"\n'))
    video = render_scene(load_scene(scene), tmp_path / "out", pool=here)
    samples, rate, frame_size = _sound(video)
    assert count_frames(video) == 6 and abs(len(samples) - 0.5 * rate) <= frame_size  # 6 frames at 12 fps


def test_a_resumed_render_equals_an_uninterrupted_one(scene, tmp_path):
    whole = tmp_path / "whole"
    render_scene(load_scene(scene), whole, pool=here)
    resumed = tmp_path / "resumed"
    render_scene(load_scene(scene), resumed, pool=here)
    for t in (1, 2, 4):  # frames lost mid-shot: each shot resumes from the frame before its gap
        RenderFolder(resumed).frames.path(t).unlink()
    said: list[str] = []
    render_scene(load_scene(scene), resumed, pool=here, say=said.append)
    assert any(line.startswith("resuming: ") for line in said)
    assert all(np.array_equal(a, b) for a, b in zip(frames(whole), frames(resumed), strict=True))
