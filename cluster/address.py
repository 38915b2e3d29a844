"""Joining a Ray cluster with --address: reach it first, and bring the token it may ask for.

Nothing here imports Ray: Ray reads RAY_AUTH_MODE once, when it is imported, so this runs before.
"""

from __future__ import annotations

import os
import socket

REACH_SECONDS = 10


def prepare(address: str) -> None:
    """Check that `address` answers (ray.init would retry an unreachable one for minutes) and turn on
    token authentication where this machine has a token. Raises ValueError, naming the option."""
    use_auth_token()
    target = address.split("://")[-1]
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # Ray's own forms; it reports those itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except OSError as e:
        raise ValueError(f"--address {address}: no Ray cluster answers there ({e.strerror or e})") from None


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
