"""What `index serve` computes, apart from HTTP: one `Retriever` shared by the server's threads, answering queries by
photo or by indexed frame, reading frames and reenacting, one call at a time.

Choices (the issue leaves them open):
- One lock around every use of the model and the store. FastAPI runs synchronous endpoints in a thread pool; the
  networks, the face detector's shared cascades and the store's FAISS index are not documented as safe to call
  from several threads at once, and on a single worker concurrent calls would only compete for the same cores.
  Uploads are decoded before the lock is taken, so a slow upload never holds it.
- A photo is cropped as `index query` crops it (`crop_largest_face`: the largest face) and searched uncropped
  after that, so the hits, and `hit_records`, are exactly what `index query --json` prints for the same file.
- A query by frame id searches with that frame's stored pose code (`Retriever.pose_codes`: what the index compares
  against, no re-encoding), and "other identities" drops the frame's own identity.
- Reenactment: the source photo's largest face in the pose of a driving photo's largest face, or of an indexed
  frame (already a crop, as `index build` stored it, so it is not cropped again); one source frame (K = 1).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from model.daegan import Renderer
from model.data.errors import DataError
from model.data.face_crop import crop_largest_face
from model.reenact import output_size
from retrieval.hit_rules import HitRules
from retrieval.search import Retriever, hit_records


class UnknownFrame(LookupError):
    """A frame id the index does not hold (or whose picture cannot be read: then `reason` says why)."""

    def __init__(self, frame_id: int, reason: str = "no such frame in the index") -> None:
        self.frame_id = frame_id
        self.reason = reason
        super().__init__(f"frame {frame_id}: {reason}")


@dataclass(frozen=True)
class Reenacted:
    """A reenactment's result: the source face in the driver's pose, and which network drew it."""

    face: np.ndarray  # (S, S, 3) uint8
    renderer: Renderer


class ServedIndex:
    """A `Retriever` that the server's worker threads share (module docstring); it stays open as long as the server."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self.lock = threading.Lock()

    @contextmanager
    def exclusive(self) -> Iterator[Retriever]:
        """The retriever, to one thread at a time."""
        with self.lock:
            yield self.retriever

    def info(self) -> dict:
        """What the index holds (`Retriever.summary`) and the build's manifest, merged into one record."""
        with self.exclusive() as retriever:
            summary, manifest = retriever.summary(), retriever.manifest()
        return {
            **asdict(summary),
            "metric": manifest.get("metric", ""),
            "checkpoint_sha256": manifest.get("checkpoint_sha256", ""),
            "created": manifest.get("created", ""),
            "index_version": manifest.get("posedex_version", ""),
        }

    def query_photo(
        self,
        img: np.ndarray,
        name: str,
        k: int,
        *,
        rules: HitRules,
        other_identities: bool = False,
        identity: str | None = None,
    ) -> list[dict]:
        """The `k` hits nearest in pose to the largest face in `img` (RGB uint8; `name` labels a `DataError` when it
        has no face). `other_identities` drops `identity`'s frames; it needs `identity` (a `ValueError` without)."""
        if other_identities and identity is None:
            raise ValueError("other_identities needs the query's identity: give identity, or query by frame_id")
        with self.exclusive() as retriever:
            face = crop_largest_face(img, retriever.model.size, source=name)
            hits = retriever.search(
                face.crop, k, other_identities=other_identities, identity=identity, rules=rules, crop=False
            )
        return hit_records(hits)

    def query_frame(self, frame_id: int, k: int, *, rules: HitRules, other_identities: bool = False) -> list[dict]:
        """The `k` hits nearest to indexed frame `frame_id`'s stored pose code; `UnknownFrame` when there is none."""
        with self.exclusive() as retriever:
            code, identity = _frame_code(retriever, frame_id)
            hits = retriever.search(code, k, other_identities=other_identities, identity=identity, rules=rules)
        return hit_records(hits)

    def frame(self, frame_id: int) -> np.ndarray:
        """Indexed frame `frame_id` as stored (RGB uint8), read from inside the index's roots only (`hit_images`)."""
        with self.exclusive() as retriever:
            return _frame_image(retriever, frame_id)

    def reenact(
        self,
        source: np.ndarray,
        source_name: str,
        *,
        driving: np.ndarray | None = None,
        driving_name: str = "driving",
        frame_id: int | None = None,
    ) -> Reenacted:
        """The largest face of `source` in the pose of `driving`'s largest face, or of indexed frame `frame_id`.

        A `DataError` names a photo without a face; `UnknownFrame` a frame that is not there.
        """
        if (driving is None) == (frame_id is None):
            raise ValueError("give a driving photo or a frame_id, not both")
        with self.exclusive() as retriever:
            model = retriever.model
            size = output_size(model, None)
            crop = crop_largest_face(source, size, source=source_name).crop
            if frame_id is not None:
                driver = _frame_image(retriever, frame_id)  # a stored crop: used as it is
            else:
                driver = crop_largest_face(driving, size, source=driving_name).crop
            out = model.reenact([crop], driver, size=size)  # drawn from the source photo's own pixels
        return Reenacted(model.to_images(out.image[0]), out.renderer)  # (size, size, 3)


def _frame_code(retriever: Retriever, frame_id: int) -> tuple[np.ndarray, str]:
    """Frame `frame_id`'s stored unit pose code `(dim,)` and its identity."""
    meta = _frame_rows(retriever, frame_id)
    return retriever.pose_codes([frame_id])[0], str(meta["identity"].iloc[0])


def _frame_image(retriever: Retriever, frame_id: int) -> np.ndarray:
    """Frame `frame_id`'s picture as stored, RGB uint8."""
    meta = _frame_rows(retriever, frame_id)
    try:
        return retriever.hit_images(meta)[0]
    except DataError as err:  # the file is gone or lies outside the roots: say so without the server's paths
        raise UnknownFrame(frame_id, f"its picture {meta['path'].iloc[0]} cannot be read: {err.reason}") from err


def _frame_rows(retriever: Retriever, frame_id: int) -> pd.DataFrame:
    """Frame `frame_id`'s metadata row (`Retriever.frames`), or `UnknownFrame`."""
    try:
        return retriever.frames([frame_id])
    except (KeyError, ValueError):  # no row with that id; a negative id
        raise UnknownFrame(frame_id) from None
