"""A long still's checkpoint: the canvas after its last finished round, so rerunning the command continues.

One PNG beside the output holds the canvas, the round and the job's key (in
text chunks): one file, so one atomic rename, and a killed run leaves either
the old checkpoint or the new one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin
from torch import Tensor

from .atomic import atomic_path
from .images import from_uint8, to_uint8


class Checkpoint:
    def __init__(self, output: Path, key: str) -> None:
        self.path = output.with_name(output.name + ".checkpoint.png")
        self.key = key

    def load(self) -> tuple[int, Tensor | None]:
        """(first round still to run, canvas after the round before it); (0, None) with no checkpoint."""
        if not self.path.is_file():
            return 0, None
        try:
            with Image.open(self.path) as img:
                img.load()
                key, done = img.text.get("stylereel-key"), int(img.text.get("stylereel-round", "-1"))
                pixels = np.asarray(img.convert("RGB"))
        except (OSError, ValueError):
            raise ValueError(f"{self.path}: unreadable checkpoint; remove it or pass --fresh") from None
        if key != self.key:
            raise ValueError(
                f"{self.path}: a checkpoint of a different still (other images or settings); "
                "remove it or pass --fresh"
            )
        return done + 1, from_uint8(pixels)

    def save(self, index: int, canvas: Tensor) -> None:
        info = PngImagePlugin.PngInfo()
        info.add_text("stylereel-key", self.key)
        info.add_text("stylereel-round", str(index))
        with atomic_path(self.path) as tmp:
            Image.fromarray(to_uint8(canvas)).save(tmp, format="PNG", pnginfo=info, compress_level=1)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def digest(*parts: object) -> str:
    """A key for what determines a picture: reprs of settings, and the bytes of image tensors."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.numpy().tobytes() if isinstance(part, Tensor) else repr(part).encode())
    return h.hexdigest()[:32]
