"""Hostile scene values: each is one SceneError (or ScheduleError) naming the file, the key and the limit,
raised by load_scene before anything is computed; nothing hangs, nothing escapes as a traceback."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from cluster.cli import app
from render.scene import SceneError, load_scene
from render.schedule import Schedule, ScheduleError

BASE = """\
[output]
width = 48
height = 32
frames = 6
[styles]
a = "builtin:coffee"
"""


def write(tmp_path, text: str):
    path = tmp_path / "scene.toml"
    path.write_text(text)
    return path


def edited(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new)


def refused(path) -> str:
    """The message load_scene refuses `path` with: a SceneError, one line, starting with the file."""
    with pytest.raises(SceneError) as e:
        load_scene(path)
    assert type(e.value) is SceneError
    message = str(e.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


def styles(n: int) -> str:
    return "".join(f's{i} = "builtin:coffee"\n' for i in range(n))


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("frames = 6", "frames = 6\n[frames]\ncolor_coherence = nan",
         "frames.color_coherence: must be a finite number, got nan"),
        ("frames = 6", "frames = 6\n[frames]\niterations = nan",
         "frames.iterations: must be a finite number, got nan"),
        ("frames = 6", "frames = 6\n[camera]\nzoom = -inf", "camera.zoom: must be a finite number, got -inf"),
        ("frames = 6", "frames = 6\n[patches]\nscale_bias = nan",
         "patches.scale_bias: must be a finite number, got nan"),
        ("frames = 6", "seconds = inf", "output.seconds: must be a finite number, got inf"),
        ("frames = 6", "frames = 6\nfps = nan", "output.fps: must be a finite number, got nan"),
        ("frames = 6", 'frames = 6\nfps = "-inf"', "output.fps: must be a finite number, got '-inf'"),
    ],
)  # fmt: skip
def test_nan_and_inf_are_refused_naming_the_key(tmp_path, old, new, message):
    assert message in refused(write(tmp_path, edited(old, new)))


@pytest.mark.parametrize(
    "old, at_limit, beyond, message",
    [
        ("width = 48", "width = 16384", "width = 100000", "output.width: must be <= 16384, got 100000"),
        ("height = 32", "height = 16384", "height = 100000", "output.height: must be <= 16384, got 100000"),
        ("width = 48", "width = 48\ntile = 16384", "width = 48\ntile = 16386",
         "output.tile: must be <= 16384, got 16386"),
        ("frames = 6", "frames = 1000000", "frames = 1000000000", "output.frames: must be <= 1000000, got"),
        ("frames = 6", "seconds = 41666", "seconds = 1e300",
         "output.seconds: 1e+300 s at 24 fps is more than 1000000 frames"),
        ("frames = 6", 'frames = 6\nfps = "1000"', 'frames = 6\nfps = "1e30"',
         "output.fps: must be <= 1000, got '1e30'"),
        ("frames = 6", 'frames = 6\nfps = "1/100"', 'frames = 6\nfps = "1/1000000000"',
         "output.fps: must be >= 0.01, got '1/1000000000'"),
        # Fraction("1e-9999999") expands the exponent exactly, which took minutes.
        ("frames = 6", "frames = 6\nfps = 0.01", 'frames = 6\nfps = "1e-9999999"',
         "output.fps: must be >= 0.01, got '1e-9999999'"),
        ("frames = 6", "frames = 6\n[start]\niterations = 100000", "frames = 6\n[start]\niterations = 100001",
         "start.iterations: must be <= 100000, got 100001"),
        ("frames = 6", 'frames = 6\n[frames]\niterations = "100000"',
         'frames = 6\n[frames]\niterations = "1e18"',
         "frames.iterations: frame 1: must be <= 100000, got 1e+18"),
        # Every value the schedule yields, at the shot's own frames (t = 1..5 of 6).
        ("frames = 6", 'frames = 6\n[frames]\niterations = "t*20000"',
         'frames = 6\n[frames]\niterations = "t*30000"',
         "frames.iterations: frame 4: must be <= 100000, got 120000"),
        ("frames = 6", "[[shot]]\nlength = 1000000", "[[shot]]\nlength = 1000001",
         "shot.0.length: expected a whole number of frames from 1 to 1000000, got 1000001"),
        ("frames = 6", "[[shot]]\nlength = 600000\n[[shot]]\nlength = 400000",
         "[[shot]]\nlength = 600000\n[[shot]]\nlength = 400001",
         "shot: the lengths add up to 1000001 frames; at most 1000000"),
        ("[styles]\n", "[styles]\n" + styles(63), "[styles]\n" + styles(64),
         "[styles]: at most 64 styles, got 65"),
        ("frames = 6", "frames = 6\n[drift]\nstyles = [" + '"a", ' * 64 + "]",
         "frames = 6\n[drift]\nstyles = [" + '"a", ' * 65 + "]", "drift.styles: at most 64 names, got 65"),
        ("frames = 6", "frames = 6\n[patches]\nrounds = 1000", "frames = 6\n[patches]\nrounds = 1001",
         "patches.rounds: must be <= 1000, got 1001"),
        ("frames = 6", "frames = 6\n[patches]\nsteps = 100000", "frames = 6\n[patches]\nsteps = 100001",
         "patches.steps: must be <= 100000, got 100001"),
    ],
)  # fmt: skip
def test_values_beyond_the_limits_are_refused_naming_the_limit(tmp_path, old, at_limit, beyond, message):
    start = time.perf_counter()
    assert load_scene(write(tmp_path, edited(old, at_limit)))
    assert message in refused(write(tmp_path, edited(old, beyond)))
    assert time.perf_counter() - start < 5  # a million frames too: nothing is planned at load


@pytest.mark.parametrize("nested", ["[" * 3000 + "]" * 3000, "{a = " * 3000 + "1" + "}" * 3000])
def test_deeply_nested_toml_is_one_error_naming_the_file(tmp_path, nested):
    message = refused(write(tmp_path, f"x = {nested}\n" + BASE))
    assert "not valid TOML (arrays or tables nested too deeply)" in message


def test_a_long_keyframe_string_is_refused_at_once_and_one_at_the_limit_parses_quickly():
    keys = ", ".join(f"{i}:(1.01)" for i in range(250_000))  # 2.6 MB: 55 s in the old quadratic split
    start = time.perf_counter()
    with pytest.raises(ScheduleError, match="schedule longer than 100000 characters"):
        Schedule.parse(keys)
    assert time.perf_counter() - start < 1
    at_limit = keys[: keys.rindex(",", 0, 100_000)]
    start = time.perf_counter()
    assert len(Schedule.parse(at_limit).keys) > 7_000
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(
    "text",
    [
        "abs(" * 100 + "t" + ")" * 100,  # passed the parse check, then overflowed the evaluator's stack
        "-" * 500 + "t",
        "t+" * 200 + "t",
        "0:(1), 10:(" + "sqrt(" * 80 + "t" + ")" * 80 + ")",
    ],
)
def test_deep_expressions_are_refused_when_parsed(text):
    with pytest.raises(ScheduleError, match="nested more than 64 levels deep"):
        Schedule.parse(text)


def test_a_deep_schedule_in_a_scene_names_the_key_and_the_limit(tmp_path):
    path = write(tmp_path, BASE + '[camera]\nzoom = "' + "abs(" * 100 + "t" + ")" * 100 + '"\n')
    message = refused(path)
    assert "camera.zoom: 'abs(abs(" in message and "nested more than 64 levels deep" in message


@pytest.mark.parametrize(
    "old, new, shown",
    [
        ("frames = 6", 'frames = 6\n[frames]\n"a\\nstylereel: error: forged" = 1',
         "unknown key frames.a\\nstylereel: error: forged; known:"),
        ("frames = 6", 'frames = 6\n"\\u001b[31mred" = 1', "unknown key output.\\x1b[31mred"),
        ('a = "builtin:coffee"', 'a = "builtin:coffee"\n"b\\nstylereel: error: x" = "gone.png"',
         "styles.b\\nstylereel: error: x: gone.png: no such file"),
        ('a = "builtin:coffee"', 'a = "gone\\nstylereel: error: x.png"',
         "styles.a: gone\\nstylereel: error: x.png: no such file"),
        ('a = "builtin:coffee"', 'a = "builtin:x\\nstylereel: error: x"',
         "styles.a: builtin:x\\nstylereel: error: x: no such built-in image"),
        ('a = "builtin:coffee"', '"a\\nb" = "builtin:coffee"\n[start]\nstyle = "a\\nc"',
         "start.style: no style named 'a\\nc'; did you mean a\\nb?"),
        ('a = "builtin:coffee"', '"a\\u2028b" = "builtin:coffee"\n[start]\nstyle = "xyzzy"',
         "start.style: no style named 'xyzzy'; styles: a\\u2028b"),
    ],
)  # fmt: skip
def test_control_characters_in_echoed_text_are_escaped(tmp_path, old, new, shown):
    message = refused(write(tmp_path, edited(old, new)))
    assert shown in message
    assert message.isprintable()  # no newline, carriage return, terminal escape or line separator


@pytest.mark.parametrize(
    "old, new, shown",
    [
        ("frames = 6", "frames = 6\n[frames]\ncolor_coherence = nan",
         "frames.color_coherence: must be a finite number, got nan"),
        ("frames = 6", 'frames = 6\n[frames]\niterations = "1e18"', "frames.iterations: frame 1: must be <="),
        ("frames = 6", "seconds = inf", "output.seconds: must be a finite number, got inf"),
        ("width = 48", "width = 48\nx = " + "[" * 3000 + "]" * 3000, "nested too deeply"),
    ],
)  # fmt: skip
def test_the_plan_command_prints_one_error_line_and_exits_2(tmp_path, old, new, shown):
    path = write(tmp_path, edited(old, new))
    result = CliRunner().invoke(app, ["plan", str(path)])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("stylereel: error: ") and shown in lines[0], result.stderr
    assert result.stdout == "" and "Traceback" not in result.output
