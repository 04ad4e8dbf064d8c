"""SSIM (pytorch-msssim) agrees with scikit-image's reference implementation; L1 is what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from model.evaluation.similarity import SSIM_SIGMA, l1, ssim


def _reference(a: torch.Tensor, b: torch.Tensor) -> float:
    """scikit-image's SSIM with Wang et al.'s Gaussian window, on [0, 1] RGB."""
    x, y = ((t.permute(1, 2, 0).numpy().astype(np.float64) + 1) / 2 for t in (a, b))
    return structural_similarity(
        x, y, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=SSIM_SIGMA, use_sample_covariance=False
    )


@pytest.mark.parametrize("case", ["noise", "shifted", "smooth"])
def test_ssim_matches_scikit_image(case: str) -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(3, 48, 40, generator=generator) * 2 - 1
    if case == "noise":
        b = (a + 0.2 * torch.randn(3, 48, 40, generator=generator)).clamp(-1, 1)
    elif case == "shifted":
        b = torch.roll(a, shifts=(2, 3), dims=(1, 2))
    else:  # a smooth image against a brighter, lower-contrast copy
        a = torch.nn.functional.avg_pool2d(a[None], 5, stride=1, padding=2)[0]
        b = 0.6 * a + 0.3
    ours = ssim(a[None], b[None]).item()
    assert ours == pytest.approx(_reference(a, b), abs=2e-3)


def test_ssim_is_one_for_identical_images_and_per_pair() -> None:
    a = torch.rand(4, 3, 32, 32) * 2 - 1
    values = ssim(a, a)
    assert values.shape == (4,) and torch.allclose(values, torch.ones(4), atol=1e-5)
    b = a.clone()
    b[1] = -b[1]
    assert ssim(a, b)[1] < 0.5 and torch.allclose(ssim(a, b)[[0, 2, 3]], torch.ones(3), atol=1e-5)


def test_l1_in_model_units() -> None:
    a = torch.zeros(2, 3, 16, 16)
    b = torch.full((2, 3, 16, 16), 0.5)
    b[1] = -1.0
    assert torch.allclose(l1(a, b), torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        l1(a, b[:1])
