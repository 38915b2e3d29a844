"""A picture held as tiles, optimised as one: every tile's gradient is that of the whole picture's loss.

A tile optimised by itself matches the style's statistics on its own, so each tile carries the
style's whole palette and a tiled movie drifts away from the whole one (BENCHMARKS.md, "Tiles
that optimise one objective"). Here the tiles of a picture, held by one process or spread over
several, optimise one objective. Each tile counts the features of its core (the cores partition
the picture; the margin around a core gives those features their context); the sums Σf and Σf·fᵀ
of every style layer are added over all tiles and processes, and the whole picture's loss is
formed from them. That loss's gradient with respect to a tile's features is linear in the
tile's own sums, with coefficients every process then knows, so each tile backpropagates a
surrogate whose gradient is exactly the whole loss's: the data-parallel pattern, with one
reduction between the forward and the backward pass. L-BFGS's dot products are summed the same
way (`engine.lbfgs`), so N processes take the steps one process would.

Tiles overlap, so a pixel near a core's edge is held by two or four tiles: the copy in the tile
whose core holds it, and copies in the neighbours' margins, where it feeds their core features.
Its gradient is the sum of what every copy receives; the processes add up the gradients of these
shared pixels every evaluation (a second reduction), so all copies take the same step and stay
equal, and L-BFGS counts each pixel once, at its core copy. The picture the tiles hold is then one
picture throughout, optimised as one would optimise it whole; what remains of the tiling is that a
core feature near a tile's edge sees the margin, not the whole picture.

Content, total-variation and temporal terms are sums over pixels: each tile adds its core's
share, over the whole picture's normaliser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor

from .color import preserve_colors
from .lbfgs import Reduce, alone, lbfgs
from .losses import TEMPORAL_EPS
from .stylize import Best, Callback, Optimizer, Progress, Settings, at_precision
from .targets import Features, StyleTargets

# A process keeps the autograd graphs of all its tiles through one evaluation while they total at
# most this many pixels (VGG-19's activations: ~1.5 GB a megapixel); beyond it, each evaluation
# runs the network twice, a pass for the sums and one tile at a time for the gradients, so memory
# stays that of one tile.
HOLD_PIXELS = 1 << 20

Rect = tuple[int, int, int, int]  # (y0, x0, y1, x1)


@dataclass
class Part:
    """One tile of the picture, as the process that optimises it holds it."""

    init: Tensor  # (1, 3, h, w) start pixels
    origin: tuple[int, int]  # (y, x) of the tile in the picture
    core: Rect  # within the tile: the pixels it answers for; the tiles' cores partition the picture
    content: Tensor | None = None  # (1, 3, h, w) content target
    temporal: tuple[Tensor, Tensor] | None = None  # (target (1, 3, h, w), mask (1, 1, h, w))


def _core(f: Tensor, core: Rect, size: tuple[int, int]) -> Tensor:
    """The part of a (1, C, h', w') map, computed from a tile of `size`, that lies over the core. Cores
    that meet on multiples of the map's stride split its cells exactly; a core reaching the tile's
    edge keeps the edge's cells."""
    (h, w), (fh, fw) = size, f.shape[-2:]
    y0, x0, y1, x1 = core
    sy, sx = 2 ** round(math.log2(h / fh)), 2 ** round(math.log2(w / fw))  # the stride: 1, 2, 4, 8 or 16
    ye, xe = fh if y1 == h else y1 // sy, fw if x1 == w else x1 // sx
    return f[..., y0 // sy : ye, x0 // sx : xe]


def shared_cells(tiles: Sequence[Rect]) -> list[Rect]:
    """The rectangles of the picture held by more than one of `tiles` (cut along every tile edge, so
    each lies wholly inside or outside each tile), in a fixed order every process agrees on."""
    ys = sorted({t[0] for t in tiles} | {t[2] for t in tiles})
    xs = sorted({t[1] for t in tiles} | {t[3] for t in tiles})
    cells = []
    for y0, y1 in pairwise(ys):
        for x0, x1 in pairwise(xs):
            if sum(t[0] <= y0 and y1 <= t[2] and t[1] <= x0 and x1 <= t[3] for t in tiles) > 1:
                cells.append((y0, x0, y1, x1))
    return cells


class _Shared:
    """Sums the gradients of pixels held by several tiles (in this process and others), so every copy
    of a pixel gets the whole gradient."""

    def __init__(self, parts: Sequence[Part], cells: Sequence[Rect], reduce: Reduce) -> None:
        self.reduce, self.size = reduce, 0
        self.links: list[list[tuple[int, Rect]]] = [[] for _ in parts]  # per part: (offset, cell in tile)
        for y0, x0, y1, x1 in cells:
            for links, p in zip(self.links, parts, strict=True):
                (oy, ox), (h, w) = p.origin, p.init.shape[-2:]
                if oy <= y0 and y1 <= oy + h and ox <= x0 and x1 <= ox + w:
                    links.append((self.size, (y0 - oy, x0 - ox, y1 - oy, x1 - ox)))
            self.size += 3 * (y1 - y0) * (x1 - x0)

    def __call__(self, xs: list[Tensor]) -> None:
        if not self.size:
            return
        flat = torch.zeros(self.size)
        for x, links in zip(xs, self.links, strict=True):
            for offset, (y0, x0, y1, x1) in links:
                g = x.grad[..., y0:y1, x0:x1]
                flat[offset : offset + g.numel()] += g.reshape(-1).float().cpu()
        flat = self.reduce(flat)
        for x, links in zip(xs, self.links, strict=True):
            for offset, (y0, x0, y1, x1) in links:
                g = x.grad[..., y0:y1, x0:x1]
                g.copy_(flat[offset : offset + g.numel()].view_as(g))


def _channels(loss: torch.nn.Module) -> int:
    return next(iter(loss.buffers())).shape[0]  # a Gram target (C, C) or a mean (C,)


class _Pull(torch.autograd.Function):
    """⟨D, F·Fᵀ⟩ in the backward pass only: dF = (D + Dᵀ)·F. D is dL/d(Σf·fᵀ) of the whole picture,
    so this tile's features receive the whole loss's gradient. The forward value is never used."""

    @staticmethod
    def forward(ctx, f: Tensor, d: Tensor) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(f, d)
        return f.new_zeros(())

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ANN001
        f, d = ctx.saved_tensors
        return ((d + d.T) @ f).mul_(grad), None


class _Objective:
    """The whole picture's loss, evaluated over this process's parts and summed over processes."""

    def __init__(
        self,
        parts: Sequence[Part],
        style_targets: StyleTargets | None,
        s: Settings,
        features: Features,
        picture: tuple[int, int],
        reduce: Reduce,
        cells: Sequence[Rect] = (),
    ) -> None:
        if s.content_at_native_size or s.normalize_gradients:
            raise ValueError(
                "tiles optimise one picture without content_at_native_size or normalize_gradients"
            )
        self.parts, self.s, self.picture, self.reduce = parts, s, picture, reduce
        self.features = at_precision(features, s.precision)
        self.style: dict = {}
        if style_targets is not None and s.style_weight > 0:
            side = round(max(picture) * s.style_scale)
            losses = style_targets.losses(self.features, side, s.style_layers, s.style_loss, s.precision)
            # The picture's loss is formed in float64: Σf·fᵀ/n − μμᵀ cancels, and it is only (C, C).
            self.style = {n: loss.double() for n, loss in losses.items()}
        lw = s.style_layer_weights or (1.0,) * len(s.style_layers)
        self.layer_weights = {n: w / sum(lw) for n, w in zip(s.style_layers, lw, strict=True)}
        self.content_layers = list(s.content_layers) if s.content_weight > 0 else []
        if any(p.content is None for p in parts):
            self.content_layers = []
        self.layers = list(dict.fromkeys([*self.style, *self.content_layers]))
        self.targets: list[dict[str, Tensor]] = []  # per part: content features over the core
        with torch.no_grad():
            for p in parts:
                feats = self.features(p.content, self.content_layers) if self.content_layers else {}
                self.targets.append({n: _core(f, p.core, p.init.shape[-2:]) for n, f in feats.items()})
        local = [sum(float(t[n].pow(2).sum()) for t in self.targets) for n in self.content_layers]
        local.append(sum(3 * float(p.temporal[1][..., p.core[0] : p.core[2], p.core[1] : p.core[3]].sum())
                         for p in parts if p.temporal is not None))  # fmt: skip
        normalisers = self.reduce(torch.tensor(local, dtype=torch.float32)).tolist()
        self.content_norms = [max(v, 1e-8) for v in normalisers[:-1]]
        self.temporal_norm = max(normalisers[-1], 1.0)
        self.temporal = s.temporal_weight > 0 and any(p.temporal is not None for p in parts)
        self.shared = _Shared(parts, cells, reduce)

    def _measure(self, part: Part, x: Tensor, targets: dict[str, Tensor]) -> tuple[dict, Tensor]:
        """A part's core features of each style layer (C, n), and its pixel-sum terms
        [content per layer..., tv across, tv down, temporal]."""
        feats = self.features(x, self.layers) if self.layers else {}
        size = x.shape[-2:]
        style = {}
        for n in self.style:
            f = _core(feats[n], part.core, size)
            style[n] = f.reshape(f.shape[1], -1)  # (C, n)
        sums = [(_core(feats[n], part.core, size) - targets[n]).pow(2).sum() for n in self.content_layers]
        y0, x0, y1, x1 = part.core
        h, w = size
        across = x[..., y0:y1, x0 : min(x1 + 1, w)]  # pairs whose left pixel is in the core
        down = x[..., y0 : min(y1 + 1, h), x0:x1]
        sums += [
            (across[..., 1:] - across[..., :-1]).pow(2).sum(),
            (down[..., 1:, :] - down[..., :-1, :]).pow(2).sum(),
        ]
        temporal = x.new_zeros(())
        if self.temporal and part.temporal is not None:
            target, mask = (t[..., y0:y1, x0:x1] for t in part.temporal)
            diff = (x[..., y0:y1, x0:x1] - target).pow(2).add(TEMPORAL_EPS**2).sqrt() - TEMPORAL_EPS
            temporal = (mask * diff).sum()
        return style, torch.stack([*sums, temporal])

    def _pack(self, measured: list[tuple[dict, Tensor]]) -> Tensor:
        """This process's sums, flat: per style layer Σf·fᵀ, Σf and the count; then the pixel sums."""
        pieces = []
        for n, loss in self.style.items():
            fs = [m[0][n].detach().float().cpu() for m in measured]
            c = _channels(loss)
            pieces += [sum((f @ f.T for f in fs), torch.zeros(c, c)).reshape(-1),
                       sum((f.sum(1) for f in fs), torch.zeros(c)),
                       torch.tensor([float(sum(f.shape[1] for f in fs))])]  # fmt: skip
        pieces.append(
            sum((m[1].detach().float().cpu() for m in measured), torch.zeros(len(self.content_layers) + 3))
        )
        return torch.cat([p.float().cpu() for p in pieces])

    def _whole(self, flat: Tensor) -> tuple[Tensor, dict[str, float], dict[str, Tensor], Tensor]:
        """The picture's loss from the summed sums; its gradients with respect to them."""
        s, offset = self.s, 0
        flat = flat.double()  # Σf·fᵀ/n − μμᵀ cancels: the covariance needs the precision
        moments: dict[str, tuple[Tensor, Tensor, int]] = {}
        for n, loss in self.style.items():
            c = _channels(loss)
            s2 = flat[offset : offset + c * c].reshape(c, c).clone().requires_grad_(True)
            s1 = flat[offset + c * c : offset + c * c + c].clone().requires_grad_(True)
            moments[n] = (s1, s2, int(flat[offset + c * c + c]))
            offset += c * c + c + 1
        sums = flat[offset:].clone().requires_grad_(True)
        style = sum((self.layer_weights[n] * loss.of_moments(*moments[n]) for n, loss in self.style.items()),
                    torch.zeros((), dtype=torch.float64))  # fmt: skip
        k = len(self.content_layers)
        content = sum(
            (sums[i] / self.content_norms[i] for i in range(k)), torch.zeros((), dtype=torch.float64)
        )
        content = content / max(1, k)
        h, w = self.picture
        tv = sums[k] / max(1, 3 * h * (w - 1)) + sums[k + 1] / max(1, 3 * (h - 1) * w)
        temporal = sums[k + 2] / self.temporal_norm
        total = s.content_weight * content + s.style_weight * style + s.tv_weight * tv
        terms = {"content": content.item(), "style": style.item()}
        if s.tv_weight:
            terms["tv"] = tv.item()
        if self.temporal:
            total = total + s.temporal_weight * temporal
            terms["temporal"] = temporal.item()
        total.backward()
        pulls = {n: (m[0].grad, m[1].grad) for n, m in moments.items()}
        return total.detach(), terms, pulls, sums.grad

    def __call__(self, xs: list[Tensor]) -> tuple[float, dict[str, float]]:
        """Evaluate at the parts' pixels `xs`, setting each one's .grad; returns the picture's loss."""
        hold = sum(x.shape[-2] * x.shape[-1] for x in xs) <= HOLD_PIXELS
        with torch.set_grad_enabled(hold):
            measured = [self._measure(p, x, t) for p, x, t in zip(self.parts, xs, self.targets, strict=True)]
        total, terms, pulls, weights = self._whole(self.reduce(self._pack(measured)))
        for i, (part, x) in enumerate(zip(self.parts, xs, strict=True)):
            style, sums = measured[i] if hold else self._measure(part, x, self.targets[i])
            surrogate = (sums * weights.to(sums)).sum()
            for n, f in style.items():
                d1, d2 = pulls[n]
                surrogate = surrogate + _Pull.apply(f, d2.to(f))
                if d1 is not None:
                    surrogate = surrogate + (f.sum(1) * d1.to(f)).sum()
            x.grad = None
            surrogate.backward()
        self.shared(xs)
        return float(total), terms


def stylize_parts(
    parts: Sequence[Part],
    style_targets: StyleTargets | None,
    settings: Settings,
    *,
    features: Features,
    picture: tuple[int, int],
    cells: Sequence[Rect] = (),
    reduce: Reduce = alone,
    callback: Callback | None = None,
) -> list[Tensor]:
    """Optimise this process's `parts` of a (H, W) = `picture` so the whole picture (every process's
    parts, joined through `reduce`) meets the objective `stylize` would give it, at one scale for
    settings.iterations evaluations. Every process calls this at once with its own parts and the
    same settings and `cells` (`shared_cells` of every tile). Returns each part's (1, 3, h, w) pixels
    in [0, 1]; where tiles overlap, their pixels agree."""
    objective = _Objective(parts, style_targets, settings, features, picture, reduce, cells)
    xs = [p.init.detach().clone().requires_grad_(True) for p in parts]
    averages: list[Tensor] | None = None
    evals, best = 0, Best()  # the loss is the whole picture's: every process keeps the same iterate
    keep_best = settings.optimizer is Optimizer.LBFGS and settings.iterations > 1

    def closure() -> float:
        nonlocal evals, averages
        loss, terms = objective(xs)
        evals += 1
        if settings.average:
            with torch.no_grad():
                if averages is None:
                    averages = [x.detach().clone() for x in xs]
                else:
                    for a, x in zip(averages, xs, strict=True):
                        a.lerp_(x.detach(), 1 - settings.average)
        elif keep_best:
            best.offer(loss, xs)
        if callback is not None:
            callback(Progress(evals, settings.iterations, 0, picture, loss, terms))
        return loss

    if settings.optimizer is Optimizer.LBFGS:
        counted = []  # each pixel once, at the tile whose core holds it
        for p in parts:
            mask = torch.zeros_like(p.init)
            mask[..., p.core[0] : p.core[2], p.core[1] : p.core[3]] = 1
            counted.append(mask.reshape(-1))
        lbfgs(xs, closure, settings.iterations, reduce, weights=torch.cat(counted))
    else:  # Adam's step is elementwise: with the whole loss's gradient it is already the whole picture's
        opt = torch.optim.Adam(xs, lr=settings.lr, betas=(0.9, 0.99))
        for _ in range(settings.iterations):
            closure()
            opt.step()
            with torch.no_grad():
                for x in xs:
                    x.clamp_(0, 1)
    if best.xs is not None:
        xs = best.xs
    outs = [
        (a if averages is not None else x).detach().clamp(0, 1)
        for a, x in zip(averages or xs, xs, strict=True)
    ]
    if settings.preserve_colors:
        outs = [
            preserve_colors(o, p.content) if p.content is not None else o
            for o, p in zip(outs, parts, strict=True)
        ]
    return outs
