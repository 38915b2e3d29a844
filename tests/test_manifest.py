"""The manifest: read back as written, one frame a line."""

from __future__ import annotations

import json

from render.manifest import Manifest


def test_the_manifest_reads_back_as_written_one_frame_a_line(tmp_path):
    record = {"sha256": "ab" * 32, "seconds": 1.5, "workers": ["a:1"], "step": [[1.0, 0.0], [0.0, 1.0]]}
    frames = {t: dict(record) for t in (0, 1, 10)}
    manifest = Manifest("hash", {"output.width": 64}, 3, 12, "scene.mp4", frames, shots=[12])
    manifest.save(tmp_path)
    assert Manifest.load(tmp_path) == manifest
    text = (tmp_path / "manifest.json").read_text()
    assert json.loads(text)["frames"]["10"] == record
    assert sum(line.lstrip().startswith('"1') for line in text.splitlines()) == 2  # frames 1 and 10
    empty = Manifest("hash", {}, 3, 12, "scene.mp4")
    empty.save(tmp_path)
    assert Manifest.load(tmp_path) == empty
