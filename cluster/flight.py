"""The frames of one shot in flight: which jobs can run now, and when a frame is finished.

A frame whose only round is tiled (every frame after a shot's first, once
frames are larger than a tile) is pipelined: each of its tiles needs only the
part of the previous frame that its warped region reads, so a tile starts as
soon as the previous frame's tiles covering that part are back, before the
whole previous frame is. Frames that cannot be pipelined (a shot's first
frame, coarse to fine; untiled frames) wait for the previous frame.

Whatever the timing, a tile's input is computed the same way from the same
uint8 pixels of the previous frame, so the frames do not depend on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any

import numpy as np
import torch
from torch import Tensor

from render.cadence import is_key, tweens
from render.coherence import Coherence, ColourMap
from render.frames import Camerawork, WarpedStart
from render.images import from_uint8, to_uint8
from render.job import Job
from render.patches import PatchWork
from render.plan import FramePlan
from render.tiled import FrameWork
from render.tiles import Mosaic, Tile
from render.warp import source_region

# Jobs ready to run, grouped by the canvases (start, content) they crop from.
Batch = tuple[list[Job], Tensor | WarpedStart | None, Any]  # jobs, start, content (or camera)


@dataclass
class Frame:
    plan: FramePlan
    work: FrameWork | PatchWork
    matrices: tuple[Tensor, Tensor]  # (step from the previous frame, cumulative) camera warps
    pipelined: bool
    round: int = 0
    tiles: dict[int, Tile] = field(default_factory=dict)  # the current round's tiles
    results: dict[int, np.ndarray] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    waiting: dict[int, Job] = field(default_factory=dict)  # pipelined tiles whose source is not ready
    sources: dict[int, tuple[int, int, int, int]] = field(
        default_factory=dict
    )  # tile -> previous-frame region
    revealed: list[float] = field(default_factory=list)  # per tile: share of pixels the camera brought in
    started: float = field(default_factory=time.perf_counter)
    # With a cadence: the plans of the frames since the previous keyframe, and each one's camera step
    # (this frame's own step last).
    between: list[FramePlan] = field(default_factory=list)
    steps: list[Tensor] = field(default_factory=list)
    colour: ColourMap | None = None  # colour coherence's map for this frame
    mosaic: Mosaic | None = None  # in the last round, the pixels, final cell by cell as tiles come back

    @property
    def round_complete(self) -> bool:
        return not self.waiting and len(self.results) == len(self.tiles)

    @property
    def complete(self) -> bool:
        return self.round_complete and self.round + 1 == len(self.work.rounds)


IN_FLIGHT = 3  # frames of one shot in flight at once


class Flight:
    """One shot's chain of frames: up to IN_FLIGHT in flight, each reading the one before it."""

    def __init__(
        self,
        plans: list[FramePlan],
        camera: Camerawork,
        make_work: Callable[[FramePlan, Tensor | None, Tensor | None], FrameWork | PatchWork],
        tile: int,
        next_index: int = 0,
        previous: np.ndarray | None = None,
        pipelining: bool = True,
        coherence: Coherence | None = None,
        cadence: int = 1,
    ) -> None:
        self.plans, self.camera, self.make_work, self.tile = plans, camera, make_work, tile
        # Patch frames re-draw their regions every round: they are not pipelined, nor are cadences
        # (a keyframe reads a keyframe several steps back) or video shots (no camera to map regions).
        self.pipelining = pipelining and cadence == 1 and camera.exact
        self.cadence = cadence  # optimise every cadence-th frame, warp the ones between
        self.coherence = coherence
        self.next = next_index  # index into plans of the next frame to open
        self.previous = previous  # uint8 pixels of the last finished frame
        self.frames: list[Frame] = []
        # What pipelined tiles' workers get as the camera: the scheduler puts it in the object store
        # once and sets the reference here.
        self.shared_camera: Any = camera

    @property
    def done(self) -> bool:
        return not self.frames and self.next >= len(self.plans)

    def open(self) -> list[Batch]:
        """Open the next frame if the chain allows it; return the jobs that can start."""
        if self.next >= len(self.plans) or len(self.frames) >= IN_FLIGHT:
            return []
        plan = self.plans[self.next]
        ahead = self.frames[-1] if self.frames else None
        size = self.camera.size
        pipelined = self.pipelining and plan.local > 0 and max(size) > self.tile
        if ahead is not None and not (pipelined and (ahead.pipelined or len(ahead.work.rounds) == 1)):
            return []  # needs the whole previous frame
        between, steps = [], []
        while self.cadence > 1 and not is_key(plan.local, len(self.plans), self.cadence):
            between.append(plan)  # made from the keyframes either side once the next one is done
            steps.append(self.camera.step(plan)[0])
            self.next += 1
            plan = self.plans[self.next]
        self.next += 1
        matrices = self.camera.step(plan)
        steps.append(matrices[0])
        if between:  # the keyframe starts from the previous keyframe, carried along all the steps
            matrices = (reduce(torch.matmul, steps), matrices[1])
        if not pipelined:
            previous = from_uint8(self.previous) if self.previous is not None else None
            inputs = self.camera.inputs(plan, matrices, previous)
            frame = Frame(plan, self.make_work(plan, inputs.init, inputs.content), matrices, False,
                          between=between, steps=steps)  # fmt: skip
            if inputs.mask is not None:
                frame.revealed.append(1 - float(inputs.mask.mean()))
            # With a cadence the frames between two keyframes are made after the second: the colour
            # map reads no later than the previous keyframe.
            frame.colour = self._colour(plan, between[0].local - 1 if between else None)
            self.frames.append(frame)
            return [self._round(frame, None)]
        frame = Frame(plan, self.make_work(plan, None, None), matrices, True)
        frame.colour = self._colour(plan)
        for job in self._coloured(frame, frame.work.tile_jobs(0)):
            frame.tiles[job.tile] = job.region
            frame.waiting[job.tile] = job
            r = job.region
            frame.sources[job.tile] = source_region(matrices[0], (r.y0, r.x0, r.y1, r.x1), size)
        self._final(frame)
        self.frames.append(frame)
        return self._ready(frame)

    def _colour(self, plan: FramePlan, latest: int | None = None) -> ColourMap | None:
        if self.coherence is None:
            return None
        return self.coherence.map_for(plan.local, plan.style_weights, latest)

    def _round(self, frame: Frame, canvas: Tensor | None) -> Batch:
        jobs, start, content = frame.work.jobs(frame.round, canvas)
        jobs = self._coloured(frame, jobs)
        frame.tiles, frame.results = {job.tile: job.region for job in jobs}, {}
        self._final(frame)
        return jobs, start, content

    def _final(self, frame: Frame) -> None:
        """In a frame's last round, its pixels are blended cell by cell as the tiles come back (patch
        rounds return changes to a canvas instead): the next frame's pipelined tiles read them."""
        if frame.round + 1 == len(frame.work.rounds) and not _is_patches(frame):
            frame.mosaic = Mosaic(frame.tiles, *self.camera.size, frame.work.overlap)

    @staticmethod
    def _coloured(frame: Frame, jobs: list[Job]) -> list[Job]:
        """The jobs, each carrying the frame's colour map if this round's results are the frame's
        pixels: the workers map their own tiles, in parallel and off the driver."""
        if frame.colour is None or frame.round + 1 < len(frame.work.rounds) or _is_patches(frame):
            return jobs
        return [replace(job, colour=frame.colour) for job in jobs]

    def _ready(self, frame: Frame) -> list[Batch]:
        """Pipelined tiles of `frame` whose part of the previous frame is final: their jobs, each with
        its own start and content canvases (the size of the tile)."""
        position = self.frames.index(frame)
        ahead = self.frames[position - 1] if position else None  # None: the previous frame is finished
        batches = []
        for index in sorted(frame.waiting):
            src = frame.sources[index]
            if ahead is None:
                pixels = self.previous[src[0] : src[2], src[1] : src[3]]
            else:
                window = Tile(*src)
                if not ahead.mosaic.ready(window):
                    continue
                pixels = ahead.mosaic.window(window)
            job = frame.waiting.pop(index)
            r = job.region
            start = WarpedStart(frame.plan, frame.matrices, pixels, src[:2], (r.y0, r.x0, r.y1, r.x1))
            batches.append(([job], start, self.shared_camera))  # the worker warps its window
        return batches

    def result(self, job: Job, pixels: np.ndarray, record: dict) -> tuple[list[Batch], list[tuple]]:
        """Take a job's result. Returns the jobs that can start now, and (plan, pixels, record) of each
        frame now finished, in order (a frame finishes only after the one before it)."""
        frame = next(f for f in self.frames if f.plan.index == job.frame)
        frame.results[job.tile] = pixels
        if frame.mosaic is not None:
            frame.mosaic.add(job.tile, pixels)
        frame.records.append(record)
        if "revealed" in record:  # a pipelined tile's worker made its inputs and measured it
            frame.revealed.append(record["revealed"])
        batches: list[Batch] = []
        if frame.round_complete and not frame.complete:  # on to the next, finer round
            canvas = frame.work.blend(frame.round, self._ordered(frame))
            frame.round += 1
            batches.append(self._round(frame, canvas))
        finished = []
        while self.frames and self.frames[0].complete:
            done = self.frames.pop(0)
            if done.mosaic is not None:
                pixels = done.mosaic.pixels
            else:  # patches: their changes blend onto the round's canvas
                pixels = done.work.pixels(done.round, self._ordered(done))
            if done.colour is not None and _is_patches(done):  # patches return changes, not pixels
                pixels = done.colour(pixels)
            if self.coherence is not None:
                self.coherence.seen(done.plan.local, pixels)
            if done.between:
                made = tweens(from_uint8(self.previous), from_uint8(pixels), done.steps)
                keys = [done.between[0].index - 1, done.plan.index]  # warped from these keyframes
                for plan, image, step in zip(done.between, made, done.steps, strict=False):
                    record = {"seconds": 0.0, "finished": round(time.time(), 3), "jobs": 0, "workers": [],
                              "tween": keys, "step": _listed(step)}  # fmt: skip
                    finished.append((plan, to_uint8(image), record))
                    if self.coherence is not None:
                        self.coherence.seen(plan.local, finished[-1][1])
            self.previous = pixels
            finished.append((done.plan, pixels, frame_record(done, self.camera.exact)))
        for later in self.frames:
            if later.pipelined and later.waiting:
                batches += self._ready(later)
        return batches, finished

    @staticmethod
    def _ordered(frame: Frame) -> list[tuple[Tile, np.ndarray]]:
        """The round's results in tile order: blending in a fixed order makes the pixels exact."""
        return [(frame.tiles[i], frame.results[i]) for i in sorted(frame.results)]


