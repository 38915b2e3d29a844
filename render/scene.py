"""Scene files: TOML in, a validated, typed `Scene` out, and a JSON Schema of the format.

Each section is a frozen dataclass; each field carries its kind, its
constraints and a one-line doc in `metadata`, which drives both validation
and `stylereel schema`. Errors name the file and the key.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from .images import resolve
from .schedule import Schedule, ScheduleError

CODECS = ("libx264", "libx265", "libsvtav1", "libvpx-vp9")


class SceneError(ValueError):
    """A scene file that cannot be used; the message names the file and key."""


def _f(default: Any, kind: str, doc: str, **rules: Any) -> Any:
    return field(default=default, metadata={"kind": kind, "doc": doc, **rules})


@dataclass(frozen=True)
class Output:
    width: int = _f(256, "int", "Frame width in pixels (even).", min=16, even=True)
    height: int = _f(144, "int", "Frame height in pixels (even).", min=16, even=True)
    fps: str = _f("24", "fraction", "Frames per second: a number or a fraction such as 24000/1001.")
    frames: int | None = _f(None, "int", "Number of frames (or give seconds).", min=1)
    seconds: float | None = _f(None, "float", "Length in seconds (or give frames).", min=0, exclusive=True)
    codec: str = _f("libx264", "choice", "Video codec.", choices=CODECS)
    crf: int = _f(17, "int", "Constant rate factor: lower is better quality.", min=0, max=63)
    pix_fmt: str = _f("yuv420p", "choice", "Pixel format of the video.", choices=("yuv420p",))


@dataclass(frozen=True)
class Start:
    content: str | None = _f(
        None, "str", "Content image of frame 0 (path or builtin:NAME); none: pure texture."
    )
    iterations: int = _f(
        60, "int", "Iterations of frame 0 at its final scale (coarser scales get more).", min=1
    )
    style: str | None = _f(None, "str", "Style of frame 0; default: the drift's (or [frames]) style at 0.")


@dataclass(frozen=True)
class Frames:
    iterations: str = _f("12", "schedule", "Iterations of each later frame.")
    content: str = _f("feedback", "choice", "Content of later frames.", choices=("feedback", "fixed", "none"))
    style: str | None = _f(None, "str", "Style of every frame when there is no [drift]; default: the first.")
    content_weight: str = _f("5", "schedule", "Content loss weight.")
    style_weight: str = _f("100", "schedule", "Style loss weight.")
    tv_weight: str = _f("0", "schedule", "Total-variation weight.")
    interpolation: str = _f("linear", "choice", "Between keyframes.", choices=("linear", "cubic"))


@dataclass(frozen=True)
class Drift:
    styles: tuple[str, ...] = _f((), "names", "Style names in rotation order: 1, 2, 3, ..., 1 again.")
    frames_per_style: int = _f(24, "int", "Frames each style leads for.", min=1)
    crossfade: int = _f(8, "int", "Frames over which blend weights move to the next style.", min=0)


@dataclass(frozen=True)
class CameraSchedules:
    zoom: str = _f("1", "schedule", "Zoom per frame (> 1 moves in).")
    angle: str = _f("0", "schedule", "Rotation per frame in degrees, counter-clockwise.")
    translate_x: str = _f("0", "schedule", "Shift per frame in pixels, + right.")
    translate_y: str = _f("0", "schedule", "Shift per frame in pixels, + down.")
    center_x: str = _f("0.5", "schedule", "Transform centre, fraction of the width.")
    center_y: str = _f("0.5", "schedule", "Transform centre, fraction of the height.")
    border: str = _f(
        "reflection", "choice", "Fill for pixels from outside the frame.", choices=("reflection", "content")
    )


SECTIONS = {"output": Output, "start": Start, "frames": Frames, "drift": Drift, "camera": CameraSchedules}


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

    @property
    def base(self) -> Path:
        return self.path.parent

    @property
    def frame_count(self) -> int:
        o = self.output
        return o.frames if o.frames is not None else max(1, round(o.seconds * Fraction(o.fps)))

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
        for name, source in self.styles.items():
            out[f"styles.{name}"] = _image_id(source, self.base)
        if self.start.content:
            out["start.content"] = _image_id(self.start.content, self.base)
        return out

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()


def _image_id(source: str, base: Path) -> str:
    path = resolve(source, base)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"
    return f"{source} sha256:{digest}"


def load_scene(path: Path) -> Scene:
    """Read and validate a scene file; raise SceneError naming file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SceneError(f"{path}: no such scene file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SceneError(f"{path}: cannot read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise SceneError(f"{path}: not valid TOML ({e})") from None
    return parse_scene(data, path)


def parse_scene(data: dict[str, Any], path: Path) -> Scene:
    where = str(path)
    _no_unknown(data, ["seed", "styles", *SECTIONS], where, "")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SceneError(f"{where}: seed: expected a whole number >= 0, got {seed!r}")
    styles = data.get("styles", {})
    if not isinstance(styles, dict) or not all(isinstance(v, str) for v in styles.values()):
        raise SceneError(f'{where}: [styles]: expected name = "image" entries')
    sections = {}
    for name, cls in SECTIONS.items():
        raw = data.get(name)
        if raw is not None and not isinstance(raw, dict):
            raise SceneError(f"{where}: [{name}] must be a table")
        sections[name] = None if (raw is None and name == "drift") else _section(raw or {}, cls, where, name)
    scene = Scene(path, seed, sections["output"], styles, sections["start"], sections["frames"],
                  sections["drift"], sections["camera"])  # fmt: skip
    _check_scene(scene, where)
    return scene


def _no_unknown(data: dict, known: list[str], where: str, prefix: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else f"; known: {', '.join(known)}"
            raise SceneError(f"{where}: unknown key {prefix}{key}{hint}")


def _section(raw: dict[str, Any], cls: type, where: str, name: str) -> Any:
    _no_unknown(raw, [f.name for f in fields(cls)], where, f"{name}.")
    values = {}
    for f in fields(cls):
        if f.name in raw:
            values[f.name] = _value(raw[f.name], f.metadata, f"{where}: {name}.{f.name}")
    return cls(**values)


def _value(value: Any, meta: dict, where: str) -> Any:
    kind = meta["kind"]
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SceneError(f"{where}: expected a whole number, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SceneError(f"{where}: expected a number, got {value!r}")
    elif kind in ("str", "choice"):
        if not isinstance(value, str):
            raise SceneError(f"{where}: expected a string, got {value!r}")
        if kind == "choice" and value not in meta["choices"]:
            raise SceneError(f"{where}: {value!r} is not one of {', '.join(meta['choices'])}")
    elif kind == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SceneError(f"{where}: expected a list of style names, got {value!r}")
        value = tuple(value)
    elif kind == "fraction":
        try:
            fps = Fraction(str(value))
        except (ValueError, ZeroDivisionError):
            raise SceneError(
                f"{where}: expected a number or a fraction such as 24000/1001, got {value!r}"
            ) from None
        if fps <= 0:
            raise SceneError(f"{where}: must be > 0, got {value!r}")
        value = str(value)
    elif kind == "schedule":
        try:
            Schedule.parse(value)
        except ScheduleError as e:
            raise SceneError(f"{where}: {e}") from None
        value = str(value)
    if "min" in meta and isinstance(value, int | float):
        low = meta["min"]
        if value < low or (meta.get("exclusive") and value == low):
            raise SceneError(f"{where}: must be {'>' if meta.get('exclusive') else '>='} {low}, got {value}")
    if "max" in meta and value > meta["max"]:
        raise SceneError(f"{where}: must be <= {meta['max']}, got {value}")
    if meta.get("even") and value % 2:
        raise SceneError(f"{where}: must be even (the video is yuv420p), got {value}")
    return value


def _check_scene(scene: Scene, where: str) -> None:
    o = scene.output
    if (o.frames is None) == (o.seconds is None):
        raise SceneError(f"{where}: output: give exactly one of frames or seconds")
    if not scene.styles:
        raise SceneError(f"{where}: [styles]: name at least one style image")
    named = [("start.style", scene.start.style), ("frames.style", scene.frames.style)]
    if scene.drift is not None:
        if not scene.drift.styles:
            raise SceneError(f"{where}: drift.styles: list at least one style name")
        named += [("drift.styles", s) for s in scene.drift.styles]
        if scene.drift.crossfade > scene.drift.frames_per_style:
            raise SceneError(f"{where}: drift.crossfade: must be <= drift.frames_per_style")
    for key, name in named:
        if name is not None and name not in scene.styles:
            close = difflib.get_close_matches(name, list(scene.styles), n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; styles: {', '.join(scene.styles)}"
            raise SceneError(f"{where}: {key}: no style named {name!r}{hint}")
    if scene.frames.content == "fixed" and scene.start.content is None:
        raise SceneError(f"{where}: frames.content: 'fixed' needs start.content")
    for key, source in [
        *(("styles." + n, s) for n, s in scene.styles.items()),
        ("start.content", scene.start.content),
    ]:
        if source is not None:
            try:
                path = resolve(source, scene.base)
            except ValueError as e:
                raise SceneError(f"{where}: {key}: {e}") from None
            if not path.is_file():
                raise SceneError(f"{where}: {key}: {source}: no such file")


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the scene format, for editors (e.g. with Taplo or Even Better TOML)."""
    kinds = {
        "int": {"type": "integer"},
        "float": {"type": "number"},
        "str": {"type": "string"},
        "fraction": {"type": ["number", "string"]},
        "schedule": {
            "type": ["number", "string"],
            "description": "number, expression in t/max_f, or keyframes",
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
                "description": "Named style images: paths relative to the scene, or builtin:NAME.",
            },
            **{name: section(cls) for name, cls in SECTIONS.items()},
        },
        "required": ["styles", "output"],
        "additionalProperties": False,
    }
