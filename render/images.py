"""Reading and writing images: files and built-in samples to (1, 3, H, W) tensors and back.

This is the one place where pixels become uint8.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .atomic import atomic_path
from .folder import check_output_file

BUILTIN_PREFIX = "builtin:"
MAX_PIXELS = 16384 * 16384  # refuse anything larger than this before decoding it
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


class ImageError(ValueError):
    """An image could not be read or written; the message names the file."""


def _skimage_data() -> Path | None:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def builtin_images() -> dict[str, Path]:
    """Sample images that ship inside scikit-image's wheel, by name (no download)."""
    folder = _skimage_data()
    if folder is None or not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in (".png", ".jpg")}


def resolve(source: str | Path, base: Path | None = None) -> Path:
    """A path for `source`: `builtin:NAME` or a path (relative to `base` when given)."""
    text = str(source)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX) :]
        found = builtin_images()
        if name not in found:
            known = ", ".join(found) or "none (is scikit-image installed?)"
            raise ImageError(f"{text}: no such built-in image; built-in images: {known}")
        return found[name]
    path = Path(text).expanduser()
    return base / path if base is not None and not path.is_absolute() else path


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 (H, W, 3) RGB in [0, 1]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greyscale: keep the precision instead of clipping to 8 bits.
        a = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / (1.0 if img.mode == "F" and a.max() <= 1 else peak), 0, 1)
        return np.repeat(a[..., None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        # Transparent pixels have undefined colour: composite over white.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def load_image(source: str | Path, base: Path | None = None, max_pixels: int = MAX_PIXELS) -> Tensor:
    """Read an image file (or `builtin:NAME`) as (1, 3, H, W) float32 RGB in [0, 1].

    Greyscale, palette, RGBA, CMYK and 16-bit images are converted; EXIF
    orientation is applied. Errors name the file.
    """
    path = resolve(source, base)
    if not path.is_file():
        raise ImageError(f"{source}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{source}: file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageError(f"{source}: {w}x{h} is over the limit of {max_pixels} pixels")
                img.load()
                img = ImageOps.exif_transpose(img)
                rgb = _to_rgb(img)
    except UnidentifiedImageError:
        raise ImageError(f"{source}: not an image file") from None
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{source}: cannot read image ({e})") from None
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageError(f"{source}: image has no pixels")
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].contiguous()


_BAND = 256  # rows converted at once by to_uint8


def to_uint8(x: Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> (H, W, 3) uint8, rounded."""
    x = x.detach()[0]
    c, h, w = x.shape
    out = torch.empty(h, w, c, dtype=torch.uint8)
    for y in range(0, h, _BAND):  # a band at a time: an 8K frame is 400 MB a float copy
        band = x[:, y : y + _BAND].float().clamp(0, 1).mul_(255).round_().byte()
        out[y : y + _BAND] = band.permute(1, 2, 0).cpu()
    return out.numpy()


def from_uint8(a: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    h, w, c = a.shape
    out = np.empty((1, c, h, w), np.float32)  # the one float copy: an 8K frame is 400 MB a copy
    np.divide(a.transpose(2, 0, 1)[None], 255, out=out, dtype=np.float32)
    return torch.from_numpy(out)


def quantised(x: Tensor) -> Tensor:
    """(1, C, H, W) rounded to the uint8 grid and clamped to [0, 1], as a canvas that went through uint8
    (a frame on disk, Ray's object store, a checkpoint): the same pixels either way."""
    return from_uint8(to_uint8(x))


def check_output_path(path: Path) -> None:
    """Raise ImageError unless `path` names an image file of a known format; OSError unless its folder
    takes new files."""
    check_output_file(path, SAVE_FORMATS, "image", ImageError)


def save_image(x: Tensor, path: Path) -> None:
    """Write a (1, 3, H, W) image atomically; the format follows the suffix."""
    path = Path(path)
    check_output_path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(x)).save(tmp, format=SAVE_FORMATS[path.suffix.lower()])
