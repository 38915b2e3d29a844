"""Deforum compatibility of keyframe schedules, and the scene schema as editors' TOML tools use it.

The expected values come from Deforum's own parser (deforum-art/sd-webui-deforum,
scripts/deforum_helpers/animation_key_frames.py: parse_key_frames, then get_inbetweens over a shot of
`frames` frames, where max_f = frames - 1), run on each schedule below.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from render.plan import plan_scene
from render.scene import SceneError, load_scene
from render.schedule import Schedule, ScheduleError
from tests.helpers import cli

SCENES = sorted((Path(__file__).resolve().parents[1] / "scenes").glob("*.toml"))
ZOOM = SCENES[0].with_name("zoom.toml")  # its angle is a loop over max_f

# (schedule, frames, Deforum's value at each frame 0..frames-1)
DEFORUM = [
    ("0:(1), 5:(3)", 11, [1, 1.4, 1.8, 2.2, 2.6, 3, 3, 3, 3, 3, 3]),
    ("20:(2), 0:(0), 10:(1)", 21, [t / 10 for t in range(21)]),
    ("0:(1), 0:(5)", 3, [5, 5, 5]),
    ("0:(t/max_f)", 5, [0, 0.25, 0.5, 0.75, 1]),
    ("0:(0.5*sin(2*3.14159265358979*t/max_f))", 5, [0, 0.5, 0, -0.5, 0]),
    # A key whose value uses t holds its formula until the next key, then the next key's value.
    ("0:(t), 4:(0)", 7, [0, 1, 2, 3, 0, 0, 0]),
    # From a number, the value moves to the next key's value at that key's frame.
    ("0:(0), 4:(t)", 7, [0, 1, 2, 3, 4, 5, 6]),
    ("0:(5), 10:(t)", 12, [5, 5.5, 6, 6.5, 7, 7.5, 8, 8.5, 9, 9.5, 10, 11]),
    ("0:(0), 2:(t), 4:(1), 6:(0)", 8, [0, 1, 2, 3, 1, 0.5, 0, 0]),
    ("0:(0), 4:(t), 6:(1)", 9, [0, 1, 2, 3, 4, 5, 1, 1, 1]),
    ("0:(-t%3)", 5, [0, 2, 1, 0, 2]),  # numexpr's % is Python's: the sign of the divisor
    ("0:(arcsin(0.5)+log10(100))", 2, [math.asin(0.5) + 2] * 2),  # numexpr's names
]


def values(text: str, frames: int) -> list[float]:
    schedule = Schedule.parse(text)
    return [schedule(t, frames - 1) for t in range(frames)]


def test_schedules_give_deforums_values():
    differ = [
        (text, got, want)
        for text, frames, want in DEFORUM
        if (got := values(text, frames)) != pytest.approx(want, abs=1e-4)
    ]
    assert not differ, differ


def test_keys_in_any_order_are_sorted_and_a_repeated_key_takes_its_last_value():
    assert values("20:(2), 0:(0), 10:(1)", 21) == values("0:(0), 10:(1), 20:(2)", 21)
    assert values("0:(0), 10:(1), 10:(3)", 11)[5] == pytest.approx(1.5)
    assert [f for f, _ in Schedule.parse("5:(1), 0:(2), 5:(3), 2:(4)").keys] == [0, 2, 5]


def scene_file(tmp_path: Path, camera: str, frames: str = "frames = 9") -> Path:
    path = tmp_path / "scene.toml"
    path.write_text(
        f'[output]\nwidth = 32\nheight = 32\n{frames}\n[styles]\na = "builtin:ihc"\n[camera]\n{camera}\n'
    )
    return path


def test_max_f_is_the_last_frames_index_so_a_loop_closes_on_it(tmp_path):
    loop = 'angle = "0:(0.5*sin(2*pi*t/max_f))"\ntranslate_x = "0:(t/max_f)"'
    plans = plan_scene(load_scene(scene_file(tmp_path, loop)))
    assert plans[-1].camera.translate_x == 1.0
    assert plans[-1].camera.angle == pytest.approx(0, abs=1e-12)
    assert plans[2].camera.angle == pytest.approx(0.5)  # a quarter of the way: t=2 of max_f=8
    # Per shot, as t is: each shot's own last frame.
    shots = "[[shot]]\nlength = 5\n[[shot]]\nlength = 3"
    plans = plan_scene(load_scene(scene_file(tmp_path, loop, shots)))
    assert [p.camera.translate_x for p in plans if p.local] == [0.25, 0.5, 0.75, 1.0, 0.5, 1.0]
    # The bundled zoom scene turns back to no rotation on its last frame.
    zoom = plan_scene(load_scene(ZOOM))
    assert zoom[-1].camera.angle == pytest.approx(0, abs=1e-12)


def test_bounds_hold_at_deforums_max_f(tmp_path):
    """Checked on reading the scene (frames.iterations <= 100000) and on planning it (camera.zoom > 0)."""
    iterations = 'zoom = 1\n[frames]\niterations = "100000 + floor(t/max_f)"'
    with pytest.raises(SceneError, match="frames.iterations: frame 8: must be <= 100000, got 100001"):
        load_scene(scene_file(tmp_path, iterations))
    with pytest.raises(SceneError, match="camera.zoom: frame 8: must be > 0, got 0"):
        plan_scene(load_scene(scene_file(tmp_path, 'zoom = "1 - t/max_f"')))


def test_where_stylereel_departs_from_deforum_on_purpose():
    # Before the first key the first key's value holds (Deforum's code means to, but stops with an error).
    assert values("3:(1), 5:(3)", 7) == [1, 1, 1, 1, 2, 3, 3]
    assert values("10:(t), 12:(0)", 13)[:3] == [10, 10, 10]
    # A key past the shot's end still shapes the frames before it (Deforum drops it): the same text
    # gives the same frames in a shorter shot.
    assert values("0:(1), 20:(3)", 11) == pytest.approx([1 + t / 10 for t in range(11)])
    # Any value without t is interpolated, however it is spelled (Deforum holds '1/2' but moves '0.5').
    assert values("0:(1/2), 2:(1)", 3) == values("0:(0.5), 2:(1)", 3) == [0.5, 0.75, 1]
    # Keys are whole frame numbers: no negative ones, and no expressions such as Deforum's `max_f-1:(`.
    with pytest.raises(ScheduleError, match="key frame -5 is negative"):
        Schedule.parse("0:(1), -5:(3)")
    with pytest.raises(ScheduleError, match="FRAME a whole number at 'max_f-1:"):
        Schedule.parse("0:(1), max_f-1:(3)")
    with pytest.raises(ScheduleError, match="FRAME a whole number"):
        Schedule.parse('"max_f-1":(3)')


# The scene schema, as editors check TOML with it: a JSON Schema validator, and Taplo (Even Better TOML).


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> Path:
    """`stylereel schema`'s output, in a file."""
    result = cli("schema")
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("schema") / "schema.json"
    path.write_text(result.stdout)
    return path


