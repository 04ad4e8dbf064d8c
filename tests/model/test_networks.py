"""The four networks at the tiny preset: shapes, finiteness, gradients to every parameter, the ablation switches,
batch-independent eval output, and config validation."""

from __future__ import annotations

import dataclasses
from typing import Callable

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from model.config import Config, load_config
from model.data.errors import DataError
from model.discriminator import Discriminator, DiscriminatorOutput
from model.face_embedder import FaceEmbedder, FaceEmbedding
from model.generator import Generator
from model.pose_embedder import PoseEmbedder, PoseReconstruction
from model.warp import downsample, resize, upsample_flow, warp


@pytest.fixture
def config() -> Config:
    return load_config("tiny")


def _images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _jitter(module: nn.Module) -> None:
    """Move every parameter off its initial value: zero-initialised heads and SAGAN's gamma = 0 block the gradient
    to what they gate at initialisation; the gradient test checks wiring, not initialisation."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)


def _assert_every_parameter_gets_gradient(module: nn.Module, outputs: list[torch.Tensor]) -> None:
    sum(out.sum() for out in outputs).backward()
    for name, param in module.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} got an all-zero gradient"


def _assert_batch_independent(module: nn.Module, run: Callable[[slice], torch.Tensor]) -> None:
    """In eval mode, item 0's output is the same alone as batched with others (InstanceNorm, not BatchNorm)."""
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(run(slice(0, 1)), run(slice(0, 3))[:1], atol=1e-5, rtol=1e-4)


# -- face embedder F ------------------------------------------------------------------------------------------------


def test_face_embedder_shapes_and_fusion(config: Config) -> None:
    k, s = config.data.num_frames, config.data.size
    net = FaceEmbedder.from_config(config.model, size=s)
    frames = _images(3, k, 3, s, s)
    out = net(frames)
    assert isinstance(out, FaceEmbedding)
    assert out.face.shape == (3, 3, s, s) and out.flow.shape == (3, k, 2, s, s)
    assert out.attention.shape == (3, k, 1, s, s) and out.warped.shape == (3, k, 3, s, s)
    # at initialisation (zero head): identity warps, even weights: the face is the frames' average
    torch.testing.assert_close(out.face, frames.mean(dim=1), atol=1e-6, rtol=0)
    _jitter(net)
    out = net(frames)
    assert all(torch.isfinite(t).all() for t in out)
    assert (out.attention > 0).all()  # A kept positive
    torch.testing.assert_close(out.attention.sum(dim=1), torch.ones(3, 1, s, s))  # A' normalised over k
    torch.testing.assert_close(out.face, (out.attention * out.warped).sum(dim=1))  # eq. 1
    for i in range(k):
        torch.testing.assert_close(out.warped[:, i], warp(frames[:, i], out.flow[:, i]))
    assert not torch.allclose(out.attention, torch.full_like(out.attention, 1 / k))  # weights vary with content


def test_face_embedder_single_frame_ablation(config: Config) -> None:
    single = load_config("tiny", {"data.num_frames": 1})
    net = FaceEmbedder.from_config(single.model, size=single.data.size)
    _jitter(net)
    out = net(_images(2, 1, 3, 32, 32))
    assert torch.equal(out.attention, torch.ones(2, 1, 1, 32, 32))  # one frame: A' = 1
    assert torch.equal(out.face, out.warped[:, 0])
    # the same network serves any K: a K-frame batch works with the same weights
    assert net(_images(2, 3, 3, 32, 32)).face.shape == (2, 3, 32, 32)


def test_face_embedder_gradients_and_batch_independence(config: Config) -> None:
    net = FaceEmbedder.from_config(config.model, size=32)
    _jitter(net)
    frames = _images(3, 2, 3, 32, 32)
    out = net(frames)
    _assert_every_parameter_gets_gradient(net, [out.face, out.flow, out.attention])
    _assert_batch_independent(net, lambda items: net(frames[items]).face)


# -- pose embedder P ------------------------------------------------------------------------------------------------


