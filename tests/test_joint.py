"""Tiles that optimise one picture: the same steps as the whole picture, alone or across processes."""

from __future__ import annotations

import threading

import pytest
import torch

from engine.joint import Part, shared_cells, stylize_parts
from engine.lbfgs import lbfgs
from engine.stylize import Settings, stylize
from engine.targets import StyleBank, StyleTargets
from render.tiles import cores, grid
from tests.conftest import smooth_image

H, W = 96, 128


def _lbfgs_against_torch(evaluations: int, history: int) -> float:
    """The largest difference between torch's L-BFGS on one tensor and ours on the same split in two."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(30, 30, generator=g)
    a = a @ a.T / 30 + 0.1 * torch.eye(30)
    b, x0 = torch.randn(30, generator=g), torch.randn(30, generator=g)

    def f(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x @ a @ x - b @ x + 0.1 * x.pow(4).sum()

    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=evaluations, max_eval=evaluations, history_size=history,
                            tolerance_grad=-1, tolerance_change=-1)  # fmt: skip

    def torch_closure() -> torch.Tensor:
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    opt.step(torch_closure)
    p, q = x0[:12].clone().requires_grad_(True), x0[12:].clone().requires_grad_(True)

    def closure() -> float:
        p.grad = q.grad = None
        loss = f(torch.cat([p, q]))
        loss.backward()
        return loss.item()

    assert lbfgs([p, q], closure, evaluations, history=history) == evaluations
    return float((torch.cat([p, q]) - x).detach().abs().max())


def test_lbfgs_alone_takes_torchs_steps_over_several_tensors():
    for evaluations, history in ((1, 50), (4, 50), (12, 3)):  # history 3: old pairs are dropped
        assert _lbfgs_against_torch(evaluations, history) < 1e-5


def _tiles(margin: int) -> list[tuple[int, int, int, int, int, int]]:
    """2x2 tiles of the picture: (tile y0, x0, y1, x1, core y split, core x split)."""
    out = []
    for cy0, cy1 in ((0, 48), (48, 96)):
        for cx0, cx1 in ((0, 64), (64, 128)):
            ty0, ty1, tx0, tx1 = (
                max(0, cy0 - margin),
                min(H, cy1 + margin),
                max(0, cx0 - margin),
                min(W, cx1 + margin),
            )
            out.append((ty0, tx0, ty1, tx1, (cy0 - ty0, cx0 - tx0, cy1 - ty0, cx1 - tx0)))
    return out


def _parts(tiles: list, init: torch.Tensor, content: torch.Tensor) -> list[Part]:
    return [
        Part(init[..., y0:y1, x0:x1], (y0, x0), core, content[..., y0:y1, x0:x1])
        for y0, x0, y1, x1, core in tiles
    ]


def _picture(tiles: list, outs: list[torch.Tensor]) -> torch.Tensor:
    pic = torch.zeros(1, 3, H, W)
    for (y0, x0, _, _, (cy0, cx0, cy1, cx1)), out in zip(tiles, outs, strict=True):
        pic[..., y0 + cy0 : y0 + cy1, x0 + cx0 : x0 + cx1] = out[..., cy0:cy1, cx0:cx1]
    return pic


class ThreadReduce:
    """A sum over `ranks` threads, in rank order: what gloo's all-reduce gives processes."""

    def __init__(self, ranks: int) -> None:
        self.barrier = threading.Barrier(ranks)
        self.slots: list[torch.Tensor | None] = [None] * ranks

    def __call__(self, rank: int):
        def reduce(t: torch.Tensor) -> torch.Tensor:
            self.slots[rank] = t.clone()
            self.barrier.wait()
            total = sum(self.slots[1:], self.slots[0].clone())
            self.barrier.wait()  # everyone has read before anyone writes again
            return total

        return reduce


