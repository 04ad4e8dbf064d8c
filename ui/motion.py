"""A motion query as the UI runs it: an uploaded clip in; its best segments, animated beside the clip, out; and the
clip's face reenacted along a segment (issue 16, "query by motion").

Choices:
- The upload is written to a private temporary file only for as long as OpenCV reads it (OpenCV decodes video
  from files, not bytes), with a suffix from `CLIP_SUFFIXES` and never under the name the browser sent; the same
  byte limit as photos (`ui.settings.MAX_UPLOAD_BYTES`).
- "Play the query beside its segments": one animated GIF per segment, each frame the clip's sample at that
  moment | the segment's frame, `GIF_FRAME_MS` apart (a GIF loops and needs no player; the video's own pace,
  1 fps, would be too slow to read as motion).
- Reenactment along a segment: the clip's face is the source (`SOURCE_FRAMES` of its crops, spread over the clip:
  the face embedder fuses several views, eq. 1) and each segment frame the driver, as the Reenact page does.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model.data.errors import DataError
from retrieval.motion_query import MotionResult, read_clip, search_motion
from retrieval.search import Retriever
from ui.reenactment import reenact
from ui.settings import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from ui.uploads import upload_name

CLIP_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")
GIF_FRAME_MS = 400
SOURCE_FRAMES = 4


@dataclass(frozen=True)
class MotionAnswer:
    """A clip's best segments with their frames (RGB uint8 crops), ready to show."""

    found: MotionResult
    strips: list[list[np.ndarray]]  # per segment, its frames in order

    def side_by_side_gif(self, row: int) -> bytes:
        """Segment `row` playing beside the clip's samples at the same moments, as a looping GIF."""
        frames = self.strips[row]
        clip = self.found.clip
        picks = np.linspace(0, len(clip.crops) - 1, len(frames)).round().astype(int)  # the clip at each moment
        return animated_gif(
            [np.concatenate([clip.crops[p], _square(f, clip.crops.shape[1])], axis=1) for p, f in zip(picks, frames)]
        )


def run_motion_query(retriever: Retriever, data: bytes, name: str, k: int, *, per_video: int | None) -> MotionAnswer:
    """The `k` segments of indexed videos that move like the uploaded clip (`retrieval.motion_query`)."""
    from retrieval.hit_rules import HitRules

    label = upload_name(name)
    suffix = Path(label).suffix.lower()
    if suffix not in CLIP_SUFFIXES:
        raise DataError(label, f"not a video we read (we read {', '.join(CLIP_SUFFIXES)})")
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(label, f"{len(data) / 2**20:.1f} MB is more than the {MAX_UPLOAD_MB} MB upload limit")
    handle, temporary = tempfile.mkstemp(suffix=suffix, prefix="posedex-clip-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        try:
            clip = read_clip(retriever, Path(temporary))
        except DataError as err:
            raise DataError(label, err.reason) from err  # name the upload, not the temporary file
    finally:
        os.unlink(temporary)
    found = search_motion(retriever, clip, k, rules=HitRules(per_video=per_video))
    return MotionAnswer(found, [retriever.hit_images(retriever.frames(ids)) for ids in found.frame_ids])


def reenact_along(retriever: Retriever, answer: MotionAnswer, row: int) -> bytes:
    """The clip's face in the pose of each frame of segment `row`, as a looping GIF of driver | result."""
    crops = answer.found.clip.crops
    sources = [crops[i] for i in np.linspace(0, len(crops) - 1, min(SOURCE_FRAMES, len(crops))).round().astype(int)]
    result = reenact(retriever.model, sources, answer.strips[row])
    return animated_gif(result.strips())


def animated_gif(frames: list[np.ndarray]) -> bytes:
    """RGB uint8 frames of one size as a looping GIF, `GIF_FRAME_MS` per frame."""
    pictures = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=GIF_FRAME_MS, loop=0)
    return buffer.getvalue()


def _square(img: np.ndarray, size: int) -> np.ndarray:
    """A frame resized to `size` x `size` (indexed frames may be larger than the model's crops)."""
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))
