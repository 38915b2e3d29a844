"""What several test files share: the CLI in this process or in one of its own, a render folder's frames
and files, free ports, waiting for a condition."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image


@contextlib.contextmanager
def _fd2_into(sink: list[bytes]) -> Iterator[None]:
    """What is written to file descriptor 2 meanwhile (by C code, or a logger holding the real stderr) goes
    into `sink`, as it would reach a process's stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(buffering=0) as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            sink.append(captured.read())


def cli(*args: object, fd2: bool = True) -> subprocess.CompletedProcess:
    """`stylereel ARGS` in this process, through Typer's CliRunner: its stdout, its stderr and its exit
    code, as `cli_process` returns them. A render joins the Ray already running here (the `ray_session`
    fixture) instead of starting torch, VGG-19 and a Ray of its own. Its stderr has what reached file
    descriptor 2 meanwhile too unless `fd2` is false. An exception that escaped the command is on stderr
    with its traceback and exit code 1, as in a process."""
    from typer.testing import CliRunner

    from cluster.cli import app

    argv = [str(a) for a in args]
    raw: list[bytes] = []
    with _fd2_into(raw) if fd2 else contextlib.nullcontext():
        result = CliRunner().invoke(app, argv)
    stderr = result.stderr + b"".join(raw).decode("utf-8", "replace")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, stderr)


def run(*args: object) -> tuple[int, list[str], str]:
    """The CLI in this process: exit code, stderr's lines (the command's own), stdout."""
    result = cli(*args, fd2=False)
    return result.returncode, result.stderr.strip().splitlines(), result.stdout


CLI = [sys.executable, "-m", "cluster.cli"]


def cli_process(*args: object, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """`stylereel ARGS` in a process of its own (a fresh interpreter, and a Ray of its own for a render):
    only where a real process proves the point."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)


def pixels(folder: Path) -> list[np.ndarray]:
    """A render folder's frames, in order."""
    return [np.asarray(Image.open(p)) for p in sorted((folder / "frames").glob("*.png"))]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(condition: Callable[[], bool], timeout: float = 240.0) -> bool:
    """Whether `condition` came true within `timeout` seconds (checked every 10 ms)."""
    deadline, tick = time.monotonic() + timeout, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.01)
    return True
