"""What a training run shows a person: the loss table (`losses.csv`), its plot (`losses.png`) and sample grids.

- `StepLosses`: one step's named loss terms as floats; stage-2 terms are None (empty in the CSV) during stage 1.
- `LossLog`: appends rows to ``losses.csv``; on resume, drops rows logged after the state being resumed from.
- `plot_losses`: two panels (stage-1 terms; stage-2 terms), log-scale y, drawn with Pillow (no matplotlib here);
  values <= 0 (L_G = -E[D(G)] often is) are left out of the picture, not of the CSV.
- `sample_grid`: examples down, columns across (inputs, embedded face, pose warp, reconstruction, G's output,
  target), each column headed by its name (`model.image_grid`).
- `write_samples`: the grid of the same examples (`sample_examples`) at a step, drawn through the model's own
  inference methods (`DAEGAN.reconstruct`, `DAEGAN.render`), one example (one person) at a time, in float32.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont

from model.daegan import DAEGAN
from model.data.dataset import VideoFramesDataset
from model.image_grid import image_grid
from model.losses import DiscriminatorLoss, GeneratorLoss, Stage1Loss
from model.warp import flow_to_colour, resize


@dataclass(frozen=True)
class StepLosses:
    """One training step's loss terms (paper eqs. 3-7), unweighted, as floats."""

    reconstruction: float  # L_REC, eq. 3
    smoothness: float  # L_S, eq. 4
    residual: float  # L_B, P's residual budget (model.losses)
    contrast: float  # L_C, the within-video contrastive term (model.losses; 0 when off)
    labels: float  # L_Y, the synthetic-label term (model.losses; 0 when off)
    domain: float  # L_A, the domain critic's loss (model.losses; 0 when off; ln 2 = 0.69 when it cannot tell)
    stage1_total: float  # eq. 5 + lambda_B L_B + lambda_C L_C + lambda_Y L_Y + lambda_A L_A
    disc_real: float | None = None  # eq. 7, D's real branch
    disc_fake: float | None = None  # eq. 7, D's fake branch
    disc_total: float | None = None
    gen_adversarial: float | None = None  # L_G, eq. 7
    gen_content: float | None = None  # L_R, eq. 6
    gen_feature_matching: float | None = None  # L_FM, eq. 6
    gen_total: float | None = None  # eq. 6

    @classmethod
    def from_terms(
        cls, stage1: Stage1Loss, disc: DiscriminatorLoss | None = None, gen: GeneratorLoss | None = None
    ) -> StepLosses:
        """Read the loss tensors (one device sync)."""
        values = torch.stack([t.detach().float() for t in (*stage1, *(disc or ()), *(gen or ()))]).tolist()
        stage1_values, values = values[: len(stage1)], values[len(stage1) :]
        disc_values = values[:3] if disc is not None else [None] * 3
        gen_values = values[-4:] if gen is not None else [None] * 4
        return cls(*stage1_values, *disc_values, *gen_values)

    def present(self) -> dict[str, float]:
        """The terms this step has, by name (for the progress bar and JSON metadata)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


LOSS_TERMS = tuple(f.name for f in dataclasses.fields(StepLosses))
COLUMNS = ("step", "stage", "epoch", "lr", *LOSS_TERMS)  # lr: the embedders' learning rate at that step


class LossLog:
    """``losses.csv``: one row per logged step, `COLUMNS` wide."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self, *, resume_step: int | None) -> None:
        """A new table, or (resuming) the existing one less any rows after `resume_step`."""
        if resume_step is None or not self.path.is_file():
            self._write(pd.DataFrame(columns=list(COLUMNS)))
            return
        table = self.read().reindex(columns=list(COLUMNS))  # a log written before a term was added: empty column
        self._write(table[table["step"] <= resume_step])

    def append(self, *, step: int, stage: int, epoch: int, lr: float, losses: StepLosses) -> None:
        with open(self.path, "a", newline="") as file:
            row = [step, stage, epoch, f"{lr:.6g}"]
            row += ["" if v is None else f"{v:.6g}" for v in dataclasses.astuple(losses)]
            csv.writer(file).writerow(row)

    def read(self) -> pd.DataFrame:
        return pd.read_csv(self.path)

    def _write(self, table: pd.DataFrame) -> None:
        table.to_csv(self.path, index=False)


PLOT_SIZE = (960, 640)
PLOT_MARGIN = (70, 30, 20, 40)  # left, top, right, bottom of each panel's axes box
PANELS = (
    (
        "stage 1: embedders (eq. 5)",
        ("reconstruction", "smoothness", "residual", "contrast", "labels", "domain", "stage1_total"),
    ),
    (
        "stage 2: generator and discriminator (eqs. 6-7)",
        ("disc_total", "gen_adversarial", "gen_content", "gen_feature_matching", "gen_total"),
    ),
)
COLOURS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
)


