"""Package data: the presets and the shipped checkpoint are found through importlib.resources from any folder.

The repository keeps them in configs/ and checkpoints/; pyproject.toml installs those folders as `model.presets`
and `model.checkpoints`. These tests run against the installed package (editable under `make`), so a preset or a
checkpoint that the packaging stops shipping, or a lookup that falls back to the source tree, fails here.
"""

from __future__ import annotations

import filecmp
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

import model
from model.cli_common import resolve_checkpoint
from model.config import load_config
from model.resources import default_checkpoint, preset_file, preset_names

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every lookup runs from a folder outside the repository, as a user's would."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("repo_file", sorted((REPO / "configs").glob("*.yaml")), ids=lambda path: path.stem)
def test_every_preset_resolves(repo_file: Path) -> None:
    shipped = preset_file(repo_file.stem)
    assert shipped.is_file() and filecmp.cmp(shipped, repo_file, shallow=False)


def test_preset_names_and_loading_by_name() -> None:
    assert preset_names() == sorted(path.stem for path in (REPO / "configs").glob("*.yaml"))
    assert load_config("tiny").data.size == 32


def test_default_checkpoint_resolves() -> None:
    shipped = resolve_checkpoint(None)
    assert shipped == default_checkpoint() and shipped.is_absolute()
    assert filecmp.cmp(shipped, REPO / "checkpoints" / "daegan-small.safetensors", shallow=False)


def test_one_version_source() -> None:
    """pyproject.toml takes its version from model.__version__; the installed metadata agrees (not a stale install)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "model.__version__"}
    assert importlib.metadata.version("posedex") == model.__version__
