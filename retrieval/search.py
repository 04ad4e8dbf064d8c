"""Pose search over an index: an image or a pose code in, ranked frames with their metadata out.

A query is a pose code p̂ (paper sec. 3, Fig. 4: the pose embedder's encoder output), L2-normalised so that the
index's inner product is the cosine similarity; the hits are the indexed frames whose codes are nearest. The
product's main question — "frames of *other* people in this pose" — is the `other_identities` filter.

Choices (the paper is silent):
- One model per index: the checkpoint's sha256 must equal the one the index records. Codes of another model live
  in another space, so its hits would be meaningless; that is refused with a `DataError`, never answered.
- Queries: an image file, an RGB uint8 array (a photo) or a pose code `(dim,)`. Photos are cropped by
  `data.face_crop.crop_face`, exactly as `daegan prepare` crops indexed frames, so a query looks like what was
  indexed. `crop=None` (auto) crops everything except files that are frames of the index (already crops: cropping
  them again would zoom in further); `crop=True/False` forces it.
- "Is this file a frame of the index?": stored paths are relative to the collection roots the index records
  (`indexer.frame_paths`). A file under a recorded root (or under `collection=`, which overrides them) is looked up
  exactly; a file elsewhere (the collection was copied or moved) falls back to the longest trailing part of its
  absolute path that is a stored path (`p0/v1/00003.png` under any folder).
- Hit frames are read (`hit_images`) only from inside the index's roots: a stored path is never trusted to lead
  elsewhere.
- `other_identities` drops hits of the query's identity (`identity=`, else the identity of the indexed frame the
  query file is); `rules` (`retrieval.hit_rules.HitRules`) filter identities and cap hits per video, identity and
  moment. Identity filters (the query's own identity included) run inside the FAISS search as ID selectors
  (`indexer.faiss_index.IdFilter`): one search however much of the index they remove. The caps need the hits'
  videos and times, so a capped search over-fetches: `k × OVERFETCH`, growing by `OVERFETCH` per round, until `k`
  hits survive or the whole index has been searched.
- FAISS's `-1` ids are dropped by `Store.search`; this module asserts none reaches `Store.get`.
- Browsing (what the index holds: counts, videos, frames, their stored pose codes) is answered here too, from the
  same read-only store, so the UI asks the `Retriever` and never reaches into `indexer.store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd
import torch

from indexer.faiss_index import IdFilter
from indexer.store import Store
from model.checkpoint import file_sha256
from model.daegan import DAEGAN
from model.data.collection import load_frame
from model.data.errors import DataError
from model.data.face_crop import FaceCrop, crop_face, crop_largest_face
from model.data.images import read_image
from model.device import pick_device
from retrieval.hit_rules import HitRules

HIT_COLUMNS = ["rank", "score", "id", "identity", "video", "frame", "path", "time_s"]
QUERY_COLUMNS = ["rank", "score", "id", "identity", "video", "frame", "path"]  # what `index query` prints per hit
SCORE_DECIMALS = 6  # `index query --json` and `index serve` round scores to this many places
OVERFETCH = 4  # other_identities: fetch k × this many hits first, and grow the fetch by this factor per round

Query = Union[str, Path, np.ndarray, torch.Tensor]  # image file, RGB uint8 (H, W, 3) photo, or pose code (dim,)


def hit_records(hits: pd.DataFrame) -> list[dict]:
    """A `Retriever.search` table as `index query --json` prints it (and `index serve` answers): `QUERY_COLUMNS`
    per hit, best first, scores rounded to `SCORE_DECIMALS`; `id` is the frame's id in the index."""
    return [
        {**row, "score": round(float(row["score"]), SCORE_DECIMALS)} for row in hits[QUERY_COLUMNS].to_dict("records")
    ]


@dataclass(frozen=True)
class IndexSummary:
    """What the index holds, as a person reads it first (the UI's sidebar and Overview page)."""

    num_frames: int  # frame rows in the metadata database
    num_identities: int
    num_videos: int
    num_vectors: int  # pose codes in the FAISS index: equal to num_frames unless a build went wrong
    dim: int  # length of each pose code
    index_type: str  # the FAISS index's kind, e.g. "flat" (`indexer.faiss_index`)


