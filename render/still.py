"""One still: read the images, choose settings for the mode, run the engine, write the PNG."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from torch import Tensor

from engine.stylize import Progress, Settings
from engine.targets import StyleBank, resize

from .canvas import Inputs
from .checkpoint import Checkpoint, digest
from .images import check_output_path, load_image, save_image, to_uint8
from .job import Job
from .joint import TileRound, run_here
from .network import auto_precision, load_network, resolve_device
from .patches import PatchWork
from .scene import Patches
from .tiled import DEFAULT_TILE, FrameWork
from .video import VideoWriter
from .work import RoundRunner, run_frame, serially

# Runs rounds elsewhere (on Ray actors): given the style images and a hook called with each finished
# job's record, returns the round runner.
Farm = Callable[[list[Tensor], Callable[[dict], None]], RoundRunner]


class Mode(StrEnum):
    TRANSFER = "transfer"  # content + style
    RECONSTRUCT = "reconstruct"  # content from one deep layer only, from noise
    SUPERRES = "superres"  # low-res content, high-res style of something similar
    TEXTURE = "texture"  # style only


# The least side of a picture: VGG-19 pools it in halves four times before relu5_1, and 15 px pools to
# nothing (torch then fails mid-optimisation).
MIN_SIDE = 16
WHY_MIN_SIDE = "VGG-19 halves the picture four times"

# Defaults chosen by measurement (BENCHMARKS.md): content_weight 5 against
# style_weight 100 gives style ~0.025, content ~0.8 on `score` across pairs.
TRANSFER = Settings(content_weight=5.0, style_weight=100.0, iterations=60)
DEFAULTS: dict[Mode, Settings] = {
    Mode.TRANSFER: TRANSFER,
    # One deep layer, no style, one scale: the optimisation path is the point.
    Mode.RECONSTRUCT: replace(
        TRANSFER, content_layers=("relu5_1",), content_weight=1.0, style_weight=0.0, iterations=300
    ),
    Mode.SUPERRES: replace(TRANSFER, content_at_native_size=True, content_weight=20.0),
    Mode.TEXTURE: replace(TRANSFER, content_weight=0.0),
}


@dataclass(frozen=True)
class StillJob:
    output: Path
    content: str | None = None
    styles: tuple[tuple[str, float], ...] = ()  # (image, blend weight)
    mode: Mode = Mode.TRANSFER
    size: int | None = None  # long side of the output; default per mode
    seed: int = 0
    device: str = "auto"
    init: str = "auto"  # auto, content, noise, or an image
    weights: Path | None = None
    trajectory: Path | None = None
    save_every: int = 1
    tile: int = DEFAULT_TILE  # larger outputs are rendered in overlapping tiles of this size
    patches: Patches | None = None  # stochastic multiscale patches, localized style
    checkpoint_every: int = 1  # rounds between checkpoints of a still with several rounds
    fresh: bool = False  # ignore a checkpoint
    overrides: dict = field(default_factory=dict)  # Settings fields set on the command line

    def __post_init__(self) -> None:
        if self.size is not None and self.size < MIN_SIDE:
            raise ValueError(f"--size must be at least {MIN_SIDE} pixels ({WHY_MIN_SIDE}), not {self.size}")
        if self.tile < 64:
            raise ValueError(f"--tile must be at least 64 pixels, not {self.tile}")
        if self.save_every <= 0:
            raise ValueError(f"--save-every must be positive, not {self.save_every}")
        if self.checkpoint_every <= 0:
            raise ValueError(f"--checkpoint-every must be positive, not {self.checkpoint_every}")
        if self.patches is not None and self.mode in (Mode.SUPERRES, Mode.RECONSTRUCT):
            raise ValueError(
                f"--patches and --localized work with transfer and texture, not --mode {self.mode}"
            )
        if self.patches is not None and self.trajectory is not None:
            raise ValueError("--trajectory works on one tile, not with --patches or --localized")
        needs_content = self.mode in (Mode.TRANSFER, Mode.RECONSTRUCT, Mode.SUPERRES)
        if needs_content and self.content is None:
            raise ValueError(f"--mode {self.mode} needs --content")
        if self.mode is Mode.TEXTURE and self.content is not None:
            raise ValueError("--mode texture takes no --content")
        needs_style = self.mode is not Mode.RECONSTRUCT
        if needs_style and not self.styles:
            raise ValueError(f"--mode {self.mode} needs at least one --style")
        if not needs_style and self.styles:
            raise ValueError("--mode reconstruct takes no --style")
        for source, weight in self.styles:
            if weight < 0:
                raise ValueError(f"--style {source}: weight must be >= 0, not {weight}")


def settings_for(job: StillJob, device: str) -> Settings:
    base = replace(DEFAULTS[job.mode], precision=auto_precision(device))
    return replace(base, **job.overrides)


def output_size(job: StillJob, content: Tensor | None, style: Tensor | None) -> tuple[int, int]:
    """(H, W) of the output: the content's aspect (the style's for textures) at --size."""
    shape_from = content if content is not None else style
    h, w = shape_from.shape[-2:]
    default = {Mode.SUPERRES: 4 * max(h, w), Mode.RECONSTRUCT: 256, Mode.TEXTURE: 256}.get(job.mode, 512)
    long_side = job.size or default
    return max(1, round(h * long_side / max(h, w))), max(1, round(w * long_side / max(h, w)))


def render_still(
    job: StillJob,
    progress: Callable[[Progress], None] | None = None,
    *,
    features: Callable | None = None,
    farm: Farm | None = None,
) -> Tensor:
    """Run a still job end to end, in this process on `features` (default: VGG-19 from `job.weights`)
    or on `farm`; every input is checked before any compute. A still of several rounds (tiled or
    patches) checkpoints beside the output and continues from there when run again."""
    check_output_path(job.output)
    if job.trajectory is not None and job.trajectory.suffix.lower() not in (".mp4", ".mkv", ".mov", ".webm"):
        raise ValueError(f"--trajectory {job.trajectory}: use a .mp4, .mkv, .mov or .webm file")
    device = resolve_device(job.device)
    content = load_image(job.content) if job.content else None
    styles = [load_image(s) for s, _ in job.styles]
    init_image = load_image(job.init) if job.init not in ("auto", "content", "noise") else None
    settings = settings_for(job, device)
    size = output_size(job, content, styles[0] if styles else None)
    if min(size) < MIN_SIDE:
        shape = f"--size {max(size)}: the output would be {size[1]}x{size[0]}"
        raise ValueError(f"{shape}, and its short side must be at least {MIN_SIDE} pixels ({WHY_MIN_SIDE})")
    tiled = max(size) > job.tile and job.patches is None
    if tiled and job.mode is Mode.SUPERRES:
        raise ValueError(f"--mode superres works on one tile: keep --size at most --tile ({job.tile})")
    if tiled and job.trajectory is not None:
        raise ValueError(f"--trajectory works on one tile: keep --size at most --tile ({job.tile})")
    network = features if features is not None else load_network(job.weights, device=device)

    if content is not None and job.mode is not Mode.SUPERRES:
        content = resize(content, size)
    if job.mode is Mode.RECONSTRUCT:
        settings = replace(settings, min_size=max(size))  # one scale
    weights = tuple(w for _, w in job.styles)
    init = _init(job, init_image, content, size)
    if job.patches is not None:
        work = PatchWork(0, size, settings, init, content, weights, job.seed, job.patches)
    else:
        work = FrameWork(
            0, size, settings, init, content, weights, job.seed, tile=max(job.tile, settings.min_size)
        )
    checkpoint = Checkpoint(job.output, digest(work.size, settings, weights, job.seed, job.patches, job.tile,
                                               device, job.weights, init, content, *styles))  # fmt: skip
    first, canvas = (0, None) if job.fresh else checkpoint.load()
    total = work.steps()
    done = sum(work.round_steps(k) for k in range(first))
    writer = VideoWriter(job.trajectory, size[1], size[0]) if job.trajectory is not None else None

    def callback(p: Progress) -> None:
        if writer is not None and p.image is not None and (p.step % job.save_every == 0 or p.step == p.steps):
            writer.write(to_uint8(resize(p.image, size)))
        if progress is not None:
            progress(replace(p, step=done + p.step, steps=total))

    def finished(record: dict) -> None:  # a job done on the farm
        nonlocal done
        done += record["steps"]
        if progress is not None:
            progress(Progress(done, total, 0, size, record.get("loss") or 0.0, {}))

    def run(one: Job | TileRound, inputs: Inputs) -> tuple:
        nonlocal done
        result = run_here(one, inputs, network, bank, device, callback)
        done += result[1]["steps"]
        return result

    def after_round(index: int, canvas: Tensor) -> None:
        if len(work.rounds) > 1 and index + 1 < len(work.rounds) and (index + 1) % job.checkpoint_every == 0:
            checkpoint.save(index, canvas)

    if farm is not None:
        runner = farm(styles, finished)
    else:
        bank = StyleBank([s.to(device) for s in styles]) if styles else None
        runner = serially(run)
    try:
        out = run_frame(work, runner, first, canvas, after_round)
    except BaseException as e:
        if writer is not None:
            writer.close(e)
        raise
    if writer is not None:
        writer.close()
    save_image(out, job.output)
    checkpoint.remove()
    return out


def _init(
    job: StillJob, image: Tensor | None, content: Tensor | None, size: tuple[int, int]
) -> Tensor | None:
    """The starting image: given, the content (upsampled for superres), or noise (None)."""
    if image is not None:
        return resize(image, size)
    wants_noise = job.init == "noise" or (job.init == "auto" and job.mode in (Mode.RECONSTRUCT, Mode.TEXTURE))
    if wants_noise or content is None:
        return None  # the engine draws noise at its first scale from the generator
    return resize(content, size)
