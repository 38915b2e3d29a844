"""The README documents every scene key and every command."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from cluster.cli import app
from render.scene import SECTIONS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_scene_key_is_in_the_readme():
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            assert f"`{section}.{f.name}`" in README, f"{section}.{f.name} is not documented"


def test_every_command_is_in_the_readme():
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        assert f"stylereel {name}" in README, name
