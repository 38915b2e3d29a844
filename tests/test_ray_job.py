"""Renders submitted with `ray job submit`, as long jobs run on a cluster: without --address the
entrypoint joins the cluster Ray points it at (RAY_ADDRESS), the project's code reaches the workers
through the job's working_dir or py_modules, and the frames are a local render's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from packaging.requirements import Requirement

from cluster.address import JOB_CONFIG, Cluster, cluster_to_join, runtime_env_for
from tests.conftest import BIN, TINY_SCENE, RayHead
from tests.helpers import cli

SCENE = TINY_SCENE.format(frames=3, iterations=2)
PACKAGES = ("engine", "render", "cluster")


@dataclass
class Submitted:
    """A `ray job submit` on its way (it streams the job's logs until the job ends), and the job's output
    folder."""

    submit: subprocess.Popen
    out: Path
    said: Path  # what it printed

    def log(self) -> str:
        """The job's log, once it has succeeded (it must)."""
        self.submit.wait(timeout=300)
        log = self.said.read_text()
        assert self.submit.returncode == 0, log[-6000:]
        return log


class Head:
    """Submits jobs to the session's head (`ray_head`) and checks where they rendered."""

    def __init__(self, head: RayHead) -> None:
        self.head = head

    def submit(self, out: Path, *args: str) -> Submitted:
        """`ray job submit ARGS` to the head, rendering into `out` (its output beside it)."""
        said = out.with_name("submit.log")
        with said.open("w") as log:
            command = [BIN / "ray", "job", "submit", "--address", self.head.dashboard, *args]
            submit = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.head.env)
        return Submitted(submit, out, said)

    def rendered(self, out: Path, frames: list[int] | None = None) -> None:
        """Assert that the frames' workers were this head's: their logs are in its sessions (a Ray of the
        job's own would keep them elsewhere)."""
        records = json.loads((out / "manifest.json").read_text())["frames"]
        for t in frames if frames is not None else [int(t) for t in records]:
            for worker in records[str(t)]["workers"]:
                pid = worker.rpartition(":")[2]
                sessions = self.head.sessions
                assert list(sessions.glob(f"session_*/logs/worker-*-{pid}.out")), f"frame {t}: {worker}"


@pytest.fixture(scope="module")
def head(ray_head) -> Head:
    return Head(ray_head)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, renders_here) -> Path:
    """The scene rendered in this process (`renders_here`): a Ray job must give its frames."""
    root = tmp_path_factory.mktemp("local")
    (root / "scene.toml").write_text(SCENE)
    local = cli("render", str(root / "scene.toml"), "-o", str(root / "out"), "--workers", "1")
    assert local.returncode == 0, local.stderr
    return root / "out"


