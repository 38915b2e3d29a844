"""docs/img/serve.jpg: `stylereel serve` on a finished render replayed as live at frame N.

    python docs/serve_shot.py scenes/drift.render docs/img/serve.jpg [N]

The render's own frames and manifest up to frame N are copied to a scratch folder, held by its lock
with a progress file as the render writes it, and the page is photographed in Debian's Chromium
(`make browser` installs it).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect, sync_playwright

from cluster.manifest import Manifest
from cluster.serve import serving
from render.atomic import write_text
from render.folder import render_lock

READY = "[...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)"


def main(source: Path, picture: Path, at: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / source.name
        (out / "frames").mkdir(parents=True)
        manifest = Manifest.load(source)
        manifest.frames = {t: r for t, r in manifest.frames.items() if t < at}
        manifest.video_bytes = 0
        for t in manifest.frames:
            shutil.copy(source / "frames" / f"{t:06d}.png", out / "frames")
        manifest.save(out)
        records = list(manifest.frames.values())
        finished = [r["finished"] for r in records]
        worker = {
            "name": "worker 0",
            "jobs": at,
            "busy_seconds": sum(r["seconds"] for r in records),
            "failures": 0,
            "excluded": False,
            "current": [at, 0, 0],
            "since": time.time() - (max(finished) - min(finished)),
        }  # as long ago as it ran
        progress = {"time": time.time(), "done": at, "frames": manifest.frame_count,
                    "active": [f"{at} r0 0/1"], "workers": [worker]}  # fmt: skip
        with render_lock(out):
            write_text(out / "progress.json", json.dumps(progress))
            with sync_playwright() as pw, serving([out], announce=lambda text: None) as (url,):
                browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "chromium")
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                page.goto(url)
                done = f"{at}/{manifest.frame_count}"
                expect(page.locator("#summary")).to_contain_text(done, timeout=20000)
                page.wait_for_function(READY, timeout=120000)
                shot = Path(tmp) / "page.png"
                page.screenshot(path=str(shot))
                browser.close()
        Image.open(shot).convert("RGB").save(picture, quality=85)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 39)
