"""`index build`, `add`, `info`, `verify` and `migrate`: build, check and upgrade pose indexes.

Thin: parse, call a library function, print.

Bad input (`DataError`) becomes one line on stderr and exit code 2; `index verify` exits 1 when it finds a problem.

These are this layer's commands only: the `index` group that a user runs names them by import path beside the
commands of the layers above (`ui.index_command`), so nothing here knows those exist (DESIGN.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from model.cli_common import CHECKPOINT_HELP, POSITIVE, device_option, resolve_checkpoint

if TYPE_CHECKING:
    import torch

INDEX_TYPES = click.Choice(["auto", "flat", "hnsw", "ivf", "ivfpq"])


def _echo_summary(summary, verb: str) -> None:
    click.echo(
        f"{verb} {summary.added} frames to {summary.index_dir} in {summary.seconds:.1f} s "
        f"({summary.frames_per_s:.1f} frames/s)"
    )
    if summary.already_indexed:
        click.echo(f"already indexed: {summary.already_indexed} frames")
    click.echo(f"skipped: {len(summary.skipped)}")
    for path, reason in summary.skipped:
        click.echo(f"  {path}: {reason}")


def _require_ray(use_ray: bool, ray_address: str | None) -> None:
    """One line, not a traceback, when --ray is asked of an install without Ray."""
    import importlib.util

    if (use_ray or ray_address is not None) and importlib.util.find_spec("ray") is None:
        raise click.ClickException("--ray needs Ray, which is not installed: pip install 'posedex[ray]'")


def _run_options(command):
    options = [
        click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help=CHECKPOINT_HELP),
        click.option("--batch-size", type=POSITIVE, default=64, show_default=True, help="Frames per encoder pass."),
        click.option(
            "--workers",
            type=click.IntRange(min=0),
            default=2,
            show_default=True,
            help="Frame-reading processes (0 reads in this process).",
        ),
        device_option,
        click.option(
            "--fps",
            type=click.FloatRange(min=0),
            default=1.0,
            show_default=True,
            help="Frames per second sampled from videos; 0 takes every frame.",
        ),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."),
        click.option(
            "--ray",
            "use_ray",
            is_flag=True,
            default=False,
            help="Read and encode on a Ray cluster (GPU encoders where it has GPUs; --workers and --device "
            "are then Ray's to choose); this process still writes the index. Needs posedex[ray].",
        ),
        click.option(
            "--ray-address",
            default=None,
            metavar="ADDRESS",
            help="Join this Ray cluster (auto, or ray://HEAD:10001) instead of starting one here; "
            "implies --ray. The frames must be at the same paths on every node.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Index folder (created if absent).")
@click.option(
    "--index-type",
    type=INDEX_TYPES,
    default="auto",
    show_default=True,
    help="FAISS index, chosen at the first build; auto: flat up to 100k frames, then ivf (IVF-HNSW over SQ8 codes, "
    "re-scored exactly), or ivfpq when that does not fit in memory. `index info` prints its measured recall@10.",
)
@_run_options
def build(
    roots: tuple[Path, ...],
    out: Path,
    index_type: str,
    checkpoint: Path | None,
    batch_size: int,
    workers: int,
    device: torch.device,
    fps: float,
    progress: bool,
    use_ray: bool,
    ray_address: str | None,
) -> None:
    """Encode every frame of the collections ROOT... into a pose index, atomically.

    With several roots, stored paths are prefixed by each root's folder name. Bad frames are skipped and listed.

    Example: index build data/synthvox --checkpoint checkpoints/daegan-small.safetensors --out indexes/synthvox

    On a Ray cluster: index build /shared/voxceleb --out indexes/vox --ray --ray-address auto
    """
    from indexer.build import build_index

    _require_ray(use_ray, ray_address)
    summary = build_index(
        list(roots),
        resolve_checkpoint(checkpoint),
        out,
        batch_size=batch_size,
        workers=workers,
        device=device,
        index_type=index_type,
        fps=fps,
        progress=progress,
        ray=use_ray,
        ray_address=ray_address,
    )
    _echo_summary(summary, "indexed")


@click.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--index", "index_dir", type=click.Path(path_type=Path), required=True, help="Index folder.")
@_run_options
def add(
    roots: tuple[Path, ...],
    index_dir: Path,
    checkpoint: Path | None,
    batch_size: int,
    workers: int,
    device: torch.device,
    fps: float,
    progress: bool,
    use_ray: bool,
    ray_address: str | None,
) -> None:
    """Encode only the frames of ROOT... the index does not hold yet (give the roots as the build got them).

    The checkpoint must be the one the index was built with.

    Example: index add data/synthvox --index indexes/synthvox
    """
    from indexer.build import add_to_index

    _require_ray(use_ray, ray_address)
    summary = add_to_index(
        list(roots),
        index_dir,
        resolve_checkpoint(checkpoint),
        batch_size=batch_size,
        workers=workers,
        device=device,
        fps=fps,
        progress=progress,
        ray=use_ray,
        ray_address=ray_address,
    )
    _echo_summary(summary, "added")


@click.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), required=True, help="Index folder.")
def info(index_dir: Path) -> None:
    """Print what an index holds: counts, dim, index type and its recall@10, checkpoint, size on disk.

    Example: index info --index indexes/synthvox
    """
    from indexer.store import Store

    with Store.open(index_dir, readonly=True) as store:
        facts = store.info()
        manifest = store.manifest()
    click.echo(f"index:      {facts['path']}")
    click.echo(f"frames:     {facts['count']}")
    click.echo(f"identities: {facts['num_identities']}")
    click.echo(f"videos:     {facts['num_videos']}")
    click.echo(f"builds:     {facts['num_builds']}")
    click.echo(f"dim:        {facts['dim']} ({facts['metric']})")
    click.echo(f"index type: {facts['index_type']}")
    click.echo(f"recall@10:  {_recall_line(manifest, facts)}")
    click.echo(f"checkpoint: sha256 {facts['checkpoint_sha256']}")
    click.echo(f"created:    {facts['created']}")
    click.echo(f"size:       {facts['size_bytes'] / 2**20:.2f} MiB ({facts['size_bytes']} bytes)")


def _recall_line(manifest: dict, facts: dict) -> str:
    """The manifest's recall@10 of the live generation, in words (`indexer.faiss_index.measure_recall`)."""
    if manifest.get("generation") != facts["generation"] or "recall_at_10" not in manifest:
        return "not measured (an index built before posedex recorded it, or a commit not yet completed)"
    if not manifest.get("recall_queries"):
        why = "exact search" if facts["index_type"] == "flat" else "too few vectors to miss any"
        return f"{manifest['recall_at_10']:.3f} ({why})"
    return f"{manifest['recall_at_10']:.3f} against exact search, {manifest['recall_queries']} held-out queries"


