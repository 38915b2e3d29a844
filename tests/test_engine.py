"""Engine on a tiny seeded conv stack: losses, scales, determinism, style-target caching."""

from __future__ import annotations

import math

import pytest
import torch
from skimage.color import rgb2lab

from engine.color import lab_to_rgb, rgb_to_lab
from engine.losses import ContentLoss, GramLoss, WassersteinLoss, gram, mean_cov, tv_loss
from engine.stylize import Settings, scales, schedule, stylize
from engine.targets import StyleBank, StyleTargets
from tests.conftest import smooth_image
from tests.tiny import TinyFeatures

FAST = Settings(iterations=4, min_size=16)


def test_gram_is_normalised_by_size():
    f = torch.ones(1, 4, 3, 5)
    assert torch.allclose(gram(f), torch.ones(4, 4) * 15 / (4 * 15))


def test_losses_vanish_at_their_target_and_grow_away_from_it():
    g = torch.Generator().manual_seed(0)
    f = torch.rand(1, 8, 6, 6, generator=g)
    other = torch.rand(1, 8, 6, 6, generator=g) * 2
    assert ContentLoss(f)(f) == 0
    assert ContentLoss(f)(other) > 0.1
    assert GramLoss(gram(f))(f) < 1e-10
    assert GramLoss(gram(f))(other) > 0.1
    w2 = WassersteinLoss(*mean_cov(f))
    assert abs(float(w2(f))) < 1e-3
    assert float(w2(other)) > 0.1


def test_tv_is_zero_on_flat_images_only():
    assert tv_loss(torch.full((1, 3, 8, 8), 0.3)) == 0
    assert tv_loss(smooth_image(0)) > 0


def test_scales_grow_by_sqrt2_from_min_size_to_target():
    plan = scales((192, 256), 128, math.sqrt(2))
    assert plan[-1] == (192, 256)
    assert [max(s) for s in plan] == [128, 181, 256]
    assert scales((60, 80), 128, math.sqrt(2)) == [(60, 80)]
    assert schedule(10, 4) == [40, 40, 20, 10]


def test_stylize_is_deterministic_for_a_seed(tiny):
    content, style = smooth_image(1), smooth_image(2)

    def run(seed: int) -> torch.Tensor:
        return stylize(
            content,
            StyleTargets(StyleBank([style])),
            FAST,
            features=tiny,
            init=None,
            generator=torch.Generator().manual_seed(seed),
        )

    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == content.shape and a.min() >= 0 and a.max() <= 1


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("style_loss", ["gram", "w2"])
def test_loss_falls(tiny, optimizer, style_loss):
    content, style = smooth_image(1), smooth_image(2)
    settings = Settings(
        iterations=20,
        min_size=64,
        optimizer=optimizer,
        style_loss=style_loss,
        lr=0.05,
        tv_weight=1.0,
        content_weight=5.0,
    )
    losses = []
    stylize(
        content,
        StyleTargets(StyleBank([style])),
        settings,
        features=tiny,
        init=content.clone(),
        callback=lambda p: losses.append(p.loss),
    )
    assert len(losses) == 20
    assert losses[-1] < 0.5 * losses[0]


def test_lbfgs_returns_its_best_iterate_not_its_last():
    """Without a line search L-BFGS can end on an overshoot: here the 8th iterate's loss is 5x the
    7th's. The run returns the best iterate, and the job's record reports its loss."""
    from render.job import LossLog

    content, style = smooth_image(5), smooth_image(55)
    settings = Settings(iterations=8, min_size=64, content_weight=0.0)
    seen, log = [], LossLog(settings)
    out = stylize(content, StyleTargets(StyleBank([style])), settings, features=TinyFeatures(1),
                  init=torch.rand(content.shape, generator=torch.Generator().manual_seed(5)),
                  callback=lambda p: (seen.append(p), log(p)))  # fmt: skip
    best = min(seen, key=lambda p: p.loss)
    assert seen[-1].loss > 2 * best.loss  # the case this guards: the last iterate overshot
    assert torch.equal(out, best.image)
    assert log.record()["loss"] == best.loss < log.record()["first_loss"]


def test_progress_reports_every_evaluation_over_all_scales(tiny):
    seen = []
    stylize(
        smooth_image(1, (40, 40)),
        StyleTargets(StyleBank([smooth_image(2)])),
        Settings(iterations=3, min_size=20),
        features=tiny,
        callback=seen.append,
    )
    assert [p.step for p in seen] == list(range(1, seen[-1].steps + 1))
    assert seen[0].size == (28, 28) and seen[-1].size == (40, 40)  # 40/√2 = 28; 28/√2 < 20
    assert seen[-1].image.shape == (1, 3, 40, 40)


