"""Batch-encode frame collections into a pose index, atomically: reader -> encoder -> writer.

- Reader: `FrameReader`, a torch Dataset over the collection's frame rows; each item is one frame loaded,
  centre-cropped to the model's square size (`read_square`) and turned into a `(3, S, S)` tensor in [-1, 1], or a
  marker naming why it could not be read. A `DataLoader` with `workers` processes runs it; `_collate` splits good
  from bad.
- Encoder: `DAEGAN.encode_pose`, one batch at a time, L2-normalised pose codes on the CPU. With `ray=True` reader
  and encoder run on a Ray cluster instead (`indexer.ray_encode`), with the same `read_square`; either way the
  writer receives `EncodedFrames` in the frame table's order, so both give the same ids.
- Writer: one `IndexBuild` of the `Store`. Nothing is visible until its commit; any exception (Ctrl-C included)
  aborts it, so the previous index at `out` stays queryable and consistent (DESIGN.md, "Rules that hold everywhere").

Choices made:

- Stored paths follow `indexer.frame_paths` (relative to the collection root; prefixed by the root's name when a
  build gets several roots; video frames as ``<file>#<frame>``). The build records its roots in the index, so
  readers can show hits. A root the index already records keeps its prefix in later builds and adds, so `index
  add` may be given any subset of the roots; a root that moved is found by its prefix and its new place recorded.
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
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from indexer.frame_paths import stored_path
from indexer.store import Store
from model.checkpoint import file_sha256
from model.daegan import DAEGAN
from model.data.collection import load_frame, scan_collection
from model.data.dataset import to_square, to_tensor
from model.data.errors import DataError
from model.device import pick_device


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


@dataclass(frozen=True)
class EncodedFrames:
    """One batch of a build's frames encoded, by position in its frame table (ascending)."""

    rows: list[int]  # positions of the frames encoded
    codes: np.ndarray | None  # (len(rows), pose_dim) unit pose codes; None when no frame of the batch was good
    width: list[int]  # each encoded frame's size as read, before cropping
    height: list[int]
    bad: list[tuple[int, str]] = field(default_factory=list)  # (position, reason) of the frames that could not be read


def read_square(file: str, frame: int, size: int) -> tuple[np.ndarray | None, int, int, str]:
    """Frame `frame` of `file` centre-cropped to RGB uint8 `(size, size, 3)`, its width and height as read, and "";
    or (None, 0, 0, reason) when it cannot be read. The one reading rule of local and Ray builds alike."""
    try:
        img = load_frame(file, frame)
        height, width = img.shape[:2]
        return to_square(img, size), width, height, ""
    except DataError as err:
        return None, 0, 0, err.reason
    except (OSError, ValueError, cv2.error) as err:  # anything else a damaged file can raise while decoding
        return None, 0, 0, f"cannot read the frame ({type(err).__name__}: {err})"


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
        square, width, height, reason = read_square(self.files[i], self.frames[i], self.size)
        return i, None if square is None else to_tensor(square), width, height, reason


def _collate(items: list[tuple[int, torch.Tensor | None, int, int, str]]) -> dict:
    good = [item for item in items if item[1] is not None]
    return {
        "rows": [item[0] for item in good],
        "images": torch.stack([item[1] for item in good]) if good else None,  # (B, 3, S, S)
        "width": [item[2] for item in good],
        "height": [item[3] for item in good],
        "bad": [(item[0], item[4]) for item in items if item[1] is None],
    }


