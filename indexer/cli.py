"""`index`: build and check pose indexes. Thin: parse, call a library function, print.

Bad input (`DataError`) becomes one line on stderr and exit code 2; `index verify` exits 1 when it finds a problem.

The `index` command a user runs also has `query` (retrieval) and `ui` (the browser UI), which this layer may not
import (DESIGN.md: nothing in `indexer/` knows a UI exists). So this module defines its commands and
`index_group(*more)`, which assembles the group; each layer above passes its own commands in, and the console
script points at the topmost assembly (`ui.cli:main`).
"""

from __future__ import annotations

from pathlib import Path

import click

from model import __version__
from model.cli import POSITIVE, DataErrorGroup

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO / "checkpoints" / "daegan-small.safetensors"
CHECKPOINT_HELP = f"Model .safetensors checkpoint [default: {DEFAULT_CHECKPOINT.relative_to(REPO)} when it exists]."
INDEX_TYPES = click.Choice(["auto", "flat", "hnsw", "ivfpq"])


def resolve_checkpoint(checkpoint: Path | None) -> Path:
    """`--checkpoint`, or the shipped checkpoint when none was given."""
    if checkpoint is not None:
        return checkpoint
    if not DEFAULT_CHECKPOINT.is_file():
        raise click.UsageError(f"--checkpoint is required ({DEFAULT_CHECKPOINT} does not exist)")
    return DEFAULT_CHECKPOINT


def resolve_device(name: str):
    """`--device` as a torch device; a bad name is a usage error naming the option."""
    from model.device import pick_device

    try:
        return pick_device(name)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--device") from None


def _echo_summary(summary, verb: str) -> None:
    click.echo(f"{verb} {summary.added} frames to {summary.index_dir} in {summary.seconds:.1f} s "
               f"({summary.frames_per_s:.1f} frames/s)")
    if summary.already_indexed:
        click.echo(f"already indexed: {summary.already_indexed} frames")
    click.echo(f"skipped: {len(summary.skipped)}")
    for path, reason in summary.skipped:
        click.echo(f"  {path}: {reason}")


def _run_options(command):
    options = [
        click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help=CHECKPOINT_HELP),
        click.option("--batch-size", type=POSITIVE, default=64, show_default=True, help="Frames per encoder pass."),
        click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
                     help="Frame-reading processes (0 reads in this process)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--fps", type=click.FloatRange(min=0), default=1.0, show_default=True,
                     help="Frames per second sampled from videos; 0 takes every frame."),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Index folder (created if absent).")
@click.option("--index-type", type=INDEX_TYPES, default="auto", show_default=True,
              help="FAISS index, chosen at the first build; auto: flat up to 100k frames, then hnsw or ivfpq.")
@_run_options
def build(roots: tuple[Path, ...], out: Path, index_type: str, checkpoint: Path | None, batch_size: int,
          workers: int, device: str, fps: float, progress: bool) -> None:
    """Encode every frame of the collections ROOT... into a pose index, atomically.

    With several roots, stored paths are prefixed by each root's folder name. Bad frames are skipped and listed.

    Example: index build data/synthvox --checkpoint checkpoints/daegan-small.safetensors --out indexes/synthvox
    """
    from indexer.build import build_index

    summary = build_index(list(roots), resolve_checkpoint(checkpoint), out, batch_size=batch_size,
                          workers=workers, device=resolve_device(device), index_type=index_type, fps=fps,
                          progress=progress)
    _echo_summary(summary, "indexed")


@click.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--index", "index_dir", type=click.Path(path_type=Path), required=True, help="Index folder.")
@_run_options
def add(roots: tuple[Path, ...], index_dir: Path, checkpoint: Path | None, batch_size: int, workers: int,
        device: str, fps: float, progress: bool) -> None:
    """Encode only the frames of ROOT... the index does not hold yet (give the roots as the build got them).

    The checkpoint must be the one the index was built with.

    Example: index add data/synthvox --index indexes/synthvox
    """
    from indexer.build import add_to_index

    summary = add_to_index(list(roots), index_dir, resolve_checkpoint(checkpoint), batch_size=batch_size,
                           workers=workers, device=resolve_device(device), fps=fps, progress=progress)
    _echo_summary(summary, "added")


@click.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), required=True, help="Index folder.")
def info(index_dir: Path) -> None:
    """Print what an index holds: counts, dim, index type, checkpoint, size on disk.

    Example: index info --index indexes/synthvox
    """
    from indexer.store import Store

    with Store.open(index_dir, readonly=True) as store:
        facts = store.info()
    click.echo(f"index:      {facts['path']}")
    click.echo(f"frames:     {facts['count']}")
    click.echo(f"identities: {facts['num_identities']}")
    click.echo(f"videos:     {facts['num_videos']}")
    click.echo(f"builds:     {facts['num_builds']}")
    click.echo(f"dim:        {facts['dim']} ({facts['metric']})")
    click.echo(f"index type: {facts['index_type']}")
    click.echo(f"checkpoint: sha256 {facts['checkpoint_sha256']}")
    click.echo(f"created:    {facts['created']}")
    click.echo(f"size:       {facts['size_bytes'] / 2**20:.2f} MiB ({facts['size_bytes']} bytes)")


@click.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), required=True, help="Index folder.")
def verify(index_dir: Path) -> None:
    """Check that the FAISS file, the frame rows and the manifest agree: "ok", or each problem and exit code 1.

    Example: index verify --index indexes/synthvox
    """
    from indexer.store import Store
    from model.data.errors import DataError

    if not index_dir.is_dir():
        raise DataError(index_dir, "no such index folder")
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


def index_group(*more: click.Command) -> click.Group:
    """The `index` command: build, add, info, verify, then `more` (commands of the layers above)."""

    @click.group(cls=DataErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="index")
    def index() -> None:
        """posedex pose index: find frames of other people in the same pose and expression."""

    for command in (build, add, info, verify, *more):
        index.add_command(command)
    return index


main = index_group()
