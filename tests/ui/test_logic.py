"""The UI's pure parts: safe upload decoding, the pose map's PCA, best-source choice, queries, launch settings."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model.data.errors import DataError
from model.reenact import OUTPUT_SIZE
from retrieval.search import Retriever
from tests.ui.conftest import png_bytes
from ui import uploads
from ui.browse import spread
from ui.pose_map import SELECTION, pca_2d, sample_ids, selected_id
from ui.query import run_query
from ui.reenactment import nearest_sources, reenact, reenact_best_source
from ui.server import streamlit_command
from ui.settings import ENV_INDEX, MAX_UPLOAD_MB, AppConfig


@pytest.fixture(scope="module")
def retriever(ui_index: AppConfig):
    with Retriever(ui_index.index_dir, ui_index.checkpoint, device="cpu") as r:
        yield r


def test_uploads_decode_in_memory_and_are_labelled_by_their_bare_name() -> None:
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(uploads.decode_upload(png_bytes(img), "a.png"), img)
    with pytest.raises(DataError, match="empty file") as err:
        uploads.decode_upload(b"", "../../etc/passwd")
    assert str(err.value.path) == "passwd"  # a label only: folders a browser sends are dropped, nothing is opened
    assert uploads.upload_name("C:\\Users\\me\\photo.jpg") == "photo.jpg"
    assert uploads.friendly(DataError("we`ird_name.png", "no face found")) == (
        "Could not use `we'ird_name.png`: no face found. Try another picture."
    )


def test_uploads_are_bounded_in_pixels_before_decoding_and_by_pillows_bomb_guard(monkeypatch) -> None:
    picture = png_bytes(np.zeros((100, 120, 3), np.uint8))
    monkeypatch.setattr(uploads, "MAX_UPLOAD_PIXELS", 100 * 120 - 1)
    with pytest.raises(DataError, match=r"image too large: 120x100 pixels, more than 11,999"):
        uploads.decode_upload(picture, "big.png")
    monkeypatch.setattr(uploads, "MAX_UPLOAD_PIXELS", 10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's own guard still applies
    with pytest.raises(DataError, match="too large to decode safely"):
        uploads.decode_upload(picture, "bomb.png")


def test_pca_2d_finds_the_two_directions_of_largest_variance() -> None:
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((500, 2)) * [5.0, 2.0]  # variances 25 and 4 along two known axes
    basis = np.linalg.qr(rng.standard_normal((16, 16)))[0][:, :2]  # (16, 2) orthonormal
    vectors = (latent @ basis.T + 0.01 * rng.standard_normal((500, 16)) + 3.0).astype(np.float32)
    xy, explained = pca_2d(vectors)
    assert xy.shape == (500, 2) and xy.dtype == np.float32
    for axis in range(2):  # each component recovers one latent axis, up to sign
        assert abs(np.corrcoef(xy[:, axis], latent[:, axis])[0, 1]) > 0.999
    assert explained[0] == pytest.approx(25 / 29, abs=0.03) and explained[1] == pytest.approx(4 / 29, abs=0.03)
    np.testing.assert_allclose(xy.mean(axis=0), 0, atol=1e-4)  # centred
    again, _ = pca_2d(vectors[::-1].copy())  # the same points in another order: the same map
    np.testing.assert_allclose(again[::-1], xy, atol=1e-4)
    one, explained = pca_2d(vectors[:1])
    assert one.tolist() == [[0.0, 0.0]] and explained.tolist() == [0.0, 0.0]


def test_the_map_samples_large_indexes_and_reads_clicks() -> None:
    ids = np.arange(10, 30)
    assert sample_ids(ids, limit=50) is ids
    sample = sample_ids(ids, limit=5, seed=1)
    assert len(sample) == 5 and set(sample) <= set(ids) and list(sample) == sorted(sample)
    assert np.array_equal(sample, sample_ids(ids, limit=5, seed=1))
    assert selected_id({SELECTION: [{"id": 17}]}) == 17
    assert selected_id({SELECTION: []}) is None and selected_id({}) is None


def test_spread_picks_frames_evenly_over_a_video() -> None:
    assert spread(4, 32) == [0, 10, 21, 31]
    assert spread(8, 3) == [0, 1, 2] and spread(1, 5) == [0] and spread(3, 0) == []


def test_nearest_sources_is_the_most_cosine_similar() -> None:
    sources = np.eye(3, dtype=np.float32)
    drivers = np.array([[0.1, 0.9, 0.0], [0.0, 0.2, 0.98], [0.6, 0.6, 0.0]], np.float32)
    assert nearest_sources(sources, drivers).tolist() == [1, 2, 0]  # a tie goes to the earlier source


def test_best_source_uses_each_drivers_nearest_frame(retriever: Retriever) -> None:
    frames = retriever.video_frames("sv0001", "v00")
    images = retriever.hit_images(frames)
    codes = retriever.pose_codes(frames["id"].to_numpy())
    drivers = [images[2], images[0], images[2]]  # frames of the source video itself: each is its own nearest
    loaded = []

    def load(rows: list[int]) -> list[np.ndarray]:
        loaded.append(rows)
        return [images[r] for r in rows]

    result = reenact_best_source(retriever.model, codes, drivers, load)
    assert result.chosen == [2, 0, 2] and loaded == [[0, 2]]  # each chosen frame read (and embedded) once
    for driver, chosen, image in zip(drivers, result.chosen, result.results):
        alone = reenact(retriever.model, [images[chosen]], [driver]).results[0]
        assert np.abs(alone.astype(int) - image.astype(int)).max() <= 1  # the same as reenacting from it alone
    side = OUTPUT_SIZE  # drawn from the stored crops at the product's output size, not the model's 32 px
    assert [s.shape for s in result.strips()] == [(side, 3 * side, 3)] * 3


def test_a_frame_query_equals_the_bare_search_and_draws_its_grid(retriever: Retriever) -> None:
    frames = retriever.video_frames("sv0002", "v01")
    image = retriever.hit_images(frames.iloc[[1]])[0]
    result = run_query(retriever, image, 6, crop=False, source="frame", identity="sv0002", other_identities=True)
    bare = retriever.search(image, 6, crop=False, other_identities=True, identity="sv0002")
    assert result.hits.equals(bare) and result.filtered and "sv0002" not in set(result.hits["identity"])
    for frame, stored in zip(result.frames, retriever.hit_images(bare)):
        assert np.array_equal(frame, stored)
    with Image.open(io.BytesIO(result.grid_png())) as grid:
        assert grid.format == "PNG" and grid.width > 6 * 32
    with pytest.raises(DataError, match="no face found"):
        run_query(retriever, np.zeros((64, 64, 3), np.uint8), 3, crop=True, source="blank.png")


def test_the_config_travels_to_the_app_by_environment(ui_index: AppConfig) -> None:
    assert AppConfig.from_env(ui_index.to_env()) == AppConfig(
        ui_index.index_dir.resolve(), ui_index.checkpoint.resolve(), "cpu"
    )
    with pytest.raises(KeyError, match=ENV_INDEX):
        AppConfig.from_env({})


def test_the_server_is_headless_on_localhost_with_bounded_uploads() -> None:
    command = streamlit_command(address="127.0.0.1", port=8600)
    flags = dict(zip(command[5::2], command[6::2]))
    assert command[1:5] == ["-m", "streamlit", "run", command[4]] and command[4].endswith("ui/app.py")
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8600"
    assert flags["--server.headless"] == "true" and flags["--server.maxUploadSize"] == str(MAX_UPLOAD_MB)
    assert flags["--browser.gatherUsageStats"] == "false"
