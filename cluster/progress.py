"""A rich progress bar fed by engine `Progress` callbacks: step, loss, iterations per second, ETA."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextlib.contextmanager
def shown_from_the_first_update(bar: Progress) -> Iterator[Progress]:
    """`bar`, drawn from its first `start()` (an update: the work has begun, every input checked, so bad
    input leaves its one error line alone) and stopped at the end."""
    try:
        yield bar
    finally:
        if bar.live.is_started:  # else stop() would print an empty line
            bar.stop()


@contextlib.contextmanager
def progress_bar(label: str, note: str | None = None) -> Iterator[Callable]:
    """A bar over one optimisation's steps; `note`, if any, goes to stderr at its first step (once every
    input has been checked: bad input gets its one line alone)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} it/s"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[size]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with shown_from_the_first_update(Progress(*columns, transient=False)) as bar:
        task = bar.add_task(label, total=None, rate="-", loss="-", size="")

        notes = [note] if note else []

        def update(p: object) -> None:
            while notes:
                print(notes.pop(), file=sys.stderr, flush=True)
            bar.start()
            speed = bar.tasks[task].speed
            bar.update(
                task,
                completed=p.step,
                total=p.steps,
                loss=f"{p.loss:.4g}",
                rate=f"{speed:.1f}" if speed else "-",
                size=f"{p.size[1]}x{p.size[0]}",
            )

        yield update


@contextlib.contextmanager
def frame_bar(frames: int) -> Iterator[Callable]:
    """Progress over a render: frames done, the current frame and its iteration, ETA."""
    columns = (
        TextColumn("[bold]render"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} frames"),
        TextColumn("frame {task.fields[frame]} it {task.fields[step]}"),
        TextColumn("{task.fields[workers]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with shown_from_the_first_update(Progress(*columns, transient=False)) as bar:
        task = bar.add_task("render", total=frames, frame="-", step="-", workers="")

        def update(s: object) -> None:
            bar.start()
            now = time.time()
            rates = [f"{60 * w.jobs / max(1e-9, now - w.since):.0f}" for w in s.workers]
            bar.update(
                task,
                completed=s.done,
                frame=", ".join(s.active) or "-",
                step=f"{s.step}/{s.steps}",
                workers=f"jobs/min per worker: {' '.join(rates)}",
            )

        yield update
        bar.update(task, completed=frames)
