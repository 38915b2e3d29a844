"""A render's output folder: whether a render may use it, what it resumes from, and what --fresh removes.

Everything is decided before anything is written: `check_outdir` only reads, and
raises ValueError naming the folder; `open_outdir` runs under the folder's lock
and is the only place that removes files, and only those stylereel wrote.
"""

from __future__ import annotations

from pathlib import Path

from render.manifest import Manifest, scene_changes
from render.render_folder import RenderFolder
from render.scene import Scene
from render.version import FRAMES_VERSION


def default_outdir(scene: Scene) -> Path:
    return scene.base / f"{scene.stem}.render"


def check_outdir(scene: Scene, outdir: Path, fresh: bool = False, repair: bool = False) -> Manifest | None:
    """The manifest a render of `scene` would resume from (None: start afresh), if the folder may be
    used at all. Reads only."""
    if fresh and repair:
        raise ValueError("--fresh and --repair: choose one (--fresh discards frames, --repair keeps them)")
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"{outdir}: is a file; -o names the output folder")
    if not outdir.is_dir():
        return None
    folder = RenderFolder(outdir)
    try:
        old = folder.load_manifest()
    except ValueError:
        if not (fresh or repair):
            raise
        return None  # --fresh: start over; --repair: rebuild from the frames
    if old is None:
        foreign = folder.foreign_files(scene.frame_count if repair else 0)
        if foreign:
            shown = ", ".join(repr(f) for f in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            numbered = all(f.startswith("frames/") and f[7:13].isdigit() for f in foreign)
            hint = (
                "; --repair takes its numbered frames as this scene's"
                if numbered
                else "; stylereel renders only into an empty folder or its own"
            )
            raise ValueError(f"{outdir}: not a render folder (no manifest.json) and not empty: {shown}{hint}")
        return None
    if fresh:
        return old
    if old.scene_hash != scene.digest():
        changes = scene_changes(old.scene, scene.resolved())
        raise ValueError(
            f"{outdir} was rendered from a different scene ({'; '.join(changes[:5]) or 'settings differ'}); "
            "use --fresh to start over or -o for another folder"
        )
    if old.frames_version != FRAMES_VERSION:
        raise ValueError(
            f"{outdir}: its frames were rendered by stylereel {old.version}, which renders this scene "
            "differently from this one; a resumed movie would mix the two. Use --fresh to start over "
            "or -o for another folder"
        )
    return old


def open_outdir(scene: Scene, outdir: Path, fresh: bool = False, repair: bool = False) -> Manifest:
    """Under the folder's lock: check it again, clear what a killed run left, apply --fresh (removing
    only stylereel's own frames) or --repair; return the manifest to render into."""
    old = check_outdir(scene, outdir, fresh, repair)
    folder = RenderFolder(outdir)
    folder.clear_leftovers()  # a killed render's progress too; ours writes its own
    if fresh:
        # Numbered frames below the old count are ours; without a readable manifest, any numbered one.
        folder.remove_frames(old.frame_count if old is not None else None)
    if old is not None and not fresh:
        old.scene = scene.resolved()  # the same frames; the video's settings may have changed
        return old
    shots = [shot.length for shot in scene.shots]
    manifest = Manifest(scene.digest(), scene.resolved(), scene.seed, scene.frame_count, f"{scene.stem}.mp4",
                        shots=shots)  # fmt: skip
    if repair:
        manifest.frames = folder.rehashed((scene.output.height, scene.output.width), scene.frame_count)
    return manifest
