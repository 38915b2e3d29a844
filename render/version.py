"""Which stylereel rendered a folder's frames, and whether this one would render them the same."""

from __future__ import annotations

from importlib import metadata

# Bump whenever a change makes the same scene, seed and workers give different frames, so that a
# resumed render never mixes frames of two versions in one movie (render refuses; --fresh starts over).
# 1: tiled rounds optimise the whole frame's objective (2026-12-01).
# 2: an L-BFGS run returns its best iterate, not its last; schedules read as Deforum's (max_f is the
#    last frame's index, a formula key holds until the next key) (2026-12-01).
FRAMES_VERSION = 2


def version() -> str:
    try:
        return metadata.version("stylereel")
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"
