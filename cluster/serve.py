"""A live page per render folder: `stylereel serve DIR ...` and `stylereel render --serve`.

The page reads only the files `stylereel status` reads (manifest, frames,
progress, lock, video), so it shows a render in this process and one on
another machine writing to a shared folder alike; it writes nothing into the
folders. A Starlette app, served by uvicorn on a thread; the page
(serve.html, plain JavaScript) polls `state.json` every second.

It serves only what a render writes, inside the folders it was given: the
manifest, progress, metrics plot, video and numbered frames, by name, and
refuses any other path (`..`, absolute paths, symlinks that lead out).
"""

from __future__ import annotations

import contextlib
import html
import io
import logging
import socket
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from render.folder import FRAME_NAME, FRAMES, MANIFEST, METRICS, PROGRESS, video_name_ok
from render.manifest import Manifest
from render.render_folder import Progress, RenderFolder
from render.store import FrameStore
from render.text import escaped

PAGE = Path(__file__).with_suffix(".html")  # the page, beside this file
FILMSTRIP = 24  # the most recently finished frames in the filmstrip
THUMB = (256, 96)  # a filmstrip picture's largest size
PLOT_FROM = 3  # complete frames before the metrics plot appears
MEASURE_AT_MOST = 20  # frames measured per redraw: a long finished render fills in, a request at a time


class Render:
    """One render folder as the page shows it. Reads only; what it decoded is remembered by the
    files' identity, so a poll costs a few stat calls until the manifest changes."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).absolute()
        self.root = self.folder.resolve()
        self.render_folder = _CheckedFolder(self.folder)
        self._lock = threading.Lock()
        self._seen: tuple[tuple, Manifest | None, set[int]] | None = None
        self._thumbs: OrderedDict[tuple, bytes] = OrderedDict()
        self._plot = _Plot(self.folder.name)

    def current(self) -> tuple[Manifest | None, set[int]]:
        """The manifest and its complete frames, as `status` counts them; ValueError if unreadable."""
        path = self.render_folder.manifest_path
        with self._lock:
            try:
                st = path.stat()
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
            except OSError:
                key = ()
            if self._seen is None or self._seen[0] != key:
                manifest = self.render_folder.load_manifest() if key else None
                done = set()
                if manifest is not None:
                    try:
                        done = self.render_folder.complete_frames(manifest)
                    except KeyError as e:
                        raise ValueError(f"{path}: the scene has no {e}") from None
                self._seen = (key, manifest, done)
            return self._seen[1], self._seen[2]

    def state(self) -> dict:
        """What the page shows, as JSON: progress and ETA, frames, workers, warnings, plot, video."""
        out = {"name": self.folder.name, "folder": str(self.folder), "error": None}
        try:
            manifest, done = self.current()
        except (ValueError, OSError) as e:
            manifest, done, out["error"] = None, set(), str(e)
        progress = self.render_folder.read_progress()
        alive = self.render_folder.alive(progress)
        count = manifest.frame_count if manifest else 0
        video = manifest is not None and self.render_folder.video_final(manifest)
        out["state"] = (
            "rendering" if alive
            else "waiting" if manifest is None
            else "finished" if video and len(done) == count
            else "stopped"
        )  # fmt: skip
        records = manifest.frames if manifest else {}
        per_frame = manifest.pace(done) if manifest else None
        recent = sorted(done, key=lambda t: (_number(records[t].get("finished")), t))[-FILMSTRIP:]
        plotted = len(self._plot.figures)  # changes the plot's URL while a long render's plot fills in
        out |= {
            "frames": count,
            "done": len(done),
            "pace": per_frame,
            "eta": (count - len(done)) * per_frame if per_frame is not None else None,
            "newest": _frame(recent[-1], records, "files/frames/{t:06d}.png") if recent else None,
            "filmstrip": [_frame(t, records, "thumb/{t}.jpg") for t in sorted(recent, reverse=True)],
            "warnings": [str(w) for w in manifest.warnings] if manifest else [],
            "reruns": [],
            "active": [],
            "workers": [],
            "heartbeat": None,
            "plot": f"metrics.png?v={len(done)}.{plotted}" if len(done) >= PLOT_FROM else None,
            "video": {"url": f"files/{quote(manifest.video)}?v={manifest.video_bytes}"} if video else None,
        }
        for t in sorted(done):
            out["warnings"] += [f"frame {t}: {w}" for w in _strings(records[t].get("warnings"))]
            out["reruns"] += [f"frame {t}: {r}" for r in _strings(records[t].get("reruns"))]
        if alive and progress is not None:
            out["active"], out["workers"] = _live(progress)
            out["heartbeat"] = round(time.time() - progress.time, 1)
        return out

    def file(self, relative: str) -> Path | None:
        """The file a render wrote at `relative`, inside the folder, or None for any other path."""
        parts = relative.split("/")
        if any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            return None
        if len(parts) == 1:
            allowed = parts[0] in (MANIFEST, PROGRESS, METRICS) or video_name_ok(parts[0])
        else:
            allowed = len(parts) == 2 and parts[0] == FRAMES and FRAME_NAME.fullmatch(parts[1]) is not None
        if not allowed:
            return None
        path = (self.root / relative).resolve()  # a symlink that leads out resolves outside the root
        return path if path.is_relative_to(self.root) and path.is_file() else None

    def thumbnail(self, t: int) -> bytes | None:
        """A small JPEG of frame t for the filmstrip."""
        path = self.file(f"{FRAMES}/{t:06d}.png")
        try:
            st = path.stat() if path else None
        except OSError:
            st = None  # replaced or removed since
        if st is None:
            return None
        key = (t, st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if key in self._thumbs:
                self._thumbs.move_to_end(key)
                return self._thumbs[key]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                image.thumbnail(THUMB)
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=80)
        except (OSError, SyntaxError, ValueError):
            return None  # being replaced, or not a picture
        with self._lock:
            self._thumbs[key] = buffer.getvalue()
            while len(self._thumbs) > 4 * FILMSTRIP:
                self._thumbs.popitem(last=False)
        return buffer.getvalue()

    def metrics_plot(self) -> bytes | None:
        """The folder's own metrics.png while it is newer than the manifest (`stylereel metrics`), else
        a plot this server draws of the complete frames."""
        manifest, done = self.current()
        if manifest is None or len(done) < PLOT_FROM:
            return None
        own, index = self.file(METRICS), self.render_folder.manifest_path
        with contextlib.suppress(OSError):
            if own is not None and own.stat().st_mtime >= index.stat().st_mtime:
                return own.read_bytes()
        return self._plot.draw(self.render_folder.frames, manifest, done)


class _CheckedFolder(RenderFolder):
    """A RenderFolder whose intact frames are remembered by each file's identity: a frame is decoded
    and hashed once, not on every poll."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._ok: dict[int, tuple] = {}

    def intact(self, t: int, size: tuple[int, int], sha256: str | None) -> bool:
        try:
            st = self.frames.path(t).stat()
        except OSError:
            return False
        key = (sha256, tuple(size), st.st_ino, st.st_mtime_ns, st.st_size)
        if self._ok.get(t) != key:
            if not super().intact(t, size, sha256):
                return False
            self._ok[t] = key
        return True