def _is_patches(frame: Frame) -> bool:
    return isinstance(frame.work, PatchWork)


def frame_record(frame: Frame, exact: bool = True) -> dict:
    records = frame.records
    record: dict = {
        "seconds": round(time.perf_counter() - frame.started, 3),
        "finished": round(time.time(), 3),
        "jobs": len(records),
        "job_seconds": round(sum(r["seconds"] for r in records), 3),
        "workers": sorted({r.get("worker", "?") for r in records}),
        "loss": sum(r.get("loss") or 0 for r in records) / max(1, len(records)),
    }
    if len(records) == 1:
        record |= {
            k: v for k, v in records[0].items() if k in ("content", "style", "tv", "temporal", "steps")
        }
    warnings = [r["warning"] for r in records if "warning" in r]
    if warnings:
        record["warnings"] = warnings
    if (
        frame.plan.local > 0 and exact
    ):  # the exact camera step from the previous frame, for `stylereel metrics`
        record["step"] = _listed(frame.steps[-1] if frame.steps else frame.matrices[0])
    if frame.revealed:  # share of pixels the camera brought in (tiles: their mean)
        record["revealed"] = round(sum(frame.revealed) / len(frame.revealed), 4)
    return record


def _listed(matrix: Tensor) -> list[list[float]]:
    return [[round(v, 9) for v in row] for row in matrix.tolist()]
