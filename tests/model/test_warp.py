"""Warp helpers: identity and one-pixel displacements do what they say, total variation and flow pictures."""

from __future__ import annotations

import torch

from model.warp import (
    ALIGN_CORNERS,
    downsample,
    flow_to_colour,
    flow_to_grid,
    identity_grid,
    pixels_to_flow,
    resize,
    total_variation,
    warp,
)


def _img(b: int = 2, c: int = 3, h: int = 16, w: int = 16) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_identity_displacement_leaves_image_unchanged_exactly() -> None:
    assert ALIGN_CORNERS is False  # the convention every test below was worked out for
    img = _img()
    assert torch.equal(warp(img, torch.zeros(2, 2, 16, 16)), img)  # power-of-two size: grid points are exact
    odd = _img(h=12, w=20)
    torch.testing.assert_close(warp(odd, torch.zeros(2, 2, 12, 20)), odd, atol=1e-5, rtol=0)


def test_identity_grid_is_pixel_centres() -> None:
    grid = identity_grid(2, 4)
    assert grid.shape == (1, 2, 4, 2)
    assert torch.equal(grid[0, 0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))  # x of row 0
    assert torch.equal(grid[0, :, 0, 1], torch.tensor([-0.5, 0.5]))  # y of column 0
    assert torch.equal(flow_to_grid(torch.zeros(3, 2, 2, 4)), grid.expand(3, -1, -1, -1))


def test_one_pixel_displacement_shifts_by_one_pixel() -> None:
    img = _img(h=16, w=12)
    right = torch.zeros(2, 2, 16, 12)
    right[:, 0] = 1.0  # sample one pixel to the right: content moves one pixel left
    shifted = warp(img, pixels_to_flow(right))
    torch.testing.assert_close(shifted[..., :-1], img[..., 1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(shifted[..., -1], img[..., -1], atol=1e-5, rtol=0)  # border padding repeats the edge
    down = torch.zeros(2, 2, 16, 12)
    down[:, 1] = 1.0
    torch.testing.assert_close(warp(img, pixels_to_flow(down))[..., :-1, :], img[..., 1:, :], atol=1e-5, rtol=0)
    half = warp(img, pixels_to_flow(right * 0.5))  # bilinear: halfway between neighbours
    torch.testing.assert_close(half[..., :-1], (img[..., 1:] + img[..., :-1]) / 2, atol=1e-5, rtol=0)


def test_flow_units_are_resolution_independent() -> None:
    """A flow read at a lower resolution than its source samples the same place in the source."""
    img = torch.arange(16.0).repeat(16, 1).view(1, 1, 16, 16)  # value = column index
    flow = pixels_to_flow(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4))  # 1 px of 4 = a quarter
    out = warp(img, flow)  # (1, 1, 4, 4) sampled from 16 px wide img
    # pixel centre j of a 4-wide grid is source column 4j + 1.5; a quarter of the width on is 4 columns further
    expected = torch.tensor([5.5, 9.5, 13.5, 15.0])  # the last falls off the edge and repeats it
    torch.testing.assert_close(out[0, 0, 0], expected)


def test_total_variation() -> None:
    assert total_variation(torch.full((2, 2, 8, 8), 0.3)).item() == 0.0
    field = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).view(1, 1, 2, 2)
    # horizontal |1-0|, |4-2| -> mean 1.5; vertical |2-0|, |4-1| -> mean 2.5
    assert total_variation(field).item() == 4.0
    ramp = torch.arange(5.0).repeat(3, 1).view(1, 1, 3, 5)  # slope 1 along x only
    assert total_variation(ramp).item() == 1.0


def test_resize_and_downsample() -> None:
    img = _img()
    assert resize(img, 32).shape == (2, 3, 32, 32)
    ramp = torch.arange(8.0).repeat(8, 1).view(1, 1, 8, 8)  # value = column index
    up = resize(ramp, 16)
    # pixel-centre convention: new column j sits at old column (j + 0.5) / 2 - 0.5; content stays in place
    torch.testing.assert_close(up[0, 0, 0, 1:-1], (torch.arange(1.0, 15.0) + 0.5) / 2 - 0.5)
    torch.testing.assert_close(downsample(up, 2)[..., 1:-1], ramp[..., 1:-1])  # and back, exactly in the interior
    box = torch.tensor([[1.0, 3.0], [5.0, 7.0]]).view(1, 1, 2, 2)
    assert downsample(box, 2).item() == 4.0
    assert downsample(img, 1) is img


def test_flow_to_colour() -> None:
    flow = torch.zeros(1, 2, 4, 4)
    flow[0, 0, :, 2:] = 1.0  # right half points right
    flow[0, 0, :2, :2] = -1.0  # top-left quarter points left
    picture = flow_to_colour(flow.requires_grad_())  # a flow straight from a network
    assert not picture.requires_grad
    assert picture.shape == (1, 3, 4, 4) and picture.min() >= -1 and picture.max() <= 1
    assert torch.equal(picture[0, :, 3, 0], torch.ones(3))  # no motion is white
    right, left = picture[0, :, 0, 3], picture[0, :, 0, 0]
    assert not torch.allclose(right, left)  # direction is hue
    torch.testing.assert_close(right, torch.tensor([1.0, -1.0, -1.0]))  # full length to the right is pure red
    torch.testing.assert_close(flow_to_colour(flow * 0.5, max_norm=1.0)[0, :, 0, 3], torch.tensor([1.0, 0.0, 0.0]))


def test_warp_grid_is_float32_under_bf16_autocast() -> None:
    """Under bf16 autocast a flow arrives in bf16; the grid built from it must not be rounded to bf16 (8 bits:
    coordinates near the edge would move by up to half a pixel at 256 px)."""
    size = 256
    img = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    flow = pixels_to_flow(torch.full((1, 2, size, size), 0.37))  # a sub-pixel shift, exact in bf16 or not
    exact = warp(img, flow.bfloat16().float())
    assert flow_to_grid(flow.bfloat16()).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = warp(img, flow.bfloat16())
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, atol=1e-5, rtol=0)
