"""What a scene reads before any compute, checked once for `render` and `preview` alike."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .images import load_image, resolve
from .plan import FramePlan, plan_scene
from .scene import Scene
from .video import count_frames


@dataclass(frozen=True)
class SceneInputs:
    plans: list[FramePlan]
    styles: list[Tensor]  # (1, 3, h, w) each, in the scene's order
    starts: list[Tensor | None]  # per shot: its start.content as read, or None


def scene_inputs(scene: Scene) -> SceneInputs:
    """Every schedule evaluated, every image and video read: a scene that cannot render is refused
    here (ValueError naming the file and key) before anything is written or computed."""
    plans = plan_scene(scene)
    styles = [load_image(source, scene.base) for source in scene.styles.values()]
    starts = [load_image(s.start.content, scene.base) if s.start.content else None for s in scene.shots]
    for shot in scene.shots:
        if shot.start.video is not None and count_frames(resolve(shot.start.video, scene.base)) < shot.length:
            raise ValueError(
                f"{scene.path}: start.video: {shot.start.video} has fewer than {shot.length} frames"
            )
    return SceneInputs(plans, styles, starts)
