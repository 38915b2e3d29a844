"""Scene files: TOML in, a validated, typed `Scene` out, and a JSON Schema of the format.

Each section is a frozen dataclass; each field carries its kind, its
constraints and a one-line doc in `metadata`, which drives both validation
and `stylereel schema`. Errors name the file and the key, and are one line:
user text in them has its control characters escaped. Every number is
finite and bounded, so nothing a scene says can hang the planner.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import tomllib
from dataclasses import MISSING, dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from .fields import option
from .images import resolve
from .schedule import Schedule, ScheduleError, max_f
from .text import escaped
from .tiles import MIN_SPAN
from .video import DEFAULT_PRESET, PRESETS

CODECS = ("libx264", "libx265", "libsvtav1", "libvpx-vp9")
MAX_SIZE = 16384  # pixels on a side; images.MAX_PIXELS refuses larger inputs too
MAX_FRAMES = 1_000_000  # in a scene: over 11 hours at 24 fps
MAX_ITERATIONS = 100_000  # of one frame
MAX_STYLES = 64
MAX_CHARS = 10_000_000  # of a scene file


class SceneError(ValueError):
    """A scene file that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class Output:
    width: int = option(256, "int", "Frame width in pixels (even).", min=16, max=MAX_SIZE, even=True)
    height: int = option(144, "int", "Frame height in pixels (even).", min=16, max=MAX_SIZE, even=True)
    fps: str = option(
        "24", "fraction", "Frames per second: a number or a fraction such as 24000/1001.", min=0.01, max=1000
    )
    frames: int | None = option(None, "int", "Number of frames (or give seconds).", min=1, max=MAX_FRAMES)
    seconds: float | None = option(
        None, "float", "Length in seconds (or give frames).", min=0, exclusive=True
    )
    codec: str = option("libx264", "choice", "Video codec.", choices=CODECS)
    crf: int = option(17, "int", "Constant rate factor: lower is better quality.", min=0, max=63)
    pix_fmt: str = option("yuv420p", "choice", "Pixel format of the video.", choices=("yuv420p",))
    preset: str = option(
        DEFAULT_PRESET, "choice", "x264/x265 preset: slower ones compress better; other codecs ignore it.",
        choices=PRESETS,
    )  # fmt: skip
    audio: str | None = option(
        None, "str", "Soundtrack: a sound file (relative to the scene), cut or padded with silence to fit."
    )
    tile: int = option(
        512, "int", "Frames larger than this are rendered in overlapping tiles of this size.",
        min=64, max=MAX_SIZE,
    )  # fmt: skip
    tile_overlap: int = option(64, "int", "Overlap of neighbouring tiles, in pixels.", min=0)


@dataclass(frozen=True)
class Start:
    content: str | None = option(
        None, "str", "Content image of frame 0 (path or builtin:NAME); none: pure texture."
    )
    iterations: int = option(
        60, "int", "Iterations of frame 0 at its final scale (coarser scales get more).",
        min=1, max=MAX_ITERATIONS,
    )  # fmt: skip
    style: str | None = option(
        None, "str", "Style of frame 0; default: the drift's (or [frames]) style at 0."
    )
    video: str | None = option(
        None, "str", "A video whose frames are the content of the shot's frames, motion by optical flow."
    )


@dataclass(frozen=True)
class Frames:
    # Bounds on a schedule hold for its value at every frame from `first_frame` (frame 0 has start's).
    iterations: str = option(
        "12", "schedule", "Iterations of each later frame.", max=MAX_ITERATIONS, first_frame=1
    )
    content: str = option(
        "feedback", "choice", "Content of later frames.", choices=("feedback", "fixed", "none")
    )
    style: str | None = option(
        None, "str", "Style of every frame when there is no [drift]; default: the first."
    )
    content_weight: str = option("5", "schedule", "Content loss weight.")
    style_weight: str = option("100", "schedule", "Style loss weight.")
    tv_weight: str = option("0", "schedule", "Total-variation weight.")
    temporal_weight: str = option(
        "30",
        "schedule",
        "Temporal loss weight: keep the pixels the camera carries over from the previous frame.",
    )
    interpolation: str = option("linear", "choice", "Between keyframes.", choices=("linear", "cubic"))
    cadence: int = option(
        1, "int", "Optimise every Nth frame; warp the two keyframes around the others.",
        min=1, max=MAX_FRAMES,
    )  # fmt: skip
    # Drift control for long feedback loops.
    color_coherence: float = option(
        0.25,
        "float",
        "Pull each frame's LAB mean and covariance this far (0..1) toward color_reference's.",
        min=0,
        max=1,
    )
    color_reference: str = option(
        "style", "choice", "Colour reference: the current style blend, or the shot's first frame.",
        choices=("style", "first"),
    )  # fmt: skip
    preserve_colors: bool = option(False, "bool", "Luminance-only transfer: keep the content's colours.")
    average: float = option(
        0.0, "float", "EMA decay of the iterates (0: off); the average is the frame.", min=0, max=0.99
    )
    anchor: float = option(
        0.0, "float", "Share (0..1) of start.content, seen through the camera, in the feedback content.",
        min=0, max=1,
    )  # fmt: skip