@pytest.mark.parametrize("loss", ["gram", "w2"])
def test_tiles_with_wide_margins_take_the_whole_pictures_steps_alone_and_across_processes(tiny, loss):
    """The tiny network sees ~54 px around a pixel: with 64-px margins every core feature is the whole
    picture's, so the tiles, in one process or shared by two, must reach the whole picture's result.
    With 16-px margins the tiles see less, and the same run moves measurably away."""
    content, style, init = smooth_image(1, (H, W)), smooth_image(2, (64, 64)), smooth_image(3, (H, W))
    targets = StyleTargets(StyleBank([style]))
    settings = Settings(iterations=6, min_size=W, tv_weight=0.5, style_loss=loss, content_weight=1.0)
    whole = stylize(content, targets, settings, features=tiny, init=init)
    change = (whole - init).abs().mean()

    def run(margin: int, ranks: int) -> torch.Tensor:
        tiles = _tiles(margin)
        cells = shared_cells([t[:4] for t in tiles])
        parts = _parts(tiles, init, content)
        reduce = ThreadReduce(ranks)
        outs: list = [None] * len(parts)

        def rank(r: int) -> None:
            mine = list(range(r, len(parts), ranks))
            done = stylize_parts([parts[i] for i in mine], targets, settings, features=tiny, picture=(H, W),
                                 cells=cells, reduce=reduce(r))  # fmt: skip
            for i, out in zip(mine, done, strict=True):
                outs[i] = out

        threads = [threading.Thread(target=rank, args=(r,)) for r in range(ranks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Where tiles overlap, their copies of a pixel agree exactly.
        (ay0, ax0, *_), (by0, bx0, *_) = tiles[0], tiles[3]
        a = outs[0][..., 48 - margin - ay0 : 48 + margin - ay0, 64 - margin - ax0 : 64 + margin - ax0]
        b = outs[3][..., 48 - margin - by0 : 48 + margin - by0, 64 - margin - bx0 : 64 + margin - bx0]
        assert torch.equal(a, b)
        return _picture(tiles, outs)

    tolerance = 1e-3 if loss == "gram" else 2e-2  # W2's covariance from summed moments, in float64
    for ranks in (1, 2):
        assert (run(64, ranks) - whole).abs().mean() < tolerance * change
    assert (run(16, 1) - whole).abs().mean() > 0.05 * change


def test_cores_partition_the_frame_on_the_feature_grid():
    for offset in ((0, 0), (37, 100), (127, 127), (5, 250)):
        tiles = grid(256, 424, 160, 32, offset)
        owner = torch.zeros(256, 424, dtype=torch.int)
        for t, c in zip(tiles, cores(tiles), strict=True):
            assert t.y0 % 16 == 0 and t.x0 % 16 == 0 and max(t.size) <= 160
            owner[t.y0 + c.y0 : t.y0 + c.y1, t.x0 + c.x0 : t.x0 + c.x1] += 1
            inner = [c.y0, c.x0] + [v for v, edge in ((c.y1, t.size[0]), (c.x1, t.size[1])) if v < edge]
            assert all(v % 16 == 0 for v in inner)  # cores meet on VGG's coarsest stride
        assert bool((owner == 1).all())


def _member(group, rank: int, queue) -> None:  # noqa: ANN001
    from cluster.collective import Member

    g = torch.Generator().manual_seed(rank)
    parts = [torch.rand(1000, generator=g), torch.rand(7, generator=g, dtype=torch.float64)]
    reduce = Member().reduce(group, rank, 2)
    # Plain lists: a tensor in a queue is shared memory that is gone once this process exits.
    queue.put((rank, [p.tolist() for p in parts], [reduce(p).tolist() for p in parts]))


def test_the_workers_reduction_is_the_sum_of_their_parts():
    """The collective the workers of a round meet in (gloo, through the driver's rendezvous) gives every
    member the same sum: the single-process sum, to float rounding."""
    import multiprocessing

    from cluster.collective import Rendezvous

    rendezvous = Rendezvous()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    members = [context.Process(target=_member, args=(rendezvous.group(), r, queue)) for r in range(2)]
    for m in members:
        m.start()
    results = {}
    for _ in members:
        rank, parts, sums = queue.get(timeout=120)
        results[rank] = ([torch.tensor(p, dtype=torch.float64) for p in parts],
                         [torch.tensor(s, dtype=torch.float64) for s in sums])  # fmt: skip
    for m in members:
        m.join(timeout=30)
    for i in range(2):
        expected = results[0][0][i] + results[1][0][i]
        assert torch.equal(results[0][1][i], results[1][1][i])  # every member holds the same sum
        assert torch.allclose(results[0][1][i], expected, rtol=1e-6, atol=0)
