"""Joining a Ray cluster with --address: reach it first, and bring the token it may ask for.

Nothing here imports Ray: Ray reads RAY_AUTH_MODE once, when it is imported, so this runs before.
"""

from __future__ import annotations

import os
import socket
import time

REACH_SECONDS = 5  # to connect and hear the answer, together

# Ray's GCS (host:6379) and Ray Client (ray://host:10001) are gRPC servers, so they speak HTTP/2, and an
# HTTP/2 server answers a client's connection preface with a SETTINGS frame (RFC 9113 §3.4). Anything
# else (a web server, an SSH daemon) answers otherwise or not at all, where ray.init would retry for
# minutes. The exchange needs no grpc package (Ray does not require one) and comes before any token.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = bytes([0, 0, 0, 0x4, 0, 0, 0, 0, 0])  # frame header: length 0, type SETTINGS, stream 0


def prepare(address: str) -> None:
    """Check that a Ray cluster answers at `address` (ray.init would retry anything else for minutes)
    and turn on token authentication where this machine has a token. Raises ValueError, naming the
    option."""
    use_auth_token()
    target = address.split("://")[-1]
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # Ray's own forms; it reports those itself
    try:
        check_grpc_server(host.strip("[]"), int(port), REACH_SECONDS)
    except OSError as e:
        raise ValueError(f"--address {address}: no Ray cluster answers there ({e.strerror or e})") from None


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
