"""The training objectives, each returning its named terms and their weighted total (paper eqs. 3-7).

Stage 1 (sec. 3.1): L(F, P) = L_REC + lambda_S L_S, with L_REC the L1 reconstruction error (eq. 3) and L_S the
total variation of the face embedder's fields T and the pose embedder's field T^-1 (eq. 4, 5). Departure: a budget
lambda_B L_B on P's residuals R^L and R^H (``loss.residual_weight``; 0 is the paper), so that the warp, which can
only move the embedded face's pixels, carries the pose and the residuals touch up what a warp cannot.
Stage 2 (sec. 3.2): hinge GAN losses (eq. 7), plus for G the L1 content loss L_R and the L1 feature-matching loss
L_FM over D's features, weighted lambda_R and lambda_FM (eq. 6).

Choices made where the paper is silent:
- Every "L1 norm" is a mean absolute error (per element), so weights do not depend on image size or batch.
- Departure (``loss.pyramid_levels``; 1 is eq. 3 as written): L_REC is the mean of the L1 errors at full, half,
  quarter ... resolution (area downsampling), as FOMM's pyramid loss. Bilinear sampling passes a warp's gradient
  only from a pixel's neighbours, so at full resolution alone a warp that should move the face a few pixels sees
  no pull to do it; coarser levels reach further.
- Departure (``loss.contrast_weight``; 0 is the paper): L_C, a contrastive term on the pose code within each video
  (InfoNCE, as SimCLR, with the negatives of time-contrastive networks, Sermanet et al. 2018): the code of P's view
  of the target must be nearer in cosine to a second, independently augmented view of the same frame than to the
  views of the K source frames of its video. Those frames share the target's person, scene and light, so neither
  helps tell them apart; only what moves within a video does. Eq. 3 alone rewards the code for whatever helps paint
  the frame; this term rewards it for telling apart the moments of one video.
- Departure (``loss.label_weight``; 0 is the paper): L_Y, synthetic supervision of the code. Where a training frame
  is SynthVox's, its rendering parameters (head pose and expression) are known for free; the first of p's
  coordinates are pulled towards them, standardised and scaled by ``loss.label_scale`` (mean squared error, over
  the labelled frames of the batch only; real frames have no labels and add nothing). Eq. 3 does not reward
  expressions while the embedded face has no eyes or mouth to move (README), whereas an encoder told the answers
  reads mouth, eyes and brows at 64 px (benchmarks/label_ceiling.py). Fixed coordinates rather than a learnt head:
  a head could read a parameter from a direction of tiny variance that cosine retrieval never sees; a coordinate of
  the code at that scale holds as much of p's variance as a head-turn does.
- Departure (``loss.domain_weight``; 0 is the paper): L_A, domain confusion on the coordinates L_Y supervises
  (`model.domain_critic`). A critic learns to tell real frames (those without labels) from SynthVox's by those
  coordinates; through its reversed gradient P learns to leave it unable, so the labels' meaning reaches real
  faces. One loss serves both (`domain_loss`): the critic descends it, P ascends it.
- L_B is the mean absolute value of R^L plus that of R^H (an L1 budget: sparse, so residuals stay where a warp
  fails, such as the inside of an opening mouth, instead of a thin wash over the whole face).
- L_FM averages the per-layer mean absolute errors over D's layers; the real features are detached (they are a
  target for G, not something G's loss should move D by).
- The generator's adversarial term is eq. 7's L_G = -E[D(G(f, p))], the mean over patches and batch.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F

from model.warp import downsample, total_variation


class Stage1Loss(NamedTuple):
    """Eq. 5's terms for the two embedders."""

    reconstruction: torch.Tensor  # L_REC, eq. 3
    smoothness: torch.Tensor  # L_S, eq. 4 (unweighted)
    residual: torch.Tensor  # L_B, the residuals' budget (unweighted; 0 when P has no residuals)
    contrast: torch.Tensor  # L_C, the within-video contrastive term (unweighted; 0 when not computed)
    labels: torch.Tensor  # L_Y, the synthetic-label term (unweighted; 0 when not computed)
    domain: torch.Tensor  # L_A, the domain critic's loss (unweighted; ln 2 when it cannot tell; 0 when not computed)
    total: torch.Tensor  # L_REC + lambda_S L_S + lambda_B L_B + lambda_C L_C + lambda_Y L_Y + lambda_A L_A


