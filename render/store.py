"""The frame store: `frames/000000.png ...` in an output folder. The files are the truth."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .atomic import atomic_path
from .folder import FRAMES

# Fast lossless PNG: OpenCV's libpng with zlib's run-length strategy writes a 1080p frame in about 60 %
# of the time Pillow takes at its fastest level, and 5-20 % smaller (bench/cluster.py's driver figures).
PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


class FrameStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder) / FRAMES

    def path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.png"

    def write(self, index: int, frame: np.ndarray) -> str:
        """Write an (H, W, 3) uint8 frame atomically; return its sha256."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ok, png = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), PNG_FAST)
        if not ok:
            raise OSError(f"{self.path(index)}: could not encode the frame")
        data = png.tobytes()
        with atomic_path(self.path(index)) as tmp:
            tmp.write_bytes(data)
        return _sha256(data)

    def sha256(self, index: int) -> str:
        """The hash of the frame's file as it is on disk (OSError if it is missing)."""
        return _sha256(self.path(index).read_bytes())

    def read(
        self, index: int, size: tuple[int, int] | None = None, sha256: str | None = None
    ) -> np.ndarray | None:
        """The frame as (H, W, 3) uint8, or None if it is missing, corrupt, of another (H, W) or hash."""
        path = self.path(index)
        try:
            data = path.read_bytes()
            if sha256 is not None and _sha256(data) != sha256:
                return None
            with Image.open(path) as img:
                img.load()
                frame = np.asarray(img.convert("RGB"))
        except (OSError, SyntaxError, ValueError):
            return None
        if size is not None and frame.shape[:2] != tuple(size):
            return None
        return frame

    def indices(self) -> list[int]:
        """Indices of the frame files present (not checked)."""
        if not self.folder.is_dir():
            return []
        return sorted(int(p.stem) for p in self.folder.glob("[0-9]" * 6 + ".png"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