def test_pose_embedder_multi_scale(config: Config) -> None:
    s, d = config.data.size, config.model.pose_dim
    net = PoseEmbedder.from_config(dataclasses.replace(config.model, warp_full_resolution=False), size=s)  # eq. 2
    frame, face = _images(3, 3, s, s), _images(3, 3, s, s, seed=1)
    out = net(frame, face)
    assert isinstance(out, PoseReconstruction)
    assert out.reconstruction.shape == (3, 3, s, s) and out.pose_code.shape == (3, d)
    assert out.flow.shape == (3, 2, s // 4, s // 4) and out.warped.shape == (3, 3, s // 4, s // 4)
    assert out.residual_low.shape == (3, 3, s // 2, s // 2) and out.residual_high.shape == (3, 3, s, s)
    # at initialisation: no flow, no residuals: x = U{U[downsampled f]}
    torch.testing.assert_close(out.reconstruction, resize(resize(downsample(face, 4), s // 2), s))
    _jitter(net)
    out = net(frame, face)
    assert out.view_codes is None and all(torch.isfinite(t).all() for t in out[:-1])
    expected = out.residual_high + resize(out.residual_low + resize(out.warped, s // 2), s)  # eq. 2
    torch.testing.assert_close(out.reconstruction, expected)
    torch.testing.assert_close(out.warped, warp(downsample(face, 4), out.flow))
    # the frame reaches the decoder only through the pose code: decode(encode(x), f) is the whole forward
    torch.testing.assert_close(net.decode(net.encode(frame), face).reconstruction, out.reconstruction)
    # reenactment: another face in the same pose moves by the same flow
    other = net.decode(out.pose_code, _images(3, 3, s, s, seed=2))
    torch.testing.assert_close(other.flow, out.flow)
    assert not torch.allclose(other.reconstruction, out.reconstruction)
    # the contrastive term's views: encoded in the same pass, not decoded; the frames' own results unchanged
    views = _images(5, 3, s, s, seed=3)
    with_views = net(frame, face, views=views)
    torch.testing.assert_close(with_views.view_codes, net.encode(views))
    torch.testing.assert_close(with_views.reconstruction, out.reconstruction)


def test_pose_embedder_full_resolution_warp(config: Config) -> None:
    """`model.warp_full_resolution`: the W/4 flow, upsampled, moves the full-resolution face; residuals add on top
    and can be left out."""
    s = config.data.size
    net = PoseEmbedder.from_config(dataclasses.replace(config.model, warp_full_resolution=True), size=s)
    frame, face = _images(3, 3, s, s), _images(3, 3, s, s, seed=1)
    out = net(frame, face)
    assert out.flow.shape == (3, 2, s // 4, s // 4) and out.warped.shape == (3, 3, s, s)
    assert torch.equal(out.reconstruction, face)  # at initialisation: no flow, no residuals: x = f, every pixel kept
    _jitter(net)
    out = net(frame, face)
    torch.testing.assert_close(out.warped, warp(face, upsample_flow(out.flow, s)))
    torch.testing.assert_close(out.reconstruction, out.warped + out.residual_high + resize(out.residual_low, s))
    warp_only = net(frame, face, residuals=False)
    torch.testing.assert_close(warp_only.reconstruction, out.warped)  # the warp alone
    torch.testing.assert_close(warp_only.pose_code, out.pose_code)
    # a flow of one pixel moves every full-resolution pixel by exactly one: nothing of the face is blurred away
    fresh = PoseEmbedder.from_config(dataclasses.replace(config.model, warp_full_resolution=True), size=s)
    with torch.no_grad():
        fresh.flow_head.bias.copy_(torch.tensor([2.0 / s, 0.0]))  # x: one pixel in normalised units
    moved = fresh(frame, face).reconstruction
    torch.testing.assert_close(moved[..., :-1], face[..., 1:], atol=1e-5, rtol=0)


def test_pose_embedder_single_scale_ablation(config: Config) -> None:
    s = config.data.size
    single = dataclasses.replace(config.model, multi_scale=False)
    net = PoseEmbedder.from_config(single, size=s)
    assert net.low_head is None and net.high_head is None  # no residual path at all
    multi = PoseEmbedder.from_config(config.model, size=s)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in multi.parameters())
    _jitter(net)
    frame, face = _images(2, 3, s, s), _images(2, 3, s, s, seed=1)
    out = net(frame, face)
    assert out.flow.shape == (2, 2, s, s)  # full-resolution warp
    assert out.residual_low is None and out.residual_high is None
    torch.testing.assert_close(out.reconstruction, warp(face, out.flow))  # x = T^-1(f), nothing added


@pytest.mark.parametrize("multi_scale,full_resolution", [(True, False), (True, True), (False, False)])
def test_pose_embedder_gradients_and_batch_independence(
    config: Config, multi_scale: bool, full_resolution: bool
) -> None:
    net = PoseEmbedder.from_config(
        dataclasses.replace(config.model, multi_scale=multi_scale, warp_full_resolution=full_resolution), size=32
    )
    _jitter(net)
    frame, face = _images(3, 3, 32, 32), _images(3, 3, 32, 32, seed=1).requires_grad_()
    out = net(frame, face)
    _assert_every_parameter_gets_gradient(net, [out.reconstruction, out.pose_code])
    assert face.grad is not None and face.grad.abs().sum() > 0  # stage 1 trains F through P's warp
    _assert_batch_independent(net, lambda items: net(frame[items], face[items].detach()).reconstruction)


# -- generator G ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("refines_decoder", [False, True])
def test_generator(config: Config, refines_decoder: bool) -> None:
    s, d = config.data.size, config.model.pose_dim
    net = Generator.from_config(dataclasses.replace(config.model, gen_refines_decoder=refines_decoder), size=s)
    face, code = _images(3, 3, s, s), torch.randn(3, d, generator=torch.Generator().manual_seed(3))
    draft = _images(3, 3, s, s, seed=2) if refines_decoder else None
    if refines_decoder:  # untrained, a refining G returns its draft: it starts as P's decoder
        assert torch.equal(net(face, code, draft), draft)
        with pytest.raises(AssertionError, match="draft is required"):
            net(face, code)
    _jitter(net)
    img = net(face, code, draft)
    assert img.shape == (3, 3, s, s) and torch.isfinite(img).all()
    if not refines_decoder:
        assert img.abs().max() <= 1  # tanh output
    assert not torch.allclose(net(face, code.flip(0), draft)[0], img[0], atol=1e-4)  # the pose code steers the output
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 0
    _assert_every_parameter_gets_gradient(net, [img])
    _assert_batch_independent(net, lambda items: net(face[items], code[items], None if draft is None else draft[items]))


# -- discriminator D ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("conditional", [False, True])
def test_discriminator(config: Config, conditional: bool) -> None:
    s, layers = config.data.size, config.model.num_disc_layers
    net = Discriminator.from_config(dataclasses.replace(config.model, disc_conditional=conditional), size=s)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == layers + 1 and all(parametrize.is_parametrized(c, "weight") for c in convs)  # SN on all
    assert convs[0].in_channels == (6 if conditional else 3)
    img = _images(3, 3, s, s)
    condition = _images(3, 3, s, s, seed=1) if conditional else None
    out = net(img, condition)
    assert isinstance(out, DiscriminatorOutput)
    assert out.logits.shape == (3, 1, s // 2**layers, s // 2**layers)
    assert [f.shape[-1] for f in out.features] == [s // 2**i for i in range(1, layers + 1)]
    assert all(torch.isfinite(t).all() for t in (out.logits, *out.features))
    with pytest.raises(AssertionError, match="condition"):
        net(img, None if conditional else img)
    _assert_every_parameter_gets_gradient(net, [out.logits, *out.features])
    _assert_batch_independent(
        net, lambda items: net(img[items], None if condition is None else condition[items]).logits
    )


# -- config ---------------------------------------------------------------------------------------------------------


def test_presets_build_and_bad_sizes_are_config_errors() -> None:
    for preset in ("tiny", "small", "paper"):
        config = load_config(preset)
        paper = preset == "paper"
        assert config.loss.feature_matching_weight == 1.0  # lambda_FM: the paper's
        assert config.loss.smooth_weight == (1.0 if paper else 0.1)  # lambda_S: README, "The pose code carries motion"
        assert config.loss.content_weight == (1.0 if paper else 10.0)  # lambda_R: configs/tiny.yaml
        assert config.model.gen_refines_decoder == config.model.warp_full_resolution == (not paper)
        # every departure is off in the paper preset
        assert paper == (
            config.loss.residual_weight == 0
            and config.loss.pyramid_levels == 1
            and not config.augment.enabled
            and config.train.warp_warmup_epochs == 0
            and config.train.gen_trains_pose_embedder
        )
        assert config.model.align_corners is False
    with pytest.raises(DataError, match="divisible by 2\\*\\*model.num_face_levels"):
        load_config("tiny", {"data.size": 36})
    with pytest.raises(DataError, match="align_corners"):
        load_config("tiny", {"model.align_corners": True})
    with pytest.raises(DataError, match="unknown config key model.pose_dims"):
        load_config("tiny", {"model.pose_dims": 3})
    with pytest.raises(DataError, match="smooth_weight"):
        load_config("tiny", {"loss.smooth_weight": -1.0})
