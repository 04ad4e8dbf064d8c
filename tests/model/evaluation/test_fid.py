"""FID: the Fréchet distance against the closed forms for Gaussians, and the Inception network without its weights
(random initialisation: shapes, and that a weights file round-trips through `load_inception`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from model.data.errors import DataError
from model.evaluation.fid import FEATURE_DIM, FIDInception, frechet_distance, inception_features, load_inception


def test_frechet_distance_of_one_dimensional_gaussians() -> None:
    # N(m1, s1^2) and N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == pytest.approx(
        (1 - 3) ** 2 + (2 - 3) ** 2
    )


def test_frechet_distance_of_gaussians_with_diagonal_covariances() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected)


def test_frechet_distance_of_general_gaussians() -> None:
    # Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), the symmetric form, computed by eigendecompositions
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)

    def sqrt_psd(m: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(m)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    root = sqrt_psd(s1)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrt_psd(root @ s2 @ root))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


@pytest.fixture(scope="module")
def network() -> FIDInception:
    torch.manual_seed(0)
    return FIDInception().eval()


def test_inception_gives_2048_pool3_features_at_any_input_size(network: FIDInception) -> None:
    features = inception_features(network, torch.rand(2, 3, 40, 40) * 2 - 1)
    assert features.shape == (2, FEATURE_DIM) and np.isfinite(features).all()
    assert (features >= 0).all()  # after a ReLU and average pooling


def test_weights_load_from_a_state_dict_or_safetensors(network: FIDInception, tmp_path: Path) -> None:
    state = {k: v.clone() for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, FEATURE_DIM), torch.zeros(1008)  # the unused head
    torch.save(state, tmp_path / "pt_inception.pth")
    save_file(state, str(tmp_path / "pt_inception.safetensors"))
    img = torch.rand(1, 3, 32, 32) * 2 - 1
    expected = inception_features(network, img)
    for name in ("pt_inception.pth", "pt_inception.safetensors"):
        loaded = load_inception(tmp_path / name)
        assert np.allclose(inception_features(loaded, img), expected, atol=1e-5)


def test_other_weights_are_refused(network: FIDInception, tmp_path: Path) -> None:
    state = network.state_dict()
    del state["Mixed_7c.branch_pool.conv.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(DataError, match="not the FID Inception weights"):
        load_inception(tmp_path / "partial.pth")
    with pytest.raises(DataError, match="no such"):
        load_inception(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read"):
        load_inception(tmp_path / "junk.pth")
