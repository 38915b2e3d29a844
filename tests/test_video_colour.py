"""The video as players see it: BT.709 colour, tagged; the index first; presets; a soundtrack."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from cluster.encode import encode_frames
from render.manifest import Manifest
from render.metrics import video_frames
from render.scene import SceneError, load_scene
from render.store import FrameStore
from render.video import VideoWriter

# Primaries, secondaries, greys and a natural green: the colours issue 16 saw shift.
PATTERN = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0),
           (0, 0, 0), (128, 128, 128), (255, 255, 255), (60, 160, 90)]  # fmt: skip
BLOCK = 64  # flat blocks far larger than a chroma sample (2x2), compared at their centres
UNSPECIFIED = 2  # AVCOL_SPC_UNSPECIFIED, AVCOL_PRI_UNSPECIFIED, AVCOL_TRC_UNSPECIFIED
BT709, LIMITED = 1, 1  # AVCOL_*_BT709; AVCOL_RANGE_MPEG


def _pattern(width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8: the PATTERN colours in BLOCK-wide columns, in rows, the rest mid grey."""
    image = np.full((height, width, 3), 128, np.uint8)
    for i, colour in enumerate(PATTERN):
        y, x = divmod(i * BLOCK, width - width % BLOCK)
        image[y * BLOCK : (y + 1) * BLOCK, x : x + BLOCK] = colour
    return image


