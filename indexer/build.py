"""Batch-encode frame collections into a pose index, atomically: reader -> encoder -> writer.

- Reader: `FrameReader`, a torch Dataset over the collection's frame rows; each item is one frame loaded,
  centre-cropped to the model's square size and turned into a `(3, S, S)` tensor in [-1, 1], or a marker naming
  why it could not be read. A `DataLoader` with `workers` processes runs it; `_collate` splits good from bad.
- Encoder: `DAEGAN.encode_pose`, one batch at a time, L2-normalised pose codes on the CPU.
- Writer: one `IndexBuild` of the `Store`. Nothing is visible until its commit; any exception (Ctrl-C included)
  aborts it, so the previous index at `out` stays queryable and consistent (DESIGN.md, "Rules that hold everywhere").

Choices made:

- Stored paths (the `path` column of a frame row) are POSIX paths relative to the collection root. With several
  roots in one call, each is prefixed by its root's folder name (``<root name>/<relative path>``; the names must
  differ), so paths stay unique and `resolve_frame` finds the file given the same roots. `add_to_index` applies the
  same rule: give it roots the way the build got them.
- A frame of a video file is stored as ``<relative video path>#<frame number>``: every frame row needs a unique
  path, and the number is what `load_frame` takes.
- Bad frames (unreadable images or video frames) and unreadable videos found by the scan are skipped and listed
  (in the summary and in the build's record); they never abort a build.
- `build_index` into an existing index appends the collection as a new build; it refuses (before encoding
  anything) when any of its paths is already indexed: `add_to_index` is the command that adds only what is new.
  Both refuse an index made with another checkpoint (different sha256).
- A first build that fails removes the index folder it created, so a failed `index build` leaves nothing behind.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from indexer.store import Store
from model.checkpoint import file_sha256
from model.daegan import DAEGAN
from model.data.collection import load_frame, scan_collection
from model.data.dataset import to_square, to_tensor
from model.data.errors import DataError
from model.data.video import VIDEO_SUFFIXES
from model.device import pick_device

VIDEO_FRAME_SEPARATOR = "#"


@dataclass(frozen=True)
class BuildSummary:
    """What a build or an add did."""

    index_dir: Path
    added: int  # frames encoded and committed
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) for every frame left out
    already_indexed: int = 0  # frames of the roots the index held before (add_to_index only)
    seconds: float = 0.0

    @property
    def frames_per_s(self) -> float:
        return self.added / self.seconds if self.seconds > 0 else 0.0


def stored_path(root_prefix: str, root: Path, path: Path, frame: int) -> str:
    """The `path` a frame row stores for file `path` (absolute, under `root`) and frame number `frame`."""
    relative = Path(path).relative_to(Path(root).resolve()).as_posix()  # collection paths are resolved
    if Path(path).suffix.lower() in VIDEO_SUFFIXES:
        relative = f"{relative}{VIDEO_FRAME_SEPARATOR}{int(frame)}"
    return f"{root_prefix}/{relative}" if root_prefix else relative


def resolve_frame(stored: str, roots: Sequence[Path] | Path) -> tuple[Path, int]:
    """The file and frame number (for `load_frame`) of a stored path, given the roots the index was built from."""
    roots = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    relative, frame = stored, 0
    head, sep, tail = stored.rpartition(VIDEO_FRAME_SEPARATOR)
    if sep and tail.isdigit() and Path(head).suffix.lower() in VIDEO_SUFFIXES:
        relative, frame = head, int(tail)
    if len(roots) == 1:
        return roots[0] / relative, frame
    prefix, _, rest = relative.partition("/")
    for root in roots:
        if root.name == prefix:
            return root / rest, frame
    raise DataError(Path(stored), f"names no root among {[r.name for r in roots]}")


class FrameReader(Dataset):
    """Item i: (i, tensor (3, S, S) in [-1, 1], width, height, "") or (i, None, 0, 0, reason) for a bad frame."""

    def __init__(self, files: Sequence[str], frames: Sequence[int], size: int) -> None:
        assert len(files) == len(frames)
        self.files = list(files)
        self.frames = [int(f) for f in frames]
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, int, int, str]:
        try:
            img = load_frame(self.files[i], self.frames[i])
            height, width = img.shape[:2]
            return i, to_tensor(to_square(img, self.size)), width, height, ""
        except DataError as err:
            return i, None, 0, 0, err.reason
        except (OSError, ValueError, cv2.error) as err:  # anything else a damaged file can raise while decoding
            return i, None, 0, 0, f"cannot read the frame ({type(err).__name__}: {err})"


def _collate(items: list[tuple[int, torch.Tensor | None, int, int, str]]) -> dict:
    good = [item for item in items if item[1] is not None]
    return {"rows": [item[0] for item in good],
            "images": torch.stack([item[1] for item in good]) if good else None,  # (B, 3, S, S)
            "width": [item[2] for item in good], "height": [item[3] for item in good],
            "bad": [(item[0], item[4]) for item in items if item[1] is None]}


def _as_roots(roots: Sequence[Path] | Path) -> list[Path]:
    roots = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    if not roots:
        raise ValueError("give at least one collection root")
    names = [r.resolve().name for r in roots]
    if len(roots) > 1 and len(set(names)) < len(names):
        raise DataError(roots[names.index(next(n for n in names if names.count(n) > 1))],
                        "several roots share this folder name; stored paths would clash (rename or link one)")
    return roots


def scan_roots(roots: Sequence[Path] | Path, *, fps: float = 1.0) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Every frame of the roots as index rows (path stored as the module docstring says, plus `file`: the
    absolute file to read) and the files the scans skipped, (file, reason)."""
    roots = _as_roots(roots)
    tables, skipped = [], []
    for root in roots:
        scan = scan_collection(root, fps=fps)
        prefix = root.resolve().name if len(roots) > 1 else ""
        frames = scan.frames
        table = pd.DataFrame({
            "path": [stored_path(prefix, root, Path(p), f) for p, f in zip(frames["path"], frames["frame"])],
            "identity": frames["identity"].astype(str), "video": frames["video"].astype(str),
            "frame": frames["frame"].astype(int), "time_s": frames["time"].astype(float),
            "file": frames["path"].astype(str)})
        tables.append(table)
        skipped += [(str(path), reason) for path, reason in scan.skipped]
    return pd.concat(tables, ignore_index=True), skipped