class _Plot:
    """`stylereel metrics`' figures and plot, kept up to date frame by frame: a frame is measured again
    only when it or the frame before it changed."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.figures: dict[int, tuple[tuple, object]] = {}  # t -> (hashes of t-1 and t, FrameMetrics)
        self.png: bytes | None = None
        self.drawn: tuple[int, ...] = ()  # the frames in self.png
        self._lock = threading.Lock()
        self._folder = tempfile.TemporaryDirectory(prefix="stylereel-serve-")

    def draw(self, store: FrameStore, manifest: Manifest, done: set[int]) -> bytes | None:
        from render import metrics as m

        with self._lock:  # one redraw at a time; other requests wait and get its plot
            known = manifest.known_motion
            sha = {t: manifest.frames[t].get("sha256") for t in done}
            measured = 0
            for t in sorted(done):
                key = (sha.get(t - 1), sha[t])
                if t in self.figures and self.figures[t][0] == key:
                    continue
                if measured == MEASURE_AT_MOST:
                    break
                pixels = [store.read(u) for u in ((t - 1, t) if t - 1 in done else (t,))]
                if any(p is None for p in pixels):
                    continue  # replaced since it was checked; the next redraw sees it
                step = manifest.frames[t].get("step")
                pairs = [(pixels[0], None), *[(p, step) for p in pixels[1:]]]
                figures = m.measure(pairs, known)[-1]
                figures.frame = t
                self.figures[t] = (key, figures)
                measured += 1
            shown = tuple(t for t in sorted(done) if t in self.figures)
            if len(shown) < PLOT_FROM:
                return None
            if shown != self.drawn or measured:
                path = Path(self._folder.name) / METRICS
                m.plot([self.figures[t][1] for t in shown], path, self.title)
                self.png, self.drawn = path.read_bytes(), shown
            return self.png


def _live(progress: Progress) -> tuple[list[str], list[dict]]:
    """Frames in flight and each worker's throughput, from a live render's progress file."""
    workers = [
        {"name": w.name, "jobs": w.jobs, "per_minute": round(w.per_minute(progress.time), 2),
         "busy": round(min(1.0, w.busy_seconds / w.running(progress.time)), 3), "failures": w.failures,
         "state": w.state}
        for w in progress.workers
    ]  # fmt: skip
    return list(progress.active), workers


def _frame(t: int, records: dict, url: str) -> dict:
    version = str(records[t].get("sha256", ""))[:16]
    return {"index": t, "url": f"{url.format(t=t)}?v={version}"}


def _number(value: object) -> float:
    return value if isinstance(value, int | float) else float("-inf")


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def make_app(folders: Sequence[Path]) -> Starlette:
    """The web app: `/` lists the renders, `/r/N/` is render N's page."""
    renders = [Render(f) for f in folders]

    def render_of(request: Request) -> Render | None:
        n = request.path_params["n"]
        return renders[n] if 0 <= n < len(renders) else None

    def index(request: Request) -> Response:
        if len(renders) == 1:
            return RedirectResponse("r/0/")
        items = "".join(
            f'<li><a href="r/{n}/">{html.escape(r.folder.name)}</a> {html.escape(str(r.folder))}</li>'
            for n, r in enumerate(renders)
        )
        return HTMLResponse(f"<!doctype html><title>stylereel</title><h1>Renders</h1><ul>{items}</ul>")

    def page(request: Request) -> Response:
        return FileResponse(PAGE, media_type="text/html") if render_of(request) else _not_found()

    def state(request: Request) -> Response:
        r = render_of(request)
        return JSONResponse(r.state(), headers={"Cache-Control": "no-store"}) if r else _not_found()

    def files(request: Request) -> Response:
        r = render_of(request)
        path = r.file(request.path_params["path"]) if r else None
        return FileResponse(path, headers={"Cache-Control": "no-cache"}) if path else _not_found()

    def thumbnail(request: Request) -> Response:
        r = render_of(request)
        data = r.thumbnail(request.path_params["t"]) if r else None
        return Response(data, media_type="image/jpeg") if data else _not_found()

    def plot(request: Request) -> Response:
        r = render_of(request)
        data = r.metrics_plot() if r else None
        return Response(data, media_type="image/png") if data else _not_found()

    return Starlette(routes=[
        Route("/", index),
        Route("/r/{n:int}/", page),
        Route("/r/{n:int}/state.json", state),
        Route("/r/{n:int}/files/{path:path}", files),
        Route("/r/{n:int}/thumb/{t:int}.jpg", thumbnail),
        Route("/r/{n:int}/metrics.png", plot),
    ])  # fmt: skip