def _centres(image: np.ndarray) -> np.ndarray:
    """(len(PATTERN), 3) int: each block's centre pixel."""
    width = image.shape[1] - image.shape[1] % BLOCK
    spots = [divmod(i * BLOCK, width) for i in range(len(PATTERN))]
    return np.array([image[y * BLOCK + BLOCK // 2, x + BLOCK // 2] for y, x in spots], int)


def _as_players_show(frame: av.VideoFrame) -> np.ndarray:
    """RGB as a browser shows the frame: through its tagged matrix and range; untagged HD as BT.709."""
    if frame.colorspace == UNSPECIFIED:
        return frame.to_ndarray(format="rgb24", src_colorspace="ITU709")
    return frame.to_ndarray(format="rgb24")


def _write(path: Path, image: np.ndarray, frames: int = 2, **options) -> Path:
    """`frames` frames of `image` at 12 fps."""
    with VideoWriter(path, image.shape[1], image.shape[0], 12, **options) as video:
        for _ in range(frames):
            video.write(image)
    return path


def _grey(size: int) -> np.ndarray:
    return np.full((size, size, 3), 90, np.uint8)


def test_the_issues_hd_pattern_decodes_as_written_in_players_and_in_stylereel(tmp_path):
    path = _write(tmp_path / "pattern.mp4", _pattern(1280, 720))
    with av.open(str(path)) as container:
        shown = _as_players_show(next(container.decode(video=0)))
    assert np.abs(_centres(shown) - PATTERN).max() <= 3, _centres(shown)
    read, _ = next(video_frames(path))  # how `stylereel metrics` and video input read a video
    assert np.abs(_centres(read) - PATTERN).max() <= 3, _centres(read)


CONTAINERS = [("libx264", ".mp4"), ("libx264", ".mkv"), ("libx264", ".mov"), ("libvpx-vp9", ".webm")]


@pytest.mark.parametrize(("codec", "suffix"), CONTAINERS)
def test_the_stream_is_tagged_bt709_in_limited_range(tmp_path, codec, suffix):
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV has no {codec}")
    path = _write(tmp_path / f"v{suffix}", _pattern(4 * BLOCK, 3 * BLOCK), codec=codec)
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        frame = next(container.decode(video=0))
    tags = (context.color_primaries, context.color_trc, context.colorspace, context.color_range)
    assert tags == (BT709, BT709, BT709, LIMITED)  # what ffprobe shows as bt709/bt709/bt709/tv
    assert (frame.colorspace, frame.color_range) == (BT709, LIMITED)
    assert np.abs(_centres(frame.to_ndarray(format="rgb24")) - PATTERN).max() <= 3


def _top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4/MOV file's top-level boxes, in order (each: 4-byte size, 4-byte type)."""
    data, offset, boxes = path.read_bytes(), 0, []
    while offset + 8 <= len(data):
        size, kind = int.from_bytes(data[offset : offset + 4], "big"), data[offset + 4 : offset + 8]
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        boxes.append(kind.decode("latin-1"))
        offset = len(data) if size == 0 else offset + size  # 0: the box runs to the end
    return boxes


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_the_index_comes_before_the_pictures_so_a_browser_plays_while_downloading(tmp_path, suffix):
    boxes = _top_level_boxes(_write(tmp_path / f"v{suffix}", _grey(64), frames=6))
    assert "moov" in boxes and "mdat" in boxes, boxes
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_the_preset_reaches_x264_and_an_unknown_one_is_refused(tmp_path):
    fast = _write(
        tmp_path / "fast.mp4", _pattern(4 * BLOCK, 3 * BLOCK), frames=6, preset="ultrafast"
    ).read_bytes()
    slow = _write(
        tmp_path / "slow.mp4", _pattern(4 * BLOCK, 3 * BLOCK), frames=6, preset="veryslow"
    ).read_bytes()
    assert fast != slow
    with pytest.raises(ValueError, match="'fastest' is not one of ultrafast, .*placebo"):
        VideoWriter(tmp_path / "bad.mp4", 64, 64, preset="fastest")
    assert list(tmp_path.glob(".bad.*")) == []


RATE = 44_100


def _sine(path: Path, seconds: float, layout: str = "mono") -> Path:
    """A 440 Hz tone of `seconds` as a 16-bit WAV file, written with PyAV."""
    channels = 1 if layout == "mono" else 2
    t = np.arange(round(seconds * RATE)) / RATE
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    interleaved = np.repeat(tone, channels)[None]  # (1, samples * channels): s16 is packed
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE, layout=layout)
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
        frame.sample_rate, frame.pts = RATE, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _sound(path: Path) -> tuple[np.ndarray, int, int]:
    """A video's sound as mono float samples, its rate and its codec's frame size in samples."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        mono = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        frames = [*(out for f in container.decode(stream) for out in mono.resample(f)), *mono.resample(None)]
        frame_size = stream.codec_context.frame_size or 960  # opus does not say: 20 ms at 48 kHz
        return np.concatenate([f.to_ndarray()[0] for f in frames]), stream.rate, frame_size


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2)))


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
@pytest.mark.parametrize(("source_seconds", "layout"), [(0.5, "mono"), (3.0, "stereo")])
def test_a_soundtrack_is_cut_or_padded_with_silence_to_the_movie(tmp_path, suffix, source_seconds, layout):
    codec = "libvpx-vp9" if suffix == ".webm" else "libx264"
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV has no {codec}")
    source = _sine(tmp_path / "tone.wav", source_seconds, layout)
    path = _write(tmp_path / f"v{suffix}", _grey(32), frames=18, codec=codec, audio=source)  # 1.5 s at 12 fps
    samples, rate, frame_size = _sound(path)
    assert abs(len(samples) - 1.5 * rate) <= frame_size, (len(samples), rate)
    assert _rms(samples[: rate // 5]) > 0.1  # the tone from the start (a full-scale sine: 0.21)
    if source_seconds < 1.5:  # silence after the tone, to the end
        assert _rms(samples[round(0.6 * rate) : round(1.45 * rate)]) < 0.01
    else:  # the tone to the end, then cut
        assert _rms(samples[round(1.2 * rate) : round(1.45 * rate)]) > 0.1


def test_encode_takes_the_preset_and_soundtrack_from_the_manifest(tmp_path):
    store = FrameStore(tmp_path)
    frames = {t: {"sha256": store.write(t, _grey(32))} for t in range(6)}
    scene = {"output.width": 32, "output.height": 32, "output.fps": "12", "output.codec": "libx264",
             "output.crf": 17, "output.preset": "ultrafast",
             "output.audio": str(_sine(tmp_path / "tone.wav", 2.0))}  # fmt: skip
    video, count = encode_frames(tmp_path, Manifest("hash", scene, 0, 6, "s.mp4", frames=frames, shots=[6]))
    samples, rate, frame_size = _sound(video)
    assert abs(len(samples) - 0.5 * rate) <= frame_size


def _scene(folder: Path, output: str) -> Path:
    Image.new("RGB", (16, 16), (200, 40, 40)).save(folder / "style.png")
    path = folder / "s.toml"
    path.write_text(f'[styles]\na = "style.png"\n\n[output]\nframes = 2\n{output}\n')
    return path


def test_a_scene_takes_a_preset_and_a_soundtrack_beside_it(tmp_path):
    _sine(tmp_path / "tone.wav", 0.5)
    scene = load_scene(_scene(tmp_path, 'preset = "veryslow"\naudio = "tone.wav"'))
    assert (scene.output.preset, scene.output.audio) == ("veryslow", "tone.wav")
    assert load_scene(_scene(tmp_path, "")).output.preset == "slow"


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ('preset = "fastest"', r"output\.preset: 'fastest' is not one of ultrafast, .*placebo$"),
        ('audio = "missing.wav"', r"output\.audio: missing\.wav: no such file$"),
    ],
)
def test_a_scene_with_a_bad_preset_or_missing_soundtrack_is_refused_naming_the_key(tmp_path, output, message):
    with pytest.raises(SceneError, match=message) as refused:
        load_scene(_scene(tmp_path, output))
    assert "\n" not in str(refused.value)


def test_a_soundtrack_that_is_not_sound_is_refused_before_any_frame(tmp_path):
    (tmp_path / "notes.txt").write_text("not a sound file")
    with pytest.raises(ValueError, match="notes.txt: cannot read it as sound"):
        VideoWriter(tmp_path / "v.mp4", 32, 32, audio=tmp_path / "notes.txt")
    assert list(tmp_path.glob(".v.*")) == []
