"""L-BFGS over parameters held by several processes, with one collective an iteration for its algebra.

torch.optim.LBFGS builds each direction from dot products of whole vectors. When the parameters
are a picture's tiles spread over processes, every such dot is a sum over the processes, and done
one at a time that is 2·history collectives an iteration. Here the two-loop recursion runs on the
matrix of dot products of the basis vectors (the stored steps s, gradient changes y and the
current gradient), as in vector-free L-BFGS (Chen, Wang, Zhou and Gao, NeurIPS 2014): each
iteration computes this process's dots of the new vectors with the basis, sums them over the
processes in one reduction, and the recursion is then the same scalar algebra in every process.

Where processes hold copies of some coordinates (the overlaps of tiles), `weights` counts each
coordinate once in every dot product: 1 where this copy is the one counted, 0 elsewhere.

Alone (`reduce` the identity) it takes the steps torch.optim.LBFGS takes with lr=1, no line
search and the tolerances off, which is how `stylize` runs it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Reduce = Callable[[Tensor], Tensor]  # a 1-D tensor summed over the processes (the same in each)


def alone(t: Tensor) -> Tensor:
    """The reduction of a single process."""
    return t


class _Basis:
    """Local parts of vectors whose global dot products are known: B[i, j] = Σ_processes v_i·v_j."""

    def __init__(self, reduce: Reduce, weights: Tensor | None) -> None:
        self.reduce, self.weights = reduce, weights
        self.vectors: list[Tensor] = []
        self.dots = torch.zeros(0, 0, dtype=torch.float64)

    def add(self, new: list[Tensor], extra: Tensor | None = None) -> Tensor | None:
        """Append `new`, learning their dots with every vector in one reduction (with `extra` summed
        alongside it, returned summed)."""
        every = self.vectors + new
        counted = new if self.weights is None else [a * self.weights for a in new]
        local = [a.dot(b) for a in counted for b in every]  # row k: new[k] against every vector
        packed = torch.stack(local).double().cpu()
        if extra is not None:
            packed = torch.cat([packed, extra.double().cpu().reshape(-1)])
        summed = self.reduce(packed)
        m, k = len(self.vectors), len(new)
        rows = summed[: k * (m + k)].reshape(k, m + k)
        dots = torch.zeros(m + k, m + k, dtype=torch.float64)
        dots[:m, :m] = self.dots
        dots[m:, :] = rows
        dots[:, m:] = rows.T
        self.vectors, self.dots = every, dots
        return summed[k * (m + k) :] if extra is not None else None

    def index(self, v: Tensor) -> int:
        return next(i for i, u in enumerate(self.vectors) if u is v)

    def drop(self, v: Tensor) -> None:
        i = self.index(v)
        keep = [j for j in range(len(self.vectors)) if j != i]
        self.vectors.pop(i)
        self.dots = self.dots[keep][:, keep]

    def combine(self, coefficients: Tensor) -> Tensor:
        """Σ c_i v_i, this process's part."""
        out = torch.zeros_like(self.vectors[0])
        for c, v in zip(coefficients.tolist(), self.vectors, strict=True):
            if c:
                out.add_(v, alpha=c)
        return out


def lbfgs(
    params: list[Tensor],
    closure: Callable[[], float],
    evaluations: int,
    reduce: Reduce = alone,
    history: int = 50,
    weights: Tensor | None = None,
) -> int:
    """Minimise with `evaluations` calls of `closure`, which sets each parameter's .grad to the global
    gradient at this process's coordinates and returns the global loss. Steps `params` in place;
    returns the evaluations made (fewer only where the direction stops descending)."""
    if evaluations <= 0:
        return 0

    def gradient() -> Tensor:
        return torch.cat([p.grad.reshape(-1) for p in params])

    def move(direction: Tensor, t: float) -> None:
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                p.add_(direction[offset : offset + n].view_as(p), alpha=t)
                offset += n

    closure()
    basis = _Basis(reduce, weights)
    g = gradient()
    l1 = float(
        basis.add([g], (g.abs() if weights is None else g.abs() * weights).sum().reshape(1))[0]
    )  # the first step's length needs Σ|g|
    pairs: list[tuple[Tensor, Tensor, float]] = []  # (s, y, 1 / y·s), oldest first
    h_diag, evals = 1.0, 1
    for iteration in range(1, evaluations + 1):
        if iteration == 1:
            coefficients = torch.zeros(1, dtype=torch.float64)
            coefficients[0] = -1.0  # d = -g
            t = min(1.0, 1.0 / l1) if l1 > 0 else 1.0
        else:
            coefficients = _two_loop(basis, pairs, g, h_diag)
            t = 1.0
        direction = basis.combine(coefficients)
        gtd = float(basis.dots[basis.index(g)] @ coefficients)
        if gtd > 1:  # torch's `gtd > -tolerance_change` with tolerance_change = -1
            break
        move(direction, t)
        if iteration == evaluations:  # (only when evaluations == 1: torch's max_iter)
            break
        closure()
        evals += 1
        if evals >= evaluations:  # torch's max_eval: the last step taken is the last one evaluated
            break
        previous, g = g, gradient()
        s, y = direction.mul_(t), g - previous
        basis.add([s, y, g])
        basis.drop(previous)
        ys = float(basis.dots[basis.index(y), basis.index(s)])
        if ys > 1e-10:
            h_diag = ys / float(basis.dots[basis.index(y), basis.index(y)])
            if len(pairs) == history:
                old_s, old_y, _ = pairs.pop(0)
                basis.drop(old_s)
                basis.drop(old_y)
            pairs.append((s, y, 1.0 / ys))
        else:
            basis.drop(s)
            basis.drop(y)
    return evals


def _two_loop(basis: _Basis, pairs: list[tuple[Tensor, Tensor, float]], g: Tensor, h_diag: float) -> Tensor:
    """The two-loop recursion for the direction -H·g, as coefficients over the basis vectors."""
    dots = basis.dots
    c = torch.zeros(len(basis.vectors), dtype=torch.float64)
    c[basis.index(g)] = -1.0
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * float(dots[basis.index(s)] @ c)
        c[basis.index(y)] -= a
        alphas.append(a)
    c *= h_diag
    for (s, y, rho), a in zip(pairs, reversed(alphas), strict=True):
        b = rho * float(dots[basis.index(y)] @ c)
        c[basis.index(s)] += a - b
    return c