@dataclass(frozen=True)
class Drift:
    styles: tuple[str, ...] = option(
        (), "names", "Style names in rotation order: 1, 2, 3, ..., 1 again.", max_items=MAX_STYLES
    )
    frames_per_style: int = option(24, "int", "Frames each style leads for.", min=1, max=MAX_FRAMES)
    crossfade: int = option(
        8, "int", "Frames over which blend weights move to the next style.", min=0, max=MAX_FRAMES
    )


@dataclass(frozen=True)
class CameraSchedules:
    zoom: str = option("1", "schedule", "Zoom per frame (> 1 moves in).")
    angle: str = option("0", "schedule", "Rotation per frame in degrees, counter-clockwise.")
    translate_x: str = option("0", "schedule", "Shift per frame in pixels, + right.")
    translate_y: str = option("0", "schedule", "Shift per frame in pixels, + down.")
    center_x: str = option("0.5", "schedule", "Transform centre, fraction of the width.")
    center_y: str = option("0.5", "schedule", "Transform centre, fraction of the height.")
    border: str = option(
        "reflection", "choice", "Fill for pixels from outside the frame.", choices=("reflection", "content")
    )


@dataclass(frozen=True)
class Patches:
    """Every frame as stochastic multiscale patches (`render.patches` renders them)."""

    size: int = option(
        256, "int", "Working size: the long side the network sees of each patch.", min=MIN_SPAN, max=16384
    )
    rounds: int = option(
        8, "int", "Passes over the whole picture, each at a randomly drawn scale.", min=1, max=1000
    )
    steps: int = option(10, "int", "Optimiser steps per patch.", min=1, max=100_000)
    scale_bias: float = option(
        0.5, "float", "Chance of each doubling of a patch's region (binomial p): 0 keeps patches at full "
        "resolution, 1 makes every patch the whole picture.", min=0, max=1,
    )  # fmt: skip
    localized: bool = option(
        False, "bool", "Take each patch's style from the matching part of the style image."
    )

    def __post_init__(self) -> None:
        for name in ("size", "rounds", "steps"):
            low = MIN_SPAN if name == "size" else 1
            if getattr(self, name) < low:
                raise ValueError(
                    f"patches.{name} (--patch-{name}) must be at least {low}, not {getattr(self, name)}"
                )
        if not 0 <= self.scale_bias <= 1:
            raise ValueError(
                f"patches.scale_bias (--patch-scale-bias) must be in [0, 1], not {self.scale_bias}"
            )


SECTIONS = {"output": Output, "start": Start, "frames": Frames, "drift": Drift, "camera": CameraSchedules,
            "patches": Patches}  # fmt: skip
OPTIONAL = ("drift", "patches")  # sections that are None when absent
SHOT_SECTIONS = ("start", "frames", "drift", "camera")


@dataclass(frozen=True)
class Shot:
    """An independent stretch of frames: its own start, camera and styles, rendered as its own chain."""

    length: int
    start: Start
    frames: Frames
    drift: Drift | None
    camera: CameraSchedules


