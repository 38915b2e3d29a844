"""The optimisation: one entry point, `stylize`, coarse to fine over scales."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import torch
from torch import Tensor

from .color import preserve_colors
from .losses import ContentLoss, normalize_grad, temporal_loss, tv_loss
from .targets import Features, StyleLoss, StyleTargets, resize
from .vgg import check_layers


class Optimizer(StrEnum):
    LBFGS = "lbfgs"
    ADAM = "adam"


class Precision(StrEnum):
    FP32 = "fp32"
    BF16 = "bf16"  # autocast: the network in bfloat16, the losses in float32


STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class Settings:
    content_layers: tuple[str, ...] = ("relu4_2",)
    content_weight: float = 1.0  # relative to style_weight; both losses are relative errors
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None  # None: equal; normalised to sum 1
    style_weight: float = 100.0
    style_loss: StyleLoss = StyleLoss.GRAM
    style_scale: float = 1.0  # style image long side relative to the output's, at every scale
    tv_weight: float = 0.0
    # Temporal loss against the warped previous frame over the pixels carried over (video frames).
    temporal_weight: float = 0.0
    optimizer: Optimizer = Optimizer.LBFGS
    lr: float = 0.02  # Adam only, in [0, 1] pixel units
    iterations: int = 100  # at the final scale; coarser scales get more, see `schedule`
    min_size: int = 128  # long side of the coarsest scale
    scale_step: float = math.sqrt(2)  # size ratio between consecutive scales
    average: float = 0.0  # EMA decay of the iterates (0: off); the average is the output
    normalize_gradients: bool = False
    preserve_colors: bool = False
    # Compare the content at its own (lower) resolution: the output is
    # downsampled to the content's size before the content layers see it.
    content_at_native_size: bool = False
    precision: Precision = Precision.FP32

    def __post_init__(self) -> None:
        # Accept plain strings for the choices (from TOML or the CLI).
        for name, kind in (("style_loss", StyleLoss), ("optimizer", Optimizer), ("precision", Precision)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        check_layers(self.content_layers + self.style_layers)
        for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight", "lr", "style_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise ValueError("style_layer_weights needs one weight per style layer")
            if any(w < 0 for w in self.style_layer_weights) or sum(self.style_layer_weights) <= 0:
                raise ValueError("style_layer_weights must be >= 0 with a positive sum")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, not {self.iterations}")
        if self.min_size < 16 or self.scale_step <= 1:
            raise ValueError("min_size must be >= 16 and scale_step > 1")
        if not 0 <= self.average < 1:
            raise ValueError(f"average must be in [0, 1), not {self.average}")


def scales(size: tuple[int, int], min_size: int, step: float) -> list[tuple[int, int]]:
    """(H, W) of each scale, coarse to fine, ending at `size`; long sides grow by `step`."""
    h, w = size
    long = max(h, w)
    sides = [long]
    while sides[-1] / step >= min_size * 0.999:
        sides.append(round(sides[-1] / step))
    return [(max(1, round(h * s / long)), max(1, round(w * s / long))) for s in reversed(sides)]


def schedule(iterations: int, n_scales: int) -> list[int]:
    """Iterations per scale: `iterations` at the finest, doubling for each coarser scale up to 4x.

    A coarser scale costs half as much per step (√2 per side), so each
    scale gets about the same compute: the large structures form where steps
    are cheap, and the finest scale only refines them.
    """
    return [iterations * min(4, 2 ** (n_scales - 1 - k)) for k in range(n_scales)]


@dataclass
class Progress:
    """What the callback sees after each loss evaluation."""

    step: int  # evaluations so far, over all scales
    steps: int  # evaluations planned, over all scales
    scale: int  # index of the current scale
    size: tuple[int, int]  # (H, W) of the current scale
    loss: float
    terms: dict[str, float] = field(default_factory=dict)
    image: Tensor | None = None  # (1, 3, H, W) current iterate (or its average), detached


Callback = Callable[[Progress], None]


def noise_like(size: tuple[int, int], generator: torch.Generator, device: torch.device | str) -> Tensor:
    """Uniform noise image (1, 3, H, W) drawn on the CPU, so every device sees the same start."""
    return torch.rand((1, 3, *size), generator=generator).to(device)


def at_precision(features: Features, precision: Precision) -> Features:
    """The network under the chosen precision; activations come back as float32 for the losses."""

    def run(x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision is Precision.BF16):
            feats = features(x, layers)
        return {n: f.float() for n, f in feats.items()}

    return run


def stylize(
    content: Tensor | None,
    style_targets: StyleTargets | None,
    settings: Settings,
    *,
    features: Features,
    init: Tensor | None = None,
    size: tuple[int, int] | None = None,
    picture_side: int | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    temporal: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Optimise an image whose features match `content` and whose statistics match `style_targets`.

    content: (1, 3, h, w) in [0, 1] or None (texture). init: (1, 3, *, *) start
    image, or None for noise. size: output (H, W); default the content's.
    picture_side: long side of the whole picture when this call optimises one tile
    of it, so the style is seen at the picture's scale, not the tile's.
    temporal: (target (1, 3, H, W), mask (1, 1, H, W)) for the temporal loss, when
    settings.temporal_weight > 0: the warped previous frame and where it is valid.
    Returns (1, 3, H, W) in [0, 1]. Same inputs and generator seed on the
    same device give the same result.
    """
    if content is None and style_targets is None:
        raise ValueError("nothing to optimise for: give a content image, styles, or both")
    if size is None:
        if content is None:
            raise ValueError("size is required when there is no content image")
        size = tuple(content.shape[-2:])
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    device = content.device if content is not None else style_targets.bank.images[0].device
    plan = scales(size, settings.min_size, settings.scale_step)
    steps = schedule(settings.iterations, len(plan))
    total, done = sum(steps), 0

    x = init if init is not None else noise_like(plan[0], generator, device)
    avg: Tensor | None = None
    for k, (scale_size, n) in enumerate(zip(plan, steps, strict=True)):
        x = resize(x.detach(), scale_size)
        avg = resize(avg, scale_size) if avg is not None else None
        style_side = round((picture_side or max(size)) * max(scale_size) / max(size) * settings.style_scale)
        objective = _Objective(content, style_targets, settings, features, scale_size, size, style_side)
        if temporal is not None and settings.temporal_weight > 0:
            objective.temporal = tuple(resize(t, scale_size) for t in temporal)

        def report(
            evals: int, loss: Tensor, terms: dict, image: Tensor, k: int = k, start: int = done
        ) -> None:
            if callback is not None:
                callback(
                    Progress(start + evals, total, k, tuple(image.shape[-2:]), loss.item(), terms, image)
                )

        x, avg = _optimise(x, avg, objective, settings, n, report)
        done += n
    out = (avg if avg is not None else x).detach().clamp(0, 1)
    if settings.preserve_colors and content is not None:
        out = preserve_colors(out, content)
    return out