def plot_losses(table: pd.DataFrame, path: Path) -> None:
    """Draw `table` (as `LossLog.read` gives it) to a PNG: one panel per stage's terms, log-scale y."""
    width, height = PLOT_SIZE
    image = Image.new("RGB", PLOT_SIZE, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    panel_height = height // len(PANELS)
    steps = table["step"].to_numpy(dtype=float) if len(table) else np.zeros(0)
    x_range = (float(steps.min()), float(max(steps.max(), steps.min() + 1))) if len(steps) else (0.0, 1.0)
    for p, (title, terms) in enumerate(PANELS):
        left, top = PLOT_MARGIN[0], p * panel_height + PLOT_MARGIN[1]
        right, bottom = width - PLOT_MARGIN[2], (p + 1) * panel_height - PLOT_MARGIN[3]
        draw.rectangle((left, top, right, bottom), outline="black")
        draw.text((left, top - 16), title, fill="black", font=font)
        series = []
        for term in terms:
            values = table[term].to_numpy(dtype=float) if term in table and len(table) else np.zeros(0)
            keep = np.isfinite(values) & (values > 0)  # log scale: positive values only
            if keep.any():
                series.append((term, steps[keep], np.log10(values[keep])))
        if not series:
            draw.text((left + 10, top + 10), "no values yet", fill="gray", font=font)
            continue
        low = math.floor(min(s[2].min() for s in series))
        high = max(math.ceil(max(s[2].max() for s in series)), low + 1)

        def to_xy(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
            px = left + (x - x_range[0]) / (x_range[1] - x_range[0]) * (right - left)
            py = bottom - (y - low) / (high - low) * (bottom - top)
            return list(zip(px.tolist(), py.tolist()))

        for decade in range(low, high + 1):  # horizontal grid line and label per power of ten
            ((_, y),) = to_xy(np.array([x_range[0]]), np.array([float(decade)]))
            draw.line((left, y, right, y), fill=(225, 225, 225))
            draw.text((4, y - 6), f"1e{decade}", fill="black", font=font)
        for i, (term, x, y) in enumerate(series):
            colour = COLOURS[i % len(COLOURS)]
            points = to_xy(x, y)
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
            else:
                draw.ellipse((points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2), fill=colour)
            draw.text((left + 8 + 150 * i, bottom + 6), term, fill=colour, font=font)
        draw.text((right - 150, bottom + 22), f"steps {x_range[0]:.0f}-{x_range[1]:.0f}", fill="black", font=font)
    image.save(path)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    return ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


SAMPLE_GUTTER = 2
SAMPLE_MIN_CELL = 64  # cells are upscaled (nearest) to at least this many pixels so tiny runs stay visible


def sample_grid(columns: Sequence[tuple[str, torch.Tensor]]) -> Image.Image:
    """Compose named columns of images, each (B, 3, H, W) in [-1, 1] with the same B, H, W, into one picture."""
    assert columns, "need at least one column"
    b, _, h, w = columns[0][1].shape
    for name, images in columns:
        assert images.shape == (b, 3, h, w), f"column {name}: {tuple(images.shape)} vs {(b, 3, h, w)}"
    scale = max(1, math.ceil(SAMPLE_MIN_CELL / h))
    tiles = [[to_uint8(images[r]) for _, images in columns] for r in range(b)]  # examples down, columns across
    return image_grid(
        tiles, tile_size=(w * scale, h * scale), gutter=SAMPLE_GUTTER, column_labels=[name for name, _ in columns]
    )


class Examples(NamedTuple):
    """The fixed examples every sample grid shows."""

    frames: torch.Tensor  # (N, K, 3, S, S)
    target: torch.Tensor  # (N, 3, S, S)


def sample_examples(dataset: VideoFramesDataset, count: int, device: torch.device) -> Examples:
    """`count` items spread evenly over the dataset (epoch 0's source frames): the same in every grid."""
    rows = torch.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().long().tolist()
    items = [dataset[(row, 0)] for row in rows]
    return Examples(
        torch.stack([i.frames for i in items]).to(device), torch.stack([i.target for i in items]).to(device)
    )


def write_samples(model: DAEGAN, examples: Examples, path: Path) -> None:
    """A sample grid: the K inputs, embedded face, pose warp (colour), the face moved by the warp alone,
    reconstruction (eq. 2), G's output (once `model.generator_trained`, stage 2), target."""
    recs = [model.reconstruct(frames, target[None]) for frames, target in zip(examples.frames, examples.target)]
    size = examples.target.shape[-1]
    columns = [(f"input {k + 1}", examples.frames[:, k]) for k in range(examples.frames.shape[1])]
    columns += [
        ("face", torch.stack([r.face for r in recs])),
        ("pose warp", resize(flow_to_colour(torch.cat([r.flow for r in recs])), size)),  # one scale for all
        ("warp only", resize(torch.cat([r.warped for r in recs]), size)),
        ("recon", torch.cat([r.reconstruction for r in recs])),
    ]
    if model.generator_trained:
        columns.append(("G(f, p)", torch.cat([model.render(r.face, r.pose_code, renderer="generator") for r in recs])))
    columns.append(("target", examples.target))
    sample_grid(columns).save(path)
