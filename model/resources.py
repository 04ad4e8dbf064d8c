"""Where the files that ship inside the package are: the config presets and the default checkpoint.

In the repository they stay at the root, where people, the README and the Makefile find them (``configs/*.yaml``,
``checkpoints/daegan-small.safetensors``); pyproject.toml's ``package-dir`` installs those folders as the packages
``model.presets`` and ``model.checkpoints``. Looking them up through importlib.resources therefore finds the same
files from a source checkout's editable install and from a wheel installed anywhere, whatever the working folder.

Choices made:

- Answers are `pathlib.Path`s, not importlib Traversables: safetensors memory-maps the checkpoint and the index
  hashes it, both of which need a file on disk. pip unpacks every wheel, so a file on disk is what an install
  gives; a zipped import (a zipapp, say) is refused with a clear error instead of a silent copy to a temporary file.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

PRESETS_PACKAGE = "model.presets"  # configs/ in the repository
CHECKPOINTS_PACKAGE = "model.checkpoints"  # checkpoints/ in the repository
DEFAULT_CHECKPOINT_NAME = "daegan-small.safetensors"  # the `index` commands' default --checkpoint


def _package_folder(package: str) -> Path:
    """The folder that holds `package`'s data files, as a path on disk."""
    folder = importlib.resources.files(package)
    if not isinstance(folder, Path):
        raise RuntimeError(f"{package} is not on disk ({folder!r}); install posedex with pip, unzipped")
    return folder


def preset_file(name: str) -> Path:
    """The YAML file of the preset called `name` (``tiny``, ``small``, ...); it may not exist."""
    return _package_folder(PRESETS_PACKAGE) / f"{name}.yaml"


def preset_names() -> list[str]:
    """The names of the shipped presets, sorted."""
    return sorted(path.stem for path in _package_folder(PRESETS_PACKAGE).glob("*.yaml"))


def default_checkpoint() -> Path:
    """The shipped checkpoint's file; it may not exist (a checkout where it was not committed)."""
    return _package_folder(CHECKPOINTS_PACKAGE) / DEFAULT_CHECKPOINT_NAME