class DiscriminatorLoss(NamedTuple):
    """Eq. 7's hinge loss for D, split by branch."""

    real: torch.Tensor  # -E[min(0, -1 + D(x))]
    fake: torch.Tensor  # -E[min(0, -1 - D(G(f, p)))]
    total: torch.Tensor  # real + fake


class GeneratorLoss(NamedTuple):
    """Eq. 6's terms for G."""

    adversarial: torch.Tensor  # L_G = -E[D(G(f, p))], eq. 7
    content: torch.Tensor  # L_R, L1 to the driving frame (unweighted)
    feature_matching: torch.Tensor  # L_FM, L1 between D's features of fake and real (unweighted)
    total: torch.Tensor  # adversarial + lambda_R content + lambda_FM feature_matching


def l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between two same-shaped tensors (eq. 3's norm)."""
    assert prediction.shape == target.shape, f"{tuple(prediction.shape)} vs {tuple(target.shape)}"
    return (prediction - target).abs().mean()


def pyramid_l1(prediction: torch.Tensor, target: torch.Tensor, levels: int) -> torch.Tensor:
    """Mean over `levels` resolutions (full, 1/2, 1/4, ...; area downsampling) of the L1 error of (B, C, H, W)
    images; `levels=1` is `l1`."""
    assert levels >= 1 and prediction.shape[-1] % 2 ** (levels - 1) == 0, (
        f"{levels} levels of {prediction.shape[-1]} px"
    )
    errors = []
    for level in range(levels):
        errors.append(l1(downsample(prediction, 2**level), downsample(target, 2**level)))
    return torch.stack(errors).mean()


def stage1_loss(
    target: torch.Tensor,
    reconstruction: torch.Tensor,
    face_flow: torch.Tensor,
    pose_flow: torch.Tensor,
    residuals: Sequence[torch.Tensor] = (),
    *,
    smooth_weight: float,
    face_smooth_weight: float | None = None,
    residual_weight: float = 0.0,
    pyramid_levels: int = 1,
    contrast: torch.Tensor | None = None,
    contrast_weight: float = 0.0,
    labels: torch.Tensor | None = None,
    label_weight: float = 0.0,
    domain: torch.Tensor | None = None,
    domain_weight: float = 0.0,
) -> Stage1Loss:
    """Eq. 5 for a batch, plus the residual budget, the contrastive, synthetic-label and domain terms.

    target, reconstruction: (B, 3, H, W); face_flow: (B, K, 2, H, W), F's fields T; pose_flow: (B, 2, h, w),
    P's field T^-1; residuals: P's R^L (B, 3, H/2, W/2) and R^H (B, 3, H, W), or none (single-scale P);
    contrast: L_C (`within_video_contrast`), or None when it was not computed (then 0); labels: L_Y
    (`label_loss`), or None (then 0); domain: L_A (`domain_loss`, through the critic's reversed gradient), or None
    (then 0). `face_smooth_weight` weighs F's part of L_S where it differs from P's (None: `smooth_weight`).
    """
    reconstruction_term = pyramid_l1(reconstruction, target, pyramid_levels)
    face_smoothness, pose_smoothness = total_variation(face_flow), total_variation(pose_flow)
    smoothness = face_smoothness + pose_smoothness
    face_weight = smooth_weight if face_smooth_weight is None else face_smooth_weight
    residual = sum((r.float().abs().mean() for r in residuals), torch.zeros((), device=target.device))
    zero = torch.zeros((), device=target.device)
    contrast = zero if contrast is None else contrast.float()
    labels = zero if labels is None else labels.float()
    domain = zero if domain is None else domain.float()
    total = (
        reconstruction_term
        + face_weight * face_smoothness
        + smooth_weight * pose_smoothness
        + residual_weight * residual
        + contrast_weight * contrast
        + label_weight * labels
        + domain_weight * domain
    )
    return Stage1Loss(reconstruction_term, smoothness, residual, contrast, labels, domain, total)


def label_loss(pose_code: torch.Tensor, labels: torch.Tensor, *, scale: float) -> torch.Tensor:
    """L_Y (module docstring): the mean squared error between p's first L coordinates and `scale` x the labels,
    over the labelled items. pose_code: (B, D); labels: (B, L), standardised, NaN rows for unlabelled frames. A batch
    without labels gives 0, still through the code (so every process's backward pass sees the same graph)."""
    assert labels.shape[0] == pose_code.shape[0] and labels.shape[1] <= pose_code.shape[1], (
        f"{tuple(labels.shape)} labels for codes {tuple(pose_code.shape)}"
    )
    known = ~labels.isnan()  # (B, L)
    error = (pose_code[:, : labels.shape[1]].float() - scale * labels.nan_to_num()) ** 2 * known
    return error.sum() / known.sum().clamp(min=1)


def domain_loss(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L_A (module docstring): the domain critic's binary cross-entropy of `logits` (B,) against `real` (B,) bool,
    averaged within each domain and then over the two, so that a batch's few real frames weigh as much as its many
    synthetic ones; ln 2 when it cannot tell. A batch of one domain gives 0, still through the logits (every
    process's backward pass sees the same graph)."""
    if real.all() or not real.any():
        return logits.sum() * 0.0
    target = real.float()
    bce = F.binary_cross_entropy_with_logits
    return 0.5 * (bce(logits[real], target[real]) + bce(logits[~real], target[~real]))


def within_video_contrast(
    anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, *, temperature: float
) -> torch.Tensor:
    """L_C (module docstring): the mean over the batch of -log softmax of the positive's cosine among the positive
    and the negatives', divided by `temperature`. anchor, positive: (B, D) pose codes of two views of each target;
    negatives: (B, K, D) codes of K other frames of the same video."""
    assert anchor.shape == positive.shape and negatives.shape[0::2] == anchor.shape, (
        f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negatives.shape)}"
    )
    anchor, positive, negatives = (F.normalize(x.float(), dim=-1) for x in (anchor, positive, negatives))
    logits = (
        torch.cat(
            [
                (anchor * positive).sum(-1, keepdim=True),  # (B, 1): the other view of the same frame
                torch.einsum("bd,bkd->bk", anchor, negatives),
            ],
            dim=1,
        )
        / temperature
    )  # (B, 1 + K)
    return F.cross_entropy(logits, torch.zeros(len(anchor), dtype=torch.long, device=anchor.device))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> DiscriminatorLoss:
    """Eq. 7's hinge loss for D: real logits should exceed 1, fake logits fall below -1."""
    real = F.relu(1 - real_logits).mean()  # = -E[min(0, -1 + D(x))]
    fake = F.relu(1 + fake_logits).mean()  # = -E[min(0, -1 - D(G))]
    return DiscriminatorLoss(real, fake, real + fake)


def feature_matching(fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]) -> torch.Tensor:
    """L_FM: mean over D's layers of the L1 distance between fake and (detached) real features."""
    assert len(fake_features) == len(real_features) > 0, "need the same, non-zero number of feature maps"
    return torch.stack([l1(fake, real.detach()) for fake, real in zip(fake_features, real_features)]).mean()


def generator_loss(
    fake_logits: torch.Tensor,
    fake: torch.Tensor,
    target: torch.Tensor,
    fake_features: Sequence[torch.Tensor],
    real_features: Sequence[torch.Tensor],
    *,
    content_weight: float,
    feature_matching_weight: float,
) -> GeneratorLoss:
    """Eq. 6's objective for G.

    fake_logits: D(G(f, p)); fake, target: (B, 3, H, W), G's image and the driving frame; *_features: D's
    features of the fake and the real frame.
    """
    adversarial = -fake_logits.mean()
    content = l1(fake, target)
    matching = feature_matching(fake_features, real_features)
    total = adversarial + content_weight * content + feature_matching_weight * matching
    return GeneratorLoss(adversarial, content, matching, total)
