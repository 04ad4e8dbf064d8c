"""`index query`: find the indexed frames in the pose of a photo. Thin: parse, call `Retriever`, print.

Output: a table (rank, score, id, identity, video, frame, path) or, with `--json`, a JSON array of objects with exactly
those keys and nothing else on stdout; `--grid` also draws the query and its hits as one picture. A missing,
unreadable or faceless image is one line on stderr and exit code 2 (`model.cli_common.DataErrorGroup`). A photo of
several faces is searched by its largest, and a note on stderr says how many were found. A folder of photos or a
CSV of paths (`--from-csv`) is answered in one process (`retrieval.batch_query`): one row per hit, CSV or Parquet.
`--per-video`, `--per-identity`, `--moment`, `--exclude` and `--only` shape the hits (`retrieval.hit_rules`).

The `index` group that a user runs names `query` by import path beside the other layers' commands
(`ui.index_command`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from model.cli_common import CHECKPOINT_HELP, POSITIVE, REPO, BadInput, device_option, resolve_checkpoint

if TYPE_CHECKING:
    import torch

    from retrieval.hit_rules import HitRules
    from retrieval.search import Retriever

INDEX_VARIABLE = "POSEDEX_INDEX"  # the environment variable naming the index a command uses without --index
DEMO_INDEX = REPO / "demo" / "index"  # what `make run` builds in a source checkout
INDEX_HELP = f"Index folder [default: ${INDEX_VARIABLE}, else {DEMO_INDEX.relative_to(REPO)} in a source checkout]."


def default_index() -> Path:
    """The index a command reads when --index is not given: ``$POSEDEX_INDEX``, else the demo index of a source
    checkout. An installed package has no demo index (its folder is site-packages): there the user must say."""
    if os.environ.get(INDEX_VARIABLE):
        return Path(os.environ[INDEX_VARIABLE])
    if (REPO / "pyproject.toml").is_file():  # running from the checkout, where `make run` puts the demo index
        return DEMO_INDEX
    raise BadInput(f"no index given: pass --index DIR or set {INDEX_VARIABLE}")


@click.command()
@click.argument("image", type=click.Path(path_type=Path), required=False)
@click.option(
    "--from-csv",
    type=click.Path(path_type=Path),
    default=None,
    help="Answer every image a CSV names (a 'path' column; 'identity' optional), like a folder IMAGE.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Many queries (a folder or --from-csv): write the hits here, .csv or .parquet [default: CSV on stdout].",
)
@click.option("-k", "k", type=POSITIVE, default=10, show_default=True, help="Number of hits.")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help=INDEX_HELP)
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help=CHECKPOINT_HELP)
@click.option(
    "--other-identities",
    is_flag=True,
    help="Drop hits of the query's own identity (known when IMAGE is a frame of the index, or --identity).",
)
@click.option("--identity", default=None, help="The query's identity, for --other-identities on a photo.")
@click.option("--per-video", type=POSITIVE, default=None, help="At most N hits from one video.")
@click.option("--per-identity", type=POSITIVE, default=None, help="At most N hits of one identity.")
@click.option(
    "--moment",
    "moment_s",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Drop a hit within SECONDS of a better hit of the same video (near-duplicate frames).",
)
@click.option("--exclude", "exclude", multiple=True, metavar="IDENTITY", help="Never return IDENTITY (repeatable).")
@click.option("--only", "only", multiple=True, metavar="IDENTITY", help="Return only these identities (repeatable).")
@click.option(
    "--motion",
    is_flag=True,
    help="IMAGE is a folder of one clip's frames (name order): find segments that move like it, as for "
    "a video file IMAGE.",
)
@click.option(
    "--clip-fps",
    type=click.FloatRange(min=0, min_open=True),
    default=25.0,
    show_default=True,
    help="The frame rate of a --motion folder's frames.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits, nothing else.")
@click.option(
    "--grid",
    type=click.Path(path_type=Path),
    default=None,
    help="Also save the query and its hits as one picture (PNG or JPEG).",
)
@device_option
def query(
    image: Path | None,
    from_csv: Path | None,
    out: Path | None,
    k: int,
    index_dir: Path | None,
    checkpoint: Path | None,
    other_identities: bool,
    identity: str | None,
    per_video: int | None,
    per_identity: int | None,
    moment_s: float | None,
    exclude: tuple[str, ...],
    only: tuple[str, ...],
    motion: bool,
    clip_fps: float,
    as_json: bool,
    grid: Path | None,
    device: torch.device,
) -> None:
    """The K indexed frames whose pose is nearest to the face in IMAGE (a photo, or a frame of the index).

    IMAGE may be a folder: every image in it is answered in one process (as with --from-csv), one row per hit with
    the query's path, written to --out or printed as CSV; images that cannot be used are skipped and listed.

    IMAGE may be a video clip (or, with --motion, a folder of its frames): the segments of indexed videos whose
    pose sequence follows the clip's (dynamic time warping), with their start and end frames.

    Example: index query photo.jpg -k 10 --other-identities --per-video 1 --grid hits.png
    """
    from model.data.video import VIDEO_SUFFIXES
    from retrieval.hit_rules import HitRules
    from retrieval.search import Retriever

    if (image is None) == (from_csv is None):
        raise click.UsageError("give one IMAGE (a photo or a folder of photos) or --from-csv FILE")
    clip = image is not None and (motion or image.suffix.lower() in VIDEO_SUFFIXES)
    if clip and out is not None:
        raise click.UsageError("--out writes many photo queries' hits: a clip's segments print as a table or --json")
    many = not clip and (from_csv is not None or image.is_dir())
    if many and grid is not None:
        raise click.UsageError("--grid draws one query: give a single photo")
    if not many and out is not None:
        raise click.UsageError("--out writes many queries' hits: give a folder or --from-csv")
    index_dir = index_dir or default_index()
    checkpoint = resolve_checkpoint(checkpoint)
    rules = HitRules(
        per_video=per_video,
        per_identity=per_identity,
        moment_s=moment_s,
        exclude=frozenset(exclude),
        only=frozenset(only) if only else None,
    )
    with Retriever(index_dir, checkpoint, device=device) as retriever:
        if clip:
            _answer_clip(retriever, image, k, rules, clip_fps, as_json, grid)
        elif many:
            _answer_many(retriever, image, from_csv, out, k, other_identities, identity, rules, as_json)
        else:
            _answer_one(retriever, image, k, other_identities, identity, rules, as_json, grid)


def _answer_one(
    retriever: Retriever,
    image: Path,
    k: int,
    other_identities: bool,
    identity: str | None,
    rules: HitRules,
    as_json: bool,
    grid: Path | None,
) -> None:
    """One photo: the hits as a table (or JSON), the grid picture when asked."""
    from model.data.face_crop import several_faces_note
    from retrieval.grid import hits_grid
    from retrieval.search import QUERY_COLUMNS, hit_records

    face = retriever.query_face(image)  # read and crop once: a bad image fails here, before any search
    if face.num_faces > 1:
        click.echo(f"note: {several_faces_note(image, face.num_faces)}", err=True)
    known = identity if identity is not None else retriever.identity_of(image)
    if other_identities and known is None:
        click.echo(
            f"note: {image} is not a frame of the index and no --identity was given: no identity to drop", err=True
        )
    hits = retriever.search(
        face.crop, k, other_identities=other_identities and known is not None, identity=known, rules=rules, crop=False
    )  # the face found above: detecting it again doubles the cost
    if grid is not None:
        hits_grid(face.crop, hits, retriever.hit_images(hits)).save(grid)
    if as_json:
        click.echo(json.dumps(hit_records(hits)))
        return
    click.echo(hits[QUERY_COLUMNS].to_string(index=False, formatters={"score": "{:.4f}".format}))
    if grid is not None:
        click.echo(f"grid: {grid}", err=True)


def _answer_many(
    retriever: Retriever,
    folder: Path | None,
    from_csv: Path | None,
    out: Path | None,
    k: int,
    other_identities: bool,
    identity: str | None,
    rules: HitRules,
    as_json: bool,
) -> None:
    """A folder or a CSV of photos: every hit to `out` (CSV or Parquet) or stdout; skipped images listed."""
    from retrieval.batch_query import QueryImage, batch_query, images_in_csv, images_in_folder, write_hits

    images = images_in_csv(from_csv) if from_csv is not None else images_in_folder(folder)
    if identity is not None:
        images = [QueryImage(i.path, i.identity or identity) for i in images]
    result = batch_query(retriever, images, k, other_identities=other_identities, rules=rules)
    for err in result.skipped:
        click.echo(f"skipped: {err}", err=True)
    if not result.answered:
        raise BadInput(f"{from_csv or folder}: none of its {len(images)} images could be searched")
    if out is not None:
        write_hits(result.hits, out)
        click.echo(
            f"answered {result.answered} of {len(images)} images ({len(result.skipped)} skipped): "
            f"{len(result.hits)} hits to {out}"
        )
        return
    hits = result.hits.assign(score=result.hits["score"].round(6))
    click.echo(json.dumps(hits.to_dict("records")) if as_json else hits.to_csv(index=False), nl=False)
    click.echo(f"answered {result.answered} of {len(images)} images ({len(result.skipped)} skipped)", err=True)


def _answer_clip(
    retriever: Retriever, clip_path: Path, k: int, rules: HitRules, clip_fps: float, as_json: bool, grid: Path | None
) -> None:
    """A clip: the segments that move like it, as a table (or JSON), and their strips when asked."""
    from retrieval.grid import segments_grid
    from retrieval.motion_query import read_clip, search_motion

    found = search_motion(retriever, read_clip(retriever, clip_path, clip_fps=clip_fps), k, rules=rules)
    if grid is not None:
        strips = [retriever.hit_images(retriever.frames(ids)) for ids in found.frame_ids]
        segments_grid(list(found.clip.crops), found.segments, strips).save(grid)  # each strip thinned to 8
    table = found.segments
    if as_json:
        click.echo(json.dumps([{**row, "score": round(float(row["score"]), 6)} for row in table.to_dict("records")]))
        return
    click.echo(table.to_string(index=False, formatters={"score": "{:.4f}".format}))
    if grid is not None:
        click.echo(f"grid: {grid}", err=True)
