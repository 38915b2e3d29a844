from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.helpers import free_port
from tests.tiny import TinyFeatures

BIN = Path(sys.executable).parent
# Every Ray of the session (the tests' `ray start` head, and the renders that join it from this process or
# from processes of their own) uses token authentication, with a token of the session's own, as Ray 2.59
# and later turn it on where a token exists. Set here: Ray reads RAY_AUTH_MODE once, when it is imported
# (collection imports it), and processes started later inherit both.
os.environ["RAY_AUTH_MODE"] = "token"
os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"

# A scene that renders in seconds (48x32, a slow zoom): TINY_SCENE.format(frames=N, iterations=K).
TINY_SCENE = """
seed = 5
[output]
width = 48
height = 32
fps = 12
frames = {frames}
[styles]
ihc = "builtin:ihc"
[start]
content = "builtin:astronaut"
iterations = 2
[frames]
iterations = {iterations}
[camera]
zoom = 1.04
"""


@pytest.fixture(autouse=True)
def other_work_is_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands run here see no other work on the machine's cores: the suite keeps them busy itself
    (Ray's workers, its own renders), which would add a warning to what a test reads. The busy-cores
    tests set their own."""
    from cluster import host

    monkeypatch.setattr(host, "cores_busy_now", lambda seconds=0.3: 0.0)


@pytest.fixture
def tiny() -> TinyFeatures:
    return TinyFeatures()


def smooth_image(seed: int, size: tuple[int, int] = (32, 40)) -> torch.Tensor:
    """A (1, 3, H, W) image with some structure: upsampled seeded noise."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand((1, 3, size[0] // 4, size[1] // 4), generator=g)
    return torch.nn.functional.interpolate(small, size=size, mode="bilinear", align_corners=False)


@pytest.fixture(scope="session")
def vgg():
    from render.network import load_network

    return load_network()


@pytest.fixture(scope="module")
def ray_session(ray_head: RayHead) -> Iterator[RayHead]:
    """This process joined to the session's head (`ray_head`) for the module's tests, as the CLI joins a
    cluster with --address: renders run here through `tests.helpers.cli`, and the CLI uses this Ray
    (init_ray returns early when Ray is up) instead of starting torch, VGG-19 and a Ray of their own.
    Joining costs a fraction of starting a local Ray beside the head (5.5 s and 8 s of CPU here)."""
    import ray

    from cluster.scheduler import init_ray

    before = signal.getsignal(signal.SIGTERM)
    init_ray(ray_head.address)
    signal.signal(signal.SIGTERM, before)  # init_ray's handler is the CLI's, not pytest's
    yield ray_head
    ray.shutdown()


@contextlib.contextmanager
def jobs_here(features: Callable) -> Iterator[None]:
    """Meanwhile, CLI renders in this process run their jobs here (`cluster.local_pool.LocalPool` on
    `features`, this machine's cores as one worker's threads) instead of on Ray actors they would start:
    with VGG-19, the same pixels as a local Ray render with its default worker (test_render's SIGKILL
    test resumes a Ray render against such a render, frame for frame), without Ray."""
    from cluster import scheduler
    from cluster.local_pool import LocalPool

    def here(weights: object, device: str, workers: int | None) -> Callable[[list[torch.Tensor]], LocalPool]:
        return lambda styles: LocalPool(styles, features, "cpu", threads=os.cpu_count() or 1)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scheduler, "ray_pool", here)
        patch.setattr(scheduler, "init_ray", lambda address: None)
        yield


@pytest.fixture(scope="module")
def renders_here(vgg) -> Iterator[None]:
    """`jobs_here` on VGG-19 for the rest of the module."""
    with jobs_here(vgg):
        yield


@dataclass
class RayHead:
    """`ray start --head --block` as a user starts a cluster, with the job server that `ray job submit`
    needs, its ports and session files its own (a short path: Ray's socket paths must fit 107 bytes).
    Token authentication is on, with the session's token (set above, and in `env`): `ray job submit` and
    a render joining it send it only under RAY_AUTH_MODE=token. `python` in a job's entrypoint is this
    virtualenv's, as on a cluster set up with it. It has this machine's cores, as a local Ray has: a CPU
    worker's threads, so its pixels, follow them."""

    process: subprocess.Popen  # in a session (process group) of its own
    port: int  # its GCS: --address 127.0.0.1:PORT
    dashboard: str  # the job server: http://127.0.0.1:PORT
    sessions: Path  # its --temp-dir, where its workers' logs are
    env: dict[str, str]
    up: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls) -> RayHead:
        sessions = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))
        port, dashboard = free_port(), free_port()
        path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        env = os.environ | {"PATH": path}
        env.pop("RAY_ADDRESS", None)
        process = subprocess.Popen(
            [BIN / "ray", "start", "--head", "--block", f"--port={port}", f"--temp-dir={sessions}",
             f"--num-cpus={os.cpu_count()}", "--node-ip-address=127.0.0.1", "--include-dashboard=true",
             f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={free_port()}",
             f"--ray-client-server-port={free_port()}", "--disable-usage-stats"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env,
        )  # fmt: skip
        return cls(process, port, f"http://127.0.0.1:{dashboard}", sessions, env)

    def wait_up(self) -> RayHead:
        if not self.up:
            for line in self.process.stdout:  # until the head says it is up (EOF: it died)
                if "Ray runtime started" in line:
                    break
            assert self.process.poll() is None, "ray start --head failed"
            threading.Thread(target=self.process.stdout.read, daemon=True).start()  # keep it from filling
            self.up = True
        return self

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # the whole throwaway head at once
        self.process.wait()
        self.process.stdout.close()
        shutil.rmtree(self.sessions, ignore_errors=True)


_head: RayHead | None = None
_last_on_head: pytest.Item | None = None  # the run's last test that needs the head


@pytest.hookimpl(trylast=True)  # after -k and -m deselected theirs
def pytest_collection_modifyitems(session, config, items) -> None:
    """Where a test of this run needs the head, start it now: it comes up while the tests before run."""
    global _head, _last_on_head
    if config.option.collectonly:
        return
    on_head = [item for item in items if "ray_head" in getattr(item, "fixturenames", ())]
    if on_head:
        _last_on_head = on_head[-1]
        _head = _head or RayHead.start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After the last test that needs it, the head goes: idle, it takes about 8 % of a core."""
    global _head
    yield
    if item is _last_on_head and _head is not None:
        _head.stop()
        _head = None


def pytest_unconfigure(config) -> None:
    global _head
    if _head is not None:
        _head.stop()
        _head = None


@pytest.fixture(scope="session")
def ray_head() -> RayHead:
    """The one `ray start --head` of the session (see RayHead), up."""
    global _head
    if _head is None:
        _head = RayHead.start()
    return _head.wait_up()