@pytest.fixture(scope="module")
def jobs(head, reference, tmp_path_factory) -> dict[str, Submitted]:
    """The two tests' jobs, submitted together: Ray's job machinery takes about 10 s of each job besides
    its entrypoint (a `python -c pass` job took 10.3 s here), and the two jobs' shares overlap."""
    # The working dir the first job uploads: the project's packages and the scene.
    with_code = tmp_path_factory.mktemp("with_code")
    for package in PACKAGES:
        shutil.copytree(Path(__file__).parents[1] / package, with_code / "job" / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (with_code / "job" / "scene.toml").write_text(SCENE)
    out = with_code / "out"
    working_dir = head.submit(out, "--working-dir", str(with_code / "job"), "--", *_render_into(out))

    # The second brings a module of its own as py_modules and resumes an interrupted render.
    modules = tmp_path_factory.mktemp("modules")
    (modules / "job").mkdir()
    (modules / "job" / "scene.toml").write_text(SCENE)
    (modules / "their_module").mkdir()
    (modules / "their_module" / "__init__.py").write_text("")
    out = modules / "out"
    shutil.copytree(reference, out)
    sorted((out / "frames").glob("*.png"))[-1].unlink()  # an interrupted render: the last frame is missing
    env = json.dumps({"py_modules": [str(modules / "their_module")]})
    py_modules = head.submit(out, "--working-dir", str(modules / "job"), "--runtime-env-json", env, "--",
                             *_render_into(out), "--address", "auto")  # fmt: skip
    return {"working_dir": working_dir, "py_modules": py_modules}


@pytest.mark.slow
def test_a_render_submitted_as_a_ray_job_runs_on_that_cluster(jobs, head, reference):
    job = jobs["working_dir"]
    job.log()
    assert _frames(job.out) == _frames(reference) and len(_frames(job.out)) == 3
    head.rendered(job.out)


@pytest.mark.slow
def test_a_job_with_py_modules_of_its_own_resumes_with_address_auto(jobs, head, reference):
    """The job brings a module of its own as py_modules, the project's code is the installed one (as in
    an image with stylereel installed), so ray.init adds it to the job's py_modules; the render joins
    with --address auto, and submitting again resumes a folder after its last complete frame."""
    job = jobs["py_modules"]
    log = job.log()
    last = len(_frames(reference)) - 1  # the frame the job had to render
    assert _frames(job.out) == _frames(reference), log[-3000:]
    head.rendered(job.out, frames=[last])
    before = json.loads((reference / "manifest.json").read_text())["frames"]
    after = json.loads((job.out / "manifest.json").read_text())["frames"]
    assert all(after[t] == before[t] for t in before if t != str(last))  # resumed, not redone


@pytest.mark.parametrize(
    ("option", "env", "joins"),
    [
        (None, None, None),  # a Ray of its own
        ("local", "10.0.0.1:6379", None),
        (None, "local", None),
        (None, "10.0.0.1:6379", Cluster("10.0.0.1:6379", "RAY_ADDRESS=10.0.0.1:6379")),  # inside a job
        ("auto", "10.0.0.1:6379", Cluster("10.0.0.1:6379", "RAY_ADDRESS=10.0.0.1:6379")),
        ("auto", None, Cluster("auto", "--address auto")),
        ("ray://h:10001", "10.0.0.1:6379", Cluster("ray://h:10001", "--address ray://h:10001")),
    ],
)
def test_the_cluster_to_join_is_the_option_else_ray_address(monkeypatch, option, env, joins):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if env is not None:
        monkeypatch.setenv("RAY_ADDRESS", env)
    assert cluster_to_join(option) == joins


@pytest.mark.parametrize(
    ("option", "env", "named"),
    [
        (None, "http://h:8265", "RAY_ADDRESS=http://h:8265"),
        ("https://h:8265", None, "--address https://h:8265"),
    ],
)
def test_a_job_servers_url_is_no_cluster_to_join(monkeypatch, option, env, named):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if env is not None:
        monkeypatch.setenv("RAY_ADDRESS", env)
    with pytest.raises(ValueError, match=f"^{named}: that is a Ray job server"):
        cluster_to_join(option)


def _packages(root: str) -> list[ModuleType]:
    made = []
    for name in PACKAGES:
        module = ModuleType(name)
        module.__file__ = f"{root}/{name}/__init__.py"
        made.append(module)
    return made


UNPACKED_DIR = "/tmp/ray/session_1/runtime_resources/working_dir_files/_ray_pkg_ab"
UNPACKED_MODULES = "/tmp/ray/session_1/runtime_resources/py_modules_files/_ray_pkg_cd"


@pytest.mark.parametrize(
    ("job", "root", "expected", "replaces"),
    [
        (None, "/src", ["/src/engine", "/src/render", "/src/cluster"], False),  # --address outside a job
        ({"working_dir": "gcs://_ray_pkg_ab.zip"}, UNPACKED_DIR, None, False),  # the code is the job's
        ({"py_modules": ["gcs://_ray_pkg_cd.zip"]}, UNPACKED_MODULES, None, False),
        ({"working_dir": "gcs://w.zip"}, "/site", ["/site/engine", "/site/render", "/site/cluster"], False),
        (
            {"py_modules": ["gcs://m.zip"]},
            "/site",
            ["gcs://m.zip", "/site/engine", "/site/render", "/site/cluster"],
            True,
        ),
    ],
)
def test_the_code_goes_to_the_workers_once_and_merges_with_a_jobs_runtime_env(
    monkeypatch, job, root, expected, replaces
):
    """Whatever the job's runtime_env, Ray's own merge (which ray.init runs inside a job) accepts ours."""
    from ray.runtime_env.runtime_env import _merge_runtime_env

    monkeypatch.delenv(JOB_CONFIG, raising=False)
    if job is not None:
        monkeypatch.setenv(JOB_CONFIG, json.dumps({"runtime_env": job, "metadata": {}}))
    runtime_env, override = runtime_env_for(_packages(root))
    assert (runtime_env and runtime_env["py_modules"], override) == (expected, replaces)
    merged = _merge_runtime_env(job, runtime_env, override=override)
    assert merged is not None  # None: Ray's "Failed to merge the Job's runtime env"
    assert merged.get("py_modules", []) == (expected or (job or {}).get("py_modules", []))


def test_the_ray_examples_install_what_pyproject_lists():
    """docs/ray's images install the project itself (so pyproject.toml's dependencies) with the Makefile's
    torch, on a Ray that pyproject.toml allows, with the dashboard's job server (ray[default])."""
    root = Path(__file__).parents[1]
    torch = re.search(r"^TORCH \?= (\S+)$", (root / "Makefile").read_text(), re.M)[1]
    docker = (root / "docs/ray/Dockerfile").read_text()
    launcher = yaml.safe_load((root / "docs/ray/cluster.yaml").read_text())
    job = yaml.safe_load((root / "docs/ray/rayjob.yaml").read_text())
    assert f'ARG TORCH="{torch}"' in docker and 'RUN pip install --no-cache-dir ".[cluster]"\n' in docker
    assert launcher["setup_commands"] == [
        f'pip install --no-cache-dir {torch} && pip install --no-cache-dir "/home/ray/stylereel[cluster]"'
    ]
    versions = {
        re.search(r"^ARG RAY_IMAGE=rayproject/ray:([\d.]+)-", docker, re.M)[1],
        re.search(r"^rayproject/ray:([\d.]+)-", launcher["docker"]["image"])[1],
        job["spec"]["rayClusterSpec"]["rayVersion"],
    }
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    ray = next(r for r in map(Requirement, project["dependencies"]) if r.name == "ray")
    assert len(versions) == 1 and ray.specifier.contains(versions.pop())
    extra = project["optional-dependencies"]["cluster"]
    # the job server: `ray job submit` needs it on the head
    assert "default" in next(r for r in map(Requirement, extra) if r.name == "ray").extras


def _render_into(out: Path) -> list[str]:
    """A job's entrypoint: the scene in its working dir, rendered into `out` (absolute: the entrypoint runs
    in the job's unpacked working dir) by one worker."""
    return ["python", "-m", "cluster.cli", "render", "scene.toml", "-o", str(out), "--workers", "1"]


def _frames(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "frames").glob("*.png"))}