@click.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), required=True, help="Index folder.")
def verify(index_dir: Path) -> None:
    """Check that the FAISS file, the frame rows and the manifest agree: "ok", or each problem and exit code 1.

    Example: index verify --index indexes/synthvox
    """
    from indexer.store import Store, require_index_folder
    from model.data.errors import DataError

    require_index_folder(index_dir)  # no index there at all is bad input (exit 2), not a problem found
    try:
        with Store.open(index_dir, readonly=True) as store:
            problems = store.verify()
    except DataError as err:  # a folder that cannot even be opened as an index is a problem found, not bad input
        problems = [str(err)]
    for problem in problems:
        click.echo(problem)
    if problems:
        raise SystemExit(1)
    click.echo("ok")


@click.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), required=True, help="Index folder.")
def migrate(index_dir: Path) -> None:
    """Upgrade an index made by an older posedex to this one's schema, holding the writer lock.

    Queries never migrate (they hold no lock and must not write): an older index says to run this first.

    Example: index migrate --index indexes/synthvox
    """
    from indexer.store import migrate as migrate_store

    before, after = migrate_store(index_dir)
    if before == after:
        click.echo(f"{index_dir}: already at schema revision {after}")
    else:
        click.echo(f"{index_dir}: schema revision {before} -> {after}")