class Best:
    """The iterate of lowest loss so far. L-BFGS without a line search does not descend at every
    step: over 8 iterations from a warped previous frame the last iterate ended above the start in
    frames of the bundled zoom scene (BENCHMARKS.md, "Quality guards"). An L-BFGS run returns the
    best iterate it evaluated, never worse than its start."""

    def __init__(self) -> None:
        self.loss = math.inf
        self.xs: list[Tensor] | None = None

    def offer(self, loss: float, xs: Sequence[Tensor]) -> None:
        if loss < self.loss:  # strictly: the first of equals; NaN is never the best
            self.loss, self.xs = loss, [x.detach().clone() for x in xs]


def _optimizers_without_dynamo() -> None:
    """torch.optim wraps `Optimizer.add_param_group` and `zero_grad` in `torch._disable_dynamo`, which
    imports torch._dynamo the first time either runs, only so that torch.compile leaves them untraced:
    about 2 s of every worker process's first job (BENCHMARKS.md, "A worker's first job"). Nothing here
    is compiled, so each is made its own disabled form by filling the cache `_disable_dynamo` looks up
    (`fn.__dynamo_disable`). The steps are the same to the bit; where a torch release wraps them
    otherwise, this changes nothing and the import comes back."""
    for method in (torch.optim.Optimizer.add_param_group, torch.optim.Optimizer.zero_grad):
        original = getattr(method, "__wrapped__", None)
        if original is not None and getattr(original, "__dynamo_disable", None) is None:
            original.__dynamo_disable = original


_optimizers_without_dynamo()


