"""The frames of one shot in flight: which jobs can run now, and when a frame is finished.

Each frame starts from the previous one as written (uint8), so a shot's frames run one after the
other; what runs in parallel is the inside of a frame: its tiled rounds are each one job shared by
the workers (`render.joint`), every tile optimising the whole frame's objective. A later frame's
tiles are warped from the previous frame on the workers that run them (a WarpedFrame through the
object store), so the driver's work per frame is one blend of the tiles that come back.
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
from render.frames import ShotCamera, WarpedFrame, WarpedTiles
from render.images import from_uint8, to_uint8
from render.job import Job
from render.joint import TileRound
from render.plan import FramePlan
from render.tiles import Tile
from render.work import Batch, Work
from render.work import finished as finished_pixels


@dataclass
class Frame:
    plan: FramePlan
    work: Work
    matrices: tuple[Tensor, Tensor]  # (step from the previous frame, cumulative) camera warps
    round: int = 0
    tiles: dict[int, Tile] = field(default_factory=dict)  # the current round's regions, by job or tile
    results: dict[int, np.ndarray] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    revealed: list[float] = field(default_factory=list)  # share of pixels the camera brought in
    started: float = field(default_factory=time.perf_counter)
    # With a cadence: the plans of the frames since the previous keyframe, and each one's camera step
    # (this frame's own step last).
    between: list[FramePlan] = field(default_factory=list)
    camera_steps: list[Tensor] = field(default_factory=list)
    colour: ColourMap | None = None  # colour coherence's map for this frame

    @property
    def round_complete(self) -> bool:
        return len(self.results) == len(self.tiles)

    @property
    def complete(self) -> bool:
        return self.round_complete and self.round + 1 == len(self.work.rounds)


class Flight:
    """One shot's chain of frames, each started once the one before it is written."""

    def __init__(
        self,
        *,
        plans: list[FramePlan],
        camera: ShotCamera,
        make_work: Callable[[FramePlan, Tensor | None, Tensor | None], Work],
        tile: int,
        next_index: int = 0,
        previous: np.ndarray | None = None,
        tiles_warp: bool = True,
        coherence: Coherence | None = None,
        cadence: int = 1,
    ) -> None:
        self.plans, self.camera, self.make_work, self.tile = plans, camera, make_work, tile
        # A later tiled frame's tiles warp their own starts where they run; not with patches (they
        # re-draw their regions every round), a cadence (a keyframe reads a keyframe several steps
        # back) or a video shot (no camera to warp with).
        self.tiles_warp = tiles_warp and cadence == 1 and camera.exact
        self.cadence = cadence  # optimise every cadence-th frame, warp the ones between
        self.coherence = coherence
        self.next = next_index  # index into plans of the next frame to open
        self.previous = previous  # uint8 pixels of the last finished frame
        self.frames: list[Frame] = []  # the frame in flight, if any
        # What the tiles' workers get as the camera (`ShotCamera.for_workers`): the scheduler shares it
        # with the pool once (into Ray's object store) and sets the reference here.
        self.camera_for_workers: Any = camera

    @property
    def done(self) -> bool:
        return not self.frames and self.next >= len(self.plans)

    def open(self) -> list[Batch]:
        """Open the next frame if the previous one is finished; return the jobs that can start."""
        if self.next >= len(self.plans) or self.frames:
            return []
        plan = self.plans[self.next]
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
        if self.tiles_warp and plan.local > 0 and max(self.camera.size) > self.tile:
            frame = Frame(plan, self.make_work(plan, None, None), matrices)
            frame.colour = self._colour(plan)
            self.frames.append(frame)
            job = self._coloured(frame, [frame.work.tile_round(0)])[0]
            frame.tiles, frame.results = dict(enumerate(job.tiles)), {}
            return [
                Batch([job], WarpedTiles(WarpedFrame(plan, matrices, self.previous), self.camera_for_workers))
            ]
        previous = from_uint8(self.previous) if self.previous is not None else None
        inputs = self.camera.inputs(plan, matrices, previous)
        frame = Frame(plan, self.make_work(plan, inputs.init, inputs.content), matrices,
                      between=between, camera_steps=steps)  # fmt: skip
        if inputs.mask is not None:
            frame.revealed.append(1 - float(inputs.mask.mean()))
        # With a cadence the frames between two keyframes are made after the second: the colour
        # map reads no later than the previous keyframe.
        frame.colour = self._colour(plan, between[0].local - 1 if between else None)
        self.frames.append(frame)
        return [self._round(frame, None)]

    def _colour(self, plan: FramePlan, latest: int | None = None) -> ColourMap | None:
        if self.coherence is None:
            return None
        return self.coherence.map_for(plan.local, plan.style_weights, latest)

    def _round(self, frame: Frame, canvas: Tensor | None) -> Batch:
        batch = frame.work.jobs(frame.round, canvas)
        jobs = self._coloured(frame, batch.jobs)
        frame.tiles, frame.results = {}, {}
        for job in jobs:
            frame.tiles |= (
                dict(enumerate(job.tiles)) if isinstance(job, TileRound) else {job.tile: job.region}
            )
        return replace(batch, jobs=jobs)

    @staticmethod
    def _coloured(frame: Frame, jobs: list) -> list:
        """The jobs, each carrying the frame's colour map if this round's results are the frame's
        pixels: the workers map their own tiles, in parallel and off the driver."""
        last = frame.round + 1 == len(frame.work.rounds)
        if frame.colour is None or not last or not frame.work.results_are_pixels:
            return jobs
        return [replace(job, colour=frame.colour) for job in jobs]

    def result(
        self, job: Job | TileRound, pixels: np.ndarray | dict[int, np.ndarray], record: dict
    ) -> tuple[list[Batch], list[tuple]]:
        """Take a job's result. Returns the jobs that can start now, and (plan, pixels, record) of each
        frame now finished, in order."""
        frame = next(f for f in self.frames if f.plan.index == job.frame)
        if isinstance(job, TileRound):
            frame.results |= pixels
        else:
            frame.results[job.tile] = pixels
        frame.records.append(record)
        if "revealed" in record:  # a tiled frame's workers made its inputs and measured it
            frame.revealed.append(record["revealed"])
        batches: list[Batch] = []
        if frame.round_complete and not frame.complete:  # on to the next, finer round
            canvas = frame.work.blend(frame.round, self._ordered(frame))
            frame.round += 1
            batches.append(self._round(frame, canvas))
        finished = []
        if frame.complete:
            self.frames.remove(frame)
            pixels = finished_pixels(frame.work, frame.round, self._ordered(frame))
            if frame.colour is not None and not frame.work.results_are_pixels:  # not mapped on the workers
                pixels = frame.colour(pixels)
            if self.coherence is not None:
                self.coherence.seen(frame.plan.local, pixels)
            if frame.between:
                made = tweens(from_uint8(self.previous), from_uint8(pixels), frame.camera_steps)
                keys = [frame.between[0].index - 1, frame.plan.index]  # warped from these keyframes
                for plan, image, step in zip(frame.between, made, frame.camera_steps, strict=False):
                    record = {"seconds": 0.0, "finished": round(time.time(), 3), "jobs": 0, "workers": [],
                              "tween": keys, "step": _listed(step)}  # fmt: skip
                    finished.append((plan, to_uint8(image), record))
                    if self.coherence is not None:
                        self.coherence.seen(plan.local, finished[-1][1])
            self.previous = pixels
            finished.append((frame.plan, pixels, frame_record(frame, self.camera.exact)))
        return batches, finished

    @staticmethod
    def _ordered(frame: Frame) -> list[tuple[Tile, np.ndarray]]:
        """The round's results in tile order: blending in a fixed order makes the pixels exact."""
        return [(frame.tiles[i], frame.results[i]) for i in sorted(frame.results)]