def test_style_statistics_are_computed_once_per_style_and_scale(tiny):
    bank = StyleBank([smooth_image(2), smooth_image(3)])
    content = smooth_image(1)
    stylize(content, StyleTargets(bank, [1, 1]), FAST, features=tiny)
    first = tiny.calls
    stylize(content, StyleTargets(bank, [0.2, 0.8]), FAST, features=tiny)
    # The second call reuses the bank: only content features and optimisation passes.
    assert tiny.calls - first < first


def test_blend_weights_move_the_target_between_styles(tiny):
    bank = StyleBank([smooth_image(2), torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))])
    layers = ["relu1_1"]
    a = StyleTargets(bank, [1, 0]).losses(tiny, 32, layers, "gram")["relu1_1"].target
    b = StyleTargets(bank, [0, 1]).losses(tiny, 32, layers, "gram")["relu1_1"].target
    mid = StyleTargets(bank, [1, 1]).losses(tiny, 32, layers, "gram")["relu1_1"].target
    assert torch.allclose(mid, (a + b) / 2, atol=1e-6)


@pytest.mark.parametrize("weights", [[-1.0], [0.0]])
def test_bad_blend_weights_are_refused(weights):
    with pytest.raises(ValueError, match="style weights"):
        StyleTargets(StyleBank([smooth_image(2)]), weights)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"content_layers": ("relu9_9",)}, "unknown layer relu9_9"),
        ({"style_weight": -1.0}, "style_weight must be >= 0"),
        ({"style_layer_weights": (1.0,)}, "one weight per style layer"),
        ({"optimizer": "sgd"}, "sgd"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Settings(**kwargs)


def test_texture_needs_no_content(tiny):
    out = stylize(
        None,
        StyleTargets(StyleBank([smooth_image(2)])),
        Settings(iterations=4, min_size=32),
        features=tiny,
        size=(48, 64),
    )
    assert out.shape == (1, 3, 48, 64)


def test_content_at_native_size_keeps_the_low_res_content(tiny):
    low = smooth_image(1, (16, 20))
    settings = Settings(iterations=15, min_size=64, content_at_native_size=True, style_weight=0)
    out = stylize(
        low,
        None,
        settings,
        features=tiny,
        size=(64, 80),
        init=torch.nn.functional.interpolate(low, size=(64, 80), mode="bilinear"),
    )
    down = torch.nn.functional.interpolate(out, size=(16, 20), mode="area")
    assert out.shape == (1, 3, 64, 80)
    assert (down - low).abs().mean() < 0.05


def test_iterate_average_is_smoother_than_the_last_iterate(tiny):
    content, style = smooth_image(1), smooth_image(2)
    targets = StyleTargets(StyleBank([style]))
    base = Settings(iterations=30, min_size=64, optimizer="adam", lr=0.05)
    last = stylize(content, targets, base, features=tiny, init=content.clone())
    averaged = stylize(
        content, targets, Settings(**{**base.__dict__, "average": 0.9}), features=tiny, init=content.clone()
    )
    assert not torch.equal(last, averaged)
    assert (averaged - content).abs().mean() < (last - content).abs().mean()


def test_gram_loss_gradient_matches_autograd():
    g = torch.Generator().manual_seed(0)
    f = torch.rand(1, 5, 4, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    target = gram(torch.rand(1, 5, 4, 3, generator=g, dtype=torch.float64))
    GramLoss(target)(f).backward()
    fast = f.grad.clone()
    f.grad = None
    ((gram(f) - target).pow(2).sum() / target.pow(2).sum()).backward()
    assert torch.allclose(fast, f.grad)
    assert torch.autograd.gradcheck(lambda x: GramLoss(target)(x), (f.detach().requires_grad_(True),))


def test_large_style_images_are_measured_tile_by_tile_with_the_same_statistics(tiny, monkeypatch):
    import engine.targets as targets

    image = smooth_image(7, (224, 304))
    whole = StyleBank([image]).stats(tiny, 0, 304, ["relu1_1", "relu3_1"], "gram")
    monkeypatch.setattr(targets, "STATS_TILE", 128)  # 304 px is now "large": cores of 64 with margins
    tiled = StyleBank([image]).stats(tiny, 0, 304, ["relu1_1", "relu3_1"], "gram")
    for layer in whole:
        (a,), (b,) = whole[layer], tiled[layer]
        assert (a - b).norm() / a.norm() < 0.03, layer  # uint8 resizing and tile edges, nothing more


def test_lab_matches_scikit_image_and_inverts():
    rgb = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(3))
    rgb[..., :2, :2] = 0  # black and white: the ends of both piecewise segments
    rgb[..., 2:4, :2] = 1
    lab = rgb_to_lab(rgb)
    expected = torch.from_numpy(rgb2lab(rgb[0].permute(1, 2, 0).double().numpy())).permute(2, 0, 1)
    assert (lab[0].double() - expected).abs().max() < 1e-3
    assert (lab_to_rgb(lab) - rgb).abs().max() < 1e-4
