"""RenderFolder: a render folder's frames, manifest, progress and completeness, through its own interface;
and the commands that only read a folder (`status`, `encode`) start without Ray, the scheduler or torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from render.manifest import Manifest
from render.render_folder import Progress, RenderFolder, WorkerProgress, first_gap

ROOT = Path(__file__).resolve().parents[1]
SCENE = {"output.height": 16, "output.width": 24, "output.fps": "12", "output.codec": "libx264",
         "output.crf": 17}  # fmt: skip


def pixels(t: int) -> np.ndarray:
    y, x = np.mgrid[0:16, 0:24]
    return np.stack([(x * 9 + 40 * t) % 256, (y * 13) % 256, np.full_like(x, 30 * t)], -1).astype(np.uint8)


def a_render(path: Path, frames: int = 4, shots: list[int] | None = None) -> tuple[RenderFolder, Manifest]:
    """A folder as a render leaves it before its video: every frame and the manifest that records them."""
    folder = RenderFolder(path)
    manifest = Manifest("hash", dict(SCENE), 0, frames, "scene.mp4", shots=shots or [frames])
    for t in range(frames):
        sha = folder.frames.write(t, pixels(t))
        manifest.frames[t] = {"sha256": sha, "seconds": 2.0, "finished": 10.0 + t}
    folder.save_manifest(manifest)
    return folder, manifest


def test_frames_read_back_as_written_with_their_hashes(tmp_path):
    folder = RenderFolder(tmp_path)
    sha = folder.frames.write(0, pixels(0))
    assert folder.frames.sha256(0) == sha
    assert np.array_equal(folder.frames.read(0, (16, 24), sha), pixels(0))
    assert folder.frames.read(0, (16, 24), "0" * 64) is None  # another hash
    assert folder.frames.read(0, (32, 24)) is None  # another size
    assert folder.frames.read(1) is None
    assert folder.frames.indices() == [0] and folder.frames.path(0) == tmp_path / "frames" / "000000.png"


def test_the_manifest_reads_back_as_saved(tmp_path):
    folder, manifest = a_render(tmp_path / "out")
    assert folder.manifest_path == tmp_path / "out" / "manifest.json"
    assert folder.load_manifest() == manifest
    assert folder.video(manifest) == tmp_path / "out" / "scene.mp4"
    assert manifest.size == (16, 24) and manifest.known_motion
    assert manifest.pace(range(4)) == 1.0  # a frame finished every second
    assert RenderFolder(tmp_path / "none").load_manifest() is None


def test_progress_reads_back_as_saved_in_its_format(tmp_path):
    folder = RenderFolder(tmp_path)
    assert folder.read_progress() is None
    workers = [
        WorkerProgress("w0", 3, 1.5, 0, False, (4, 1, 2), 100.0),
        WorkerProgress("w1", 0, 0.0, 2, True, None, 90.5),
    ]
    progress = Progress(160.0, 3, 8, ["4 r1 2/3"], workers)
    folder.save_progress(progress)
    assert folder.read_progress() == progress
    written = {"time": 160.0, "done": 3, "frames": 8, "active": ["4 r1 2/3"], "workers": [
        {"name": "w0", "jobs": 3, "busy_seconds": 1.5, "failures": 0, "excluded": False, "current": [4, 1, 2],
         "since": 100.0},
        {"name": "w1", "jobs": 0, "busy_seconds": 0.0, "failures": 2, "excluded": True, "current": None,
         "since": 90.5}]}  # fmt: skip
    assert folder.progress_path.read_text() == json.dumps(written, indent=1)  # as renders always wrote it
    assert [w.state for w in workers] == ["on frame 4 r1 tile 2", "left out"]
    assert workers[0].per_minute(160.0) == 3.0
    for text in ("not json", "[]", '{"time": 1}', json.dumps(written | {"active": [1]})):
        folder.progress_path.write_text(text)
        assert folder.read_progress() is None, text
    folder.clear_progress()
    assert not folder.progress_path.exists()


def test_a_corrupt_frame_and_those_after_it_in_its_shot_are_not_complete(tmp_path):
    folder, manifest = a_render(tmp_path, frames=6, shots=[3, 3])
    assert folder.complete_frames(manifest) == set(range(6))
    data = bytearray(folder.frames.path(1).read_bytes())
    data[-20] ^= 0xFF
    folder.frames.path(1).write_bytes(bytes(data))
    folder.frames.path(4).unlink()
    done = folder.complete_frames(manifest)
    assert done == {0, 3}  # each shot up to its first broken frame
    assert first_gap(done) == 1
    assert not folder.finished(manifest) and not folder.video_final(manifest)
    assert folder.rehashed((16, 24), 6).keys() == {0, 2, 3, 5}  # what --repair would keep: those that decode


def test_the_lock_says_a_render_is_alive_and_leftovers_are_cleared(tmp_path):
    folder, manifest = a_render(tmp_path, frames=3)
    assert not folder.alive(None)
    with folder.lock():
        assert folder.alive(None)
    (tmp_path / ".manifest.abcd1234.json").write_bytes(b"a killed run's")
    (tmp_path / "notes.txt").write_bytes(b"the user's")
    folder.save_progress(Progress(0.0, 0, 3, [], []))
    assert folder.foreign_files(3) == ["notes.txt"]  # its own temporary files are not foreign
    folder.clear_leftovers()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "manifest.json", "notes.txt"]
    folder.remove_frames(2)
    assert folder.frames.indices() == [2]


def test_status_and_encode_read_a_folder_without_ray_the_scheduler_or_torch(tmp_path):
    folder, _ = a_render(tmp_path / "scene.render")
    code = (
        "import sys; from typer.testing import CliRunner; from cluster.cli import app; "
        "r = CliRunner().invoke(app, sys.argv[1:]); "
        "print(r.exit_code, [m for m in ('ray', 'cluster.scheduler', 'torch') if m in sys.modules])"
    )
    for command in ("status", "encode"):
        result = subprocess.run([sys.executable, "-c", code, command, str(folder.path)], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert result.stdout.strip() == "0 []", (command, result.stdout, result.stderr)
    manifest = folder.load_manifest()
    assert folder.video(manifest).is_file()
    assert not folder.video_final(manifest)  # encode writes the video; only a render finalises it
