"""From files to a report folder: load the checkpoint, the collections and the optional Inception weights,
evaluate, make the pictures, write report.md, metrics.json and the PNGs. `daegan evaluate` is a thin wrapper around
`evaluate_files`. The checkpoint's training record is read first: a collection it partly trained on is read without
the identities it saw (`settings.held_out_only`; `provenance`)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytorch_msssim  # noqa: F401  the eval extra's SSIM and probes: missing, `daegan evaluate` fails at once,
import sklearn  # noqa: F401  not minutes into a run (dlib, also in the extra, is optional: see landmarks.py)
import torch

from model import __version__
from model.checkpoint import trained_on
from model.daegan import DAEGAN
from model.data.errors import DataError
from model.evaluation.evaluate import Evaluation, evaluate
from model.evaluation.fid import load_inception
from model.evaluation.frames import load_collection
from model.evaluation.metrics_file import CheckpointInfo, EvaluationHeader
from model.evaluation.picture_pass import make_pictures
from model.evaluation.report import write_report
from model.evaluation.settings import EvaluationSettings

CHECKPOINT_KEYS = ("step", "stage", "trained_with")  # checkpoint metadata the report repeats


def load_model(path: Path, device: torch.device) -> tuple[DAEGAN, str]:
    """The checkpoint at `path` loaded, with the sha256 of the very bytes loaded. The file is hashed before and after
    the load; a file replaced in between (a training run writing its checkpoint there) is a `DataError`. The digest
    is taken now, not when the report is written minutes later, by which time the file may hold other weights."""
    before = _sha256(path) if path.is_file() else None  # a missing file: from_checkpoint names the error
    model = DAEGAN.from_checkpoint(path, device)
    if _sha256(path) != before:
        raise DataError(path, "the checkpoint changed while it was read (is a run writing it?): evaluate a copy")
    return model, before


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checkpoint_header(path: Path, model: DAEGAN, digest: str) -> CheckpointInfo:
    """Who was evaluated: file, the hash of the bytes loaded (`load_model`), sizes and the training provenance the
    checkpoint carries."""
    return CheckpointInfo(
        str(path),
        digest,
        model.size,
        model.pose_dim,
        **{k: model.metadata[k] for k in CHECKPOINT_KEYS if k in model.metadata},
    )


def evaluate_files(
    checkpoint: str | Path,
    data_roots: list[str | Path],
    out: str | Path,
    *,
    settings: EvaluationSettings,
    inception_weights: str | Path | None = None,
    renderer: str | None = None,
    device: torch.device = torch.device("cpu"),
    command: str = "",
    progress: bool = True,
) -> tuple[Path, Evaluation]:
    """Evaluate `checkpoint` on the collections `data_roots` into the folder `out`; returns report.md's path and
    the evaluation. Bad input (missing folders, half-labelled collections, unreadable weights) is a `DataError`
    raised before any long work starts."""
    checkpoint = Path(checkpoint)
    if not data_roots:
        raise DataError(Path("."), "no collection given (--data)")
    model, digest = load_model(checkpoint, device)
    record = trained_on(model.metadata, source=checkpoint)
    inception = load_inception(inception_weights, device) if inception_weights is not None else None
    names = unique_names([Path(r) for r in data_roots])
    collections = [
        load_collection(
            root,
            size=model.size,
            fps=model.config.data.fps,
            max_frames=settings.max_frames,
            seed=settings.seed,
            name=name,
            training=record,
            held_out_only=settings.held_out_only,
            progress=progress,
        )
        for root, name in zip(data_roots, names)
    ]
    evaluation = evaluate(model, collections, settings, inception=inception, renderer=renderer, progress=progress)
    pictures = make_pictures(model, collections, evaluation, settings)
    header = EvaluationHeader(
        __version__,
        checkpoint_header(checkpoint, model, digest),
        settings,
        str(inception_weights) if inception_weights is not None else None,
        command,
    )
    return write_report(evaluation.metrics, pictures, out, header=header), evaluation


def unique_names(roots: list[Path]) -> list[str]:
    """Each root's folder name, numbered where two roots share one."""
    names = [r.resolve().name or "collection" for r in roots]
    counts, seen = Counter(names), Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(f"{name}{seen[name]}" if counts[name] > 1 else name)
    return out
