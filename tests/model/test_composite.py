"""The rendered head pasted over the source frame (model.composite): the source's pixels outside the head, the
rendering inside it and wherever the head moved over the background."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.composite import CHANGE_FROM, head_ellipse, paste_over_source

SIZE = 64


def frames(n: int, seed: int) -> torch.Tensor:
    """Smooth random frames `(n, 3, SIZE, SIZE)` in [-1, 1]: texture that a slight blur keeps."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=SIZE, mode="bilinear", align_corners=False)


def test_head_ellipse_covers_the_middle_of_a_face_crop_and_not_its_corners() -> None:
    ellipse = head_ellipse(SIZE)
    assert ellipse.shape == (SIZE, SIZE) and set(np.unique(ellipse)) == {0.0, 1.0}
    assert ellipse[SIZE // 2, SIZE // 2] == 1 and ellipse[SIZE // 2 + 10, SIZE // 2] == 1  # mid-face, mouth
    assert ellipse[:4, :4].sum() == ellipse[-4:, -4:].sum() == 0  # background in the corners
    assert 0.3 < ellipse.mean() < 0.6  # about half the crop: face, hair and chin
    assert np.array_equal(ellipse, ellipse[:, ::-1])  # left-right symmetric


def test_outside_the_head_the_source_shows_and_inside_the_rendering() -> None:
    source, rendered = frames(2, seed=0), frames(2, seed=1)
    small = source + 0.5 * CHANGE_FROM * torch.sign(rendered - source)  # outside: changed less than the threshold
    ellipse = torch.from_numpy(head_ellipse(SIZE)).bool()
    rendered = torch.where(ellipse, rendered, small)
    out = paste_over_source(rendered, source)
    assert out.image.shape == rendered.shape and out.mask.shape == (2, 1, SIZE, SIZE)
    assert torch.equal(out.image[..., :6, :6], source[..., :6, :6])  # a corner: exactly the source's pixels
    core = torch.from_numpy(head_ellipse(SIZE // 2)).bool()  # an ellipse half the size, well inside the head
    inner = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    inner[SIZE // 4 : 3 * SIZE // 4, SIZE // 4 : 3 * SIZE // 4] = core
    torch.testing.assert_close(out.image[..., inner], rendered[..., inner])
    assert out.mask[..., inner].min() == pytest.approx(1.0) and out.mask[..., :6, :6].max() == 0


def test_the_head_moving_over_the_background_is_rendered_there() -> None:
    source = frames(1, seed=2)
    rendered = source.clone()
    rendered[..., 2:14, 2:14] = -source[..., 2:14, 2:14].sign()  # a corner changed by about 1: hair moved there
    out = paste_over_source(rendered, source)
    assert out.mask[0, 0, 5:11, 5:11].min() == pytest.approx(1.0)
    torch.testing.assert_close(out.image[..., 5:11, 5:11], rendered[..., 5:11, 5:11])
    assert out.mask[0, 0, -6:, -6:].max() == 0  # the other corners did not change: still the source


def test_one_source_frame_serves_every_rendering_and_shapes_are_checked() -> None:
    source, rendered = frames(1, seed=3), frames(3, seed=4)
    one = paste_over_source(rendered, source[0])
    torch.testing.assert_close(one.image, paste_over_source(rendered, source.expand(3, -1, -1, -1)).image)
    with pytest.raises(ValueError, match="does not match"):
        paste_over_source(rendered, frames(2, seed=5))
