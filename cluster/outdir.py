"""A render's output folder: whether a render may use it, what it resumes from, and what --fresh removes.

Everything is decided before anything is written: `check_outdir` only reads, and
raises ValueError naming the folder; `open_outdir` runs under the folder's lock
and is the only place that removes files, and only those stylereel wrote.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from render.folder import PROGRESS, foreign_files, stale_temporaries
from render.scene import Scene
from render.store import FrameStore
from render.version import FRAMES_VERSION

from .manifest import Manifest, scene_changes


def default_outdir(scene: Scene) -> Path:
    return scene.base / f"{scene.stem}.render"


def complete_frames(store: FrameStore, manifest: Manifest | None, size: tuple[int, int]) -> set[int]:
    """Frames on disk that decode, match the manifest's hash, and follow complete frames of their shot."""
    if manifest is None:
        return set()
    done, first = set(), 0
    for length in manifest.shots:
        for t in range(first, first + length):
            record = manifest.frames.get(t)
            if record is None or store.read(t, size, record.get("sha256")) is None:
                break
            done.add(t)
        first += length
    return done


def check_outdir(scene: Scene, outdir: Path, fresh: bool = False, repair: bool = False) -> Manifest | None:
    """The manifest a render of `scene` would resume from (None: start afresh), if the folder may be
    used at all. Reads only."""
    if fresh and repair:
        raise ValueError("--fresh and --repair: choose one (--fresh discards frames, --repair keeps them)")
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"{outdir}: is a file; -o names the output folder")
    if not outdir.is_dir():
        return None
    try:
        old = Manifest.load(outdir)
    except ValueError:
        if not (fresh or repair):
            raise
        return None  # --fresh: start over; --repair: rebuild from the frames
    if old is None:
        foreign = foreign_files(outdir, scene.frame_count if repair else 0)
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
    for path in stale_temporaries(outdir):
        path.unlink(missing_ok=True)
    (outdir / PROGRESS).unlink(missing_ok=True)  # a killed render's; ours writes its own
    store = FrameStore(outdir)
    if fresh:
        # Numbered frames below the old count are ours; without a readable manifest, any numbered one.
        count = old.frame_count if old is not None else None
        for t in store.indices():
            if count is None or t < count:
                store.path(t).unlink(missing_ok=True)
    if old is not None and not fresh:
        old.scene = scene.resolved()  # the same frames; the video's settings may have changed
        return old
    shots = [shot.length for shot in scene.shots]
    manifest = Manifest(scene.digest(), scene.resolved(), scene.seed, scene.frame_count, f"{scene.stem}.mp4",
                        shots=shots)  # fmt: skip
    if repair:
        manifest.frames = rehashed(store, (scene.output.height, scene.output.width), scene.frame_count)
    return manifest


def rehashed(store: FrameStore, size: tuple[int, int], count: int) -> dict[int, dict]:
    """Records for the frames on disk that decode at `size`: the manifest that --repair rebuilds. Only
    the hashes can be recovered; the frames then resume like any others."""
    records = {}
    for t in store.indices():
        if t < count and store.read(t, size) is not None:
            records[t] = {"sha256": hashlib.sha256(store.path(t).read_bytes()).hexdigest(), "repaired": True}
    return records


def pace(records: list[dict], recent: int = 10) -> float | None:
    """Seconds per frame lately: from when the last `recent` frames finished (so frames rendered side
    by side, cadence tweens and a slow first frame count as they run), else their own times."""
    finished = sorted(r["finished"] for r in records if isinstance(r.get("finished"), int | float))[-recent:]
    if len(finished) >= 3 and finished[-1] > finished[0]:
        return (finished[-1] - finished[0]) / (len(finished) - 1)
    times = [r["seconds"] for r in records[-recent:] if isinstance(r.get("seconds"), int | float)]
    return sum(times) / len(times) if times else None
