"""P's input augmentation (model/augment.py): off is the identity; each disturbance does what it says and keeps
the frame's geometry where it should; draws follow torch's seed."""

from __future__ import annotations

import torch

from model.augment import augment_pose_input
from model.config import AugmentConfig


def _frames(n: int = 4, size: int = 32) -> torch.Tensor:
    """Colour frames in [-1, 1] with a bright square off-centre (so a shift or blur is visible)."""
    img = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)) * 0.6 - 0.8
    img[:, 0, 8:16, 10:18] = 0.9
    return img


def test_off_returns_the_frames_unchanged() -> None:
    img = _frames()
    assert augment_pose_input(img, AugmentConfig()) is img
    assert not AugmentConfig().enabled and AugmentConfig(blur=0.5).enabled


def test_every_disturbance_keeps_shape_and_range_and_changes_the_frame() -> None:
    img = _frames()
    for name in ("brightness", "contrast", "saturation", "hue", "greyscale", "blur", "scale", "shift"):
        out = augment_pose_input(img, AugmentConfig(**{name: 1.0 if name in ("greyscale", "blur") else 0.3}))
        assert out.shape == img.shape and out.dtype == img.dtype, name
        assert out.min() >= -1 and out.max() <= 1, name
        assert not torch.allclose(out, img, atol=1e-3), f"{name} changed nothing"


def test_greyscale_gives_equal_channels_and_colour_ops_keep_geometry() -> None:
    img = _frames()
    grey = augment_pose_input(img, AugmentConfig(greyscale=1.0))
    torch.testing.assert_close(grey[:, 0], grey[:, 1])
    torch.testing.assert_close(grey[:, 1], grey[:, 2])
    colour = augment_pose_input(img, AugmentConfig(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05))
    # a colour change keeps where things are: the bright square is still the brightest place in every frame
    peak = colour.mean(dim=1).flatten(1).argmax(dim=1)
    rows, cols = peak // 32, peak % 32
    assert ((rows >= 8) & (rows < 16) & (cols >= 10) & (cols < 18)).all()


def test_shift_moves_content_by_at_most_the_bound() -> None:
    img = _frames(16)
    out = augment_pose_input(img, AugmentConfig(shift=0.1))  # up to 3.2 px at 32 px
    centre = lambda x: (x[:, 0] > 0.5).float().nonzero()[:, 1:].float().mean(0)  # noqa: E731
    for i in range(len(img)):
        moved = (centre(out[i : i + 1]) - centre(img[i : i + 1])).abs()
        assert (moved <= 3.2 + 0.5).all()
    assert not torch.allclose(out, img)


def test_draws_follow_torchs_seed() -> None:
    img, config = _frames(), AugmentConfig(brightness=0.3, hue=0.1, greyscale=0.5, blur=1.0, shift=0.05)
    torch.manual_seed(3)
    first = augment_pose_input(img, config)
    torch.manual_seed(3)
    assert torch.equal(augment_pose_input(img, config), first)
    assert not torch.equal(augment_pose_input(img, config), first)  # the next call draws anew
