"""Shared layers: shapes under resampling, AdaIN driven by the pose code, SAGAN attention starting as identity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from model.blocks import AdaIN, AdaINResBlock, ConvNormAct, ResBlock, SelfAttention, zero_init


@pytest.mark.parametrize("resample, size", [("none", 8), ("down", 4), ("up", 16)])
def test_res_blocks_resample(resample: str, size: int) -> None:
    x, code = torch.randn(2, 4, 8, 8), torch.randn(2, 5)
    assert ResBlock(4, 6, resample=resample)(x).shape == (2, 6, size, size)
    assert ResBlock(4, 6, resample=resample, norm=False)(x).shape == (2, 6, size, size)
    assert AdaINResBlock(4, 6, pose_dim=5, hidden_dim=7, resample=resample)(x, code).shape == (2, 6, size, size)


def test_res_block_without_norm_keeps_channel_scale() -> None:
    """InstanceNorm erases a per-channel scale; the norm-free decoder block must not."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8, 8)
    normed, plain = ResBlock(4, 4), ResBlock(4, 4, norm=False)
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in plain.modules())
    branch_normed = normed.conv1(nn.functional.leaky_relu(normed.norm1(x), 0.2))
    branch_normed_scaled = normed.conv1(nn.functional.leaky_relu(normed.norm1(3 * x), 0.2))
    torch.testing.assert_close(branch_normed, branch_normed_scaled, atol=1e-4, rtol=1e-4)  # scale invisible
    branch_plain = plain.conv1(nn.functional.leaky_relu(plain.norm1(x), 0.2))
    branch_plain_scaled = plain.conv1(nn.functional.leaky_relu(plain.norm1(3 * x), 0.2))
    assert not torch.allclose(branch_plain, branch_plain_scaled, atol=1e-3)  # scale visible


def test_adain_starts_as_instance_norm_and_follows_pose() -> None:
    torch.manual_seed(0)
    adain = AdaIN(4, pose_dim=3, hidden_dim=8)
    x = torch.randn(2, 4, 5, 5)
    zero_init(adain.mean), zero_init(adain.std)
    torch.testing.assert_close(adain(x, torch.randn(2, 3)), nn.functional.instance_norm(x))
    nn.init.normal_(adain.mean.weight), nn.init.normal_(adain.std.weight)
    out1, out2 = adain(x, torch.randn(2, 3)), adain(x, torch.randn(2, 3))
    assert not torch.allclose(out1, out2)  # the pose code sets scale and bias
    linears = [m for m in adain.modules() if isinstance(m, nn.Linear)]  # paper: one shared layer, two heads
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 8), (8, 4), (8, 4)]


def test_self_attention_starts_as_identity_then_mixes_positions() -> None:
    torch.manual_seed(0)
    attention = SelfAttention(16)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(attention(x), x)  # gamma = 0
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    y = attention(x)
    x2 = x.clone()
    x2[:, :, 0, 0] += 5.0  # change one position
    assert not torch.allclose(attention(x2)[:, :, 3, 3], y[:, :, 3, 3])  # a far position sees it


def test_conv_norm_act_and_zero_init() -> None:
    assert ConvNormAct(3, 8, stride=2, kernel=7)(torch.randn(1, 3, 8, 8)).shape == (1, 8, 4, 4)
    head = zero_init(nn.Conv2d(4, 2, 3, padding=1))
    assert torch.equal(head(torch.randn(1, 4, 5, 5)), torch.zeros(1, 2, 5, 5))
