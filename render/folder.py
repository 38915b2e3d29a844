"""A render folder's ground rules: one render at a time, nothing touched that stylereel did not write.

A folder is stylereel's when it holds a manifest (or is empty). The lock is an
flock on `.stylereel.lock`: the kernel releases it when its owner dies, however
it dies, so a lock is never stale; the file says who holds it (host, PID) for the
message a second render prints. Temporary files are named as `atomic_path` names
them (`.STEM.XXXXXXXX.SUFFIX`), so those of a killed run can be told from the
user's own files and removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

LOCK = ".stylereel.lock"
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
FRAMES = "frames"
METRICS = "metrics.png"  # `stylereel metrics`' plot of a render folder
FRAME_NAME = re.compile(r"\d{6}\.png")
# atomic_path's temporary names: a dot, the final name's stem, a dot, mkstemp's 8 characters, the suffix.
_TEMP = r"\.{stem}\.[a-z0-9_]{{8}}{suffix}"


class FolderBusy(ValueError):
    """Another render holds the folder."""


def describe_owner(text: str) -> str:
    try:
        owner = json.loads(text)
        return f"PID {int(owner['pid'])} on {str(owner['host'])!r}, since {str(owner['since'])}"
    except (ValueError, KeyError, TypeError):
        return "another render"


@contextlib.contextmanager
def render_lock(folder: Path) -> Iterator[None]:
    """Hold `folder` for one render; raise FolderBusy naming the owner if another render holds it."""
    path = Path(folder) / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 4096).decode(errors="replace")
            os.close(fd)
            raise FolderBusy(f"{folder}: another render is writing here ({describe_owner(owner)})") from None
        # The holder before us may have removed the file between our open and our lock: then we hold
        # a lock on a file nobody else can see, and must take the one at the path.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        owner = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": since})
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # before unlocking: a render waiting for the lock then takes a new file
        os.close(fd)


def foreign_files(folder: Path, frame_count: int | None) -> list[str]:
    """The files in `folder` (relative paths) that stylereel would not have written: anything but
    its manifest, progress, lock, video, metrics, temporary files and numbered frames below
    `frame_count` (any count when None)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            continue
        name = path.relative_to(folder)
        if len(name.parts) == 1 and (name.name in (MANIFEST, PROGRESS, LOCK) or _is_temp(name.name)):
            continue
        if len(name.parts) == 2 and name.parts[0] == FRAMES:
            if FRAME_NAME.fullmatch(name.name) and (frame_count is None or int(name.name[:6]) < frame_count):
                continue
            if _is_temp(name.name, stem=r"\d{6}", suffix=r"\.png"):
                continue
        out.append(str(name))
    return out


def stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files that a killed run left in `folder` and its frames."""
    folder = Path(folder)
    found = [p for p in folder.glob(".*") if p.is_file() and _is_temp(p.name)]
    frames = folder / FRAMES
    if frames.is_dir():
        found += [p for p in frames.glob(".*") if _is_temp(p.name, stem=r"\d{6}", suffix=r"\.png")]
    return found


def _is_temp(name: str, stem: str = r"[^/]+", suffix: str = r"\.[a-z0-9]+") -> bool:
    return re.fullmatch(_TEMP.format(stem=stem, suffix=suffix), name) is not None


def check_output_file(
    path: Path, suffixes: Iterable[str], what: str, error: type[ValueError] = ValueError
) -> None:
    """Raise `error` unless `path` names a file with one of `suffixes` (a `what`: image, video) in a
    folder that exists; OSError unless that folder takes new files: all before any compute."""
    suffixes = list(suffixes)
    if path.suffix.lower() not in suffixes:
        raise error(f"{path}: unknown {what} format; use one of {', '.join(suffixes)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"{path}: folder {parent} does not exist")
    if path.is_dir():
        raise error(f"{path}: is a folder; name the {what} file to write")
    check_writable(path)


def check_writable(path: Path) -> None:
    """Raise OSError naming `path`'s folder unless a file can be created there (before hours of work)."""
    folder = Path(path).parent
    probe = folder / f".stylereel-probe-{os.getpid()}"
    try:
        probe.touch(exist_ok=False)
    except FileExistsError:
        pass
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(folder)) from None
    probe.unlink(missing_ok=True)


def render_alive(folder: Path, heartbeat: float | None, stale_seconds: float = 60.0) -> bool:
    """Whether a render is writing `folder` now: its lock's owner is alive (a process on this host),
    or, for an owner on another host, the progress file's heartbeat (`heartbeat`, a time.time()) is
    recent."""
    try:
        owner = json.loads((Path(folder) / LOCK).read_text())
        host, pid = str(owner["host"]), int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no lock: no render (a render holds one from start to end)
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's live process
        return True
    return heartbeat is not None and time.time() - heartbeat < stale_seconds


VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov")


def video_name_ok(name: str) -> bool:
    """Whether a manifest's `video` names a video file inside its folder (no path, no `..`)."""
    return (
        name == Path(name).name
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and Path(name).suffix.lower() in VIDEO_SUFFIXES
        and name.isprintable()
    )