def _optimise(
    x: Tensor, avg: Tensor | None, objective: _Objective, s: Settings, n: int, report: Callable
) -> tuple[Tensor, Tensor | None]:
    """`n` loss evaluations at one scale. Returns the best iterate (the last with an average) and the
    running average."""
    if n == 0:
        return x, avg
    x = x.detach().clone().requires_grad_(True)
    if s.optimizer is Optimizer.LBFGS:
        opt = torch.optim.LBFGS(
            [x], lr=1, max_iter=n, max_eval=n, history_size=50, tolerance_grad=-1, tolerance_change=-1
        )
    else:
        opt = torch.optim.Adam([x], lr=s.lr, betas=(0.9, 0.99))
    # L-BFGS evaluates every iterate it reaches when n > 1 (the last included); Adam steps after its
    # last evaluation, so its last iterate is the one to keep.
    evals, best, keep_best = 0, Best(), s.optimizer is Optimizer.LBFGS and n > 1

    def closure() -> Tensor:
        nonlocal evals, avg
        opt.zero_grad(set_to_none=True)
        loss, terms = objective(x)
        loss.backward()
        evals += 1
        with torch.no_grad():
            if s.average:
                avg = x.detach().clone() if avg is None else avg.lerp_(x.detach(), 1 - s.average)
            elif keep_best:
                best.offer(loss.item(), [x])
            report(evals, loss.detach(), terms, (avg if s.average else x).detach().clamp(0, 1))
        return loss

    if s.optimizer is Optimizer.LBFGS:
        opt.step(closure)  # one call runs all n evaluations: the tolerances are off
    else:
        for _ in range(n):
            opt.step(closure)
            with torch.no_grad():
                x.clamp_(0, 1)  # Adam steps stay in the valid range; L-BFGS is clamped per scale
    x = best.xs[0] if best.xs is not None else x
    return x.detach().clamp(0, 1), avg


class _Objective:
    """The weighted loss at one scale: content, style and total variation terms."""

    def __init__(
        self,
        content: Tensor | None,
        style_targets: StyleTargets | None,
        s: Settings,
        features: Features,
        scale_size: tuple[int, int],
        final_size: tuple[int, int],
        style_side: int,
    ) -> None:
        self.s, self.features = s, features
        self.content_losses: dict = {}
        self.content_size: tuple[int, int] | None = None
        if content is not None and s.content_weight > 0:
            if s.content_at_native_size:
                ratio = max(scale_size) / max(final_size)
                h, w = content.shape[-2:]
                self.content_size = (max(1, round(h * ratio)), max(1, round(w * ratio)))
                target_image = resize(content, self.content_size)
            else:
                target_image = resize(content, scale_size)
            with torch.no_grad():
                feats = self._features(target_image, s.content_layers)
            self.content_losses = {n: ContentLoss(f) for n, f in feats.items()}
        self.style_losses: dict = {}
        if style_targets is not None and s.style_weight > 0:
            self.style_losses = style_targets.losses(
                self._features, style_side, s.style_layers, s.style_loss, s.precision
            )
        lw = s.style_layer_weights or (1.0,) * len(s.style_layers)
        self.layer_weights = {n: w / sum(lw) for n, w in zip(s.style_layers, lw, strict=True)}
        self.layers = list(self.style_losses)
        self.temporal: tuple[Tensor, Tensor] | None = None  # (target, mask) at this scale
        if self.content_size is None:
            self.layers += [n for n in self.content_losses if n not in self.layers]

    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        return at_precision(self.features, self.s.precision)(x, layers)

    def _tap(self, f: Tensor) -> Tensor:
        return normalize_grad(f) if self.s.normalize_gradients else f

    def __call__(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        s = self.s
        feats = self._features(x, self.layers) if self.layers else {}
        if self.content_size is not None:
            feats |= self._features(resize(x, self.content_size), list(self.content_losses))
        content = sum((loss(self._tap(feats[n])) for n, loss in self.content_losses.items()), x.new_zeros(()))
        style = sum(
            (self.layer_weights[n] * loss(self._tap(feats[n])) for n, loss in self.style_losses.items()),
            x.new_zeros(()),
        )
        content = content / max(1, len(self.content_losses))
        total = s.content_weight * content + s.style_weight * style
        terms = {"content": content.item(), "style": style.item()}
        if s.tv_weight:
            tv = tv_loss(x)
            total = total + s.tv_weight * tv
            terms["tv"] = tv.item()
        if self.temporal is not None:
            temporal = temporal_loss(x, *self.temporal)
            total = total + s.temporal_weight * temporal
            terms["temporal"] = temporal.item()
        return total, terms