def root_prefixes(roots: Sequence[Path] | Path, recorded: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """{prefix: resolved folder} for the roots of one build, given the roots the index records ({} or None: none).

    A recorded folder keeps its prefix; on a first build a lone root gets "" and several get their folder names;
    a root new to an index that has roots gets its folder name. A name clash is a `DataError` naming the root.
    """
    roots = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    if not roots:
        raise ValueError("give at least one collection root")
    recorded = {prefix: Path(path) for prefix, path in (recorded or {}).items()}
    by_folder = {path: prefix for prefix, path in recorded.items()}
    prefixes: dict[str, Path] = {}
    for root in roots:
        folder = root.resolve()
        if folder in by_folder:
            prefix = by_folder[folder]
        elif not recorded and len(roots) == 1:
            prefix = ""
        else:
            prefix = folder.name
            if prefix in recorded:
                raise DataError(
                    root,
                    f"the index already holds a root named {prefix!r} at {recorded[prefix]}; "
                    "stored paths would clash (rename or link one)",
                )
        if prefix in prefixes:
            raise DataError(root, "several roots share this folder name; stored paths would clash (rename or link one)")
        prefixes[prefix] = folder
    return prefixes


def scan_roots(roots: Mapping[str, Path], *, fps: float = 1.0) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Every frame of the roots {prefix: folder} as index rows (path stored as `indexer.frame_paths` says, plus
    `file`: the absolute file to read) and the files the scans skipped, (file, reason)."""
    tables, skipped = [], []
    for prefix, root in roots.items():
        scan = scan_collection(root, fps=fps)
        frames = scan.frames
        table = pd.DataFrame(
            {
                "path": [stored_path(prefix, root, Path(p), f) for p, f in zip(frames["path"], frames["frame"])],
                "identity": frames["identity"].astype(str),
                "video": frames["video"].astype(str),
                "frame": frames["frame"].astype(int),
                "time_s": frames["time"].astype(float),
                "file": frames["path"].astype(str),
            }
        )
        tables.append(table)
        skipped += [(str(path), reason) for path, reason in scan.skipped]
    return pd.concat(tables, ignore_index=True), skipped


def build_index(
    roots: Sequence[Path] | Path,
    checkpoint: Path,
    out: Path,
    *,
    batch_size: int = 64,
    workers: int = 2,
    device: str | torch.device = "auto",
    index_type: str = "flat",
    fps: float = 1.0,
    progress: bool = True,
    ray: bool = False,
    ray_address: str | None = None,
) -> BuildSummary:
    """Encode every frame of the collection `roots` with the model at `checkpoint` into the index at `out`.

    `out` is created when it does not exist (dim: the model's pose_dim; checkpoint: its sha256). An existing index
    gets the frames as a new build; it must come from the same checkpoint and hold none of their paths.
    `ray` (or a `ray_address`: "auto", "ray://HEAD:10001") reads and encodes on a Ray cluster
    (`indexer.ray_encode`; `workers` and `device` are then the cluster's to choose); the writer stays here.
    """
    return _run(
        roots,
        Path(checkpoint),
        Path(out),
        only_new=False,
        batch_size=batch_size,
        workers=workers,
        device=device,
        index_type=index_type,
        fps=fps,
        progress=progress,
        ray=ray or ray_address is not None,
        ray_address=ray_address,
    )


def add_to_index(
    roots: Sequence[Path] | Path,
    index_dir: Path,
    checkpoint: Path,
    *,
    batch_size: int = 64,
    workers: int = 2,
    device: str | torch.device = "auto",
    fps: float = 1.0,
    progress: bool = True,
    ray: bool = False,
    ray_address: str | None = None,
) -> BuildSummary:
    """Encode only the frames of `roots` whose stored paths the index at `index_dir` lacks, as one new build.

    `checkpoint` must be the one the index was built with (same sha256), else a `DataError`. `ray` and
    `ray_address` as for `build_index`.
    """
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        raise DataError(index_dir, "no such index folder (make one with `index build`)")
    return _run(
        roots,
        Path(checkpoint),
        index_dir,
        only_new=True,
        batch_size=batch_size,
        workers=workers,
        device=device,
        index_type="flat",
        fps=fps,
        progress=progress,
        ray=ray or ray_address is not None,
        ray_address=ray_address,
    )


def _run(
    roots,
    checkpoint: Path,
    out: Path,
    *,
    only_new: bool,
    batch_size: int,
    workers: int,
    device: str | torch.device,
    index_type: str,
    fps: float,
    progress: bool,
    ray: bool,
    ray_address: str | None,
) -> BuildSummary:
    if batch_size < 1 or workers < 0:
        raise ValueError(f"batch_size must be >= 1 and workers >= 0, got {batch_size}, {workers}")
    started = time.perf_counter()
    device = pick_device(device) if isinstance(device, str) else device
    if ray:
        device = torch.device("cpu")  # the driver's model only tells size and dim; the cluster's encoders encode
    root_prefixes(roots)  # bad roots are refused before anything is made
    if not checkpoint.is_file():
        raise DataError(checkpoint, "no such checkpoint file" if not checkpoint.exists() else "not a file")
    sha = file_sha256(checkpoint)
    model = DAEGAN.from_checkpoint(checkpoint, device)
    created = not out.exists()
    store = (
        Store.create(out, dim=model.pose_dim, checkpoint_sha256=sha, index_type=index_type)
        if created
        else Store.open(out, readonly=False)
    )
    try:
        if store.checkpoint_sha256 != sha:
            raise DataError(
                checkpoint,
                f"sha256 {sha[:12]} differs from the checkpoint {out} was built with "
                f"({store.checkpoint_sha256[:12]}); use that checkpoint or a new index",
            )
        if store.dim != model.pose_dim:
            raise DataError(checkpoint, f"pose codes of dim {model.pose_dim}, but {out} holds dim {store.dim}")
        prefixes = root_prefixes(roots, store.roots())
        rows, skipped = scan_roots(prefixes, fps=fps)
        existing = store.paths()
        known = rows["path"].isin(existing)
        if known.any() and not only_new:
            raise DataError(
                out,
                f"already holds {int(known.sum())} of these frames "
                f"(e.g. {rows['path'][known].iloc[0]}); use `index add` to add only new ones",
            )
        todo = rows[~known].reset_index(drop=True)
        if ray:
            from indexer.ray_encode import encode_with_ray  # Ray is imported only when a build asks for it

            batches = encode_with_ray(
                todo["file"].tolist(),
                todo["frame"].tolist(),
                checkpoint,
                size=model.size,
                batch_size=batch_size,
                address=ray_address,
            )
        else:
            batches = _encode_locally(todo, model, device, batch_size, workers)
        try:
            added, bad = _write(store, todo, batches, prefixes, skipped, progress)
        finally:
            batches.close()  # a Ray instance the encoder started is shut down even when the writer fails
    except BaseException:
        store.close()
        if created:
            shutil.rmtree(out, ignore_errors=True)  # a failed first build leaves no index behind
        raise
    store.close()
    return BuildSummary(
        index_dir=out,
        added=added,
        skipped=[*skipped, *bad],
        already_indexed=int(known.sum()),
        seconds=time.perf_counter() - started,
    )


def _encode_locally(
    rows: pd.DataFrame, model: DAEGAN, device: torch.device, batch_size: int, workers: int
) -> Generator[EncodedFrames]:
    """Reader -> encoder in this process: a `DataLoader` of `workers` reading processes, `encode_pose` on `device`."""
    reader = FrameReader(rows["file"].tolist(), rows["frame"].tolist(), model.size)
    loader = DataLoader(
        reader,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )
    for batch in loader:
        codes = model.encode_pose(batch["images"]).numpy() if batch["rows"] else None  # (B, pose_dim), unit rows
        yield EncodedFrames(
            rows=batch["rows"], codes=codes, width=batch["width"], height=batch["height"], bad=batch["bad"]
        )


def _write(
    store: Store,
    rows: pd.DataFrame,
    batches: Iterator[EncodedFrames],
    roots: Mapping[str, Path],
    scan_skipped: list[tuple[str, str]],
    progress: bool,
) -> tuple[int, list[tuple[str, str]]]:
    """The writer: every batch of `rows` into one build of `store`, committed at the end; returns (frames added,
    frames skipped)."""
    bad: list[tuple[str, str]] = []
    with (
        store.start_build(roots=roots) as build,
        tqdm(total=len(rows), unit="frame", desc="encoding", disable=not progress, dynamic_ncols=True) as bar,
    ):
        for path, reason in scan_skipped:
            build.skip(path, reason)
        for batch in batches:
            for i, reason in batch.bad:
                bad.append((rows["file"].iat[i], reason))
                build.skip(rows["file"].iat[i], reason)
            if batch.rows:
                part = rows.iloc[batch.rows].drop(columns="file").assign(width=batch.width, height=batch.height)
                build.add(part, batch.codes)
            bar.update(len(batch.rows) + len(batch.bad))
        added = build.commit()
    return added, bad
