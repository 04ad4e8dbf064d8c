"""Checkpoints: safetensors weights of the four networks, with the model config as JSON metadata. Never pickle.

A checkpoint is one ``.safetensors`` file: tensors named ``<network>.<parameter>`` (``pose_embedder.encoder.0...``)
and string metadata: ``format``, ``posedex_version``, ``config`` (the whole resolved `Config` as JSON, including
``model.align_corners``, so a model is rebuilt exactly as trained) and whatever the trainer adds (step, metrics).
Writes are atomic: a temporary file in the same folder, fsync, `os.replace`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from model import __version__
from model.config import Config, config_from_dict
from model.data.errors import DataError

FORMAT = "posedex.daegan/1"


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
    """`safetensors` save through a temporary file and `os.replace`: the old file stays whole until the new is."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=dict(metadata))
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_tensors(path: Path, *, expected_format: str, what: str, device: torch.device = torch.device("cpu")
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
