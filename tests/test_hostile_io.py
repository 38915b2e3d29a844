"""Hostile inputs at the edges: a video that cannot be finished, a render folder with a gap or a
manifest pointing outside it, an --address where something other than Ray answers."""

from __future__ import annotations

import http.server
import re
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from cluster.address import prepare
from cluster.encode import encode_frames
from render.manifest import Manifest
from render.store import FrameStore
from render.video import VideoWriter, count_frames


def _frame(value: int) -> np.ndarray:
    return np.full((16, 16, 3), value, np.uint8)


def _video(path: Path, frames: int, fps: Fraction = Fraction(24)) -> None:
    with VideoWriter(path, 16, 16, fps) as video:
        for t in range(frames):
            video.write(_frame(30 * t))


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".old.*"))


@pytest.fixture
def old(tmp_path) -> tuple[Path, bytes]:
    """A good video already under the name the tests write to."""
    path = tmp_path / "old.mp4"
    _video(path, 3)
    return path, path.read_bytes()


def test_a_video_that_cannot_be_finished_keeps_the_old_one(old):
    path, before = old
    with pytest.raises(av.FFmpegError):
        _video(path, 3, fps=Fraction(1, 1_000_000_000))  # every frame muxes; the flush fails
    assert path.read_bytes() == before
    assert _temporaries(path.parent) == []


class _FailingClose:
    """A container whose close (where the trailer is written) fails, as on a full disk."""

    def __init__(self, container) -> None:
        self._container = container

    def __getattr__(self, name: str):
        return getattr(self._container, name)

    def close(self) -> None:
        self._container.close()
        raise OSError(28, "No space left on device")


def test_a_video_whose_container_fails_to_close_keeps_the_old_one(old, monkeypatch):
    path, before = old
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: _FailingClose(real_open(*a, **k)))
    video = VideoWriter(path, 16, 16)
    video.write(_frame(0))
    with pytest.raises(OSError, match="No space left"):
        video.close()
    assert path.read_bytes() == before
    assert _temporaries(path.parent) == []  # removed by the writer, not when it is collected
    video.close(OSError("again, as a caller's except clause would"))  # does nothing


def test_a_video_without_frames_keeps_the_old_one(old):
    path, before = old
    with VideoWriter(path, 16, 16):
        pass
    assert path.read_bytes() == before
    assert _temporaries(path.parent) == []


def test_a_writer_that_cannot_open_leaves_no_temporary_file(old):
    path, before = old
    with pytest.raises(av.codec.codec.UnknownCodecError):
        VideoWriter(path, 16, 16, codec="no-such-codec")
    assert path.read_bytes() == before
    assert _temporaries(path.parent) == []


FRAMES = 6


def _render_folder(folder: Path, video: str = "scene.mp4") -> Manifest:
    """A render folder as a finished render leaves it: its frames, their manifest and no video yet."""
    store = FrameStore(folder)
    scene = {"output.width": 16, "output.height": 16, "output.fps": "12", "output.codec": "libx264",
             "output.crf": 17}  # fmt: skip
    frames = {t: {"sha256": store.write(t, _frame(30 * t))} for t in range(FRAMES)}
    return Manifest("hash", scene, 0, FRAMES, video, frames=frames, shots=[FRAMES])


def test_encode_does_not_replace_a_longer_video_with_a_gapped_prefix(tmp_path):
    manifest = _render_folder(tmp_path)
    video, count = encode_frames(tmp_path, manifest)
    assert count == FRAMES
    before = video.read_bytes()
    store = FrameStore(tmp_path)
    store.path(2).unlink()  # a gap: only frames 0 and 1 come before it

    with pytest.raises(ValueError, match=r"has 6 frames but only 2 would be encoded.*--force") as refused:
        encode_frames(tmp_path, manifest)
    assert "\n" not in str(refused.value)
    assert video.read_bytes() == before

    assert encode_frames(tmp_path, manifest, force=True) == (video, 2)
    assert count_frames(video) == 2
    video.write_bytes(b"\0" * 262)  # an unreadable video is replaced without --force
    assert encode_frames(tmp_path, manifest) == (video, 2)
    assert count_frames(video) == 2


OUTSIDE = ["../outside.mp4", "{tmp}/absolute.mp4", "sub/inner.mp4", "..", "manifest.json"]  # {tmp}: tmp_path


@pytest.mark.parametrize("name", OUTSIDE)
def test_encode_refuses_a_manifest_video_outside_the_folder(tmp_path, name):
    folder = tmp_path / "scene.render"
    manifest = _render_folder(folder, video=name.format(tmp=tmp_path))
    (folder / "sub").mkdir()
    with pytest.raises(ValueError, match=r"manifest\.json: video: .* is not a video file name"):
        encode_frames(folder, manifest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.render"]
    assert sorted(p.name for p in folder.iterdir()) == ["frames", "sub"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_where_a_web_server_answers_is_refused(monkeypatch, scheme):
    monkeypatch.setattr("cluster.address.use_auth_token", lambda: None)  # keep RAY_AUTH_MODE as it is
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        address = f"{scheme}127.0.0.1:{server.server_port}"
        refused = re.escape(f"--address {address}: no Ray cluster answers there (")
        with pytest.raises(ValueError, match=refused):
            prepare(address)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_an_address_where_ray_answers_is_accepted(monkeypatch, ray_head):
    """A head as a user starts one (the session's); its GCS must pass the check that refuses a web server."""
    monkeypatch.setattr("cluster.address.use_auth_token", lambda: None)
    prepare(ray_head.address)
