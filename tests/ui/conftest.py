"""Shared fixtures of the UI tests: a tiny index built as `index build` builds it, and photos to upload."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data
from streamlit.testing.v1 import AppTest

from indexer.build import build_index
from model.data.synthvox import synthesize
from tests.retrieval.conftest import save_tiny_model
from ui.server import APP
from ui.settings import AppConfig

APP_TIMEOUT = 60  # seconds one AppTest rerun may take (the first loads the model)


def png_bytes(img: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def ui_index(tmp_path_factory) -> AppConfig:
    """A tiny SynthVox collection (3 identities x 2 videos x 4 frames, 32 px), a tiny model and its index."""
    tmp = tmp_path_factory.mktemp("ui")
    root = tmp / "synthvox"
    synthesize(root, identities=3, videos_per_identity=2, frames=4, size=32, seed=0, workers=1, progress=False)
    checkpoint = save_tiny_model(tmp / "tiny.safetensors", seed=0)
    build_index(root, checkpoint, tmp / "index", workers=0, device="cpu", progress=False)
    return AppConfig(tmp / "index", checkpoint, "cpu")


@pytest.fixture(scope="session")
def photo() -> bytes:
    """A real photo with one face (scikit-image's astronaut) as PNG bytes, as a browser uploads it."""
    return png_bytes(data.astronaut())


@pytest.fixture(scope="session")
def photo_file(tmp_path_factory, photo: bytes) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    path.write_bytes(photo)
    return path


@pytest.fixture
def app(ui_index: AppConfig, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app over the tiny index, after its first run (the Query page, nothing uploaded)."""
    for name, value in ui_index.to_env().items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT).run()
    assert not at.exception, at.exception
    return at