def bad_scenes(tmp_path: Path) -> list[Path]:
    """The zoom scene with an odd width, and with a misspelt key: stylereel refuses both."""
    text = ZOOM.read_text()
    assert "width = 192\n" in text and "[camera]\n" in text
    bad = []
    for name, edited in (
        ("odd.toml", text.replace("width = 192\n", "width = 191\n")),
        ("misspelt.toml", text.replace("[camera]\n", "[camera]\nzom = 1.05\n")),
    ):
        (tmp_path / name).write_text(edited)
        with pytest.raises(SceneError):
            load_scene(tmp_path / name)
        bad.append(tmp_path / name)
    return bad


def test_bundled_scenes_and_only_they_validate_against_the_json_schema(schema, tmp_path):
    validator = jsonschema.Draft202012Validator(json.loads(schema.read_text()))
    validator.check_schema(validator.schema)
    assert len(SCENES) >= 3
    for path in SCENES:
        errors = [e.message for e in validator.iter_errors(tomllib.loads(path.read_text()))]
        assert not errors, (path.name, errors)
    for path in bad_scenes(tmp_path):
        assert list(validator.iter_errors(tomllib.loads(path.read_text()))), path.name


def taplo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Taplo's CLI from the `taplo` wheel in the test extra, next to this Python."""
    binary = shutil.which("taplo", path=str(Path(sys.executable).parent)) or shutil.which("taplo")
    assert binary, "taplo is not installed: pip install -e '.[test]'"
    return subprocess.run([binary, "check", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_bundled_scenes_and_only_they_pass_taplo_with_the_schema(schema, tmp_path):
    for path in SCENES:
        result = taplo("--schema", schema.as_uri(), str(path), cwd=tmp_path)
        assert result.returncode == 0, (path.name, result.stderr)
    for path in bad_scenes(tmp_path):
        result = taplo("--schema", schema.as_uri(), str(path), cwd=tmp_path)
        # taplo's diagnostics: the offending key's line with the schema's reason (its closing log lines
        # do not always reach the pipe before it exits)
        said = result.stdout + result.stderr
        assert result.returncode != 0 and ("was unexpected" in said or "multiple of" in said), path.name


def test_taplo_finds_the_schema_from_a_directive_or_its_config(schema, tmp_path):
    """The two ways the README gives: `#:schema ./schema.json` atop a scene, or a `.taplo.toml` rule."""
    shutil.copy(schema, tmp_path / "schema.json")
    odd, misspelt = bad_scenes(tmp_path)
    good = tmp_path / "zoom.toml"
    for path in (good, odd):
        source = ZOOM if path == good else odd
        path.write_text("#:schema ./schema.json\n" + source.read_text())
    assert load_scene(good).output.width == 192  # stylereel reads the directive as a comment
    assert taplo(good.name, cwd=tmp_path).returncode == 0
    assert "not a multiple of 2" in taplo(odd.name, cwd=tmp_path).stderr
    (tmp_path / ".taplo.toml").write_text('[[rule]]\ninclude = ["*.toml"]\nschema.path = "schema.json"\n')
    assert "'zom' was unexpected" in taplo(misspelt.name, cwd=tmp_path).stderr
