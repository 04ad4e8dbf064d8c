"""Drawing from the source frames' own pixels (model.sharp_render): the composed warp on hand-made fields, and a
photo larger than the model's size keeping its detail through `DAEGAN.draw`."""

from __future__ import annotations

import numpy as np
import torch

from model.config import load_config
from model.daegan import DAEGAN
from model.face_embedder import FaceEmbedding
from model.pose_embedder import PoseReconstruction
from model.sharp_render import render_from_sources
from model.warp import pixels_to_flow, warp

S = 16


def _fields(face_flow: torch.Tensor, attention: torch.Tensor, pose_flow: torch.Tensor, n: int = 1):
    k = len(face_flow)
    embedding = FaceEmbedding(torch.zeros(3, S, S), face_flow, attention, torch.zeros(k, 3, S, S))
    rec = PoseReconstruction(
        torch.zeros(n, 3, S, S), torch.zeros(n, 4), pose_flow, torch.zeros(n, 3, S, S),
        torch.zeros(n, 3, S // 2, S // 2), torch.zeros(n, 3, S, S),
    )  # fmt: skip
    return embedding, rec


def test_still_fields_give_the_source_frame_at_any_size() -> None:
    """No motion, no residual, K = 1: the output is the source frame itself, at whatever size it is given."""
    big = torch.rand(1, 3, 4 * S, 4 * S) * 2 - 1
    embedding, rec = _fields(torch.zeros(1, 2, S, S), torch.ones(1, 1, S, S), torch.zeros(1, 2, S // 4, S // 4))
    torch.testing.assert_close(render_from_sources(big, embedding, rec), big)


def test_the_two_warps_compose_and_the_attention_weighs_the_frames() -> None:
    """Constant shifts add up (F's 2 px right and P's 1 px down sample the frame 2 px right, 1 px down), attention
    weighs two frames, and the residuals add on top: checked against warping the frames directly."""
    frames = torch.rand(2, 3, S, S) * 2 - 1
    right = pixels_to_flow(torch.tensor([2.0, 0.0]).view(1, 2, 1, 1).expand(2, 2, S, S))
    down = torch.tensor([0.0, 2.0 / S]).view(1, 2, 1, 1).expand(1, 2, S // 4, S // 4)  # 1 px of the output
    attention = torch.stack([torch.full((1, S, S), 0.25), torch.full((1, S, S), 0.75)])
    embedding, rec = _fields(right.contiguous(), attention, down)
    rec = rec._replace(residual_high=torch.full((1, 3, S, S), 0.1))
    both = right[:1] + pixels_to_flow(torch.tensor([0.0, 1.0]).view(1, 2, 1, 1).expand(1, 2, S, S).contiguous())
    expected = 0.25 * warp(frames[:1], both) + 0.75 * warp(frames[1:], both) + 0.1
    inside = (slice(None), slice(None), slice(2, -2), slice(3, -3))  # away from the border's clamping
    torch.testing.assert_close(render_from_sources(frames, embedding, rec)[inside], expected[inside])


def test_draw_keeps_a_large_photos_detail() -> None:
    """A 64-px photo of fine stripes drawn at 64 px by a 16-px model keeps its stripes (pixel-to-pixel contrast),
    where the model's own 16-px rendering, enlarged, cannot hold them."""
    model = DAEGAN.from_config(load_config("tiny", {"data.size": S}))
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 255
    sharp = model.draw([stripes], model.encode_pose([stripes], normalize=False), size=64, keep_background=False)
    blurred = model.draw(model.to_frames([stripes]), model.encode_pose([stripes], normalize=False), size=64)
    assert sharp.shape == blurred.shape == (1, 3, 64, 64)
    contrast = [(x[..., 1:] - x[..., :-1]).abs().mean().item() for x in (sharp, blurred)]
    assert contrast[0] > 1.0 > 0.2 > contrast[1], contrast
