"""A pool of worker actors: jobs queue up, go to free actors, and come back once, whatever fails.

Render-farm rules (after Flamenco and Deadline): a job whose actor died is
re-run on another actor (the same seed gives the same pixels); an actor that
fails `Retries.max_failures` times is left out for the rest of the render; a result
that looks wrong (NaN, an early stop, a rising loss) is re-run
(`Retries.reruns`), then accepted with a warning in the manifest. A user error raised in a worker
(a ValueError) fails the render at once, without retries.

A tiled round (a TileRound) runs on several actors at once, gang-scheduled: it
starts when its actors are all idle, nothing overtakes it in the queue, and if
any of them fails, the whole round is run again in a new group once every
member is back (a replacement actor takes the dead one's rank, so the pixels
are the same).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import takewhile
from typing import Any, Protocol

import numpy as np
import ray
from ray.exceptions import RayActorError, RayTaskError

from render.job import Job, suspect
from render.joint import TileRound
from render.work import Batch

from .collective import Rendezvous

# Jobs queued at each actor: the next one is already there (its inputs on their way) when one
# finishes, so an actor never waits for the driver to notice and dispatch.
DEPTH = 2


@dataclass(frozen=True)
class Retries:
    """What the pool does when something fails (the render-farm rules above)."""

    max_failures: int = 3  # per actor, before it is left out
    max_attempts: int = 4  # per job, over all actors
    # A suspect result (NaN, an early stop, a rising loss) is re-run with another seed, then with twice
    # the iterations; the seeds are derived, so a rerun repeats itself wherever it runs.
    reruns: tuple[Callable[[Job | TileRound], Job | TileRound], ...] = (
        lambda job: replace(job, seed=(job.seed * 6364136223846793005 + 1442695040888963407) % 2**63),
        lambda job: replace(job, settings=replace(job.settings, iterations=2 * job.settings.iterations)),
    )


class Pool(Protocol):
    """Where a render's jobs run: Ray actors (`WorkerPool`), or this process (`LocalPool`)."""

    stats: list[WorkerStats]
    warnings: list[str]  # retried or suspect jobs, left-out workers: for the manifest

    def share(self, value: Any) -> Any:
        """`value` as the workers will receive it inside inputs (sent once, however many jobs use it)."""
        ...

    def submit(self, batch: Batch) -> None: ...

    def wait(self, timeout: float) -> list[tuple[Job | TileRound, Any, dict]]:
        """(job, result, record) of the jobs that finished within `timeout` seconds (possibly none)."""
        ...

    def progress(self) -> list[tuple]:
        """(frame, step, steps, loss) of each worker's current job."""
        ...


@dataclass
class WorkerStats:
    name: str = "?"
    jobs: int = 0
    busy_seconds: float = 0.0  # inside jobs, as the worker measured them
    since: float = field(default_factory=time.time)  # when the worker was started
    failures: int = 0
    excluded: bool = False
    current: tuple[int, int, int] | None = None  # (frame, round, tile) in flight


@dataclass
class _Pending:
    job: Job
    inputs: Any  # an object ref of the inputs the job takes its region from (`render.canvas.Inputs`)
    attempts: int = 0
    avoid: int | None = None  # actor that failed it, if another can take it
    suspicions: list[str] = field(default_factory=list)  # why each rerun was needed
    # A tiled round: its actors by rank, the results of those back, and why a member failed.
    members: list[int] = field(default_factory=list)
    parts: dict[int, tuple[dict, dict]] = field(default_factory=dict)
    failure: str | None = None

    @property
    def whole(self) -> bool:
        """Whether every member of a round is back."""
        return len(self.parts) == len(self.members)


