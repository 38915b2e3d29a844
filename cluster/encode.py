"""Encoding a render's frames into its video, from the files on disk."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from render.store import FrameStore
from render.video import VideoWriter

from .manifest import Manifest
from .scheduler import complete_frames


def encode_frames(outdir: Path, manifest: Manifest) -> tuple[Path, int]:
    """Write the video from the complete prefix of frames; returns its path and frame count."""
    s = manifest.scene
    size = (s["output.height"], s["output.width"])
    store = FrameStore(outdir)
    done = complete_frames(store, manifest, size)
    count = 0
    while count in done:  # the frames up to the first gap, in order
        count += 1
    if count == 0:
        raise ValueError(f"{outdir}: no complete frames to encode yet")
    out = outdir / manifest.video
    with VideoWriter(
        out, size[1], size[0], Fraction(s["output.fps"]), s["output.codec"], s["output.crf"]
    ) as video:
        for t in range(count):
            video.write(store.read(t))
    return out, count