def frame_record(frame: Frame, exact: bool = True) -> dict:
    records = frame.records
    record: dict = {
        "seconds": round(time.perf_counter() - frame.started, 3),
        "finished": round(time.time(), 3),
        "jobs": len(records),
        "job_seconds": round(sum(r["seconds"] for r in records), 3),
        "workers": sorted({w for r in records for w in r.get("ranks", [r.get("worker", "?")])}),
        "loss": sum(r.get("loss") or 0 for r in records) / max(1, len(records)),
    }
    if len(records) == 1:
        record |= {
            k: v for k, v in records[0].items() if k in ("content", "style", "tv", "temporal", "steps")
        }
    warnings = [r["warning"] for r in records if "warning" in r]
    if warnings:
        record["warnings"] = warnings
    reruns = [reason for r in records for reason in r.get("reruns", [])]
    if reruns:  # why the quality guard ran a job again (`stylereel status` lists them)
        record["reruns"] = reruns
    if (
        frame.plan.local > 0 and exact
    ):  # the exact camera step from the previous frame, for `stylereel metrics`
        record["step"] = _listed(frame.camera_steps[-1] if frame.camera_steps else frame.matrices[0])
    if frame.revealed:  # share of pixels the camera brought in (tiles: their mean)
        record["revealed"] = round(sum(frame.revealed) / len(frame.revealed), 4)
    return record


def _listed(matrix: Tensor) -> list[list[float]]:
    return [[round(v, 9) for v in row] for row in matrix.tolist()]
