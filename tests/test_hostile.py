"""A hostile user's render folder: foreign files, a second render, broken manifests, machine faults,
SIGTERM. Each bad case gives its exit code and exactly one line, and leaves the folder's files
byte-identical."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cluster.flight import Frame, frame_record
from cluster.outdir import open_outdir
from render.folder import LOCK, render_alive, render_lock
from render.job import finish
from render.manifest import Manifest
from render.scene import load_scene
from render.store import FrameStore
from tests.conftest import TINY_SCENE, jobs_here
from tests.helpers import CLI, cli, run, snapshot, until


@pytest.fixture
def scene(tmp_path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(TINY_SCENE.format(frames=3, iterations=2))
    return path


def a_manifest(scene: Path, **changes) -> Manifest:
    loaded = load_scene(scene)
    manifest = Manifest(loaded.digest(), loaded.resolved(), loaded.seed, loaded.frame_count, "s.mp4",
                        shots=[loaded.frame_count])  # fmt: skip
    for key, value in changes.items():
        setattr(manifest, key, value)
    return manifest


def test_fresh_on_a_folder_that_is_not_a_render_touches_nothing(scene, tmp_path):
    out = tmp_path / "holiday"
    (out / "frames").mkdir(parents=True)
    (out / "frames" / "holiday.jpg").write_bytes(b"a user's photo")
    (out / "frames" / "000000.png").write_bytes(b"a user's numbered file")
    before = snapshot(out)
    code, err, _ = run("render", scene, "-o", out, "--fresh")
    assert code == 2 and len(err) == 1
    assert "not a render folder" in err[0] and "frames/holiday.jpg" in err[0]
    assert snapshot(out) == before


def test_numbered_frames_without_a_manifest_are_refused_and_repair_is_offered(scene, tmp_path):
    out = tmp_path / "out"
    FrameStore(out).write(0, np.zeros((32, 48, 3), np.uint8))
    before = snapshot(out)
    code, err, _ = run("render", scene, "-o", out)
    assert code == 2 and len(err) == 1 and "--repair" in err[0]
    assert snapshot(out) == before


def test_an_output_that_is_a_file_is_refused(scene, tmp_path):
    target = tmp_path / "a file\nstylereel: error: forged"
    target.write_bytes(b"keep")
    code, err, _ = run("render", scene, "-o", target)
    assert code == 2 and len(err) == 1  # the newline in the name is escaped, not printed
    assert "is a file" in err[0] and "\\n" in err[0]
    assert target.read_bytes() == b"keep"


def test_a_second_render_is_refused_naming_the_first(scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    a_manifest(scene).save(out)
    with render_lock(out):
        before = snapshot(out)
        code, err, _ = run("render", scene, "-o", out)
        assert snapshot(out) == before
    assert code == 2 and len(err) == 1
    assert "another render is writing here" in err[0] and f"PID {os.getpid()}" in err[0]
    assert not (out / LOCK).exists()  # released with its owner


def test_a_lock_whose_owner_is_gone_is_taken_and_status_says_so(scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    a_manifest(scene).save(out)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (out / LOCK).write_text(json.dumps({"host": os.uname().nodename, "pid": gone.pid, "since": "then"}))
    progress = {"time": time.time(), "active": ["1 r0 0/1"], "workers": []}  # its last heartbeat
    (out / "progress.json").write_text(json.dumps(progress))
    assert not render_alive(out, time.time())
    code, _, stdout = run("status", out)
    assert code == 0 and "not rendering" in stdout and "frames in flight" not in stdout
    with render_lock(out):  # the kernel let go of the dead owner's lock
        assert render_alive(out, None)


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        '{"frames": 3}',
        "not json",
        "{}",
        "VIDEO ../outside.mp4",
        "VIDEO /tmp/abs.mp4",
    ],
)
def test_a_manifest_of_the_wrong_shape_is_one_line(scene, tmp_path, text):
    out = tmp_path / "out"
    out.mkdir()
    if text.startswith("VIDEO "):
        manifest = a_manifest(scene, video=text[6:])
        (out / "manifest.json").write_text(manifest.text())
    else:
        (out / "manifest.json").write_text(text)
    before = snapshot(out)
    for command in ("status", "encode"):
        code, err, _ = run(command, out)
        assert code == 2 and len(err) == 1 and "manifest.json" in err[0] and "--repair" in err[0]
    code, err, _ = run("render", scene, "-o", out)
    assert code == 2 and len(err) == 1
    assert snapshot(out) == before
    assert not (tmp_path / "outside.mp4").exists()


def test_frames_of_another_version_are_not_resumed(scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    a_manifest(scene, version="0.0.1", frames_version=0).save(out)
    before = snapshot(out)
    code, err, _ = run("render", scene, "-o", out)
    assert code == 2 and len(err) == 1
    assert "stylereel 0.0.1" in err[0] and "--fresh" in err[0]
    assert snapshot(out) == before


def test_fresh_removes_only_the_frames_stylereel_wrote(scene, tmp_path):
    out = tmp_path / "out"
    store = FrameStore(out)
    for t in range(3):
        store.write(t, np.full((32, 48, 3), t, np.uint8))
    a_manifest(scene).save(out)
    (out / "frames" / "holiday.jpg").write_bytes(b"photo")
    (out / ".notes").write_bytes(b"mine")
    (out / ".manifest.abcd1234.json").write_bytes(b"a killed run's temporary file")
    (out / "frames" / ".000001.zz_z9y8x.png").write_bytes(b"another")
    (out / "progress.json").write_text("{}")
    manifest = open_outdir(load_scene(scene), out, fresh=True)
    assert manifest.frames == {}
    assert sorted(snapshot(out)) == [".notes", "frames/holiday.jpg", "manifest.json"]


def test_repair_rebuilds_the_manifest_from_the_frames(scene, tmp_path):
    out = tmp_path / "out"
    store = FrameStore(out)
    hashes = [store.write(t, np.full((32, 48, 3), 40 * t, np.uint8)) for t in range(2)]
    store.write(2, np.zeros((16, 16, 3), np.uint8))  # not this scene's size: rendered again
    (out / "manifest.json").write_text('{"frames": ')  # cut off
    code, err, _ = run("status", out)
    assert code == 2 and "--repair" in err[0]
    manifest = open_outdir(load_scene(scene), out, repair=True)
    assert {t: r["sha256"] for t, r in manifest.frames.items()} == dict(enumerate(hashes))


def test_machine_faults_are_one_line_naming_the_path_with_exit_1(scene, tmp_path):
    # sysfs takes no new files, even from root: a folder nobody can write to.
    code, err, _ = run("still", "-o", "/sys/out.png", "-c", "builtin:astronaut", "-s", "builtin:ihc")
    assert code == 1 and len(err) == 1 and "/sys" in err[0]
    code, err, _ = run("render", scene, "-o", "/sys/out.render")
    assert code == 1 and len(err) == 1 and "/sys/out.render" in err[0]


@contextlib.contextmanager
def small_disk(folder: Path):
    """A 64 KiB tmpfs at `folder`; skipped where this machine may not mount one."""
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                                           capture_output=True).returncode:  # fmt: skip
        pytest.skip("mounting a small tmpfs needs root (the CI container has it)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_one_line_and_keeps_what_was_there(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        (disk / "keep.png").write_bytes(b"an earlier still")
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
            while True:  # fill it up
                f.write(b"\0" * 1024)
                f.flush()
        before = snapshot(disk)
        args = ["-c", "builtin:astronaut", "-s", "builtin:ihc", "--size", "32", "--iterations", "1"]
        code, err, _ = run("still", "-o", disk / "keep.png", *args)
        assert code == 1 and len(err) == 1 and "disk is full" in err[0] and str(disk) in err[0]
        assert snapshot(disk) == before


def test_nan_or_inf_after_any_step_fails_the_quality_guard():
    ok = torch.full((1, 3, 4, 4), 0.5)
    assert finish(ok, None)[1]
    assert not finish(ok.clone().index_fill_(2, torch.tensor([1]), float("inf")), None)[1]
    broken_map = SimpleNamespace(on=lambda x: x * float("nan"))  # colour coherence's map gone wrong
    pixels, finite = finish(ok, broken_map)
    assert not finite and pixels.dtype == np.uint8


def test_reruns_are_recorded_with_the_frame_and_shown_by_status(scene, tmp_path):
    reasons = ["loss rose from 2 to 3", "result contains NaN or Inf"]
    frame = Frame(SimpleNamespace(local=0), None, (None, None))
    frame.records = [{"seconds": 1.0, "loss": 1.0, "reruns": reasons}]
    record = frame_record(frame)
    assert record["reruns"] == reasons
    out = tmp_path / "out"
    store = FrameStore(out)
    manifest = a_manifest(scene)
    manifest.frames = {0: record | {"sha256": store.write(0, np.zeros((32, 48, 3), np.uint8))}}
    manifest.save(out)
    code, _, stdout = run("status", out)
    assert code == 0 and f"rerun: frame 0: {reasons[0]}" in stdout


@pytest.mark.slow
def test_sigterm_stops_a_render_cleanly_and_it_resumes(tmp_path, vgg, ray_head):
    """The render that gets SIGTERM is a process of its own, on the session's `ray start` head (a Ray of
    its own would take seconds to start and to stop); the one that resumes it runs its jobs here."""
    scene = tmp_path / "s.toml"
    scene.write_text(TINY_SCENE.format(frames=6, iterations=12))
    out = tmp_path / "out"
    command = ["render", str(scene), "-o", str(out)]
    render = subprocess.Popen([*CLI, *command, "--serve", "--address", ray_head.address], env=ray_head.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    said: list[str] = []  # stderr's lines as they come
    reader = threading.Thread(target=lambda: said.extend(render.stderr), daemon=True)
    reader.start()
    try:
        assert until(lambda: FrameStore(out).path(0).exists() or render.poll() is not None), "no frame 0"
        code, _, stdout = run("status", out)
        assert code == 0 and "rendering" in stdout
        page = next(line.split("live page: ")[1].strip() for line in said if "live page: " in line)
        with urllib.request.urlopen(page + "state.json", timeout=30) as answer:
            assert json.load(answer)["state"] == "rendering"  # render --serve: its live page
        code, err, _ = run("render", scene, "-o", out)  # a second terminal, same folder
        assert code == 2 and f"PID {render.pid}" in err[0]
        render.send_signal(signal.SIGTERM)
        render.wait(timeout=120)
        reader.join(timeout=30)
    finally:
        render.kill()
    stderr = "".join(said)
    assert render.returncode == 130, stderr
    (line,) = stderr.strip().splitlines()[-1:]
    resume = shlex.join(["stylereel", *command, "--address", ray_head.address])  # not --serve
    assert line.startswith("stylereel: interrupted; ")
    assert line.endswith(f"frames are in {out}; to resume: {resume}")
    assert "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["frames", "manifest.json"]  # no lock, temp or progress
    with jobs_here(vgg):
        again = cli(*command)
    assert again.returncode == 0, again.stderr
    assert len(Manifest.load(out).frames) == 6 and (out / "s.mp4").is_file()
    assert f"{line[24:].split(' of ')[0]} of 6 frames are done" in again.stderr  # where it resumed
    video = (out / "s.mp4").read_bytes()
    code, err, _ = run("render", scene, "-o", out)  # finished: says so, renders and encodes nothing
    assert code == 0 and "complete" in err[-1] and (out / "s.mp4").read_bytes() == video


def test_status_eta_comes_from_the_recent_frames_not_the_first(scene, tmp_path):
    out = tmp_path / "out"
    store = FrameStore(out)
    manifest = a_manifest(scene, frame_count=30, shots=[30])
    # Frame 0 ran 40 start iterations for 100 s; the later ones finish every 2 s.
    records = {0: {"seconds": 100.0, "finished": 1000.0}} | {
        t: {"seconds": 2.0, "finished": 1000.0 + 2 * t} for t in range(1, 10)
    }
    manifest.frames = {
        t: r | {"sha256": store.write(t, np.zeros((32, 48, 3), np.uint8))} for t, r in records.items()
    }
    manifest.save(out)
    code, _, stdout = run("status", out)
    assert code == 0 and "10/30 frames done; 2.00 s/frame; 20 left, ETA 0.7 min" in stdout
    # Stopped after frame 9, resumed an hour later: frames 10-14 end every 3 s after a minute's start-up.
    records = {t: {"seconds": 3.0, "finished": 1018.0 + 3600 + 60 + 3 * (t - 9)} for t in range(10, 15)}
    manifest.frames |= {
        t: r | {"sha256": store.write(t, np.zeros((32, 48, 3), np.uint8))} for t, r in records.items()
    }
    manifest.save(out)
    code, _, stdout = run("status", out)
    assert code == 0 and "15/30 frames done; 3.00 s/frame; 15 left, ETA 0.8 min" in stdout


def test_output_into_a_pipe_nobody_reads_ends_quietly(scene, tmp_path):
    """`stylereel status DIR | head -1`: once `head` has gone, no error line about a broken pipe (as
    `stylereel schema` through Click, exit code 1). Here the pipe's reader is gone before the first line."""
    (tmp_path / "out").mkdir()
    a_manifest(scene).save(tmp_path / "out")
    status = subprocess.Popen(
        [*CLI, "status", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    status.stdout.close()
    assert (status.wait(timeout=60), status.stderr.read()) == (1, b"")


def test_busy_cores_are_warned_of_once_work_starts_and_never_beside_bad_input(tmp_path, monkeypatch):
    from cluster import host
    from cluster.local_pool import LocalPool
    from cluster.scheduler import render_scene
    from tests.tiny import TinyFeatures

    assert host.busy_cores("slower", busy=0.5, cores=2) is None
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 10 0 0 40 0 0\n")
    before = host.CpuTimes.now(stat)
    assert before == host.CpuTimes(1000, 40, 810)
    stat.write_text("cpu  160 0 70 830 20 0 0 60 0 0\n")  # 80 busy, 40 idle, 20 stolen of 140 ticks
    assert host.cores_busy(before, host.CpuTimes.now(stat), cores=7) == pytest.approx(4.0)
    monkeypatch.setattr(host, "cores_busy_now", lambda seconds=0.3: 1.6)
    warning = f"warning: other work keeps 1.6 of this machine's {os.cpu_count()} cores busy: "
    out = tmp_path / "o.png"
    still = cli(
        "still",
        "-c",
        "builtin:astronaut",
        "-s",
        "builtin:ihc",
        "-o",
        out,
        "--size",
        "32",
        "--iterations",
        "1",
    )
    assert still.returncode == 0 and still.stderr.count(warning + "the still will take longer") == 1
    bad = cli("still", "-c", tmp_path / "missing.png", "-s", "builtin:ihc", "-o", out)
    assert bad.returncode == 2 and warning not in bad.stderr  # its one line alone
    scene = tmp_path / "s.toml"
    scene.write_text(TINY_SCENE.format(frames=2, iterations=1))
    said: list[str] = []
    render_scene(load_scene(scene), tmp_path / "out", pool=lambda styles: LocalPool(styles, TinyFeatures()),
                 say=said.append)  # fmt: skip
    assert said.count(warning + "rendering will be slower; see OMP_NUM_THREADS in the README") == 1


def test_cpu_time_the_host_gave_to_other_machines_is_read_and_warned_of(tmp_path):
    from cluster.host import CpuTimes, steal_warning, stolen

    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\n")
    before = CpuTimes.now(stat)
    assert before == CpuTimes(1000, 40, 810)
    stat.write_text("cpu  160 0 70 900 10 0 0 100 0 0\n")
    assert stolen(before, CpuTimes.now(stat)) == pytest.approx(0.25)  # 60 of the 240 ticks since
    stat.write_text("no such thing\n")
    assert CpuTimes.now(stat) is None and CpuTimes.now(tmp_path / "absent") is None
    assert stolen(before, None) is None and steal_warning(None, "now", "so") is None
    assert steal_warning(0.05, "now", "so") is None
    assert steal_warning(0.25, "now", "so") == (
        "warning: this machine's host gave 25% of its CPU time to other machines now (steal): so"
    )


def test_a_render_during_which_the_host_took_the_cpu_says_so(scene, tmp_path, tiny, monkeypatch):
    from cluster import scheduler
    from cluster.host import CpuTimes

    readings = iter([CpuTimes(1000, 0), CpuTimes(2000, 300)])  # at the start, at the end: 30 % stolen
    monkeypatch.setattr(scheduler.CpuTimes, "now", lambda: next(readings))
    with jobs_here(tiny):
        code, err, _ = run("render", scene, "-o", tmp_path / "out")
    assert code == 0, err
    assert "host gave 30% of its CPU time to other machines during this render (steal)" in err[-1]
    assert "slower than on an idle host, and than `plan` estimated" in err[-1]
