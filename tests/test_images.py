"""Reading every kind of image file as RGB, and refusing broken ones with the file named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from render.images import ImageError, builtin_images, load_image, save_image


def _write(tmp_path, name, img: Image.Image, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return path


def test_builtin_images_ship_with_scikit_image():
    names = builtin_images()
    assert {"astronaut", "coffee", "chelsea", "rocket"} <= set(names)
    x = load_image("builtin:coffee")
    assert x.shape[:2] == (1, 3) and x.dtype == torch.float32


def test_grey_palette_rgba_cmyk_and_16bit_become_rgb(tmp_path):
    grey = _write(tmp_path, "g.png", Image.new("L", (5, 4), 128))
    pal = _write(tmp_path, "p.png", Image.new("RGB", (5, 4), (255, 0, 0)).convert("P"))
    rgba = _write(tmp_path, "a.png", Image.new("RGBA", (5, 4), (0, 0, 255, 0)))
    cmyk = _write(tmp_path, "c.jpg", Image.new("CMYK", (5, 4), (0, 255, 255, 0)))
    deep = _write(tmp_path, "d.png", Image.fromarray(np.full((4, 5), 65535, dtype=np.uint16)))
    for path in (grey, pal, rgba, cmyk, deep):
        x = load_image(path)
        assert x.shape == (1, 3, 4, 5), path
    assert torch.allclose(load_image(grey), torch.full((1, 3, 4, 5), 128 / 255))
    assert torch.allclose(load_image(pal)[0, :, 0, 0], torch.tensor([1.0, 0, 0]))
    assert torch.allclose(load_image(rgba), torch.ones(1, 3, 4, 5))  # transparent -> white
    assert load_image(cmyk)[0, 0].mean() > 0.9 and load_image(cmyk)[0, 1].mean() < 0.1  # red
    assert torch.allclose(load_image(deep), torch.ones(1, 3, 4, 5))


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (6, 3), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    path = _write(tmp_path, "r.jpg", img, exif=exif)
    assert load_image(path).shape == (1, 3, 6, 3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_text("hello, not an image"), "not an image file"),
    ],
)
def test_broken_files_are_named(tmp_path, make, message):
    path = tmp_path / "broken.png"
    make(path)
    with pytest.raises(ImageError, match=message) as e:
        load_image(path)
    assert str(path) in str(e.value)


def test_truncated_file_is_named(tmp_path):
    path = _write(
        tmp_path, "t.png", Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    )
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ImageError, match="t.png: cannot read image"):
        load_image(path)


def test_pixel_limit(tmp_path):
    path = _write(tmp_path, "big.png", Image.new("RGB", (50, 50)))
    with pytest.raises(ImageError, match="over the limit"):
        load_image(path, max_pixels=2000)


def test_unknown_builtin_lists_the_known_ones():
    with pytest.raises(ImageError, match="astronaut"):
        load_image("builtin:nonesuch")


def test_save_round_trips_and_is_atomic(tmp_path):
    x = torch.rand(1, 3, 8, 10, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "o.png"
    save_image(x, path)
    assert (load_image(path) - x).abs().max() <= 0.5 / 255 + 1e-6
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]
    with pytest.raises(ImageError, match="unknown image format"):
        save_image(x, tmp_path / "o.xyz")
