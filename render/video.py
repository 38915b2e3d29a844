"""Encoding frames to video with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from .atomic import atomic_path

DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 17


def even_size(width: int, height: int) -> tuple[int, int]:
    """yuv420p needs even dimensions: round each down to even (at least 2)."""
    return max(2, width - width % 2), max(2, height - height % 2)


class VideoWriter:
    """Write uint8 (H, W, 3) frames to a video file, atomically.

    The file appears under its name only when the writer is closed without
    error after at least one frame; until then it is a temporary file beside it.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: Fraction | int = 24,
        codec: str = DEFAULT_CODEC,
        crf: int = DEFAULT_CRF,
        pix_fmt: str = "yuv420p",
    ) -> None:
        self.path = Path(path)
        self.size = even_size(width, height)
        self.frames = 0  # written so far
        self._closed = False
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._container = av.open(str(tmp), "w", format=_format_for(self.path))
            try:
                self._stream = self._container.add_stream(codec, rate=Fraction(fps))
                self._stream.width, self._stream.height = self.size
                self._stream.pix_fmt = pix_fmt
                self._stream.options = (
                    {"crf": str(crf)} if codec in ("libx264", "libx265", "libsvtav1", "libvpx-vp9") else {}
                )
            except BaseException:
                self._container.close()
                raise
        except BaseException as e:
            self._closed = True
            self._discard(e)
            raise

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 frame; it is cropped to the even stream size."""
        w, h = self.size
        frame = np.ascontiguousarray(frame[:h, :w])
        if frame.shape[:2] != (h, w):
            raise ValueError(f"frame of {frame.shape[1]}x{frame.shape[0]} does not fit a {w}x{h} video")
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        self._container.mux(self._stream.encode(video_frame))
        self.frames += 1

    def close(self, error: BaseException | None = None) -> None:
        """Finish the video and give it its name. Instead remove it on `error` (the caller's failure,
        which the caller raises), when no frame was written, or when finishing fails (an fps the
        container cannot time, say), which then propagates: the file already under the name, if any,
        stays as it was. A second call does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            try:
                if error is None and self.frames:
                    self._container.mux(self._stream.encode(None))  # flush the encoder
            finally:
                self._container.close()  # writes the trailer
        except BaseException as e:
            if error is None:
                self._discard(e)
                raise
            error.add_note(f"closing {self.path} failed too: {e!r}")
        if error is None and self.frames:
            self._atomic.__exit__(None, None, None)  # rename over the name
        else:
            self._discard(error or ValueError("no frames were written"))

    def _discard(self, why: BaseException) -> None:
        """Remove the temporary file (atomic_path does, given the failure)."""
        self._atomic.__exit__(type(why), why, why.__traceback__)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close(error)


def _format_for(path: Path) -> str | None:
    return {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov"}.get(path.suffix.lower())


def count_frames(path: Path) -> int:
    """Decode a video and count its frames."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def playable_frames(path: Path) -> int:
    """Frames of the video at `path`; 0 if there is none there or it does not decode."""
    try:
        return count_frames(path)
    except (av.FFmpegError, OSError, IndexError):  # IndexError: a file without a video stream
        return 0
