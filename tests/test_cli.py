"""The `stylereel` command: every mode end to end on tiny images, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from render.video import count_frames
from tests.helpers import cli, cli_process

TINY = ["--size", "48", "--iterations", "3"]


def test_help_lists_the_commands():
    result = cli_process("--help")  # the command itself, in a fresh interpreter
    assert result.returncode == 0
    assert "still" in result.stdout and "score" in result.stdout


@pytest.mark.slow
def test_still_writes_the_image_and_the_trajectory(tmp_path):
    out, movie = tmp_path / "out.png", tmp_path / "t.mp4"
    result = cli(
        "still",
        "-c",
        "builtin:astronaut",
        "-s",
        "builtin:coffee:0.7",
        "-s",
        "builtin:rocket:0.3",
        "-o",
        str(out),
        *TINY,
        "--trajectory",
        str(movie),
        "--save-every",
        "2",
    )
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.size == (48, 48)
    steps = 3 * 2 + 3  # scales: 34 px (2x iterations), 48 px (min_size 128 > 48: one scale only)
    assert count_frames(movie) >= 1 and count_frames(movie) <= steps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "t.mp4"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["--mode", "reconstruct", "-c", "builtin:chelsea", "--layer", "relu4_1"],
        ["--mode", "superres", "-c", "builtin:chelsea", "-s", "builtin:coffee", "--size", "64"],
        ["--mode", "texture", "-s", "builtin:coffee"],
        [
            "--mode",
            "texture",
            "-s",
            "builtin:coffee",
            "--localized",
            "--patch-size",
            "32",
            "--patch-rounds",
            "2",
            "--patch-steps",
            "2",
        ],
        [
            "-c",
            "builtin:chelsea",
            "-s",
            "builtin:coffee",
            "--preserve-colors",
            "--optimizer",
            "adam",
            "--style-loss",
            "w2",
            "--average",
            "0.5",
            "--init",
            "noise",
        ],
    ],
)
def test_every_mode_runs(tmp_path, args):
    out = tmp_path / "o.png"
    result = cli("still", *args, "-o", str(out), "--size", "48", "--iterations", "2")
    assert result.returncode == 0, result.stderr
    assert out.is_file()


@pytest.mark.slow
def test_score_is_zero_for_an_image_against_itself(tmp_path):
    result = cli(
        "score", "builtin:coffee", "--content", "builtin:coffee", "--style", "builtin:coffee", "--size", "48"
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values == {"style": 0.0, "content": 0.0}


def test_score_compares_at_the_images_own_size_by_default(tmp_path):
    from typer.testing import CliRunner

    from cluster.cli import app

    small = tmp_path / "small.png"
    Image.effect_noise((64, 64), 64).convert("RGB").save(small)

    def score(*size: str) -> dict:
        result = CliRunner().invoke(app, ["score", str(small), "--style", "builtin:ihc", *size])
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    assert score() == score("--size", "64") != score("--size", "512")


def _bad_inputs(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    ok = "builtin:coffee"
    return [
        (["-c", str(tmp_path / "missing.jpg"), "-s", ok], "missing.jpg: no such file"),
        (["-c", str(empty), "-s", ok], "empty.png: file is empty"),
        (["-c", ok, "-s", str(text)], "notes.png: not an image file"),
        (["-c", ok, "-s", ok, "--size", "0"], "--size must be at least 16 pixels"),
        (["-s", ok, "--mode", "texture", "--size", "8"], "--size must be at least 16 pixels (VGG-19 halves"),
        (["-c", ok, "-s", ok, "--size", "20"], "--size 20: the output would be 20x13, and its short"),
        (["-c", ok, "-s", ok, "--layer", "relu9_1"], "unknown layer relu9_1"),
        (["-c", ok, "-s", f"{ok}:-1"], "weight must be >= 0"),
        (["-c", ok, "-s", ok, "--content-weight", "-2"], "content_weight must be >= 0"),
        (["-c", ok, "-s", ok, "--mode", "dream"], "--mode dream: choose one of"),
        (["-c", ok, "-s", ok, "--weights", str(text)], "cannot load weights"),
        (["-s", ok], "needs --content"),
        (["-c", ok, "-s", ok, "--patches", "--patch-size", "8"], "--patch-size) must be at least 32"),
        (
            ["-c", ok, "-s", ok, "--localized", "--patch-scale-bias", "2"],
            "--patch-scale-bias) must be in [0, 1]",
        ),
        (["-c", ok, "--mode", "reconstruct", "--patches"], "not --mode reconstruct"),
        (["-c", ok, "-s", ok, "--patches", "--workers", "0"], "--workers must be at least 1"),
        (["-c", ok, "-s", ok, "--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray cluster answers"),
    ]


def test_bad_input_gives_one_line_exit_2_and_writes_nothing(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.png").write_bytes(b"precious")
    # In this process, one after the other; stderr has what reached file descriptor 2 too, as a
    # process's would (the next test is the command in a process of its own).
    for args, message in _bad_inputs(inputs):
        result = cli("still", *args, "-o", str(out / "keep.png"), "--iterations", "1")
        stderr = result.stderr
        assert result.returncode == 2, (args, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, stderr)
        assert "Traceback" not in stderr and result.stdout == "", (args, result.stdout)  # no bar drawn
    assert [p.name for p in out.iterdir()] == ["keep.png"]
    assert (out / "keep.png").read_bytes() == b"precious"


def test_render_at_an_address_nothing_answers_fails_at_once_and_writes_nothing(tmp_path):
    scene = tmp_path / "scene.toml"
    scene.write_text('[output]\nwidth = 32\nheight = 32\nframes = 2\n[styles]\na = "builtin:coffee"\n')
    result = cli_process("render", str(scene), "--address", "127.0.0.1:1")  # a real process's stderr
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "stylereel: error: --address 127.0.0.1:1: no Ray cluster answers there (Connection refused)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.toml"]


def test_output_in_a_missing_folder_is_refused(tmp_path):
    result = cli(
        "still", "-c", "builtin:coffee", "-s", "builtin:coffee", "-o", str(tmp_path / "no" / "o.png")
    )
    assert result.returncode == 2 and "does not exist" in result.stderr
