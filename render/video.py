"""Encoding frames to video with PyAV: BT.709 colour, tagged; fast start; an optional soundtrack."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .atomic import atomic_path

DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 17
DEFAULT_PRESET = "slow"  # as Deforum encodes; its cost over "medium": BENCHMARKS.md
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
           "placebo")  # fmt: skip
_PRESET_CODECS = ("libx264", "libx265")  # the others have no such presets: the preset is ignored
_CRF_CODECS = ("libx264", "libx265", "libsvtav1", "libvpx-vp9")
# Sound codecs each container takes, best first; the first this PyAV build has is used.
_AUDIO_CODECS = {"mp4": ("aac",), "mov": ("aac",), "webm": ("libopus", "libvorbis"),
                 "matroska": ("libopus", "libvorbis", "aac")}  # fmt: skip
AUDIO_BIT_RATE = 192_000
# FFmpeg's AVCOL_PRI_BT709, AVCOL_TRC_BT709 and AVCOL_SPC_BT709 (swscale's SWS_CS_ITU709) are all 1,
# AVCOL_RANGE_MPEG (limited, "tv") too: plain numbers, as older PyAV lacks enums for some of them.
_BT709 = 1
_LIMITED_RANGE = 1


def even_size(width: int, height: int) -> tuple[int, int]:
    """yuv420p needs even dimensions: round each down to even (at least 2)."""
    return max(2, width - width % 2), max(2, height - height % 2)


class VideoWriter:
    """Write uint8 (H, W, 3) frames to a video file, atomically.

    Colour is BT.709 in limited range, converted here and tagged in the stream: untagged HD video
    is taken for BT.709 by browsers and most players, and swscale's default matrix is BT.601,
    which shifts saturated colours (pure green 255 decodes as 215). MP4 and MOV put their index
    (moov) first, so a browser plays the file while it downloads. A soundtrack, if given, is
    encoded beside the frames as they come, cut at the video's end or padded with silence to it.

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
        preset: str = DEFAULT_PRESET,
        audio: Path | None = None,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"preset {preset!r} is not one of {', '.join(PRESETS)}")
        self.path = Path(path)
        self.size = even_size(width, height)
        self.fps = Fraction(fps)
        self.pix_fmt = pix_fmt
        self.frames = 0  # written so far
        self._closed = False
        self._soundtrack: Soundtrack | None = None
        self._reformatter = VideoReformatter()
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            fmt = _format_for(self.path)
            faststart = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
            self._container = av.open(str(tmp), "w", format=fmt, container_options=faststart)
            try:
                self._stream = self._container.add_stream(codec, rate=self.fps)
                self._stream.width, self._stream.height = self.size
                self._stream.pix_fmt = pix_fmt
                _tag_bt709(self._stream.codec_context)
                self._stream.options = {
                    **({"crf": str(crf)} if codec in _CRF_CODECS else {}),
                    **({"preset": preset} if codec in _PRESET_CODECS else {}),
                }
                if audio is not None:
                    self._soundtrack = Soundtrack(Path(audio), self._container)
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
        rgb = av.VideoFrame.from_ndarray(frame, format="rgb24")
        # swscale converts with the matrix and range named here; the stream is tagged to match
        yuv = self._reformatter.reformat(
            rgb, format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG"
        )
        self._container.mux(self._stream.encode(yuv))
        self.frames += 1
        if self._soundtrack is not None:
            self._container.mux(self._soundtrack.until(self.frames / self.fps))

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
                    if self._soundtrack is not None:
                        self._container.mux(self._soundtrack.finish(self.frames / self.fps))
            finally:
                try:
                    self._container.close()  # writes the trailer (and moves the index to the front)
                finally:
                    if self._soundtrack is not None:
                        self._soundtrack.close()
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


