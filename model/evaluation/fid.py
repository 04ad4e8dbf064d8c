"""Fréchet Inception Distance (Heusel et al. 2017), the paper's photo-realism metric (sec. 4), without torchvision.

- `FIDInception` is Inception-v3 as the standard FID weights expect it: the TensorFlow graph of 2015-12-05 ported
  to PyTorch (the ``pt_inception-2015-12-05`` file that pytorch-fid releases), layer names and shapes as
  torchvision's Inception3 names them, with the FID graph's differences (average pooling that does not count
  padding in the A, C and first E blocks; max pooling in the last E block). It returns the 2048 pool3 features.
- `load_inception` reads those weights from a file the user names: safetensors, or a torch state dict read with
  ``weights_only=True`` (tensors only, nothing unpickled as code). Every layer must be there with its shape; the
  classifier's ``fc.*`` (1008 classes) is not used by FID and is ignored. There are no other weights: without a
  file the report says FID was not computed.
- `frechet_distance` is ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), computed in float64 with SciPy's sqrtm;
  when the product is near singular (fewer images than 2048 features) a small ridge is added as pytorch-fid does.
- Images go in as `(N, 3, H, W)` in [-1, 1]; they are resized to 299 x 299 bilinearly (pytorch-fid's resize) and
  kept in [-1, 1], the Inception graph's input range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.data.errors import DataError

INCEPTION_SIZE = 299  # the Inception graph's input side
FEATURE_DIM = 2048  # pool3 features
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, as the ported graph uses it
SQRTM_RIDGE = 1e-6  # added to both covariances' diagonals when their product's square root is not finite
BATCH_SIZE = 50  # images per Inception forward pass


class BasicConv2d(nn.Module):
    """Convolution (no bias), batch norm, ReLU: every convolution of the graph."""

    def __init__(self, in_dim: int, out_dim: int, **conv: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, bias=False, **conv)
        self.bn = nn.BatchNorm2d(out_dim, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3 x 3 average pooling, stride 1, padding 1, the padding not counted (TensorFlow's graph)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_dim: int, pool_dim: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_dim, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_dim, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_dim, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_dim, pool_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool(x)),
            ],
            1,
        )


class InceptionB(nn.Module):
    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_dim, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_dim, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            1,
        )


class InceptionC(nn.Module):
    def __init__(self, in_dim: int, mid_dim: int) -> None:
        super().__init__()
        c = mid_dim
        self.branch1x1 = BasicConv2d(in_dim, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_dim, c, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c, c, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_dim, c, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c, c, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c, c, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c, c, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_dim, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            double = layer(double)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                double,
                self.branch_pool(_avg_pool(x)),
            ],
            1,
        )


class InceptionD(nn.Module):
    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_dim, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_dim, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, in_dim: int, *, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool  # the graph's last block max-pools its pool branch; the one before averages
        self.branch1x1 = BasicConv2d(in_dim, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_dim, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_dim, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_dim, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                torch.cat([self.branch3x3_2a(three), self.branch3x3_2b(three)], 1),
                torch.cat([self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double)], 1),
                self.branch_pool(pooled),
            ],
            1,
        )


class FIDInception(nn.Module):
    """Inception-v3 up to pool3: images `(N, 3, H, W)` in [-1, 1] -> features `(N, 2048)`."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_dim=32)
        self.Mixed_5c = InceptionA(256, pool_dim=64)
        self.Mixed_5d = InceptionA(288, pool_dim=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, mid_dim=128)
        self.Mixed_6c = InceptionC(768, mid_dim=160)
        self.Mixed_6d = InceptionC(768, mid_dim=160)
        self.Mixed_6e = InceptionC(768, mid_dim=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        assert img.dim() == 4 and img.shape[1] == 3, f"images must be (N, 3, H, W), got {tuple(img.shape)}"
        x = F.interpolate(img, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (N, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (N, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 192, 35, 35)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)  # ... (N, 2048, 8, 8)
        return x.mean(dim=(2, 3))  # (N, 2048): pool3


def load_inception(path: str | Path, device: torch.device = torch.device("cpu")) -> FIDInception:
    """The FID network with the standard weights from `path` (module docstring), in eval mode on `device`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such Inception weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's input, reported in one line
        raise DataError(path, f"cannot read Inception weights ({err.__class__.__name__}: {str(err)[:120]})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(path, "not a state dict of tensors")
    network = FIDInception()
    expected = network.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # the 1008-class head: not used by FID
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise DataError(
            path,
            f"not the FID Inception weights ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong)} misshapen tensors, e.g. {first})",
        )
    network.load_state_dict(state, strict=False)
    return network.to(device).eval()


@torch.inference_mode()
def inception_features(network: FIDInception, img: torch.Tensor, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Pool3 features `(N, 2048)` float64 of images `(N, 3, H, W)` in [-1, 1]."""
    device = next(network.parameters()).device
    parts = [
        network(img[i : i + batch_size].to(device, torch.float32)).double().cpu()
        for i in range(0, len(img), batch_size)
    ]
    return torch.cat(parts).numpy()


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shapes do not match: {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        ridge = np.eye(len(mu1)) * SQRTM_RIDGE
        covmean = linalg.sqrtm((sigma1 + ridge) @ (sigma2 + ridge))
    covmean = np.real(covmean)  # rounding leaves tiny imaginary parts
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (N - 1 normalised, as FID uses) of features `(N, D)`."""
    if len(features) < 2:
        raise ValueError("FID needs at least two images per set")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid(network: FIDInception, real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two sets of images `(N, 3, H, W)` in [-1, 1]: lower is closer."""
    return frechet_distance(
        *feature_statistics(inception_features(network, real)), *feature_statistics(inception_features(network, fake))
    )