@dataclass(frozen=True)
class Scene:
    path: Path
    seed: int
    output: Output
    styles: dict[str, str]  # name -> image source, as written
    start: Start
    frames: Frames
    drift: Drift | None
    camera: CameraSchedules
    shots: tuple[Shot, ...] = ()  # from [[shot]] tables, or one shot made of the sections above
    patches: Patches | None = None  # every frame as stochastic multiscale patches

    @property
    def base(self) -> Path:
        return self.path.parent

    @property
    def frame_count(self) -> int:
        return sum(shot.length for shot in self.shots)

    @property
    def stem(self) -> str:
        return self.path.stem

    def resolved(self) -> dict[str, Any]:
        """Every setting with its default, and a hash of each image file: what the frames depend on."""
        out: dict[str, Any] = {"seed": self.seed}
        for name in SECTIONS:
            section = getattr(self, "camera" if name == "camera" else name)
            for f in fields(section) if section is not None else ():
                value = getattr(section, f.name)
                out[f"{name}.{f.name}"] = list(value) if isinstance(value, tuple) else value
        for i, shot in enumerate(self.shots if len(self.shots) > 1 else ()):
            out[f"shot.{i}.length"] = shot.length
            for name in SHOT_SECTIONS:
                section = getattr(shot, name)
                for f in fields(section) if section is not None else ():
                    value = getattr(section, f.name)
                    out[f"shot.{i}.{name}.{f.name}"] = list(value) if isinstance(value, tuple) else value
            for key in ("content", "video"):
                if getattr(shot.start, key):
                    out[f"shot.{i}.start.{key}"] = _image_id(getattr(shot.start, key), self.base)
        for name, source in self.styles.items():
            out[f"styles.{name}"] = _image_id(source, self.base)
        for key in ("content", "video"):
            if getattr(self.start, key):
                out[f"start.{key}"] = _image_id(getattr(self.start, key), self.base)
        if self.output.audio:  # where `encode` finds it again, from any folder
            out["output.audio"] = str(resolve(self.output.audio, self.base).resolve())
        return out

    def digest(self) -> str:
        """What the frames depend on: the resolved scene without the keys that only encode the video
        (a new codec, preset or soundtrack re-encodes the frames already rendered)."""
        frames = {k: v for k, v in self.resolved().items() if k not in VIDEO_ONLY}
        return hashlib.sha256(json.dumps(frames, sort_keys=True).encode()).hexdigest()


VIDEO_ONLY = ("output.codec", "output.crf", "output.pix_fmt", "output.preset", "output.audio")


def _image_id(source: str, base: Path) -> str:
    path = resolve(source, base)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"
    return f"{source} sha256:{digest}"


