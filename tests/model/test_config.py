"""Typed configs: presets load, unknown keys and bad values are errors naming the file, overrides apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.config import Config, DataConfig, load_config, save_config
from model.data.errors import DataError


@pytest.mark.parametrize("preset, size", [("tiny", 32), ("small", 64), ("paper", 256)])
def test_presets(preset: str, size: int) -> None:
    assert load_config(preset).data.size == size


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  size: 64\n  sizee: 3\n")
    with pytest.raises(DataError, match=r"unknown config key data\.sizee") as err:
        load_config(path)
    assert err.value.path == path


def test_bad_value_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  size: 30\n")
    with pytest.raises(DataError, match="multiple of 4"):
        load_config(path)
    with pytest.raises(DataError, match="no such config file"):
        load_config("nonexistent-preset")
    with pytest.raises(DataError, match=r"loss\.pyramid_levels"):  # at load, not at the first training step
        load_config("tiny", {"data.size": 40, "loss.pyramid_levels": 5})
    with pytest.raises(DataError, match=r"model\.pose_dim must be at least 7"):  # L_Y needs a coordinate per label
        load_config("tiny", {"loss.label_weight": 0.3, "model.pose_dim": 4})
    for bad in ({"loss.label_weight": -0.1}, {"loss.label_scale": 0.0}):
        with pytest.raises(DataError, match=r"loss\.label_"):
            load_config("tiny", bad)
    for share in (1.0, -0.1):  # all-real targets would leave no room for the synthetic frames
        with pytest.raises(DataError, match=r"data\.real_share must be in \[0, 1\)"):
            load_config("tiny", {"data.real_share": share})


def test_overrides_and_round_trip(tmp_path: Path) -> None:
    config = load_config("tiny", {"data.size": 48, "data.num_frames": 3})
    assert config.data == DataConfig(size=48, num_frames=3, fps=1.0, test_fraction=0.25, batch_size=4, workers=0)
    save_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config
    assert isinstance(config, Config)
