"""What P's encoder can read from SynthVox at a given size when it is told the answers: a ceiling for the pose code.

P's encoder (the preset's widths) plus a linear head is trained on the labels of one SynthVox collection (MSE on the
standardised head pose and expression parameters) and scored on another seed's identities by R^2 per parameter,
with and without the preset's augmentation of P's input. A parameter the labelled encoder cannot read at this size
cannot be asked of the self-supervised code; one it reads is the code's target (issue 11). Nothing here is used by
training; it bounds what training can reach.

    .venv/bin/python benchmarks/label_ceiling.py --train demo/train_synthvox --test demo/synthvox_seed1 --steps 1500

Prints R^2 (1 = read exactly, 0 = no better than the mean) per parameter and the seconds each run took.
"""

import argparse
import time

import torch
from machine import torch_machine

from model.augment import augment_pose_input
from model.config import load_config
from model.data.collection import read_collection
from model.data.dataset import to_square, to_tensor
from model.data.images import read_image
from model.data.synthvox import POSE_COLUMNS
from model.pose_embedder import PoseEmbedder

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--train", required=True, help="a labelled SynthVox collection to fit on")
parser.add_argument("--test", required=True, help="a labelled SynthVox collection of other identities to score on")
parser.add_argument("--config", default="small", help="preset whose P widths, size and augmentation are used")
parser.add_argument("--steps", type=int, default=1500)
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
config = load_config(args.config)
size = config.data.size


def labelled_frames(root: str) -> tuple[torch.Tensor, torch.Tensor]:
    frames = read_collection(root)
    images = torch.stack([to_tensor(to_square(read_image(path), size)) for path in frames["path"]])
    return images, torch.tensor(frames[list(POSE_COLUMNS)].to_numpy(), dtype=torch.float32)


def ceiling(
    images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor, *, augment: bool
) -> list[float]:
    """R^2 per parameter on the test frames of an encoder fitted to the training frames' labels."""
    torch.manual_seed(args.seed)
    mean, std = labels.mean(0), labels.std(0)
    encoder = PoseEmbedder.from_config(config.model, size=size)
    head = torch.nn.Linear(config.model.pose_dim, len(POSE_COLUMNS))
    optimiser = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    for _ in range(args.steps):
        batch = torch.randint(len(images), (args.batch,))
        x = augment_pose_input(images[batch], config.augment) if augment else images[batch]
        loss = ((head(encoder.encode(x)) - (labels[batch] - mean) / std) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    encoder.eval()
    with torch.no_grad():
        predicted = torch.cat([head(encoder.encode(chunk)) for chunk in test_images.split(256)]) * std + mean
    return (1 - ((predicted - test_labels) ** 2).mean(0) / test_labels.var(0)).tolist()


train_images, train_labels = labelled_frames(args.train)
test_images, test_labels = labelled_frames(args.test)
print(torch_machine(torch.device("cpu")))
print(f"{args.config}: {size} px, {len(train_images)} training frames, {len(test_images)} held-out frames")
print("augment | " + " | ".join(POSE_COLUMNS) + " | seconds")
for augment in (False, True):
    start = time.perf_counter()
    r2 = ceiling(train_images, train_labels, test_images, test_labels, augment=augment)
    print(
        f"{'yes' if augment else 'no':7} | "
        + " | ".join(f"{v:.2f}" for v in r2)
        + f" | {time.perf_counter() - start:.0f}"
    )
