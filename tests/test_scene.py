"""Scene files: valid scenes parse with defaults; bad ones give one line naming file, key and frame."""

from __future__ import annotations

import json

import pytest

from render.plan import drift_weights, plan_scene
from render.scene import SceneError, json_schema, load_scene
from tests.helpers import cli

GOOD = """
seed = 1
[output]
width = 48
height = 32
fps = "24000/1001"
frames = 6
[styles]
a = "builtin:coffee"
b = "builtin:ihc"
[start]
content = "builtin:astronaut"
iterations = 3
[frames]
iterations = "0:(2), 5:(4)"
[drift]
styles = ["a", "b"]
frames_per_style = 3
crossfade = 1
[camera]
zoom = 1.05
"""


def write(tmp_path, text: str, name: str = "scene.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_good_scene_parses_and_plans(tmp_path):
    scene = load_scene(write(tmp_path, GOOD))
    assert scene.frame_count == 6 and scene.frames.content == "feedback"
    plans = plan_scene(scene)
    assert [p.iterations for p in plans] == [3, 2, 3, 3, 4, 4]  # frame 0 uses start.iterations
    assert plans[0].camera.zoom == 1 and plans[1].camera.zoom == pytest.approx(1.05)
    assert plans[0].style_weights == (1.0, 0.0)
    assert all(abs(sum(p.style_weights) - 1) < 1e-9 for p in plans)


def test_drift_cycles_and_crossfades_smoothly():
    weights = [drift_weights(t, 3, 4, 2) for t in range(13)]
    assert weights[0] == [1, 0, 0] and weights[4] == [0, 1, 0] and weights[8] == [0, 0, 1]
    assert weights[12] == [1, 0, 0]  # back to the first style
    assert 0 < weights[2][1] < weights[3][1] < 1  # handing over from style 0 to 1


def test_patches_section(tmp_path):
    assert load_scene(write(tmp_path, GOOD)).patches is None
    scene = load_scene(write(tmp_path, GOOD + "[patches]\nsize = 64\nlocalized = true\n"))
    assert scene.patches.size == 64 and scene.patches.localized and scene.patches.rounds == 8
    assert scene.resolved()["patches.localized"] is True


def test_seconds_and_fraction_fps(tmp_path):
    scene = load_scene(write(tmp_path, GOOD.replace("frames = 6", "seconds = 2")))
    assert scene.frame_count == round(2 * 24000 / 1001)


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "[camera]\nzoom = 1.05",
            "[camera]\nzom = 1.05",
            "unknown key camera.zom; did you mean camera.zoom?",
        ),
        ("width = 48", 'width = "48"', "output.width: expected a whole number"),
        ("width = 48", "width = 47", "output.width: must be even"),
        ("frames = 6", "frames = 0", "output.frames: must be >= 1"),
        ("frames = 6", "frames = -3", "output.frames: must be >= 1"),
        ('fps = "24000/1001"', "fps = 0", "output.fps: must be >= 0.01"),
        ('fps = "24000/1001"', 'fps = "fast"', "output.fps: expected a number or a fraction"),
        ('b = "builtin:ihc"', 'b = "missing.png"', "styles.b: missing.png: no such file"),
        ('b = "builtin:ihc"', 'b = "builtin:nope"', "styles.b: builtin:nope: no such built-in image"),
        ('iterations = "0:(2), 5:(4)"', 'iterations = "0:(2), 5:(4"', "frames.iterations: unbalanced"),
        (
            'iterations = "0:(2), 5:(4)"',
            'iterations = "0:(2), -5:(4)"',
            "frames.iterations: key frame -5 is negative",
        ),
        ("zoom = 1.05", "zoom = \"__import__('os')\"", "unknown function '__import__'"),
        ("zoom = 1.05", 'zoom = "0:(1), 3:(-1)"', "camera.zoom: frame 2: must be > 0"),
        (
            "zoom = 1.05",
            'zoom = "1+0.01/(t-4)"',
            "camera.zoom: frame 4: '1+0.01/(t-4)' at t=4: float division",
        ),
        ('styles = ["a", "b"]', 'styles = ["a", "c"]', "drift.styles: no style named 'c'"),
        ("seed = 1", "seed = -1", "seed: expected a whole number >= 0"),
        ("[output]", "[outptu]", "unknown key outptu; did you mean output?"),
        ("width = 48", "width = 48\nwidth = 50", "not valid TOML"),
        ("zoom = 1.05", "zoom = 1.05\n[patches]\nsize = 8", "patches.size: must be >= 32"),
        ("zoom = 1.05", "zoom = 1.05\n[patches]\nlocalized = 1", "patches.localized: expected true or false"),
        ("zoom = 1.05", "zoom = 1.05\n[patches]\nscale_bias = 2", "patches.scale_bias: must be <= 1"),
    ],
)
def test_bad_scenes_name_file_key_and_frame(tmp_path, old, new, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(SceneError) as e:
        plan_scene(load_scene(path))
    assert message in str(e.value) and str(path) in str(e.value)


def test_missing_scene_file(tmp_path):
    with pytest.raises(SceneError, match="no such scene file"):
        load_scene(tmp_path / "nope.toml")


def test_schema_describes_every_key():
    schema = json_schema()
    assert set(schema["properties"]) == {
        "seed",
        "styles",
        "output",
        "start",
        "frames",
        "drift",
        "camera",
        "patches",
        "shot",
    }
    zoom = schema["properties"]["camera"]["properties"]["zoom"]
    assert zoom["type"] == ["number", "string"] and zoom["description"]
    assert schema["properties"]["output"]["properties"]["codec"]["enum"][0] == "libx264"


def test_bundled_scenes_are_valid():
    from pathlib import Path

    scenes = sorted((Path(__file__).parents[1] / "scenes").glob("*.toml"))
    assert len(scenes) >= 3
    for path in scenes:
        assert plan_scene(load_scene(path))


def test_estimates_price_each_job_and_step_at_its_canvas(tmp_path):
    from render.calibrate import H100, Rate, estimate_seconds

    def estimate(text: str, pricing) -> float:
        scene = load_scene(write(tmp_path, text))
        return estimate_seconds(scene, plan_scene(scene), pricing)

    plans = plan_scene(load_scene(write(tmp_path, GOOD)))
    frame = 48 * 32
    # At 48x32 frame 0 has one scale and every frame is a keyframe: the jobs and the steps, counted.
    assert estimate(GOOD, Rate(job=0.0, step=1.0, pixels=frame)) == sum(p.iterations for p in plans)
    assert estimate(GOOD, Rate(job=1.0, step=0.0, pixels=frame)) == len(plans)
    assert estimate(GOOD, Rate(job=0.0, step=0.0, pixels=frame, first=5.0)) == 5.0  # once: one worker
    # 10,000 times the pixels: more than 10,000 times the steps' time (frame 0's coarser scales, the
    # margins of the tiles above 512 px)
    bigger = GOOD.replace("width = 48", "width = 4800").replace("height = 32", "height = 3200")
    rate = Rate(job=0.0, step=1.0, pixels=frame)
    assert estimate(bigger, rate) > 10_000 * estimate(GOOD, rate)
    # 48x32 on a GPU: launch-bound, a step costs what a 512x512 one does
    assert estimate(GOOD, H100()) == pytest.approx(sum(p.iterations for p in plans) * 0.0073)


def test_a_job_is_measured_on_this_machine(tiny):
    from engine.stylize import Settings
    from render.calibrate import measure
    from tests.conftest import smooth_image

    rate = measure((32, 48), smooth_image(2), tiny, Settings(temporal_weight=10.0), warm_seconds=0)
    assert rate.step > 0 and rate.job >= 0 and rate.first >= 0 and rate.pixels == 32 * 48
    assert tiny.calls >= 2 + 2 * 8  # a warm-up job, then two timed ones: a network pass a step at least


def test_schema_and_plan_commands(tmp_path):
    """`plan` of a good scene measures on a Ray worker: test_cluster runs it on that module's Ray."""
    result = cli("schema")
    assert result.returncode == 0 and json.loads(result.stdout)["title"] == "stylereel scene"
    bad = write(tmp_path, GOOD.replace("zoom = 1.05", "zoom = 0"), "bad.toml")
    result = cli("plan", bad)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "camera.zoom: frame 1: must be > 0" in result.stderr
