"""The render manifest: an index of the frames on disk, the resolved scene they came from, and timings.

Written atomically after every frame. The frames on disk stay the truth:
a frame counts as done only if its file is there, decodes, and matches the
hash recorded here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from render.atomic import write_text

NAME = "manifest.json"


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

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        path = Path(folder) / NAME
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            data["frames"] = {int(k): v for k, v in data.get("frames", {}).items()}
            return cls(**data)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{path}: unreadable manifest ({e}); render again with --fresh") from None

    def save(self, folder: Path) -> None:
        write_text(Path(folder) / NAME, self.text())

    def text(self) -> str:
        """The manifest as JSON, one frame a line. It is rewritten after every frame, on the thread
        beside the driver's: json's indented output runs in Python under the GIL (0.4 s at 10,000
        frames), each compact line in C."""
        head = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "frames"}
        lines = [f'  "{t}": {json.dumps(r, sort_keys=True)}' for t, r in sorted(self.frames.items())]
        frames = "{\n" + ",\n".join(lines) + "\n }" if lines else "{}"
        return json.dumps(head, indent=1, sort_keys=True)[:-2] + f',\n "frames": {frames}\n}}\n'


def scene_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences between two resolved scenes: 'key: old -> new'."""
    keys = sorted(set(old) | set(new))
    return [
        f"{k}: {old.get(k, '(unset)')} -> {new.get(k, '(unset)')}" for k in keys if old.get(k) != new.get(k)
    ]
