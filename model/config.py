"""Typed configuration: frozen dataclasses are the truth; YAML presets in ``configs/`` fill them.

Presets are read with ``yaml.safe_load``; an unknown key is an error naming the file and the key; overrides from
the command line replace single fields (``data.size=64``); the resolved config is written into a run directory so
a run can be repeated exactly. Each field cites the paper where the paper sets it and says why where it is silent.
Later issues add the network and training sections beside ``data``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from model.data.errors import DataError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class DataConfig:
    """What the networks are fed."""

    size: int = 256  # frame side in pixels; paper sec. 4 "Datasets": 256x256 face crops
    num_frames: int = 8  # K frames fused into the embedded face (eq. 1); paper silent: 8 keeps a 1-fps video's variety
    fps: float = 1.0  # sampling rate of video layouts; paper sec. 4: frames extracted at 1 fps
    test_fraction: float = 0.1  # identities held out where no official split exists; paper uses VoxCeleb1's split
    batch_size: int = 16  # paper silent (2 GPUs); 16 fits one 24 GB card at 256 px
    workers: int = 4  # DataLoader worker processes decoding frames
    seed: int = 0  # source-frame draws and the seeded split

    def __post_init__(self) -> None:
        if self.size < 8 or self.size % 4:
            raise ValueError(f"data.size must be a multiple of 4 and >= 8 (the pose warp is at size/4), got {self.size}")
        if self.num_frames < 1:
            raise ValueError(f"data.num_frames must be >= 1, got {self.num_frames}")
        if self.batch_size < 1 or self.workers < 0 or self.fps < 0:
            raise ValueError("data.batch_size must be >= 1, data.workers >= 0 and data.fps >= 0")


@dataclass(frozen=True)
class Config:
    """A whole posedex configuration."""

    data: DataConfig = field(default_factory=DataConfig)


def _build(cls: type, values: dict[str, Any], where: str, source: Path) -> Any:
    """Instantiate a (nested) config dataclass from a mapping, rejecting unknown keys."""
    if not isinstance(values, dict):
        raise DataError(source, f"{where or 'config'} must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DataError(source, f"unknown config key {where + '.' if where else ''}{unknown[0]}")
    kwargs = {}
    for name, value in values.items():
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}".lstrip("."), source)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise DataError(source, str(err)) from err


def preset_path(name_or_path: str | Path) -> Path:
    """A preset name (``tiny``, ``small``, ``paper``) or a YAML file path, as a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return PRESETS_DIR / f"{name_or_path}.yaml"


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load a preset or YAML file, then apply dotted overrides such as ``{"data.size": 64}``."""
    path = preset_path(name_or_path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as err:
        raise DataError(path, "no such config file (presets: tiny, small, paper)") from err
    except (OSError, yaml.YAMLError) as err:
        raise DataError(path, f"cannot read config ({err.__class__.__name__})") from err
    if not isinstance(values, dict):
        raise DataError(path, "a config file must be a YAML mapping")
    for dotted, value in (overrides or {}).items():
        *parents, leaf = dotted.split(".")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return _build(Config, values, "", path)


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (what a run actually used)."""
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