def _not_found() -> Response:
    return Response("not found", status_code=404, media_type="text/plain")


def default_folders(here: Path) -> list[Path]:
    """Without DIR: `here` if it is a render folder, else the render folders (`*.render`) in it."""
    if RenderFolder(here).manifest_path.is_file():
        return [here]
    found = sorted(p for p in here.glob("*.render") if RenderFolder(p).manifest_path.is_file())
    if not found:
        raise ValueError(f"{here}: no render here, nor SCENE.render folders in it; name the folders to serve")
    return found


@contextlib.contextmanager
def serving(
    folders: Sequence[Path], host: str = "127.0.0.1", port: int = 0, announce: Callable[[str], None] = print
) -> Iterator[list[str]]:
    """Serve the folders' pages on a thread while the block runs; `announce` each page's URL and yield
    them. Port 0 picks a free port."""
    for folder in folders:
        if Path(folder).exists() and not Path(folder).is_dir():
            raise ValueError(f"{folder}: is a file; give a render's output folder")
    sock = _bind(host, port)
    config = uvicorn.Config(make_app(folders), log_config=None, log_level="warning", access_log=False,
                            lifespan="off", http="h11", ws="none", timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
    log, lines = logging.getLogger("uvicorn"), _OneLine(server)
    log.addHandler(lines)
    log.propagate = False
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="serve", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the page's server on {host}:{port} did not start")
            time.sleep(0.01)
        address, bound = sock.getsockname()[:2]
        base = f"http://{f'[{address}]' if ':' in address else address}:{bound}"
        urls = [f"{base}/r/{n}/" for n in range(len(folders))]
        for folder, url in zip(folders, urls, strict=True):
            announce(f"{url} ({folder})" if len(folders) > 1 else url)
        yield urls
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
        log.removeHandler(lines)
        log.propagate = True


class _OneLine(logging.Handler):
    """The server's errors as one line each on stderr, without the traceback, each once; none while it
    stops (a plot still being drawn is cancelled then)."""

    def __init__(self, server: uvicorn.Server) -> None:
        super().__init__(logging.WARNING)
        self.server, self.seen = server, set()

    def emit(self, record: logging.LogRecord) -> None:
        why = f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})" if record.exc_info else ""
        line = escaped(f"stylereel: serve: {record.getMessage()}{why}")
        if not self.server.should_exit and line not in self.seen:
            self.seen.add(line)
            sys.stderr.write(line + "\n")


def _bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port}: choose a port from 1 to 65535, or 0 for a free one")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise ValueError(f"--host {host}: {e.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ValueError(f"{host}:{port}: cannot listen here ({e.strerror}); choose another --port, "
                         "or --port 0 for a free one") from None  # fmt: skip
    return sock
