"""`score`: how close an image is to a content image and to a style, on VGG-19 statistics."""

from __future__ import annotations

import torch
from torch import Tensor

from .losses import gram
from .stylize import STYLE_LAYERS
from .targets import Features, resize, resize_long_side

CONTENT_LAYER = "relu4_2"


@torch.no_grad()
def score(
    output: Tensor, content: Tensor | None, style: Tensor | None, features: Features, long_side: int = 512
) -> dict[str, float]:
    """Relative style and content errors of `output` (each (1, 3, H, W) in [0, 1]).

    style = mean over relu1_1..relu5_1 of ‖G(out) − G(style)‖² / ‖G(style)‖², G = F·Fᵀ/(C·H·W);
    content = ‖F(out) − F(content)‖² / ‖F(content)‖² at relu4_2.
    The output is resized to `long_side`, the content to the output's size and
    the style to the same long side.
    """
    output = resize_long_side(output, long_side)
    result: dict[str, float] = {}
    feats = features(output, [*STYLE_LAYERS, CONTENT_LAYER])
    if style is not None:
        targets = features(resize_long_side(style, long_side), STYLE_LAYERS)
        errors = []
        for layer in STYLE_LAYERS:
            g, t = gram(feats[layer]), gram(targets[layer])
            errors.append(float((g - t).pow(2).sum() / t.pow(2).sum()))
        result["style"] = sum(errors) / len(errors)
    if content is not None:
        target = features(resize(content, tuple(output.shape[-2:])), [CONTENT_LAYER])[CONTENT_LAYER]
        result["content"] = float((feats[CONTENT_LAYER] - target).pow(2).sum() / target.pow(2).sum())
    return result