class Soundtrack:
    """A sound file encoded into a container's audio stream in step with its video.

    Encoding as the frames come (rather than remuxing at the end) writes the file once, with sound
    and pictures interleaved in time, so that a fast-start MP4 also plays its sound while it
    downloads; and a sound file that cannot be read fails before the render, not after it.
    """

    def __init__(self, source: Path, container: av.container.OutputContainer) -> None:
        self.source = source
        try:
            self._input = av.open(str(source))
        except (av.FFmpegError, OSError) as e:
            raise ValueError(f"{source}: cannot read it as sound ({e})") from None
        try:
            if not self._input.streams.audio:
                raise ValueError(f"{source}: has no sound stream")
            decoded = self._input.streams.audio[0]
            codec = _audio_codec(container.format.name)
            rates = av.Codec(codec, "w").audio_rates
            self.rate = decoded.rate if not rates or decoded.rate in rates else 48_000
            layout = "mono" if decoded.channels == 1 else "stereo"
            self.stream = container.add_stream(codec, rate=self.rate, layout=layout)
            self.stream.bit_rate = AUDIO_BIT_RATE
            self.stream.codec_context.open()  # now its frame size is known
            self._frame_size = self.stream.codec_context.frame_size  # 0: any size
            self._resampler = av.AudioResampler(format=self.stream.format, layout=layout, rate=self.rate)
            self._fifo = av.AudioFifo()
            self._decoded = self._input.decode(decoded)
        except BaseException:
            self._input.close()
            raise
        self._ended = False  # the sound file is used up; silence follows
        self.samples = 0  # handed to the encoder

    def until(self, seconds: Fraction) -> list[av.Packet]:
        """Encode the sound up to `seconds` into the movie, in whole encoder frames: the packets."""
        return self._encode(round(seconds * self.rate), last=False)

    def finish(self, seconds: Fraction) -> list[av.Packet]:
        """Encode the sound up to exactly `seconds`, the movie's length, and flush the encoder."""
        return self._encode(round(seconds * self.rate), last=True) + self.stream.encode(None)

    def close(self) -> None:
        self._input.close()

    def _encode(self, target: int, last: bool) -> list[av.Packet]:
        self._fill(target)
        packets = []
        while self.samples < target:
            n = min(self._frame_size or target - self.samples, target - self.samples)
            if n < self._frame_size and not last:
                break  # only an encoder's last frame may be short
            frame = self._fifo.read(n)
            frame.pts, frame.time_base = self.samples, Fraction(1, self.rate)
            packets += self.stream.encode(frame)
            self.samples += n
        return packets

    def _fill(self, target: int) -> None:
        """Have the samples up to `target` in the FIFO: from the file while it lasts, then silence."""
        while self.samples + self._fifo.samples < target:
            if self._ended:
                self._fifo.write(self._silence(target - self.samples - self._fifo.samples))
                continue
            try:
                frame = next(self._decoded, None)
            except av.FFmpegError as e:  # a file cut off or damaged part way: say which, not just why
                at = (self.samples + self._fifo.samples) / self.rate
                raise ValueError(f"{self.source}: cannot read the sound after {at:.1f} s ({e})") from None
            self._ended = frame is None
            for out in self._resampler.resample(frame):  # None drains the resampler
                out.pts = None  # the FIFO counts samples; silence has no timestamps to match
                self._fifo.write(out)

    def _silence(self, samples: int) -> av.AudioFrame:
        frame = av.AudioFrame(format=self.stream.format.name, layout=self.stream.layout.name, samples=samples)
        frame.sample_rate = self.rate
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        return frame


def _tag_bt709(context: av.video.codeccontext.VideoCodecContext) -> None:
    """Tag the stream as BT.709 primaries, transfer and matrix, limited range (what `write` converts to)."""
    context.color_primaries = context.color_trc = context.colorspace = _BT709
    context.color_range = _LIMITED_RANGE


def _format_for(path: Path) -> str | None:
    return {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov"}.get(path.suffix.lower())


def _audio_codec(container: str) -> str:
    candidates = _AUDIO_CODECS.get(container, ("aac",))
    for name in candidates:
        if name in av.codecs_available:
            return name
    raise ValueError(f"no sound encoder for {container} in this PyAV build (tried {', '.join(candidates)})")


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
