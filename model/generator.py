"""The conditional generator G: embedded face f and pose code p -> a photo-realistic frame (paper sec. 3.2).

Built on Pix2PixHD's global generator (Wang et al.): a front end G_f that downsamples, a middle G_m of residual
blocks, a back end G_b that upsamples. As the paper asks, every convolution block is residual, one self-attention
module (SAGAN) is added, and the residual blocks of G_m and G_b normalise with AdaIN whose scale and bias come from
an MLP on p (one shared linear layer, then a mean head and a std head; see `model.blocks.AdaIN`).

Choices made where the paper is silent:
- The front end uses plain InstanceNorm residual blocks: it sees only f, so the pose enters in G_m and G_b only.
- The one self-attention block sits between G_f and G_m, at the lowest resolution, where attending over all
  positions is cheapest ((size / 2**num_down)**2 positions) and each position already sees a wide area.
- Stem and output convolutions are 7x7 as in Pix2PixHD; the output goes through tanh into [-1, 1].

A departure the config can switch on (`model.gen_refines_decoder`, on in the `tiny` and `small` presets): G also
takes a draft, P's decoder rendering of f in pose p (eq. 2, R^H + U{R^L + U[T^-1(f)]}), channel-concatenated with f,
and its output is draft + residual, the last convolution starting at zero so that an untrained G is P's decoder.
G still sees only f and p (the draft is a function of both). Why: the pose enters the paper's G only through AdaIN
statistics, so G has to learn where every part of the face goes from a vector; at the sizes and step counts a CPU
affords it never did (tests/model/test_stage2.py: G's L1 to the target 0.214 against 0.121 for f unchanged, after
4 or 12 stage-2 epochs; the shipped `small` checkpoint's G lost to P's decoder, 0.194 against 0.090). A refining
G inherits the decoder's geometry and spends its training on what the adversarial and feature-matching losses add.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import NEGATIVE_SLOPE, AdaINResBlock, ConvNormAct, ResBlock, SelfAttention
from model.config import ModelConfig


class Generator(nn.Module):
    """G(f, p): Pix2PixHD-style residual generator with AdaIN on the pose code and one self-attention block."""

    def __init__(
        self,
        pose_dim: int,  # length of the pose code p
        hidden_dim: int,  # stem width, doubled per downsampling (Pix2PixHD's ngf)
        num_down: int,  # resolution steps of the front end (and the back end)
        *,
        num_blocks: int,  # AdaIN residual blocks in the middle G_m
        adain_hidden_dim: int,  # width of each AdaIN MLP's shared layer
        max_hidden_dim: int,  # cap on any width
        refines_decoder: bool = False,  # take P's rendering as a draft and add a residual to it (module docstring)
    ) -> None:
        super().__init__()
        self.pose_dim, self.num_down, self.refines_decoder = pose_dim, num_down, refines_decoder
        widths = [min(hidden_dim * 2**level, max_hidden_dim) for level in range(num_down + 1)]
        adain = dict(pose_dim=pose_dim, hidden_dim=adain_hidden_dim)
        self.stem = ConvNormAct(6 if refines_decoder else 3, widths[0], kernel=7)
        self.front = nn.Sequential(*(ResBlock(widths[i], widths[i + 1], resample="down") for i in range(num_down)))
        self.attention = SelfAttention(widths[-1])
        self.middle = nn.ModuleList(AdaINResBlock(widths[-1], widths[-1], **adain) for _ in range(num_blocks))
        self.back = nn.ModuleList(
            AdaINResBlock(widths[i + 1], widths[i], resample="up", **adain) for i in reversed(range(num_down))
        )
        self.out_norm = nn.InstanceNorm2d(widths[0], affine=True)
        self.out_conv = nn.Conv2d(widths[0], 3, 7, padding=3)
        if refines_decoder:  # the residual starts at zero: an untrained G returns the draft
            nn.init.zeros_(self.out_conv.weight)
            nn.init.zeros_(self.out_conv.bias)

    @classmethod
    def from_config(cls, config: ModelConfig, *, size: int) -> Generator:
        """Build from the `model` section for `size`-pixel frames."""
        config.check_size(size)
        return cls(
            config.pose_dim,
            config.gen_hidden_dim,
            config.num_gen_down,
            num_blocks=config.num_gen_blocks,
            adain_hidden_dim=config.adain_hidden_dim,
            max_hidden_dim=config.max_hidden_dim,
            refines_decoder=config.gen_refines_decoder,
        )

    def forward(self, face: torch.Tensor, pose_code: torch.Tensor, draft: torch.Tensor | None = None) -> torch.Tensor:
        """face: (B, 3, H, W) embedded face; pose_code: (B, pose_dim); draft: (B, 3, H, W), P's rendering of `face`
        in `pose_code`, exactly when G refines the decoder. Returns img: (B, 3, H, W), in [-1, 1] unless refining
        (then draft + residual, unbounded like P's decoder; renderers clamp)."""
        assert face.dim() == 4 and face.shape[1] == 3, f"face must be (B, 3, H, W), got {tuple(face.shape)}"
        assert face.shape[-1] % 2**self.num_down == 0, f"face size must be divisible by {2**self.num_down}"
        assert pose_code.shape == (face.shape[0], self.pose_dim), f"pose_code must be (B, {self.pose_dim})"
        assert (draft is not None) == self.refines_decoder, "draft is required exactly when G refines the decoder"
        x = torch.cat([face, draft], dim=1) if draft is not None else face
        h = self.attention(self.front(self.stem(x)))  # (B, C, H / 2**num_down, W / 2**num_down)
        for block in self.middle:
            h = block(h, pose_code)
        for block in self.back:
            h = block(h, pose_code)  # doubles the size
        out = self.out_conv(F.leaky_relu(self.out_norm(h), NEGATIVE_SLOPE))
        return draft + out if draft is not None else torch.tanh(out)
