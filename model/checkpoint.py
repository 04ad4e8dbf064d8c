"""Checkpoints: safetensors weights of the four networks, with the model config as JSON metadata. Never pickle.

A checkpoint is one ``.safetensors`` file: tensors named ``<network>.<parameter>`` (``pose_embedder.encoder.0...``)
and string metadata: ``format``, ``posedex_version``, ``config`` (the whole resolved `Config` as JSON, including
``model.align_corners``, so a model is rebuilt exactly as trained) and whatever the trainer adds (step, metrics,
and ``trained_on``: which collections and identities the weights have seen, `TrainingRecord`).
Writes are atomic and durable (`model.atomic_write.atomic_file`).

Choices for ``trained_on`` (what lets `daegan evaluate` call a collection held out, issue 11):
- Identities are recorded per training collection (its root's resolved folder name and path, and its SynthVox seed
  when ``synthvox.json`` names one): those trained on (after the split) and those the split held out.
- A run started with ``--init`` has also seen what its initial weights saw: their record is merged in, and when
  their checkpoint has none the record says it is incomplete. A resumed run keeps the record its checkpoint holds
  (``--resume`` cannot name ``--init`` again).
- Matching errs toward "seen": identities match by folder name, and only two known, different SynthVox seeds keep
  equal names apart (``sv0003`` of seed 1 is another person than ``sv0003`` of seed 0). An identity whose frames
  lie under none of the roots (a symlinked file) is recorded in a collection without name or seed, which matches
  any collection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from model import __version__
from model.atomic_write import atomic_file
from model.config import Config, config_from_dict
from model.data.errors import DataError
from model.data.synthvox import RECIPE_FILE, Recipe

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "posedex.daegan/1"
TRAINED_ON_KEY = "trained_on"  # metadata key of the `TrainingRecord` (JSON)
TRAINED_WITH_KEY = "trained_with"  # metadata key of the commands that trained the weights (`training_commands`)


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the config it was trained with, each network's state dict, and its metadata."""

    config: Config
    states: dict[str, dict[str, torch.Tensor]]  # network name -> state dict
    metadata: dict[str, str]


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file (what an index records to know which checkpoint built it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_save_tensors(tensors: Mapping[str, torch.Tensor], path: str | Path, metadata: Mapping[str, str]) -> None:
    """`safetensors` save through `atomic_file`: the old file stays whole until the new one is, durably."""
    with atomic_file(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=dict(metadata))


def read_tensors(
    path: Path, *, expected_format: str, what: str, device: torch.device = torch.device("cpu")
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor and the metadata of a safetensors file whose ``format`` metadata is `expected_format`.

    `what` names the kind of file in the `DataError` raised when it is unreadable or of another format.
    """
    try:
        with safe_open(path, framework="pt", device=str(device)) as file:
            metadata = dict(file.metadata() or {})
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(path, f"not a safetensors {what} ({err})") from err
    if metadata.get("format") != expected_format:
        raise DataError(path, f"not a posedex {what} (format {metadata.get('format')!r}, expected {expected_format!r})")
    return tensors, metadata


def save_checkpoint(
    path: str | Path,
    networks: Mapping[str, torch.nn.Module],
    config: Config,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write the networks' weights and the config to one safetensors file, atomically."""
    tensors = {f"{name}.{key}": value for name, net in networks.items() for key, value in net.state_dict().items()}
    meta = {"format": FORMAT, "posedex_version": __version__, "config": json.dumps(dataclasses.asdict(config))}
    atomic_save_tensors(tensors, path, {**meta, **(metadata or {})})


def load_checkpoint(path: str | Path, device: torch.device = torch.device("cpu")) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; a `DataError` names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such checkpoint file")
    tensors, metadata = read_tensors(path, expected_format=FORMAT, what="checkpoint", device=device)
    try:
        config = config_from_dict(json.loads(metadata["config"]), path)
    except (KeyError, json.JSONDecodeError) as err:
        raise DataError(path, "checkpoint metadata holds no readable config") from err
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        network, _, name = key.partition(".")
        states.setdefault(network, {})[name] = tensor
    return Checkpoint(config=config, states=states, metadata=metadata)


@dataclass(frozen=True)
class TrainedCollection:
    """One collection a run trained on, and which of its identities went into training."""

    name: str  # the root's resolved folder name ("" for identities placed under no root)
    path: str  # the root's resolved path on the training machine
    synthvox_seed: int | None  # the seed in its synthvox.json; None for real frames (matches any seed)
    trained: tuple[str, ...]  # identities (folder names) trained on, sorted
    held_out: tuple[str, ...]  # identities the train/test split kept out of training, sorted


@dataclass(frozen=True)
class TrainingRecord:
    """What a checkpoint's weights have seen: `collections`, and whether that is all (`complete`)."""

    collections: tuple[TrainedCollection, ...]
    complete: bool  # False: the run started (--init) from weights whose checkpoint does not say what they saw

    def __post_init__(self) -> None:
        # a run --init from weights that trained on the same collection (the real frames of both runs) says it once
        object.__setattr__(self, "collections", tuple(dict.fromkeys(self.collections)))

    def trained_as(self, identity: str, synthvox_seed: int | None) -> list[str]:
        """Names of the training collections that trained on `identity` of a collection of `synthvox_seed` (None:
        not SynthVox, or not known); empty when none did (module docstring: how names and seeds match)."""
        return [
            c.name
            for c in self.collections
            if identity in c.trained
            and (c.synthvox_seed is None or synthvox_seed is None or c.synthvox_seed == synthvox_seed)
        ]

    def to_json(self) -> str:
        return json.dumps({"collections": [dataclasses.asdict(c) for c in self.collections], "complete": self.complete})


def training_record(
    roots: Sequence[Path], frames: pd.DataFrame, trained: pd.DataFrame, *, init: Path | None = None
) -> str:
    """The ``trained_on`` metadata (JSON) of a run on the collections `roots`: `frames` is their frame table
    (every root's rows, identities unique across roots, absolute ``path`` per row), `trained` its rows trained on;
    `init` the checkpoint whose weights the run started from."""
    resolved = [Path(r).resolve() for r in roots]
    trained_ids = set(trained["identity"])
    trained_of: dict[int, list[str]] = {}
    held_of: dict[int, list[str]] = {}
    firsts = frames.drop_duplicates("identity")
    for identity, path in zip(firsts["identity"], firsts["path"]):
        owner = next((i for i, root in enumerate(resolved) if Path(path).is_relative_to(root)), -1)
        (trained_of if identity in trained_ids else held_of).setdefault(owner, []).append(str(identity))
    owners = sorted(set(trained_of) | set(held_of))
    collections = [
        TrainedCollection(
            resolved[i].name if i >= 0 else "",
            str(resolved[i]) if i >= 0 else "",
            _synthvox_seed(resolved[i]) if i >= 0 else None,
            tuple(sorted(trained_of.get(i, []))),
            tuple(sorted(held_of.get(i, []))),
        )
        for i in owners
    ]
    complete = True
    if init is not None:
        with safe_open(init, framework="pt") as file:
            earlier = trained_on(dict(file.metadata() or {}), source=init)
        collections += list(earlier.collections) if earlier else []
        complete = earlier is not None and earlier.complete
    return TrainingRecord(tuple(collections), complete).to_json()


def training_commands(command: str, earlier: Path | None, *, verb: str = "then") -> str:
    """The ``trained_with`` metadata of a run started by `command`: the commands that trained the weights it
    starts from (`earlier`: the --init checkpoint, or the checkpoint a --resume continues) first, when it names
    them. Written by training itself, so a report's "Trained with" line cannot go stale at shipping time."""
    if earlier is None:
        return command
    with safe_open(earlier, framework="pt") as file:
        before = (file.metadata() or {}).get(TRAINED_WITH_KEY)
    return f"{before}; {verb}: {command}" if before else command


def _synthvox_seed(root: Path) -> int | None:
    """The seed a SynthVox root's synthvox.json names; None when there is no recipe to read (real frames)."""
    try:
        return Recipe.read(root / RECIPE_FILE).seed
    except DataError:
        return None


def trained_on(metadata: Mapping[str, str], *, source: str | Path = "checkpoint") -> TrainingRecord | None:
    """The `TrainingRecord` in a checkpoint's metadata; None when it has none (a checkpoint from before the record:
    what it trained on is unknown). A record that does not parse is a `DataError` naming `source`."""
    text = metadata.get(TRAINED_ON_KEY)
    if text is None:
        return None
    try:
        value = json.loads(text)
        collections = tuple(
            TrainedCollection(
                str(c["name"]),
                str(c["path"]),
                c["synthvox_seed"],
                tuple(map(str, c["trained"])),
                tuple(map(str, c["held_out"])),
            )
            for c in value["collections"]
        )
        return TrainingRecord(collections, bool(value["complete"]))
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(
            Path(source), f"its {TRAINED_ON_KEY} metadata is not a training record ({err.__class__.__name__}: {err})"
        ) from err