def load_scene(path: Path) -> Scene:
    """Read and validate a scene file; raise SceneError naming file and key."""
    path = Path(path)
    where = escaped(str(path))
    try:
        with path.open() as file:
            text = file.read(MAX_CHARS + 1)
    except FileNotFoundError:
        raise SceneError(f"{where}: no such scene file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SceneError(f"{where}: cannot read ({escaped(str(e))})") from None
    if len(text) > MAX_CHARS:
        raise SceneError(f"{where}: longer than {MAX_CHARS} characters; a scene file is a page of TOML")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SceneError(f"{where}: not valid TOML ({escaped(str(e))})") from None
    except (RecursionError, MemoryError):  # tomllib recurses once per level of nested arrays or tables
        raise SceneError(f"{where}: not valid TOML (arrays or tables nested too deeply)") from None
    return parse_scene(data, path)


def parse_scene(data: dict[str, Any], path: Path) -> Scene:
    where = escaped(str(path))
    _no_unknown(data, ["seed", "styles", "shot", *SECTIONS], where, "")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SceneError(f"{where}: seed: expected a whole number >= 0, got {seed!r}")
    styles = data.get("styles", {})
    if not isinstance(styles, dict) or not all(isinstance(v, str) for v in styles.values()):
        raise SceneError(f'{where}: [styles]: expected name = "image" entries')
    if len(styles) > MAX_STYLES:
        raise SceneError(f"{where}: [styles]: at most {MAX_STYLES} styles, got {len(styles)}")
    sections = {}
    for name, cls in SECTIONS.items():
        raw = data.get(name)
        if raw is not None and not isinstance(raw, dict):
            raise SceneError(f"{where}: [{name}] must be a table")
        sections[name] = None if (raw is None and name in OPTIONAL) else _section(raw or {}, cls, where, name)
    o = sections["output"]
    raw_shots = data.get("shot", [])
    if not isinstance(raw_shots, list) or not all(isinstance(x, dict) for x in raw_shots):
        raise SceneError(f"{where}: shot: use [[shot]] tables")
    if raw_shots and (o.frames is not None or o.seconds is not None):
        raise SceneError(
            f"{where}: output: with [[shot]] tables the length is each shot's length; drop frames/seconds"
        )
    if not raw_shots and (o.frames is None) == (o.seconds is None):
        raise SceneError(f"{where}: output: give exactly one of frames or seconds")
    if raw_shots:
        shots = tuple(_shot(data, raw, where, i) for i, raw in enumerate(raw_shots))
        total = sum(shot.length for shot in shots)
        if total > MAX_FRAMES:
            raise SceneError(f"{where}: shot: the lengths add up to {total} frames; at most {MAX_FRAMES}")
    else:
        length = o.frames if o.frames is not None else _seconds_to_frames(o.seconds, o.fps, where)
        shots = (Shot(length, sections["start"], sections["frames"], sections["drift"], sections["camera"]),)
    scene = Scene(path, seed, o, styles, sections["start"], sections["frames"], sections["drift"],
                  sections["camera"], shots, sections["patches"])  # fmt: skip
    _check_scene(scene, where)
    return scene


def _seconds_to_frames(seconds: float, fps: str, where: str) -> int:
    if seconds * float(Fraction(fps)) > MAX_FRAMES:  # a float: a huge product is inf, not a slow integer
        raise SceneError(
            f"{where}: output.seconds: {seconds:g} s at {float(Fraction(fps)):g} fps is more than "
            f"{MAX_FRAMES} frames"
        )
    return max(1, round(seconds * Fraction(fps)))


def _shot(data: dict[str, Any], raw: dict[str, Any], where: str, index: int) -> Shot:
    """A [[shot]] table: its sections are merged key by key over the scene's own."""
    prefix = f"shot.{index}"
    _no_unknown(raw, ["length", *SHOT_SECTIONS], where, f"{prefix}.")
    length = raw.get("length")
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_FRAMES:
        raise SceneError(
            f"{where}: {prefix}.length: expected a whole number of frames from 1 to {MAX_FRAMES}, "
            f"got {length!r}"
        )
    parts = {}
    for name in SHOT_SECTIONS:
        own, base = raw.get(name), data.get(name)
        if own is not None and not isinstance(own, dict):
            raise SceneError(f"{where}: {prefix}.{name} must be a table")
        merged = {**(base or {}), **(own or {})}
        absent = name == "drift" and own is None and base is None
        parts[name] = None if absent else _section(merged, SECTIONS[name], where, f"{prefix}.{name}")
    return Shot(length, **parts)


def _no_unknown(data: dict, known: list[str], where: str, prefix: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else f"; known: {', '.join(known)}"
            raise SceneError(f"{where}: unknown key {prefix}{escaped(key)}{hint}")


def _section(raw: dict[str, Any], cls: type, where: str, name: str) -> Any:
    _no_unknown(raw, [f.name for f in fields(cls)], where, f"{name}.")
    values = {}
    for f in fields(cls):
        if f.name in raw:
            values[f.name] = _value(raw[f.name], f.metadata, f"{where}: {name}.{f.name}")
    return cls(**values)


def _value(value: Any, meta: dict, where: str) -> Any:
    """`value` checked against a field's metadata: its kind, `choices`, `min` (`exclusive` makes it
    strict), `max`, `max_items` and `even`. A schedule's bounds hold per frame: `_check_schedules`."""
    kind = meta["kind"]
    if isinstance(value, float) and not math.isfinite(value):
        raise SceneError(f"{where}: must be a finite number, got {value}")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SceneError(f"{where}: expected a whole number, got {value!r}")
        _bounds(value, meta, where, str(value))
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SceneError(f"{where}: expected a number, got {value!r}")
        _bounds(value, meta, where, str(value))
    elif kind == "bool":
        if not isinstance(value, bool):
            raise SceneError(f"{where}: expected true or false, got {value!r}")
    elif kind in ("str", "choice"):
        if not isinstance(value, str):
            raise SceneError(f"{where}: expected a string, got {value!r}")
        if kind == "choice" and value not in meta["choices"]:
            raise SceneError(f"{where}: {value!r} is not one of {', '.join(meta['choices'])}")
    elif kind == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SceneError(f"{where}: expected a list of style names, got {value!r}")
        if len(value) > meta.get("max_items", len(value)):
            raise SceneError(f"{where}: at most {meta['max_items']} names, got {len(value)}")
        value = tuple(value)
    elif kind == "fraction":
        _bounds(_rate(value, where), meta, where, repr(value))
        value = str(value)
    elif kind == "schedule":
        try:
            Schedule.parse(value)
        except ScheduleError as e:
            raise SceneError(f"{where}: {e}") from None
        value = str(value)
    if meta.get("even") and value % 2:
        raise SceneError(f"{where}: must be even (the video is yuv420p), got {value}")
    return value


def _rate(value: Any, where: str) -> float:
    """A number or a fraction such as 24000/1001, as a float. Fraction expands an exponent exactly
    ("1e-9999999" takes minutes): it only sees short text whose float (which just overflows or
    underflows) is far from 0 and infinity; the bounds refuse the rest."""
    text = str(value)
    try:
        if len(text) > 40:
            raise ValueError
        number = float(Fraction(text)) if "/" in text else float(text)
        if math.isfinite(number) and 1e-300 < abs(number) < 1e300:
            Fraction(text)  # what readers of the scene will parse
    except (ValueError, ZeroDivisionError, OverflowError):
        raise SceneError(
            f"{where}: expected a number or a fraction such as 24000/1001, got {value!r}"
        ) from None
    if not math.isfinite(number):
        raise SceneError(f"{where}: must be a finite number, got {value!r}")
    return number


def _bounds(number: float, meta: dict, where: str, shown: str) -> None:
    if problem := _out_of_bounds(number, meta):
        raise SceneError(f"{where}: {problem}, got {shown}")


def _out_of_bounds(number: float, meta: dict) -> str | None:
    """Which of a field's `min` (strict if `exclusive`) and `max` `number` breaks, if any."""
    low, high = meta.get("min"), meta.get("max")
    if low is not None and (number < low or (meta.get("exclusive") and number == low)):
        return f"must be {'>' if meta.get('exclusive') else '>='} {low}"
    if high is not None and number > high:
        return f"must be <= {high}"
    return None


def _check_scene(scene: Scene, where: str) -> None:
    if not scene.styles:
        raise SceneError(f"{where}: [styles]: name at least one style image")
    for key, source in ((f"styles.{escaped(n)}", s) for n, s in scene.styles.items()):
        _check_image(scene, key, source, where)
    for i, shot in enumerate(scene.shots):
        prefix = f"shot.{i}." if len(scene.shots) > 1 else ""
        named = [(f"{prefix}start.style", shot.start.style), (f"{prefix}frames.style", shot.frames.style)]
        if shot.drift is not None:
            if not shot.drift.styles:
                raise SceneError(f"{where}: {prefix}drift.styles: list at least one style name")
            named += [(f"{prefix}drift.styles", s) for s in shot.drift.styles]
            if shot.drift.crossfade > shot.drift.frames_per_style:
                raise SceneError(f"{where}: {prefix}drift.crossfade: must be <= drift.frames_per_style")
        for key, name in named:
            if name is not None and name not in scene.styles:
                close = difflib.get_close_matches(name, list(scene.styles), n=1) if len(name) < 100 else []
                known = close[0] if close else ", ".join(scene.styles)
                hint = f"; did you mean {escaped(known)}?" if close else f"; styles: {escaped(known)}"
                raise SceneError(f"{where}: {key}: no style named {name!r}{hint}")
        if shot.frames.content == "fixed" and shot.start.content is None:
            raise SceneError(f"{where}: {prefix}frames.content: 'fixed' needs start.content")
        if shot.frames.anchor > 0 and (shot.start.content is None or shot.frames.content != "feedback"):
            raise SceneError(f"{where}: {prefix}frames.anchor: needs start.content and feedback content")
        if shot.start.content is not None:
            _check_image(scene, f"{prefix}start.content", shot.start.content, where)
        if shot.start.video is not None:
            _check_image(scene, f"{prefix}start.video", shot.start.video, where)
            clash = [k for k, bad in (("start.content", shot.start.content is not None),
                                      ("frames.cadence", shot.frames.cadence > 1),
                                      ("frames.anchor", shot.frames.anchor > 0),
                                      ("camera", shot.camera != CameraSchedules())) if bad]  # fmt: skip
            if clash:
                raise SceneError(f"{where}: {prefix}start.video: the video replaces {clash[0]}; leave it out")
        _check_schedules(shot, where, prefix)
    o = scene.output
    if not 0 <= o.tile_overlap < o.tile // 2:
        raise SceneError(f"{where}: output.tile_overlap: must be below half of output.tile ({o.tile // 2})")
    if o.audio is not None:
        _check_image(scene, "output.audio", o.audio, where)  # a file, found as images are


def _check_schedules(shot: Shot, where: str, prefix: str) -> None:
    """A schedule's `min` and `max` hold at every frame of the shot from its `first_frame`: its values
    depend on t and the shot's length. Errors read as plan_scene's."""
    for name in ("frames", "camera"):
        section = getattr(shot, name)
        for f in fields(section):
            if f.metadata["kind"] != "schedule" or not {"min", "max"} & set(f.metadata):
                continue
            key = f"{prefix}{name}.{f.name}"
            schedule = Schedule.parse(getattr(section, f.name), shot.frames.interpolation)
            frames = range(f.metadata.get("first_frame", 0), shot.length)
            for t in frames[:1] if schedule.constant else frames:
                try:
                    number = schedule(t, max_f(shot.length))
                except ScheduleError as e:
                    raise SceneError(f"{where}: {key}: frame {t}: {e}") from None
                if problem := _out_of_bounds(number, f.metadata):
                    raise SceneError(f"{where}: {key}: frame {t}: {problem}, got {number:g}")


def _check_image(scene: Scene, key: str, source: str, where: str) -> None:
    try:
        path = resolve(source, scene.base)
    except ValueError as e:
        raise SceneError(f"{where}: {key}: {escaped(str(e))}") from None
    if not path.is_file():
        raise SceneError(f"{where}: {key}: {escaped(source)}: no such file")


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the scene format, for editors (e.g. with Taplo or Even Better TOML)."""
    kinds = {
        "int": {"type": "integer"},
        "float": {"type": "number"},
        "bool": {"type": "boolean"},
        "str": {"type": "string"},
        "fraction": {"type": ["number", "string"]},
        "schedule": {
            "type": ["number", "string"],
            "description": "number, expression in t and max_f, or Deforum keyframes 'F:(EXPR), ...'",
        },
        "names": {"type": "array", "items": {"type": "string"}},
    }

    def section(cls: type) -> dict[str, Any]:
        props = {}
        for f in fields(cls):
            m = f.metadata
            prop = {"enum": list(m["choices"])} if m["kind"] == "choice" else dict(kinds[m["kind"]])
            prop["description"] = m["doc"] + (f" {prop['description']}." if "description" in prop else "")
            if f.default is not MISSING and f.default is not None and f.default != ():
                prop["default"] = f.default
            if "min" in m:
                prop["exclusiveMinimum" if m.get("exclusive") else "minimum"] = m["min"]
            if "max" in m:
                prop["maximum"] = m["max"]
            if "max_items" in m:
                prop["maxItems"] = m["max_items"]
            if m.get("even"):
                prop["multipleOf"] = 2
            props[f.name] = prop
        return {"type": "object", "properties": props, "additionalProperties": False}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "stylereel scene",
        "type": "object",
        "properties": {
            "seed": {"type": "integer", "minimum": 0, "default": 0, "description": "Random seed."},
            "styles": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "maxProperties": MAX_STYLES,
                "description": "Named style images: paths relative to the scene, or builtin:NAME.",
            },
            **{name: section(cls) for name, cls in SECTIONS.items()},
            "shot": {
                "type": "array",
                "description": "Independent shots, rendered side by side and joined in order. Each may "
                "override start, frames, drift and camera keys of the scene.",
                "items": {
                    "type": "object",
                    "properties": {
                        "length": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_FRAMES,
                            "description": "Frames in the shot.",
                        },
                        **{name: section(SECTIONS[name]) for name in SHOT_SECTIONS},
                    },
                    "required": ["length"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["styles", "output"],
        "additionalProperties": False,
    }
