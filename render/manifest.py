"""The render manifest: an index of the frames on disk, the resolved scene they came from, and timings.

Written atomically after every frame. The frames on disk stay the truth:
a frame counts as done only if its file is there, decodes, and matches the
hash recorded here.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .atomic import write_text
from .folder import MANIFEST, video_name_ok
from .version import FRAMES_VERSION, version

# What each key must be: a manifest of valid JSON but another shape is refused, not followed.
_SHAPE = {"scene_hash": str, "scene": dict, "seed": int, "frame_count": int, "video": str, "frames": dict,
          "shots": list, "warnings": list, "version": str, "frames_version": int,
          "video_bytes": int}  # fmt: skip


@dataclass
class Manifest:
    scene_hash: str
    scene: dict[str, Any]  # resolved settings, as Scene.resolved()
    seed: int
    frame_count: int
    video: str  # file name of the video in the output folder
    frames: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> sha256, seconds, loss, workers
    shots: list[int] = field(default_factory=list)  # frames per shot, in order
    warnings: list[str] = field(default_factory=list)  # retried or suspect jobs, left-out workers
    version: str = field(default_factory=version)  # the stylereel that rendered the frames
    frames_version: int = FRAMES_VERSION  # bumped whenever a change renders the same scene differently
    video_bytes: int = 0  # the finished video's size, once a render has finalised it

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        path = Path(folder) / MANIFEST
        if not path.is_file():
            return None
        text = path.read_text(errors="replace")  # a fault of the disk (OSError) is not the manifest's
        try:
            data = json.loads(text)
            _check_shape(data)
            data["frames"] = {int(k): v for k, v in data["frames"].items()}
            data.setdefault("version", "before 0.2")
            data.setdefault("frames_version", 0)
            return cls(**data)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"{path}: unreadable manifest ({e}); `stylereel render SCENE -o {folder} --repair` rebuilds "
                "it from the frames on disk, --fresh starts over"
            ) from None

    def save(self, folder: Path) -> None:
        write_text(Path(folder) / MANIFEST, self.text())

    def text(self) -> str:
        """The manifest as JSON, one frame a line. It is rewritten after every frame, on the thread
        beside the driver's: json's indented output runs in Python under the GIL, and grows with the
        frames; each compact line is made in C."""
        head = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "frames"}
        lines = [f'  "{t}": {json.dumps(r, sort_keys=True)}' for t, r in sorted(self.frames.items())]
        frames = "{\n" + ",\n".join(lines) + "\n }" if lines else "{}"
        return json.dumps(head, indent=1, sort_keys=True)[:-2] + f',\n "frames": {frames}\n}}\n'

    @property
    def size(self) -> tuple[int, int]:
        """The frames' (height, width); KeyError if the scene lacks them."""
        return self.scene["output.height"], self.scene["output.width"]

    @property
    def known_motion(self) -> bool:
        """Whether each frame's recorded step is the camera's exact motion: no shot starts from a video."""
        return not any(key.endswith("start.video") and value for key, value in self.scene.items())

    def pace(self, frames: Iterable[int], recent: int = 10) -> float | None:
        """Seconds per frame lately, over `frames` (complete ones): from when the last `recent` of them
        finished (so frames rendered side by side, cadence tweens and a slow first frame count as they
        run) since the render last resumed, else their own times."""
        records = [self.frames[t] for t in sorted(frames)]
        ends = [
            (r["finished"], _number(r.get("seconds")) or 0.0) for r in records if _number(r.get("finished"))
        ]
        ends = sorted(ends)[-recent:]
        # A render stopped and resumed later leaves a gap between two frames that the second one's own
        # time does not explain (the pause, the start-up): the pace is the one since.
        resumed = [i for i, ((a, _), (b, own)) in enumerate(itertools.pairwise(ends), 1)
                   if b - a > PAUSED * own + PAUSED_SLACK]  # fmt: skip
        finished = [f for f, _ in ends[resumed[-1] if resumed else 0 :]]
        if len(finished) >= 3 and finished[-1] > finished[0]:
            return (finished[-1] - finished[0]) / (len(finished) - 1)
        times = [r["seconds"] for r in records[-recent:] if isinstance(r.get("seconds"), int | float)]
        return sum(times) / len(times) if times else None


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


# A gap between two frames' ends longer than this many times the second one's own seconds, plus
# PAUSED_SLACK, means the render was not running between them (stopped, then resumed: 35 s here, the
# start-up included): a running render's frames end at most about their own time apart. Taken for a pause
# by mistake (a job re-run after a lost worker), a gap only leaves fewer frames to average.
PAUSED = 3
PAUSED_SLACK = 10.0


def _check_shape(data: Any) -> None:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, not {type(data).__name__}")
    for key, kind in _SHAPE.items():
        if key not in data:
            if key in ("version", "frames_version", "warnings", "shots", "video_bytes"):
                continue
            raise TypeError(f"no key {key!r}")
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise TypeError(f"{key}: expected {kind.__name__}, not {type(data[key]).__name__}")
    unknown = set(data) - set(_SHAPE)
    if unknown:
        raise TypeError(f"unknown keys {sorted(unknown)}")
    if not all(isinstance(r, dict) and k.isdigit() for k, r in data["frames"].items()):
        raise TypeError("frames: expected frame numbers with their records")
    if not all(isinstance(n, int) and n >= 0 for n in data.get("shots", [])):
        raise TypeError("shots: expected frame counts")
    if not video_name_ok(data["video"]):
        raise TypeError(f"video: {data['video']!r} is not a video file name inside the folder")


def scene_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences between two resolved scenes: 'key: old -> new'."""
    keys = sorted(set(old) | set(new))
    return [
        f"{k}: {old.get(k, '(unset)')} -> {new.get(k, '(unset)')}" for k in keys if old.get(k) != new.get(k)
    ]
