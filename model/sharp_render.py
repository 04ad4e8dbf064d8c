"""Rendering at any size from the source frames' own pixels: F's and P's warps composed into one (issue 12).

P's decoder draws x = T^-1(f) + R^H + U[R^L] (eq. 2 with the full-resolution warp), where the embedded face
f = sum_k A'_k T_k(x_k) (eq. 1) is itself a warp of the K source frames. Both warps are fields, so the two
samplings compose into one: at each output point v, with w = v + T^-1(v),

    x(v) = sum_k A'_k(w) x_k(w + T_k(w)) + R^H(v) + U[R^L](v).

Sampling the source frames once, through the composed field, at the size the frames come in (their own crops,
larger than the model's S), keeps their detail: the model's warps say where every pixel comes from and the source
photo gives the pixel, where rendering at S and enlarging gives the S-pixel face, sampled twice, blown up. This is
how FOMM and X2Face render: the network predicts motion, the pixels stay the source's.

Choices made:
- The fields (T^-1 at S/4, T_k and A'_k at S) and the residuals are bilinearly upsampled to the output size; flow
  units are resolution-free (`model.warp`). Sampled A'_k still sum to 1 (bilinear sampling is linear).
- Only the multi-scale decoder with the full-resolution warp composes this way (`model.warp_full_resolution`, on
  in `small`); eq. 2 read literally warps a 4x-downsampled f, which no source frame's pixels can stand in for.
"""

from __future__ import annotations

import torch

from model.face_embedder import FaceEmbedding
from model.pose_embedder import PoseReconstruction
from model.warp import resize, upsample_flow, warp


def render_from_sources(sources: torch.Tensor, embedding: FaceEmbedding, rec: PoseReconstruction) -> torch.Tensor:
    """The decoder's rendering drawn from the source frames' own pixels (module docstring).

    sources: (K, 3, H, H) in [-1, 1], the K frames F embedded, at the output size H (any size); embedding: F's
    output for those frames at the model's size S (flow (K, 2, S, S), attention (K, 1, S, S)); rec: P's decoding of
    N pose codes on that embedded face (flow (N, 2, S/4, S/4), residual_low, residual_high). Returns (N, 3, H, H),
    unclamped.
    """
    k, _, size, _ = sources.shape
    assert embedding.flow.shape[0] == k, f"{k} source frames for an embedding of {embedding.flow.shape[0]}"
    assert rec.residual_low is not None and rec.residual_high is not None, "needs the multi-scale decoder"
    n = len(rec.flow)
    pose_flow = upsample_flow(rec.flow, size)  # (N, 2, H, H): T^-1
    image = resize(rec.residual_high.float(), size) + resize(rec.residual_low.float(), size)  # (N, 3, H, H)
    for frame, face_flow, attention in zip(sources, embedding.flow, embedding.attention):
        at = torch.cat([face_flow, attention]).float().expand(n, -1, -1, -1)  # (N, 3, S, S): T_k and A'_k
        moved = warp(at, pose_flow)  # (N, 3, H, H): both read at w = v + T^-1(v)
        pixels = warp(frame.float().expand(n, -1, -1, -1), pose_flow + moved[:, :2])  # x_k(w + T_k(w))
        image = image + moved[:, 2:] * pixels
    return image