@dataclass
class WorkerPool:
    start: Callable[[], Any]  # starts one actor and returns its handle
    count: int
    retries: Retries = Retries()
    stats: list[WorkerStats] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.actors = [self.start() for _ in range(self.count)]
        self.stats = [WorkerStats(name=f"worker {i}") for i in range(self.count)]
        self._queue: deque[_Pending] = deque()
        self._inflight: dict[ray.ObjectRef, tuple[int, _Pending, float]] = {}
        self.warnings: list[str] = []
        self._rendezvous: Rendezvous | None = None  # made when a round first needs two actors

    def share(self, value: Any) -> Any:
        return ray.put(value)

    def submit(self, batch: Batch) -> None:
        """Queue a batch's jobs; its inputs go into the object store once, for all of them."""
        inputs = ray.put(batch.inputs)
        for job in batch.jobs:
            self._queue.append(_Pending(job, inputs))
        self._dispatch()

    def _free(self) -> list[int]:
        """Actors with room for another job, least loaded first."""
        load = [0] * len(self.actors)
        for a, _, _ in self._inflight.values():
            load[a] += 1
        live = [i for i, s in enumerate(self.stats) if not s.excluded]
        return [i for depth in range(DEPTH) for i in live if load[i] == depth]

    def _dispatch(self) -> None:
        while self._queue:
            if isinstance(self._queue[0].job, TileRound):
                if not self._start_round(self._queue[0]):
                    return  # it waits for its actors to be idle, and nothing overtakes it
                self._queue.popleft()
                continue
            free = self._free()
            singles = list(takewhile(lambda p: not isinstance(p.job, TileRound), self._queue))
            if not free:
                return
            for actor in free[: len(singles)]:
                # Prefer a job this actor has not failed; fall back to the head of the queue.
                pick = next((p for p in singles if p.avoid != actor), singles[0])
                singles.remove(pick)
                self._queue.remove(pick)
                ref = self.actors[actor].render.remote(pick.job, pick.inputs)
                self._inflight[ref] = (actor, pick, time.perf_counter())
                self.stats[actor].current = pick.job.key
            if not self._queue or not isinstance(self._queue[0].job, TileRound):
                return

    def _start_round(self, pending: _Pending) -> bool:
        """Send a tiled round to the first live actors, one rank each, if they are all idle."""
        live = [i for i, s in enumerate(self.stats) if not s.excluded]
        members = live[: pending.job.ranks(len(live))]
        busy = {a for a, _, _ in self._inflight.values()}
        if not members or busy & set(members):
            return False
        group = None
        if len(members) > 1:
            self._rendezvous = self._rendezvous or Rendezvous()
            group = self._rendezvous.group()
        pending.members, pending.parts, pending.failure = members, {}, None
        for rank, actor in enumerate(members):
            ref = self.actors[actor].render_round.remote(
                pending.job, rank, len(members), group, pending.inputs
            )
            self._inflight[ref] = (actor, pending, time.perf_counter())
            self.stats[actor].current = pending.job.key
        return True

    def wait(self, timeout: float) -> list[tuple[Job, np.ndarray, dict]]:
        """Results that finished within `timeout` seconds (possibly none)."""
        if not self._inflight:
            if self._queue:
                raise RuntimeError(f"every worker has failed: {self.warnings[-1]}")
            return []
        # Wake at the first result, then take every other one already back: a worker waits for
        # its next job only as long as the driver takes to notice, not a whole timeout.
        ready, rest = ray.wait(list(self._inflight), num_returns=1, timeout=timeout)
        if ready and rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        done = []
        for ref in ready:
            actor, pending, _ = self._inflight.pop(ref)
            stats = self.stats[actor]
            stats.current = None
            try:
                pixels, record = ray.get(ref)
            except RayTaskError as e:
                if isinstance(e.cause, ValueError):
                    raise ValueError(str(e.cause)) from None  # a user error: no retry will fix it
                # A member of a round fails when a peer dies (its connections close): not its fault.
                self._failed(
                    actor, pending, f"{type(e.cause).__name__}: {e.cause}", blame=not pending.members
                )
                continue
            except RayActorError as e:
                self._failed(actor, pending, f"worker died ({type(e).__name__})")
                if not stats.excluded:
                    self.actors[actor] = self.start()  # a fresh actor in its place
                if self._rendezvous is not None:
                    self._rendezvous.renew()
                continue
            stats.jobs += 1
            stats.busy_seconds += record.get("seconds", 0.0)  # as the worker measured it
            stats.name = record.get("worker", stats.name)
            if pending.members:  # a member of a round: the round is back when all its members are
                pending.parts[actor] = (pixels, record)
                if not pending.whole:
                    continue
                if pending.failure is not None:
                    self._retry_round(pending)
                    continue
                pixels, record = joined([pending.parts[a] for a in pending.members])
            reason = suspect(pending.job, record)
            reruns = self.retries.reruns
            if reason and len(pending.suspicions) < len(reruns):
                pending.suspicions.append(reason)
                pending.avoid = actor
                pending.job = reruns[len(pending.suspicions) - 1](pending.job)
                self._queue.appendleft(pending)  # at once, elsewhere if possible
                continue
            if pending.suspicions:
                record["reruns"] = pending.suspicions  # the manifest says why
            if reason:
                record["warning"] = f"{reason} (also after {len(reruns)} reruns)"
                self.warnings.append(f"{_where(pending.job)}: {record['warning']}")
            record["attempts"] = pending.attempts + 1 + len(pending.suspicions)
            done.append((pending.job, pixels, record))
        self._dispatch()
        return done

    def _failed(self, actor: int, pending: _Pending, why: str, blame: bool = True) -> None:
        stats = self.stats[actor]
        stats.failures += blame
        if blame and stats.failures >= self.retries.max_failures:
            stats.excluded = True
            self.warnings.append(f"{stats.name} left out after {stats.failures} failures (last: {why})")
        if pending.members:  # a round: redone once every member is back
            pending.parts[actor] = ({}, {})
            pending.failure = pending.failure or why
            if pending.whole:
                self._retry_round(pending)
            return
        self._requeue(pending, actor, why)

    def _retry_round(self, pending: _Pending) -> None:
        why = pending.failure or "a member failed"
        pending.members, pending.parts, pending.failure = [], {}, None
        if self._rendezvous is not None:
            self._rendezvous.renew()
        self._requeue(pending, None, why)

    def _requeue(self, pending: _Pending, actor: int | None, why: str) -> None:
        pending.attempts += 1
        if pending.attempts >= self.retries.max_attempts:
            raise RuntimeError(f"{_where(pending.job)} failed {pending.attempts} times: {why}")
        pending.avoid = actor
        self._queue.appendleft(pending)

    def progress(self) -> list[tuple]:
        """(frame, step, steps, loss) of each live actor's current job, polled from the actors."""
        live = [i for i, s in enumerate(self.stats) if not s.excluded]
        refs = [self.actors[i].progress.remote() for i in live]
        try:
            return ray.get(refs, timeout=2)
        except (RayActorError, ray.exceptions.GetTimeoutError):
            return []


def _where(job: Job | TileRound) -> str:
    if isinstance(job, TileRound):
        return f"frame {job.frame} round {job.round} ({len(job.tiles)} tiles)"
    return f"frame {job.frame} tile {job.tile}"


def joined(parts: list[tuple[dict[int, np.ndarray], dict]]) -> tuple[dict[int, np.ndarray], dict]:
    """A round's result from its members' (in rank order): every tile's pixels, and one record. The
    losses are the whole canvas's, the same in every member; time is the slowest member's."""
    pixels: dict[int, np.ndarray] = {}
    for held, _ in parts:
        pixels |= held
    records = [r for _, r in parts]
    record = dict(records[0])
    record["seconds"] = max(r["seconds"] for r in records)
    record["ranks"] = [r.get("worker", "?") for r in records]
    record["nan"] = any(r.get("nan") for r in records)
    record["collective_seconds"] = max(r.get("collective_seconds", 0.0) for r in records)
    revealed = [(r["revealed"], r["tiles"]) for r in records if "revealed" in r]
    if revealed:
        record["revealed"] = sum(v * n for v, n in revealed) / sum(n for _, n in revealed)
    return pixels, record
