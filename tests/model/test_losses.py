"""Losses on hand-computed examples: L1, TV inside eq. 5, hinge (eq. 7), feature matching and eq. 6's total."""

from __future__ import annotations

import math

import pytest
import torch

from model.losses import (
    DiscriminatorLoss,
    GeneratorLoss,
    Stage1Loss,
    discriminator_loss,
    feature_matching,
    generator_loss,
    l1,
    label_loss,
    stage1_loss,
    within_video_contrast,
)


def test_l1_hand_computed() -> None:
    assert l1(torch.tensor([1.0, -1.0, 0.5, 0.0]), torch.tensor([0.0, 1.0, 0.5, -0.5])).item() == pytest.approx(0.875)
    with pytest.raises(AssertionError):
        l1(torch.zeros(2, 3), torch.zeros(3, 2))


def test_stage1_loss_terms() -> None:
    target = torch.zeros(1, 3, 4, 4)
    reconstruction = torch.full((1, 3, 4, 4), 0.25)
    face_flow = torch.zeros(1, 2, 2, 2, 2)  # (B, K, 2, H, W), constant: no variation
    pose_flow = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).expand(1, 2, 2, 2)  # TV 4 on each channel, mean 4
    loss = stage1_loss(target, reconstruction, face_flow, pose_flow, smooth_weight=0.5)
    assert isinstance(loss, Stage1Loss)
    assert loss.reconstruction.item() == 0.25
    assert loss.smoothness.item() == 4.0
    assert loss.total.item() == pytest.approx(0.25 + 0.5 * 4.0)
    no_smoothing = stage1_loss(target, reconstruction, face_flow, pose_flow, smooth_weight=0.0)  # Table 1 ablation
    assert no_smoothing.total.item() == 0.25
    assert loss.residual.item() == 0.0  # no residuals given (single-scale P): no budget


def test_face_smooth_weight_weighs_only_the_face_embedders_warps() -> None:
    target = reconstruction = torch.zeros(1, 3, 2, 2)
    face_flow = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).expand(1, 1, 2, 2, 2)  # TV 4
    pose_flow = torch.tensor([[0.0, 0.0], [1.0, 1.0]]).expand(1, 2, 2, 2)  # TV 1
    as_eq5 = stage1_loss(target, reconstruction, face_flow, pose_flow, smooth_weight=0.1)
    assert as_eq5.total.item() == pytest.approx(0.1 * (4.0 + 1.0))  # None: one lambda_S for both, as in eq. 5
    split = stage1_loss(target, reconstruction, face_flow, pose_flow, smooth_weight=0.1, face_smooth_weight=2.0)
    assert split.total.item() == pytest.approx(2.0 * 4.0 + 0.1 * 1.0)
    assert split.smoothness.item() == pytest.approx(5.0)  # logged unweighted, as before


def test_residual_budget_is_the_mean_absolute_residual_per_scale() -> None:
    target, reconstruction = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    flows = torch.zeros(1, 1, 2, 4, 4), torch.zeros(1, 2, 2, 2)
    low, high = torch.full((1, 3, 2, 2), -0.5), torch.zeros(1, 3, 4, 4)
    high[..., 0, 0] = 1.6  # 3 of 48 values: mean 0.1
    loss = stage1_loss(target, reconstruction, *flows, (low, high), smooth_weight=1.0, residual_weight=2.0)
    assert loss.residual.item() == pytest.approx(0.5 + 0.1)
    assert loss.total.item() == pytest.approx(2.0 * 0.6)
    paper = stage1_loss(target, reconstruction, *flows, (low, high), smooth_weight=1.0)  # lambda_B 0: eq. 5 itself
    assert paper.total.item() == 0.0 and paper.residual.item() == pytest.approx(0.6)


def test_within_video_contrast_hand_computed() -> None:
    """InfoNCE over cosines: the positive at cosine 1 and K = 2 negatives at cosine 0 and -1 give
    -log(e^(1/t) / (e^(1/t) + e^0 + e^(-1/t))); codes' lengths do not matter; a code that cannot tell the positive
    from the negatives scores log(1 + K)."""
    t = 0.5
    anchor = torch.tensor([[2.0, 0.0]])
    positive = torch.tensor([[5.0, 0.0]])
    negatives = torch.tensor([[[0.0, 3.0], [-1.0, 0.0]]])
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + 1.0 + math.exp(-2.0)))
    assert within_video_contrast(anchor, positive, negatives, temperature=t).item() == pytest.approx(expected)
    blind = within_video_contrast(anchor, positive, positive[:, None].expand(1, 2, 2), temperature=t)
    assert blind.item() == pytest.approx(math.log(3.0))
    target, flows = torch.zeros(1, 3, 4, 4), (torch.zeros(1, 1, 2, 4, 4), torch.zeros(1, 2, 2, 2))
    loss = stage1_loss(target, target, *flows, smooth_weight=0.0, contrast=blind, contrast_weight=0.2)
    assert loss.contrast.item() == pytest.approx(math.log(3.0))
    assert loss.total.item() == pytest.approx(0.2 * math.log(3.0))
    assert stage1_loss(target, target, *flows, smooth_weight=0.0).contrast.item() == 0.0  # the paper: no term


