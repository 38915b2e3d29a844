"""Frame planning: everything about frame t that follows from the scene alone, before any compute."""

from __future__ import annotations

from dataclasses import dataclass

from .scene import Scene, SceneError
from .schedule import Schedule, ScheduleError
from .warp import Camera

# Seconds per VGG-19 step per pixel on the reference 2-core CPU (0.56 s at 256x256, float32).
CPU_SECONDS_PER_PIXEL_STEP = 0.56 / (256 * 256)


CAMERA_KEYS = ("zoom", "angle", "translate_x", "translate_y", "center_x", "center_y")


@dataclass(frozen=True)
class FramePlan:
    index: int
    style_weights: tuple[float, ...]  # one per scene style, in [styles] order
    camera: Camera  # the step from the previous frame to this one (identity at 0)
    iterations: int
    content: str  # "start", "feedback", "fixed" or "none"
    content_weight: float
    style_weight: float
    tv_weight: float


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
    """One FramePlan per frame; schedule errors name the file, the key and the frame."""
    names = list(scene.styles)
    n = scene.frame_count
    interp = scene.frames.interpolation
    schedules: dict[str, Schedule] = {}
    for section, keys in (
        ("frames", ("iterations", "content_weight", "style_weight", "tv_weight")),
        ("camera", CAMERA_KEYS),
    ):
        for key in keys:
            schedules[f"{section}.{key}"] = Schedule.parse(getattr(getattr(scene, section), key), interp)

    def value(key: str, t: int) -> float:
        try:
            return schedules[key](t, n)
        except ScheduleError as e:
            raise SceneError(f"{scene.path}: {key}: frame {t}: {e}") from None

    plans = []
    for t in range(n):
        if scene.drift is not None:
            d = scene.drift
            order = drift_weights(t, len(d.styles), d.frames_per_style, d.crossfade)
            weights = [0.0] * len(names)
            for name, w in zip(d.styles, order, strict=True):
                weights[names.index(name)] += w
        else:
            weights = [float(name == (scene.frames.style or names[0])) for name in names]
        if t == 0 and scene.start.style is not None:
            weights = [float(name == scene.start.style) for name in names]
        camera = Camera(**{k: value(f"camera.{k}", t) for k in CAMERA_KEYS}) if t else Camera()
        if camera.zoom <= 0:
            raise SceneError(f"{scene.path}: camera.zoom: frame {t}: must be > 0, got {camera.zoom:g}")
        iterations = scene.start.iterations if t == 0 else round(value("frames.iterations", t))
        if iterations < 0:
            raise SceneError(f"{scene.path}: frames.iterations: frame {t}: must be >= 0, got {iterations}")
        weights_at = {k: value(f"frames.{k}", t) for k in ("content_weight", "style_weight", "tv_weight")}
        for key, w in weights_at.items():
            if w < 0:
                raise SceneError(f"{scene.path}: frames.{key}: frame {t}: must be >= 0, got {w:g}")
        content = ("start" if scene.start.content else "none") if t == 0 else scene.frames.content
        plans.append(FramePlan(t, tuple(weights), camera, iterations, content, **weights_at))
    return plans


def estimate_seconds(scene: Scene, plans: list[FramePlan], speedup: float = 1.0) -> float:
    """Rough compute time from the iteration count and frame size on the reference CPU."""
    pixels = scene.output.width * scene.output.height
    first = plans[0].iterations * 4 * 3  # coarse-to-fine: about three scales' worth of work
    steps = first + sum(p.iterations for p in plans[1:])
    return steps * pixels * CPU_SECONDS_PER_PIXEL_STEP / speedup
