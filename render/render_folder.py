"""A render's output folder as one thing: `RenderFolder`, and `Progress`, the live render's progress file.

Every command that reads or writes a render folder goes through `RenderFolder`:
the frames (`frames/000000.png ...`), the manifest, the progress of a live
render, the video; which frames are intact and whether the render is finished;
the lock a render holds and whether one is alive; and the files that are not
stylereel's. The files keep their names and formats (`folder.py` names them);
none of this needs Ray or torch, so `stylereel status` and `encode` start fast.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .atomic import write_text
from .folder import MANIFEST, METRICS, PROGRESS, foreign_files, render_alive, render_lock, stale_temporaries
from .manifest import Manifest
from .store import FrameStore


@dataclass
class WorkerProgress:
    """One worker in a live render's progress file."""

    name: str
    jobs: int  # jobs done
    busy_seconds: float  # inside jobs, as the worker measured them
    failures: int
    excluded: bool  # left out after failing
    current: tuple[int, int, int] | None  # (frame, round, tile) in flight
    since: float  # when the worker was started (time.time())

    def per_minute(self, at: float) -> float:
        """Jobs a minute from the worker's start to `at` (the progress file's time)."""
        return 60 * self.jobs / self.running(at)

    def running(self, at: float) -> float:
        """Seconds from the worker's start to `at`."""
        return max(1e-9, at - self.since)

    @property
    def state(self) -> str:
        """'left out', 'on frame F rR tile T' or 'idle'."""
        if self.excluded:
            return "left out"
        return "on frame {} r{} tile {}".format(*self.current) if self.current else "idle"

    @classmethod
    def from_json(cls, data: dict) -> WorkerProgress:
        """The worker as `Progress.text` wrote it; KeyError or TypeError if it is of another shape."""
        worker = cls(**{f.name: data[f.name] for f in fields(cls)})
        current = worker.current
        if not (
            isinstance(worker.name, str)
            and _integer(worker.jobs)
            and _number(worker.busy_seconds)
            and _integer(worker.failures)
            and isinstance(worker.excluded, bool)
            and (current is None or isinstance(current, list) and len(current) == 3)
            and all(map(_integer, current or ()))
            and _number(worker.since)
        ):
            raise TypeError(f"not a worker's progress: {data!r}")
        worker.current = tuple(current) if current is not None else None
        return worker


@dataclass
class Progress:
    """progress.json: what a live render is doing, rewritten (atomically) every half second; its time
    is the heartbeat that tells a render on another host alive."""

    time: float  # when it was written (time.time())
    done: int  # frames complete
    frames: int  # frames in the scene
    active: list[str]  # where each frame in flight is, e.g. "12 r1 5/15" (frame, round, tiles back)
    workers: list[WorkerProgress]

    def text(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def parse(cls, text: str) -> Progress | None:
        """The progress in `text`, or None if it is not a progress file of this shape (other keys
        beside these are ignored)."""
        try:
            data = json.loads(text)
            progress = cls(**{f.name: data[f.name] for f in fields(cls)})
            if not (
                _number(progress.time)
                and _integer(progress.done)
                and _integer(progress.frames)
                and isinstance(progress.active, list)
                and all(isinstance(a, str) for a in progress.active)
                and isinstance(progress.workers, list)
            ):
                return None
            progress.workers = [WorkerProgress.from_json(w) for w in progress.workers]
            return progress
        except (ValueError, KeyError, TypeError):
            return None


class RenderFolder:
    """A render's output folder: its frames (`frames`, a FrameStore), manifest, progress and video,
    which frames are intact, its lock, and the files in it that are not stylereel's."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.frames = FrameStore(self.path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def progress_path(self) -> Path:
        return self.path / PROGRESS

    @property
    def metrics_path(self) -> Path:
        """Where `stylereel metrics` draws its plot of the frames."""
        return self.path / METRICS

    def video(self, manifest: Manifest) -> Path:
        return self.path / manifest.video

    def load_manifest(self) -> Manifest | None:
        """The manifest, or None if there is none; ValueError (naming --repair) if it is unreadable."""
        return Manifest.load(self.path)

    def save_manifest(self, manifest: Manifest) -> None:
        manifest.save(self.path)

    def read_progress(self) -> Progress | None:
        """A live render's progress, or None if there is none or it is unreadable."""
        try:
            return Progress.parse(self.progress_path.read_text())
        except (OSError, ValueError):
            return None

    def save_progress(self, progress: Progress) -> None:
        write_text(self.progress_path, progress.text())

    def clear_progress(self) -> None:
        self.progress_path.unlink(missing_ok=True)

    def intact(self, t: int, size: tuple[int, int], sha256: str | None) -> bool:
        """Whether frame t's file is there, decodes at `size` and has the hash `sha256`."""
        return self.frames.read(t, size, sha256) is not None

    def complete_frames(self, manifest: Manifest) -> set[int]:
        """Frames on disk that are intact at the manifest's size and hash, and follow complete frames of
        their shot. KeyError if the manifest's scene has no output size."""
        size = manifest.size
        done, first = set(), 0
        for length in manifest.shots:
            for t in range(first, first + length):
                record = manifest.frames.get(t)
                if record is None or not self.intact(t, size, record.get("sha256")):
                    break
                done.add(t)
            first += length
        return done

    def video_final(self, manifest: Manifest) -> bool:
        """Whether the manifest's video is the one its render finalised (the size it recorded then)."""
        video, size = self.video(manifest), manifest.video_bytes
        with contextlib.suppress(OSError):
            return size > 0 and video.is_file() and video.stat().st_size == size
        return False

    def finished(self, manifest: Manifest) -> bool:
        """Whether the render has nothing left to do: its video is final and every frame is intact."""
        return self.video_final(manifest) and len(self.complete_frames(manifest)) == manifest.frame_count

    def rehashed(self, size: tuple[int, int], count: int) -> dict[int, dict]:
        """Records for the frames below `count` on disk that decode at `size`: the manifest that
        --repair rebuilds. Only the hashes can be recovered; the frames then resume like any others."""
        return {
            t: {"sha256": self.frames.sha256(t), "repaired": True}
            for t in self.frames.indices()
            if t < count and self.frames.read(t, size) is not None
        }

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the folder for one render; FolderBusy, naming the owner, if another render holds it."""
        return render_lock(self.path)

    def alive(self, progress: Progress | None) -> bool:
        """Whether a render is writing here now (`progress`, as read, gives its heartbeat)."""
        return render_alive(self.path, progress.time if progress is not None else None)

    def foreign_files(self, frame_count: int | None) -> list[str]:
        """Files here (relative paths) that stylereel would not have written; see `folder.foreign_files`."""
        return foreign_files(self.path, frame_count)

    def clear_leftovers(self) -> None:
        """Remove what a killed render left: its temporary files and its progress."""
        for path in stale_temporaries(self.path):
            path.unlink(missing_ok=True)
        self.clear_progress()

    def remove_frames(self, count: int | None) -> None:
        """Remove the numbered frames below `count` (those a manifest of that many frames wrote), any
        numbered frame when None."""
        for t in self.frames.indices():
            if count is None or t < count:
                self.frames.path(t).unlink(missing_ok=True)


def first_gap(done: set[int]) -> int:
    """The first frame not in `done`: how many frames from the first are complete, in order."""
    n = 0
    while n in done:
        n += 1
    return n


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