@dataclass(frozen=True)
class _Prepared:
    """One query made ready to search: its unit pose code and the identity to exclude (None: none known)."""

    vector: np.ndarray  # (dim,) float32
    identity: str | None


class Retriever:
    """A read-only pose index and the model that built it, answering "which indexed frames are in this pose?".

    Use as a context manager, or call `close()` when done.
    """

    def __init__(
        self, index_dir: Path, checkpoint: Path, *, device: str | torch.device = "auto", collection: Path | None = None
    ) -> None:
        """Open the index at `index_dir` read-only and load `checkpoint` on `device` ("auto", "cpu", "cuda[:N]").

        `collection` is the root the index was built from (optional): it makes "is this file a frame of the
        index?" an exact lookup rather than a match on the path's tail (module docstring).
        A `DataError` names the file when the index or checkpoint is unusable, or when the checkpoint is not the
        one the index was built with.
        """
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise DataError(checkpoint, "no such checkpoint file")
        self.store = Store.open(index_dir, readonly=True)
        try:
            torch_device = device if isinstance(device, torch.device) else pick_device(device)
            self.model = DAEGAN.from_checkpoint(checkpoint, torch_device)  # first: a broken file says what is wrong
            sha = file_sha256(checkpoint)
            if sha != self.store.checkpoint_sha256:
                raise DataError(
                    checkpoint,
                    f"sha256 {sha[:12]} differs from the {self.store.checkpoint_sha256[:12]} "
                    f"the index {self.store.path} was built with: pose codes of another "
                    "model cannot be compared; query with that checkpoint or rebuild",
                )
            if self.model.pose_dim != self.store.dim:
                raise DataError(
                    checkpoint, f"pose_dim {self.model.pose_dim} differs from the index's dim {self.store.dim}"
                )
        except BaseException:
            self.store.close()
            raise
        self.collection = Path(collection).resolve() if collection is not None else None

    @property
    def dim(self) -> int:
        """Length of the pose codes the index holds (and a vector query must have)."""
        return self.store.dim

    def close(self) -> None:
        """Release the index (the model is just memory)."""
        self.store.close()

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- searching -----------------------------------------------------------------------------------------------

    def search(
        self,
        query: Query,
        k: int = 10,
        *,
        other_identities: bool = False,
        identity: str | None = None,
        rules: HitRules | None = None,
        crop: bool | None = None,
    ) -> pd.DataFrame:
        """The `k` indexed frames whose pose is nearest to `query`'s, best first.

        Returns columns `HIT_COLUMNS`: rank (1 = best), score (cosine similarity, descending), id, identity,
        video, frame, path (relative to the collection root), time_s. Fewer than `k` rows only when the index
        (after filtering) holds fewer. `other_identities=True` keeps only other people than the query's:
        `identity`, else the identity of the indexed frame the query file is; a `ValueError` when neither is known.
        `rules` filter identities and cap hits per video, per identity and per moment (`HitRules`).
        `crop`: see the module docstring. Unreadable or faceless image files are a `DataError` naming the file.
        """
        return self.search_batch(
            [query],
            k,
            other_identities=other_identities,
            identities=None if identity is None else [identity],
            rules=rules,
            crop=crop,
        )[0]

    def search_batch(
        self,
        queries: Sequence[Query],
        k: int = 10,
        *,
        other_identities: bool = False,
        identities: Sequence[str | None] | None = None,
        rules: HitRules | None = None,
        crop: bool | None = None,
    ) -> list[pd.DataFrame]:
        """`search` for many queries at once (images encoded in one pass, one index search): one table per query.

        `identities` gives each query's identity (None entries: look it up as `search` does).
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if identities is not None and len(identities) != len(queries):
            raise ValueError(f"{len(queries)} queries but {len(identities)} identities")
        if not queries:
            return []
        prepared = self._prepare(queries, identities or [None] * len(queries), crop)
        rules = rules or HitRules()
        if other_identities:
            unknown = [i for i, p in enumerate(prepared) if p.identity is None]
            if unknown:
                raise ValueError(
                    f"other_identities needs the query's identity: query {unknown[0]} is not a frame "
                    "of the index, so pass identity="
                )
        if rules.allows_all and not other_identities:
            return self._ranked_all(np.stack([p.vector for p in prepared]), k)  # (Q, dim): one index search
        # per query: how far to over-fetch depends on its own neighbours
        return [
            self._ranked(p.vector, k, rules.excluding([p.identity]) if other_identities else rules) for p in prepared
        ]

    # ---- browsing ------------------------------------------------------------------------------------------------

    def summary(self) -> IndexSummary:
        """How many frames, identities, videos and pose codes the index holds, and the codes' length and index type."""
        info = self.store.info()
        return IndexSummary(
            num_frames=info["num_frames"],
            num_identities=info["num_identities"],
            num_videos=info["num_videos"],
            num_vectors=info["count"],
            dim=info["dim"],
            index_type=info["index_type"],
        )

    def manifest(self) -> dict:
        """The build's manifest as written beside the index (`manifest.json`): what a person checks first."""
        return self.store.manifest()

    def videos(self) -> pd.DataFrame:
        """Every indexed video and its frame count, sorted by identity then video: identity, video, num_frames."""
        return self.store.videos()

    def video_frames(self, identity: str, video: str) -> pd.DataFrame:
        """The frames of one video in frame order: id, path, frame, time_s (empty when the video is not indexed).

        The rows can be passed to `hit_images` to read the pictures.
        """
        return self.store.video_frames(identity, video)

    def frame_ids(self) -> np.ndarray:
        """Every indexed frame's id, ascending (int64): the ids `frames` and `pose_codes` take."""
        return self.store.ids()

    def frames(self, ids: Sequence[int] | np.ndarray) -> pd.DataFrame:
        """The metadata of frames `ids`, in their order: id, path, identity, video, frame, time_s, width, height.

        The rows can be passed to `hit_images` to read the pictures.
        """
        return self.store.get(ids)

    def pose_codes(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The unit pose codes of frames `ids` as the index stores them, in their order: (N, dim) float32.

        Read back rather than re-encoded: what a search compares against (quantised for an IVF-PQ index). An id
        the index does not hold is a `KeyError`.
        """
        return self.store.vectors(ids)

    # ---- internals -----------------------------------------------------------------------------------------------

    def _ranked_all(self, vectors: np.ndarray, k: int) -> list[pd.DataFrame]:
        """Unfiltered top-k for every row of `vectors` (Q, dim) in one index search."""
        scores, ids = self.store.search(vectors, k)
        return [self._table(s, i) for s, i in zip(scores, ids)]

    def _ranked(self, vector: np.ndarray, k: int, rules: HitRules) -> pd.DataFrame:
        """Top-k of one query that `rules` allow. Identity filters run inside the search (`IdFilter`); the caps per
        video, identity and moment over-fetch until k pass or the index is spent."""
        id_filter = self._identity_filter(rules)
        fetch = k if not rules.caps else min(k * OVERFETCH, max(len(self.store), 1))
        while True:
            (scores,), (ids,) = self.store.search(vector[None], fetch, id_filter=id_filter)
            assert (ids >= 0).all(), "Store.search let a FAISS -1 id through"
            meta = self.store.get(ids)
            keep = rules.keep(meta, k)
            if len(keep) >= k or len(ids) < fetch or fetch >= len(self.store):
                return self._table(scores[keep], ids[keep], meta.iloc[keep])
            fetch = min(fetch * OVERFETCH, len(self.store))

    def _identity_filter(self, rules: HitRules) -> IdFilter | None:
        """The identity filters of `rules` as ids for the search itself: only some identities, or all but some."""
        if rules.only is not None:
            return IdFilter(self.store.identity_ids(rules.only - rules.exclude), keep=True)
        if rules.exclude:
            return IdFilter(self.store.identity_ids(rules.exclude), keep=False)
        return None

    def _table(self, scores: np.ndarray, ids: np.ndarray, meta: pd.DataFrame | None = None) -> pd.DataFrame:
        """Hits (scores and ids, best first) joined with their metadata as a `HIT_COLUMNS` table."""
        assert (ids >= 0).all(), "Store.search let a FAISS -1 id through"
        if meta is None:
            meta = self.store.get(ids)
        table = meta.reset_index(drop=True)
        table.insert(0, "score", np.asarray(scores, dtype=np.float32))
        table.insert(0, "rank", np.arange(1, len(ids) + 1))
        return table[HIT_COLUMNS]

    def _prepare(
        self, queries: Sequence[Query], identities: Sequence[str | None], crop: bool | None
    ) -> list[_Prepared]:
        """Every query as a unit pose code (images encoded together) and its identity when known."""
        vectors: list[np.ndarray | None] = []
        known: list[str | None] = []
        images: list[np.ndarray] = []  # model-ready crops, in query order
        for query, identity in zip(queries, identities):
            if isinstance(query, (str, Path)):
                indexed = self.identity_of(query)  # looked up once: it decides the crop and the identity
                images.append(self.query_image(query, crop=crop if crop is not None else indexed is None))
                vectors.append(None)
                known.append(identity if identity is not None else indexed)
                continue
            array = query.detach().cpu().numpy() if isinstance(query, torch.Tensor) else np.asarray(query)
            if array.ndim == 1:
                if array.shape[0] != self.dim:
                    raise ValueError(f"a pose code query must have length {self.dim}, got {array.shape[0]}")
                vectors.append(array.astype(np.float32))
            elif array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
                images.append(crop_face(array, self.model.size, source="<image array>") if crop is not False else array)
                vectors.append(None)
            else:
                raise ValueError(
                    "a query is an image file, an RGB uint8 (H, W, 3) array or a pose code "
                    f"({self.dim},); got an array {array.dtype} {array.shape}"
                )
            known.append(identity)
        codes = iter(self.model.encode_pose(images).numpy() if images else [])  # (N, dim), unit rows
        return [_Prepared(v if v is not None else next(codes), i) for v, i in zip(vectors, known)]

    def query_image(self, path: str | Path, *, crop: bool | None = None) -> np.ndarray:
        """The image file `path` as the model sees it when it is a query: read, and face-cropped unless it is a
        frame of the index (`crop`: see the module docstring). A `DataError` names the file when it is missing,
        undecodable or (when cropped) faceless."""
        return self.query_face(path, crop=crop).crop

    def query_face(self, path: str | Path, *, crop: bool | None = None) -> FaceCrop:
        """`query_image` and the number of faces found in the photo, which `index query` reports when it is
        several (the largest is used); a frame of the index is not searched for faces and counts as one."""
        path = Path(path)
        img = read_image(path)
        if crop or (crop is None and self.identity_of(path) is None):
            return crop_largest_face(img, self.model.size, source=path)
        return FaceCrop(img, 1)

    def hit_images(self, hits: pd.DataFrame) -> list[np.ndarray]:
        """The frames of a `search` table's rows, RGB uint8, read from inside the index's collection roots only.

        A `DataError` names the stored path when its file is gone or unreadable, or would lie outside the roots.
        """
        recorded = self.store.roots()  # one database read for all the hits
        roots = {"": self.collection} if self.collection is not None and not recorded else recorded
        images = []
        for stored in hits["path"]:
            file, frame = self.store.frame_file(stored, roots)
            images.append(load_frame(file, frame))
        return images

    def identity_of(self, path: str | Path) -> str | None:
        """The identity of the indexed frame stored at `path`, or None when the file is not a frame of the index."""
        resolved = Path(path).resolve()
        roots = {"": self.collection} if self.collection is not None else self.store.roots()
        candidates = []
        for prefix, root in roots.items():
            if resolved.is_relative_to(root):
                relative = resolved.relative_to(root).as_posix()
                candidates.append(f"{prefix}/{relative}" if prefix else relative)
        if not candidates and self.collection is None:  # not under a recorded root: match the path's tail
            parts = resolved.parts
            candidates = [Path(*parts[start:]).as_posix() for start in range(1, len(parts))]  # longest first
        hits = self.store.find(candidates)
        found = dict(zip(hits["path"], hits["identity"]))
        best = next((c for c in candidates if c in found), None)
        return found[best] if best is not None else None
