"""The live page (`stylereel serve`): headless Chromium (Debian's, driven by Playwright; nothing is
downloaded) watches a render that the test plays by writing, a frame at a time, the files a render
writes; and no request reaches a file outside the folders served."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from cluster.serve import serving
from render.atomic import write_text
from render.folder import LOCK, PROGRESS, render_lock
from render.manifest import Manifest
from render.scene import load_scene
from render.store import FrameStore
from render.video import VideoWriter
from tests.conftest import TINY_SCENE

SCENE = TINY_SCENE.format(frames=4, iterations=2)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WAIT_MS = 15_000  # for each thing the page should come to show


class PlayedRender:
    """Writes what a render writes (frames, manifest, progress; the lock held while it runs), a step at
    a time, as cluster/scheduler.py does."""

    def __init__(self, folder: Path, scene: Path) -> None:
        loaded = load_scene(scene)
        self.folder, self.size = folder, (loaded.output.height, loaded.output.width)
        self.manifest = Manifest(loaded.digest(), loaded.resolved(), loaded.seed, loaded.frame_count,
                                 "s.mp4", shots=[loaded.frame_count])  # fmt: skip
        self.store = FrameStore(folder)
        self.lock = contextlib.ExitStack()
        self.started = time.time()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock.enter_context(render_lock(self.folder))
        self.manifest.save(self.folder)
        self.progress(current=len(self.manifest.frames))

    def pixels(self, t: int) -> np.ndarray:
        h, w = self.size
        y, x = np.mgrid[0:h, 0:w]
        return np.stack([(x * 5 + 60 * t) % 256, (y * 8) % 256, np.full_like(x, 40 * t)], -1).astype(np.uint8)

    def frame(self, t: int, **extra) -> None:
        sha = self.store.write(t, self.pixels(t))
        self.manifest.frames[t] = {"sha256": sha, "seconds": 0.5, "finished": round(time.time(), 3),
                                   "loss": 1.0, "workers": ["w0"], "jobs": 1, **extra}  # fmt: skip
        self.manifest.save(self.folder)
        left = self.manifest.frame_count - len(self.manifest.frames)
        self.progress(current=t + 1 if left else None)

    def progress(self, current: int | None) -> None:
        """progress.json as a render writes it (`render.render_folder.Progress`), one worker on frame
        `current` (None: idle)."""
        jobs, job = len(self.manifest.frames), None if current is None else [current, 0, 0]
        worker = {"name": "w0", "jobs": jobs, "busy_seconds": 0.5 * jobs, "failures": 0, "excluded": False,
                  "current": job, "since": round(self.started, 1)}  # fmt: skip
        data = {"time": time.time(), "done": jobs, "frames": self.manifest.frame_count,
                "active": [] if current is None else [f"{current} r0 0/1"], "workers": [worker]}  # fmt: skip
        write_text(self.folder / PROGRESS, json.dumps(data, indent=1))

    def die(self) -> None:
        """As a killed render: the kernel drops the lock; the progress file stays."""
        self.lock.close()

    def finish(self) -> None:
        h, w = self.size
        video = VideoWriter(self.folder / self.manifest.video, w, h, fps=12)
        for t in range(self.manifest.frame_count):
            video.write(self.store.read(t))
        video.close()
        self.manifest.video_bytes = (self.folder / self.manifest.video).stat().st_size
        self.manifest.save(self.folder)
        (self.folder / PROGRESS).unlink()
        self.lock.close()


@pytest.fixture
def scene(tmp_path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(SCENE)
    return path


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        message = "no chromium: `make install` installs Debian's (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


def test_the_page_follows_a_render_from_its_first_frame_to_its_video(browser, scene, tmp_path):
    from playwright.sync_api import expect

    render = PlayedRender(tmp_path / "out", scene)
    render.start()
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    with serving([render.folder], announce=lambda url: None) as (url,):
        assert url.startswith("http://127.0.0.1:")
        page.goto(url + "?every=100")
        state, summary = page.locator("#state"), page.locator("#summary")
        expect(state).to_have_text("rendering", timeout=WAIT_MS)
        expect(summary).to_contain_text("0/4 frames", timeout=WAIT_MS)
        expect(page.locator("#active")).to_contain_text("0 r0 0/1", timeout=WAIT_MS)

        for t in (0, 1):
            render.frame(t)
            expect(page.locator("#newest")).to_have_attribute("data-index", str(t), timeout=WAIT_MS)
            expect(summary).to_contain_text(f"{t + 1}/4 frames", timeout=WAIT_MS)
        newest_loaded = "(i => i.complete && i.naturalWidth === 48 && i.src.includes('000001.png'))"
        page.wait_for_function(f"{newest_loaded}(document.getElementById('newest'))", timeout=WAIT_MS)
        expect(page.locator("#filmstrip figure")).to_have_count(2, timeout=WAIT_MS)
        expect(page.locator("#workers tr")).to_contain_text("w0", timeout=WAIT_MS)
        expect(page.locator("#workers tr td").nth(1)).to_have_text("2", timeout=WAIT_MS)
        expect(page.locator("#workers tr")).to_contain_text("on frame 2 r0 tile 0", timeout=WAIT_MS)
        expect(page.locator("#active")).to_contain_text("2 r0 0/1", timeout=WAIT_MS)

        render.die()
        expect(state).to_have_text("stopped", timeout=WAIT_MS)
        expect(page.locator("#note")).to_contain_text("to resume", timeout=WAIT_MS)
        expect(page.locator("#active")).to_contain_text("not rendering", timeout=WAIT_MS)

        render.start()  # resumed
        render.frame(2, reruns=["style loss 3x the median"])
        render.frame(3, warnings=["NaN in tile 0 (also after 2 reruns)"])
        expect(state).to_have_text("rendering", timeout=WAIT_MS)
        expect(summary).to_contain_text("4/4 frames", timeout=WAIT_MS)
        expect(page.locator("#warnings")).to_contain_text("rerun: frame 2: style loss", timeout=WAIT_MS)
        expect(page.locator("#warnings")).to_contain_text("frame 3: NaN in tile 0", timeout=WAIT_MS)
        expect(page.locator("#video-box")).to_be_hidden()

        render.finish()
        expect(state).to_have_text("finished", timeout=WAIT_MS)
        expect(page.locator("#video-box")).to_be_visible(timeout=WAIT_MS)
        playable = "(v => v.readyState >= 1 && Math.abs(v.duration - 4 / 12) < 0.05)"
        page.wait_for_function(f"{playable}(document.getElementById('video'))", timeout=WAIT_MS)
        plotted = "(i => i.complete && i.naturalWidth > 0)"
        expect(page.locator("#plot-box")).to_be_visible(timeout=WAIT_MS)
        page.wait_for_function(f"{plotted}(document.getElementById('plot'))", timeout=WAIT_MS)
    page.close()


def get(url: str, path: str) -> tuple[int, bytes]:
    """GET `path` exactly as written (http.client sends it unnormalised, as an attacker would)."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_no_request_reaches_a_file_outside_the_folders(scene, tmp_path):
    render = PlayedRender(tmp_path / "out", scene)
    render.start()
    render.frame(0)
    render.die()
    secret = b"the secret outside"
    (tmp_path / "secret.txt").write_bytes(secret)
    (tmp_path / "out2").mkdir()  # a sibling whose name starts like the served folder's
    (tmp_path / "out2" / "manifest.json").write_bytes(secret)
    (render.folder / "frames" / "000003.png").symlink_to(tmp_path / "secret.txt")
    (render.folder / "metrics.png").symlink_to(tmp_path / "secret.txt")
    (render.folder / "notes.txt").write_bytes(secret)  # inside, but nothing a render writes
    refused = [
        "/r/0/files/../secret.txt",
        "/r/0/files/../../../../../etc/passwd",
        "/r/0/files/frames/../../secret.txt",
        "/r/0/files/..%2fsecret.txt",
        "/r/0/files/%2e%2e/secret.txt",
        "/r/0/files/%2E%2E%2Fsecret.txt",
        "/r/0/files/%252e%252e%252fsecret.txt",
        "/r/0/files/..%5csecret.txt",
        "/r/0/files//etc/passwd",
        "/r/0/files/%2fetc%2fpasswd",
        f"/r/0/files/{tmp_path}/secret.txt",
        "/r/0/files/../out2/manifest.json",
        "/r/0/files/frames/000003.png",
        "/r/0/files/metrics.png",
        "/r/0/files/notes.txt",
        "/r/0/files/frames/%00.png",
        "/r/0/thumb/3.jpg",
        "/r/1/files/manifest.json",
        "/r/-1/files/manifest.json",
        "/../../etc/passwd",
        "/files/0/../../etc/passwd",
    ]
    with serving([render.folder], announce=lambda url: None) as (url,):
        for path in refused:
            status, body = get(url, path)
            assert status in (403, 404), path
            assert secret not in body and b"root:" not in body, path
        status, body = get(url, "/r/0/files/manifest.json")
        assert status == 200 and json.loads(body)["frame_count"] == 4
        status, body = get(url, "/r/0/files/frames/000000.png")
        assert status == 200 and body == render.store.path(0).read_bytes()
        assert json.loads(get(url, "/r/0/state.json")[1])["state"] == "stopped"


def test_a_port_in_use_is_refused_with_the_way_out(tmp_path):
    with serving([tmp_path], announce=lambda url: None) as (url,):
        port = int(url.split(":")[2].split("/")[0])
        with pytest.raises(ValueError, match="--port 0"), serving([tmp_path], port=port):
            pass


def test_a_render_on_another_machine_is_live_while_its_heartbeat_is(scene, tmp_path):
    from cluster.serve import Render

    render = PlayedRender(tmp_path / "out", scene)
    render.start()
    render.frame(0)
    render.die()  # our lock is gone; another host's lock file says who renders, its heartbeat whether
    (render.folder / LOCK).write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": "then"}))
    render.progress(current=1)
    state = Render(render.folder).state()
    assert state["state"] == "rendering" and state["done"] == 1 and state["active"] == ["1 r0 0/1"]
    assert state["workers"][0]["state"] == "on frame 1 r0 tile 0"
    data = json.loads((render.folder / PROGRESS).read_text())
    write_text(render.folder / PROGRESS, json.dumps(data | {"time": time.time() - 120}))
    state = Render(render.folder).state()
    assert state["state"] == "stopped" and state["workers"] == [] and state["active"] == []
