"""Joining a Ray cluster: which one (--address, else RAY_ADDRESS), reach it first, bring the token it
may ask for, and the runtime_env that brings the project's code to its workers.

Nothing here imports Ray: Ray reads RAY_AUTH_MODE once, when it is imported, so this runs before.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from types import ModuleType

REACH_SECONDS = 5  # to connect and hear the answer, together

# Ray's GCS (host:6379) and Ray Client (ray://host:10001) are gRPC servers, so they speak HTTP/2, and an
# HTTP/2 server answers a client's connection preface with a SETTINGS frame (RFC 9113 §3.4). Anything
# else (a web server, an SSH daemon) answers otherwise or not at all, where ray.init would retry for
# minutes. The exchange needs no grpc package (Ray does not require one) and comes before any token.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = bytes([0, 0, 0, 0x4, 0, 0, 0, 0, 0])  # frame header: length 0, type SETTINGS, stream 0


@dataclass(frozen=True)
class Cluster:
    address: str  # host:port (a GCS), ray://host:port (Ray Client) or auto
    given: str  # where it came from, for messages: "--address ..." or "RAY_ADDRESS=..."


def cluster_to_join(address: str | None) -> Cluster | None:
    """The Ray cluster a render joins, found as ray.init() and Ray's CLI find it: --address, else
    RAY_ADDRESS (which Ray sets for the entrypoint of `ray job submit` and of a KubeRay RayJob; "auto"
    is RAY_ADDRESS too where it is set). None is a Ray of this process's own: --address local, or
    neither given (a cluster that `ray start` left on this machine is joined only with --address
    auto). Raises ValueError for a job server's URL: jobs are submitted there, it is no cluster."""
    from_env = os.environ.get("RAY_ADDRESS") or None
    if from_env and address in (None, "auto"):
        found = Cluster(from_env, f"RAY_ADDRESS={from_env}")
    elif address is not None:
        found = Cluster(address, f"--address {address}")
    else:
        return None
    if found.address == "local":
        return None
    if found.address.startswith(("http://", "https://")):
        raise ValueError(
            f"{found.given}: that is a Ray job server (for `ray job submit`), not a cluster to join; "
            "give the cluster's HOST:6379 or ray://HOST:10001, or --address local for a Ray of its own"
        )
    return found


def prepare(address: str | None) -> None:
    """Check that the Ray cluster a render joins (`cluster_to_join`) answers (ray.init would retry
    anything else for minutes) and turn on token authentication where this machine has a token.
    Nothing for a Ray of its own. Raises ValueError, naming the option."""
    cluster = cluster_to_join(address)
    if cluster is None:
        return
    use_auth_token()
    target = cluster.address.split("://")[-1]
    host, sep, port = target.rpartition(":")
    if cluster.address == "auto" or not sep or not port.isdigit():
        return  # Ray's own forms; it reports those itself
    try:
        check_grpc_server(host.strip("[]"), int(port), REACH_SECONDS)
    except OSError as e:
        raise ValueError(f"{cluster.given}: no Ray cluster answers there ({e.strerror or e})") from None


def check_grpc_server(host: str, port: int, seconds: float) -> None:
    """Raise OSError unless a gRPC server answers at (host, port) within `seconds`. Under TLS
    (RAY_USE_TLS) only the connection is checked."""
    deadline = time.monotonic() + seconds
    with socket.create_connection((host, port), timeout=seconds) as sock:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        sock.sendall(HTTP2_PREFACE + EMPTY_SETTINGS)
        answer = b""
        while len(answer) < len(EMPTY_SETTINGS):
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chunk = sock.recv(256)
            except TimeoutError:
                raise TimeoutError(f"no answer to gRPC within {seconds:g} s") from None
            if not chunk:
                break
            answer += chunk
    if not answer:
        raise ConnectionError("it closed the connection at a gRPC greeting")
    if answer[3:9] != EMPTY_SETTINGS[3:9]:  # the header of a SETTINGS frame (not an ACK) on stream 0
        said = answer.splitlines()[0][:60].decode("utf-8", "replace")
        raise ConnectionError(f"not a gRPC server: it answered {said!r}")


def use_auth_token() -> None:
    """Send this machine's Ray token when it has one, as `ray start` does. Since Ray 2.59 a head
    started where a token exists (any local `ray.init()` leaves one in ~/.ray) demands it, but
    `ray.init` with an explicit address sends it only when RAY_AUTH_MODE says so. A cluster
    without authentication ignores it."""
    if "RAY_AUTH_MODE" in os.environ:
        return  # the user's choice
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(path):
        os.environ["RAY_AUTH_MODE"] = "token"


# Ray hands a submitted job's entrypoint its JobConfig here (ray/_private/runtime_env/constants.py)
JOB_CONFIG = "RAY_JOB_CONFIG_JSON_ENV_VAR"
# Where Ray unpacks a runtime_env's working_dir and py_modules, for the driver and every worker alike
# (<session>/runtime_resources/working_dir_files/_ray_pkg_<hash>/, .../py_modules_files/...)
UNPACKED = ("working_dir_files", "py_modules_files")


def runtime_env_for(packages: list[ModuleType]) -> tuple[dict | None, bool]:
    """The runtime_env that brings `packages` to a cluster's workers, and whether it must replace the
    job's py_modules. Inside a submitted job, ray.init merges the runtime_env it is given into the
    job's (key by key, refusing a key both have): where the packages came from the job's working_dir
    or py_modules the workers get them that way too, and nothing is added; otherwise they go as
    py_modules, after the job's own py_modules where it has some (its URIs, uploaded already)."""
    job = json.loads(os.environ.get(JOB_CONFIG) or "{}").get("runtime_env") or {}
    if job and all(_unpacked_by_ray(p) for p in packages):
        return None, False
    theirs = list(job.get("py_modules") or [])
    # Folders, not module objects: inside a job ray.init deep-copies the runtime_env to merge it, and a
    # module cannot be copied ("cannot pickle 'module' object")
    ours = [str(Path(p.__file__).parent) for p in packages]
    return {"py_modules": [*theirs, *ours]}, bool(theirs)


def _unpacked_by_ray(package: ModuleType) -> bool:
    parts = Path(package.__file__).resolve().parts
    return any(a == "runtime_resources" and b in UNPACKED for a, b in pairwise(parts))
