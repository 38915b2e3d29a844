"""A rich progress bar fed by engine `Progress` callbacks: step, loss, iterations per second, ETA."""

from __future__ import annotations

import contextlib
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
def progress_bar(label: str) -> Iterator[Callable]:
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
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(label, total=None, rate="-", loss="-", size="")

        def update(p: object) -> None:
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
