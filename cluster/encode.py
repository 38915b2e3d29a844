"""Encoding a render's frames into its video, from the files on disk."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from render.folder import VIDEO_SUFFIXES, video_name_ok
from render.manifest import Manifest
from render.render_folder import RenderFolder, first_gap
from render.video import DEFAULT_PRESET, VideoWriter, playable_frames


def encode_frames(outdir: Path, manifest: Manifest, *, force: bool = False) -> tuple[Path, int]:
    """Write the video from the complete prefix of frames; returns its path and frame count. A video
    already there with more frames is replaced only with `force`."""
    folder = RenderFolder(outdir)
    s = manifest.scene
    size = manifest.size
    if not video_name_ok(manifest.video):  # the manifest is the user's to edit; keep the video in its folder
        raise ValueError(
            f"{folder.manifest_path}: video: {manifest.video!r} is not a video file name inside the folder "
            f"(a plain name ending in {', '.join(VIDEO_SUFFIXES)})"
        )
    out = folder.video(manifest)
    count = first_gap(folder.complete_frames(manifest))  # the frames up to the first gap, in order
    if count == 0:
        raise ValueError(f"{outdir}: no complete frames to encode yet")
    existing = playable_frames(out)
    if existing > count and not force:
        raise ValueError(
            f"{out} has {existing} frames but only {count} would be encoded now (those before the first "
            "missing or incomplete frame); --force replaces it"
        )
    audio = s.get("output.audio")  # manifests before the key have neither it nor output.preset
    with VideoWriter(out, size[1], size[0], Fraction(s["output.fps"]), s["output.codec"], s["output.crf"],
                     preset=s.get("output.preset", DEFAULT_PRESET),
                     audio=Path(audio) if audio else None) as video:  # fmt: skip
        for t in range(count):
            video.write(folder.frames.read(t))
    return out, count