def build_index(roots: Sequence[Path] | Path, checkpoint: Path, out: Path, *, batch_size: int = 64,
                workers: int = 2, device: str | torch.device = "auto", index_type: str = "flat", fps: float = 1.0,
                progress: bool = True) -> BuildSummary:
    """Encode every frame of the collection `roots` with the model at `checkpoint` into the index at `out`.

    `out` is created when it does not exist (dim: the model's pose_dim; checkpoint: its sha256). An existing index
    gets the frames as a new build; it must come from the same checkpoint and hold none of their paths.
    """
    return _run(roots, Path(checkpoint), Path(out), only_new=False, batch_size=batch_size, workers=workers,
                device=device, index_type=index_type, fps=fps, progress=progress)


def add_to_index(roots: Sequence[Path] | Path, index_dir: Path, checkpoint: Path, *, batch_size: int = 64,
                 workers: int = 2, device: str | torch.device = "auto", fps: float = 1.0,
                 progress: bool = True) -> BuildSummary:
    """Encode only the frames of `roots` whose stored paths the index at `index_dir` lacks, as one new build.

    `checkpoint` must be the one the index was built with (same sha256), else a `DataError`.
    """
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        raise DataError(index_dir, "no such index folder (make one with `index build`)")
    return _run(roots, Path(checkpoint), index_dir, only_new=True, batch_size=batch_size, workers=workers,
                device=device, index_type="flat", fps=fps, progress=progress)


def _run(roots, checkpoint: Path, out: Path, *, only_new: bool, batch_size: int, workers: int,
         device: str | torch.device, index_type: str, fps: float, progress: bool) -> BuildSummary:
    if batch_size < 1 or workers < 0:
        raise ValueError(f"batch_size must be >= 1 and workers >= 0, got {batch_size}, {workers}")
    started = time.perf_counter()
    device = pick_device(device) if isinstance(device, str) else device
    rows, skipped = scan_roots(roots, fps=fps)
    if not checkpoint.is_file():
        raise DataError(checkpoint, "no such checkpoint file" if not checkpoint.exists() else "not a file")
    sha = file_sha256(checkpoint)
    model = DAEGAN.from_checkpoint(checkpoint, device)
    created = not out.exists()
    store = (Store.create(out, dim=model.pose_dim, checkpoint_sha256=sha, index_type=index_type) if created
             else Store.open(out, readonly=False))
    try:
        if store.checkpoint_sha256 != sha:
            raise DataError(checkpoint, f"sha256 {sha[:12]} differs from the checkpoint {out} was built with "
                                        f"({store.checkpoint_sha256[:12]}); use that checkpoint or a new index")
        if store.dim != model.pose_dim:
            raise DataError(checkpoint, f"pose codes of dim {model.pose_dim}, but {out} holds dim {store.dim}")
        existing = store.paths()
        known = rows["path"].isin(existing)
        if known.any() and not only_new:
            raise DataError(out, f"already holds {int(known.sum())} of these frames "
                                 f"(e.g. {rows['path'][known].iloc[0]}); use `index add` to add only new ones")
        todo = rows[~known].reset_index(drop=True)
        added, bad = _encode_into(store, todo, skipped, model, device, batch_size, workers, progress)
    except BaseException:
        store.close()
        if created:
            shutil.rmtree(out, ignore_errors=True)  # a failed first build leaves no index behind
        raise
    store.close()
    return BuildSummary(index_dir=out, added=added, skipped=[*skipped, *bad], already_indexed=int(known.sum()),
                        seconds=time.perf_counter() - started)


def _encode_into(store: Store, rows: pd.DataFrame, scan_skipped: list[tuple[str, str]], model: DAEGAN,
                 device: torch.device, batch_size: int, workers: int,
                 progress: bool) -> tuple[int, list[tuple[str, str]]]:
    """Reader -> encoder -> writer for `rows`, as one build of `store`; returns (frames added, frames skipped)."""
    reader = FrameReader(rows["file"].tolist(), rows["frame"].tolist(), model.size)
    loader = DataLoader(reader, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
                        pin_memory=device.type == "cuda")
    bad: list[tuple[str, str]] = []
    with store.start_build() as build, tqdm(total=len(reader), unit="frame", desc="encoding", disable=not progress,
                                            dynamic_ncols=True) as bar:
        for path, reason in scan_skipped:
            build.skip(path, reason)
        for batch in loader:
            for i, reason in batch["bad"]:
                bad.append((rows["file"].iat[i], reason))
                build.skip(rows["file"].iat[i], reason)
            if batch["rows"]:
                codes = model.encode_pose(batch["images"]).numpy()  # (B, pose_dim), unit rows
                part = rows.iloc[batch["rows"]].drop(columns="file").assign(width=batch["width"],
                                                                            height=batch["height"])
                build.add(part, codes)
            bar.update(len(batch["rows"]) + len(batch["bad"]))
        added = build.commit()
    return added, bad
