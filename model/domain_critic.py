"""The domain critic: a small network that tells real frames from SynthVox's by the pose code coordinates that the
synthetic labels supervise, trained against P through a reversed gradient (Ganin & Lempitsky 2015, "Unsupervised
Domain Adaptation by Backpropagation"; `loss.domain_weight`; the term is `model.losses.domain_loss`).

Why (a departure; the paper trains on real video only): L_Y (`loss.label_weight`) teaches p's first coordinates
SynthVox's head pose and expression, but only on SynthVox's frames. Measured on the shipped checkpoint (trained
without it), real faces sat off the synthetic range on those coordinates (on the mouth-opening one, the mean code of
the held-out cap frames 1.4 synthetic standard deviations from the centre, ORL's 1.9: every real face a wide-open
mouth), and ranking ORL photos by those seven coordinates closed 0.03 of the random-to-oracle gap of their judged
pose: the labels' meaning stopped at the cartoon. The critic learns to tell the two domains apart from those
coordinates; P learns to leave it unable, so a real face's coordinates must look like a cartoon's readings, which
the shared decoder then makes mean the same pose.

Choices (the paper is silent): one loss for both sides, as DANN: the critic descends it, and the reversed gradient
makes P ascend it. P's rate is far below the critic's (`train.critic_lr`): with an encoder ten times faster than its
critic, ascending an unbounded loss overshoots (real codes thrown past the synthetic ones); at the critic's rate it
settles (tests/model/test_domain_critic.py). Measured on the real task beside the bounded alternative (P minimising
the critic's cross-entropy against even odds, Tzeng et al. 2015): the reversed gradient moved real retrieval, the
alternative did not (checkpoints/README.md). The critic reads only the supervised coordinates (the rest of the code
may still tell a photo from a cartoon: what the labels name is what should transfer); a two-hidden-layer LeakyReLU
MLP (`model.critic_hidden_dim`); it is built for training only (`DAEGAN.from_config(with_discriminator=True)`) and
is saved in the checkpoint beside D, so a resumed run continues exactly."""

from __future__ import annotations

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient's sign flipped backward (the gradient reversal layer)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001 (autograd's context)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return -grad


def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    """`x` unchanged; what flows back through it is negated, so what descends a loss downstream ascends it
    upstream."""
    return _ReverseGradient.apply(x)


class DomainCritic(nn.Module):
    """Logit that a pose code's first `dims` coordinates come from a real frame rather than a SynthVox one."""

    def __init__(self, dims: int, hidden_dim: int) -> None:
        super().__init__()
        self.dims = dims
        self.net = nn.Sequential(
            nn.Linear(dims, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, 1),
        )

    def forward(self, pose_code: torch.Tensor) -> torch.Tensor:
        """pose_code: (B, D) -> (B,) logits, read through a reversed gradient: the critic's weights descend its
        loss, everything before the code (P) ascends it."""
        return self.net(reverse_gradient(pose_code[:, : self.dims].float())).squeeze(1)