def test_label_loss_pulls_the_first_coordinates_of_labelled_codes_only() -> None:
    """L_Y: squared error of p's first L coordinates against scale x the labels, averaged over labelled entries;
    an unlabelled (NaN) row adds nothing and a batch without labels scores 0 but keeps the code in the graph."""
    code = torch.tensor([[1.0, 2.0, 9.0], [5.0, 5.0, 5.0]], requires_grad=True)
    labels = torch.tensor([[0.5, 0.0], [float("nan"), float("nan")]])
    loss = label_loss(code, labels, scale=2.0)  # (1 - 1)^2 and (2 - 0)^2 over 2 labelled entries
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert code.grad[0].tolist() == [0.0, 2.0, 0.0] and code.grad[1].abs().sum() == 0  # third coordinate free
    unlabelled = label_loss(code, torch.full((2, 2), float("nan")), scale=2.0)
    assert unlabelled.item() == 0.0 and unlabelled.requires_grad
    target, flows = torch.zeros(1, 3, 4, 4), (torch.zeros(1, 1, 2, 4, 4), torch.zeros(1, 2, 2, 2))
    weighted = stage1_loss(target, target, *flows, smooth_weight=0.0, labels=loss.detach(), label_weight=0.1)
    assert weighted.labels.item() == pytest.approx(2.0) and weighted.total.item() == pytest.approx(0.2)
    assert stage1_loss(target, target, *flows, smooth_weight=0.0).labels.item() == 0.0  # the paper: no term


def test_hinge_discriminator_loss_hand_computed() -> None:
    real = torch.tensor([2.0, 0.5, -1.0, 1.0])  # relu(1 - x) = 0, 0.5, 2, 0 -> 0.625
    fake = torch.tensor([-3.0, 0.0, 0.5, -1.0])  # relu(1 + x) = 0, 1, 1.5, 0 -> 0.625
    loss = discriminator_loss(real, fake * 2)  # relu(1 + 2x) = 0, 1, 2, 0 -> 0.75
    assert isinstance(loss, DiscriminatorLoss)
    assert loss.real.item() == pytest.approx(0.625)
    assert loss.fake.item() == pytest.approx(0.75)
    assert loss.total.item() == pytest.approx(1.375)
    confident = discriminator_loss(torch.full((3,), 1.5), torch.full((3,), -1.5))  # beyond the margins
    assert confident.total.item() == 0.0


def test_feature_matching() -> None:
    features = (torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4))
    assert feature_matching(features, features).item() == 0.0
    shifted = (features[0] + 1.0, features[1])  # layer 1 off by 1 everywhere, layer 2 equal -> mean 0.5
    assert feature_matching(shifted, features).item() == pytest.approx(0.5)
    real = features[0].clone().requires_grad_()
    fake = features[0].clone().add(1.0).requires_grad_()
    feature_matching((fake,), (real,)).backward()
    assert real.grad is None and fake.grad is not None  # real features are a target, not trained through


def test_generator_loss_hand_computed() -> None:
    fake_logits = torch.tensor([0.5, -1.5])  # L_G = -mean = 0.5
    fake, target = torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2)  # L_R = 0.5
    fake_features, real_features = (torch.ones(1, 2, 2, 2),), (torch.zeros(1, 2, 2, 2),)  # L_FM = 1
    loss = generator_loss(
        fake_logits, fake, target, fake_features, real_features, content_weight=2.0, feature_matching_weight=3.0
    )
    assert isinstance(loss, GeneratorLoss)
    assert (loss.adversarial.item(), loss.content.item(), loss.feature_matching.item()) == (0.5, 0.5, 1.0)
    assert loss.total.item() == pytest.approx(0.5 + 2.0 * 0.5 + 3.0 * 1.0)
    without_matching = generator_loss(
        fake_logits, fake, target, fake_features, real_features, content_weight=1.0, feature_matching_weight=0.0
    )
    assert without_matching.total.item() == pytest.approx(1.0)
