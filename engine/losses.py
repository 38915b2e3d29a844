"""Loss terms. Each is a small module holding its target; the total is a weighted sum.

Content and Gram losses are normalised by the target's energy, so their
values read as relative errors and weights stay meaningful across layers,
image sizes and styles (the same measure `score` reports).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def gram(f: Tensor) -> Tensor:
    """Gram matrix F·Fᵀ/(C·H·W) of a (1, C, H, W) activation -> (C, C)."""
    _, c, h, w = f.shape
    f = f.reshape(c, h * w)
    return f @ f.T / (c * h * w)


def mean_cov(f: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean (C,) and covariance (C, C) of a (1, C, H, W) activation."""
    _, c, h, w = f.shape
    f = f.reshape(c, h * w)
    mean = f.mean(dim=1)
    centred = f - mean[:, None]
    return mean, centred @ centred.T / (h * w)


class _Sqrtm(torch.autograd.Function):
    """Square root of a symmetric positive semi-definite matrix, by eigendecomposition.

    The backward pass solves the Sylvester equation X·S + S·X = G in the
    eigenbasis, dividing by (√λi + √λj). Autograd through `eigh` would
    divide by (λi − λj) instead, which is infinite for the repeated
    eigenvalues that covariance matrices of ReLU features are full of.
    """

    @staticmethod
    def forward(ctx, m: Tensor) -> Tensor:  # noqa: ANN001
        vals, vecs = torch.linalg.eigh((m + m.T) / 2)
        roots = vals.clamp_min(0).sqrt()
        ctx.save_for_backward(vecs, roots)
        return vecs @ torch.diag(roots) @ vecs.T

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        vecs, roots = ctx.saved_tensors
        g = vecs.T @ grad @ vecs
        g = g / (roots[:, None] + roots[None, :]).clamp_min(1e-8)
        return vecs @ g @ vecs.T


def _sqrtm(m: Tensor) -> Tensor:
    return _Sqrtm.apply(m)


class _NormalizeGrad(torch.autograd.Function):
    """Identity forward; backward scales the gradient to unit mean magnitude.

    jcjohnson/neural-style's normalize_gradients: every layer pulls equally hard
    whatever the scale of its activations.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: ANN001
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        return grad / (grad.abs().mean() + 1e-8)


def normalize_grad(x: Tensor) -> Tensor:
    return _NormalizeGrad.apply(x)


class ContentLoss(nn.Module):
    """‖F − F_target‖² / ‖F_target‖² at one layer."""

    def __init__(self, target: Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())
        self.norm = float(target.pow(2).sum().clamp_min(1e-8))

    def forward(self, f: Tensor) -> Tensor:
        return (f - self.target).pow(2).sum() / self.norm


class _GramError(torch.autograd.Function):
    """‖F·Fᵀ/n − T‖² with a hand-written backward: one matrix product instead of two.

    Autograd through `f @ f.T` would multiply the gradient by F once per
    operand; since the error D = G − T is symmetric, dL/dF = 4·D·F/n in one
    go. The Gram products are the engine's main cost beyond the network.
    """

    @staticmethod
    def forward(ctx, f: Tensor, target: Tensor) -> Tensor:  # noqa: ANN001
        n = f.shape[1] * f.shape[0]  # f is (C, H·W): n = C·H·W
        diff = torch.addmm(target, f, f.T, beta=-1, alpha=1 / n)  # G − T, (C, C)
        ctx.save_for_backward(f, diff)
        ctx.n = n
        return diff.pow(2).sum()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ANN001
        f, diff = ctx.saved_tensors
        return (diff @ f).mul_(grad * 4 / ctx.n), None


class GramLoss(nn.Module):
    """‖G − G_target‖² / ‖G_target‖², with G the normalised Gram matrix."""

    def __init__(self, target: Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())
        self.norm = float(target.pow(2).sum().clamp_min(1e-12))

    def forward(self, f: Tensor) -> Tensor:
        c = f.shape[1]
        return _GramError.apply(f.reshape(c, -1), self.target) / self.norm

    def of_moments(self, s1: Tensor, s2: Tensor, n: int) -> Tensor:
        """The loss from the sums Σf (C,) and Σf·fᵀ (C, C) over n feature vectors: a picture held
        in parts (`engine.joint`)."""
        return (s2 / (s2.shape[0] * n) - self.target).pow(2).sum() / self.norm


class WassersteinLoss(nn.Module):
    """Squared Wasserstein-2 distance between Gaussians fitted to the activations.

    W2² = ‖μ − μt‖² + tr(Σ) + tr(Σt) − 2·tr((Σt^½ Σ Σt^½)^½), divided by the
    target's second moment so it is a relative error like the Gram loss.
    """

    def __init__(self, target_mean: Tensor, target_cov: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", target_mean.detach())
        self.register_buffer("cov", target_cov.detach())
        self.register_buffer("cov_sqrt", _sqrtm(target_cov.detach()))
        self.norm = float((target_mean.pow(2).sum() + target_cov.trace()).clamp_min(1e-12))

    def forward(self, f: Tensor) -> Tensor:
        return self.of_stats(*mean_cov(f))

    def of_moments(self, s1: Tensor, s2: Tensor, n: int) -> Tensor:
        """The loss from the sums Σf (C,) and Σf·fᵀ (C, C) over n feature vectors."""
        mean = s1 / n
        return self.of_stats(mean, s2 / n - torch.outer(mean, mean))

    def of_stats(self, mean: Tensor, cov: Tensor) -> Tensor:
        cross = _sqrtm(self.cov_sqrt @ cov @ self.cov_sqrt)
        w2 = (mean - self.mean).pow(2).sum() + cov.trace() + self.cov.trace() - 2 * cross.trace()
        return w2.clamp_min(0) / self.norm


def tv_loss(x: Tensor) -> Tensor:
    """Mean squared difference between neighbouring pixels of a (1, 3, H, W) image."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean()
    return dx + dy


TEMPORAL_EPS = 1e-3  # below a quarter of a uint8 step: the loss is |x - target| for any visible change


def temporal_loss(x: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute difference to `target` over the pixels `mask` (1, 1, H, W) marks as carried over
    (Ruder et al.'s short-term temporal loss, with a smoothed L1 instead of their L2), in pixel units.

    L1, not L2: the warping error a viewer sees is a mean absolute difference, and an L1 penalty
    lets the few pixels the style needs change while holding the rest exactly, where L2 spreads
    small changes over every pixel."""
    diff = (x - target).pow(2).add(TEMPORAL_EPS**2).sqrt() - TEMPORAL_EPS
    return (mask * diff).sum() / (3 * mask.sum()).clamp_min(1.0)
