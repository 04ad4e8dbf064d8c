"""Many photo queries in one process: a folder or a CSV of image paths in, one table row per hit out (issue 16).

`index query DIR/` and `index query --from-csv paths.csv` load the model and the index once and answer every image,
for scripting over thousands of photos, where one `index query` per photo pays about 3 s of start-up each.

Choices:
- Inputs: a folder is searched recursively for the image formats the decoder reads (`images.DECODABLE_SUFFIXES`),
  in sorted path order, hidden files skipped; a CSV names images in a ``path`` column (relative paths are relative
  to the CSV's folder) and may give each query's identity in an ``identity`` column (for `other_identities` on
  photos that are not frames of the index).
- Images are read and face-cropped one by one (a bad image is skipped and listed with its reason, as
  `index build` lists bad frames) and searched in chunks of `batch_size`: one encoder pass and, without filters,
  one index search per chunk.
- Output: the hit columns of `index query --json` after ``query`` (the image path as given) and ``faces`` (how many
  faces its photo held; the largest was searched), one row per hit. CSV or Parquet by the file's suffix, written
  atomically (`model.atomic_write.atomic_file`), so a crash never leaves half a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from model.atomic_write import atomic_file
from model.data.errors import DataError
from model.data.images import DECODABLE_SUFFIXES
from retrieval.hit_rules import HitRules
from retrieval.search import QUERY_COLUMNS, Retriever

BATCH_COLUMNS = ["query", "faces", *QUERY_COLUMNS]
TABLE_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class QueryImage:
    """One image to answer, and its identity when the caller knows it."""

    path: Path
    identity: str | None = None


@dataclass(frozen=True)
class BatchResult:
    """What a batch of queries found: every hit (`BATCH_COLUMNS`), and each image skipped with its reason."""

    hits: pd.DataFrame
    skipped: list[DataError]
    answered: int  # images searched (those that were not skipped)


def images_in_folder(folder: Path) -> list[QueryImage]:
    """Every decodable image under `folder`, recursively, sorted; hidden files and folders skipped."""
    if not folder.is_dir():
        raise DataError(folder, "no such folder")
    found = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in DECODABLE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not found:
        raise DataError(folder, f"no images in this folder (looked for {', '.join(DECODABLE_SUFFIXES)})")
    return [QueryImage(path) for path in found]


def images_in_csv(table: Path) -> list[QueryImage]:
    """The images a CSV names in its ``path`` column (relative to the CSV's folder), with ``identity`` if given."""
    try:
        rows = pd.read_csv(table, dtype=str, keep_default_na=False)
    except FileNotFoundError as err:
        raise DataError(table, "no such file") from err
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(table, f"cannot read this CSV ({err.__class__.__name__})") from err
    if "path" not in rows.columns:
        raise DataError(table, f"needs a 'path' column; it has {', '.join(rows.columns) or 'none'}")
    if rows.empty:
        raise DataError(table, "names no images")
    identities = rows["identity"] if "identity" in rows.columns else pd.Series([""] * len(rows))
    return [QueryImage(table.parent / path, identity or None) for path, identity in zip(rows["path"], identities)]


def batch_query(
    retriever: Retriever,
    images: Sequence[QueryImage],
    k: int,
    *,
    other_identities: bool = False,
    rules: HitRules | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> BatchResult:
    """Answer every image: read and crop each (skipping bad ones), then search in chunks of `batch_size`.

    `other_identities` drops each query's own identity where it is known (given, or a frame of the index); a
    photo whose identity is unknown is searched unfiltered, as `index query` does.
    """
    tables, skipped, answered = [], [], 0
    with tqdm(total=len(images), unit="image", disable=not progress, leave=False) as bar:
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            crops, identities, ready = [], [], []
            for image in chunk:
                try:
                    face = retriever.query_face(image.path)
                except DataError as err:
                    skipped.append(err)
                    continue
                crops.append(face.crop)
                identities.append(image.identity or retriever.identity_of(image.path))
                ready.append((image, face.num_faces))
            tables += _search_chunk(retriever, crops, identities, ready, k, other_identities, rules)
            answered += len(ready)
            bar.update(len(chunk))
    hits = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=BATCH_COLUMNS)
    return BatchResult(hits[BATCH_COLUMNS], skipped, answered)


def _search_chunk(
    retriever: Retriever,
    crops: list[np.ndarray],
    identities: list[str | None],
    ready: list[tuple[QueryImage, int]],
    k: int,
    other_identities: bool,
    rules: HitRules | None,
) -> list[pd.DataFrame]:
    """One search per chunk: queries of known identity filtered (`other_identities`), the others not."""
    if not crops:
        return []
    filtered = [other_identities and identity is not None for identity in identities]
    found: list[pd.DataFrame | None] = [None] * len(crops)
    for want in (False, True):
        rows = [i for i, f in enumerate(filtered) if f == want]
        if rows:
            results = retriever.search_batch(
                [crops[i] for i in rows],
                k,
                other_identities=want,
                identities=[identities[i] for i in rows],
                rules=rules,
                crop=False,
            )
            for i, table in zip(rows, results):
                found[i] = table
    tables = []
    for (image, faces), table in zip(ready, found):
        assert table is not None
        table = table[QUERY_COLUMNS].copy()
        table.insert(0, "faces", faces)
        table.insert(0, "query", str(image.path))
        tables.append(table)
    return tables


def write_hits(hits: pd.DataFrame, out: Path) -> None:
    """Write the hits as CSV or Parquet by `out`'s suffix, atomically."""
    suffix = out.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(out, f"write hits to a {' or '.join(TABLE_SUFFIXES)} file")
    with atomic_file(out) as tmp:
        if suffix == ".csv":
            hits.to_csv(tmp, index=False)
        else:
            hits.to_parquet(tmp, index=False)
