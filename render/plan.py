"""Frame planning: everything about frame t that follows from the scene alone, before any compute."""

from __future__ import annotations

from dataclasses import dataclass

from .scene import Scene, SceneError, Shot
from .schedule import Schedule, ScheduleError, max_f
from .warp import Camera

CAMERA_KEYS = ("zoom", "angle", "translate_x", "translate_y", "center_x", "center_y")
FRAME_KEYS = ("iterations", "content_weight", "style_weight", "tv_weight", "temporal_weight")


@dataclass(frozen=True)
class FramePlan:
    index: int  # in the whole scene
    shot: int
    local: int  # in its shot: 0 is the shot's start frame
    style_weights: tuple[float, ...]  # one per scene style, in [styles] order
    camera: Camera  # the step from the previous frame to this one (identity at 0)
    iterations: int
    content: str  # "start", "feedback", "fixed" or "none"
    content_weight: float
    style_weight: float
    tv_weight: float
    temporal_weight: float = 0.0


def drift_weights(t: int, n_styles: int, per_style: int, crossfade: int) -> list[float]:
    """Blend weights over the rotation at frame t: style k leads for `per_style` frames,
    and over the last `crossfade` of them hands over smoothly (smoothstep) to style k+1."""
    weights = [0.0] * n_styles
    lead, pos = divmod(t, per_style)
    current, following = lead % n_styles, (lead + 1) % n_styles
    into = pos - (per_style - crossfade)
    u = (into + 1) / (crossfade + 1) if crossfade and into >= 0 else 0.0
    u = u * u * (3 - 2 * u)
    weights[current] += 1 - u
    weights[following] += u
    return weights


def plan_scene(scene: Scene) -> list[FramePlan]:
    """One FramePlan per frame, shot after shot; schedule errors name the file, the key and the frame."""
    plans: list[FramePlan] = []
    for number, shot in enumerate(scene.shots):
        plans += _plan_shot(scene, shot, number, len(plans))
    return plans


def _plan_shot(scene: Scene, shot: Shot, number: int, first: int) -> list[FramePlan]:
    names = list(scene.styles)
    n = shot.length
    prefix = f"shot.{number}." if len(scene.shots) > 1 else ""
    schedules: dict[str, Schedule] = {}
    for section, keys in (("frames", FRAME_KEYS), ("camera", CAMERA_KEYS)):
        for key in keys:
            schedules[f"{section}.{key}"] = Schedule.parse(getattr(getattr(shot, section), key),
                                                           shot.frames.interpolation)  # fmt: skip

    def value(key: str, t: int) -> float:
        try:
            return schedules[key](t, max_f(n))
        except ScheduleError as e:
            raise SceneError(f"{scene.path}: {prefix}{key}: frame {t}: {e}") from None

    def at_least(key: str, t: int, v: float, low: float, strict: bool = False) -> float:
        if v < low or (strict and v == low):
            bound = f"{'>' if strict else '>='} {low}"
            raise SceneError(f"{scene.path}: {prefix}{key}: frame {t}: must be {bound}, got {v:g}")
        return v

    plans = []
    for t in range(n):
        if shot.drift is not None:
            d = shot.drift
            order = drift_weights(t, len(d.styles), d.frames_per_style, d.crossfade)
            weights = [0.0] * len(names)
            for name, w in zip(d.styles, order, strict=True):
                weights[names.index(name)] += w
        else:
            weights = [float(name == (shot.frames.style or names[0])) for name in names]
        if t == 0 and shot.start.style is not None:
            weights = [float(name == shot.start.style) for name in names]
        camera = Camera(**{k: value(f"camera.{k}", t) for k in CAMERA_KEYS}) if t else Camera()
        at_least("camera.zoom", t, camera.zoom, 0, strict=True)
        iterations = shot.start.iterations if t == 0 else round(value("frames.iterations", t))
        at_least("frames.iterations", t, iterations, 0)
        loss_weights = {k: at_least(f"frames.{k}", t, value(f"frames.{k}", t), 0) for k in FRAME_KEYS[1:]}
        content = ("start" if shot.start.content else "none") if t == 0 else shot.frames.content
        plans.append(
            FramePlan(first + t, number, t, tuple(weights), camera, iterations, content, **loss_weights)
        )
    return plans
