"""docs/img/serve.jpg: `stylereel serve` on a finished render replayed as live at frame N.

    python docs/serve_shot.py scenes/drift.render docs/img/serve.jpg [N]

The render's own frames and manifest up to frame N are copied to a scratch folder, held by its lock
with a progress file as the render writes it, and the page is photographed in Debian's Chromium
(`make browser` installs it).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect, sync_playwright

from cluster.serve import serving
from render.render_folder import Progress, RenderFolder, WorkerProgress

READY = "[...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)"


def main(source: Path, picture: Path, at: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / source.name
        folder, original = RenderFolder(out), RenderFolder(source)
        folder.frames.folder.mkdir(parents=True)
        manifest = original.load_manifest()
        manifest.frames = {t: r for t, r in manifest.frames.items() if t < at}
        manifest.video_bytes = 0
        for t in manifest.frames:
            shutil.copy(original.frames.path(t), folder.frames.path(t))
        folder.save_manifest(manifest)
        records = list(manifest.frames.values())
        finished = [r["finished"] for r in records]
        since = time.time() - (max(finished) - min(finished))  # as long ago as it ran
        busy = sum(r["seconds"] for r in records)
        worker = WorkerProgress("worker 0", at, busy, 0, False, (at, 0, 0), since)
        progress = Progress(time.time(), at, manifest.frame_count, [f"{at} r0 0/1"], [worker])
        with folder.lock():
            folder.save_progress(progress)
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
