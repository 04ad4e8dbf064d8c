"""What sampling a video layout by real timestamps costs: scanning a VoxCeleb-style video root with every frame's
timestamp read (`model.data.collection`, which then samples a variable-rate video at the right times) against the
header-only scan it replaced (frame count and rate from the header, frame i taken to be at i / fps), beside what
an index build then spends decoding the sampled frames (`collection.load_frame`, one seek per frame).

The videos are written here with OpenCV's mp4v encoder (VoxCeleb1's utterances: 224 x 224, 25 fps, 8 s): smooth
noise that drifts, so the encoder has real work. Each figure is the median of `--reps` runs, page cache warm.

    .venv/bin/python benchmarks/video_scan.py [--videos 10] [--seconds 8] [--size 224] [--fps 1] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_model

from model.data.collection import load_frame, scan_collection
from model.data.video import probe_video, video_frame_indices

NATIVE_FPS = 25.0


def write_video(path: Path, num_frames: int, size: int, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), NATIVE_FPS, (size, size))
    base = cv2.resize(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8), (size, size))
    for i in range(num_frames):
        writer.write(np.roll(base, i, axis=1))
    writer.release()


def header_only_scan(paths: list[Path], fps: float) -> int:
    """The scan before timestamps: frame count and rate from the header (`probe_video`), frames by number."""
    return sum(len(video_frame_indices(n, native, fps)) for native, n, _ in map(probe_video, paths))


def median_seconds(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--fps", type=float, default=1.0, help="the sampling rate of `index build` (its --fps)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, OpenCV {cv2.__version__}")
    num_frames = int(args.seconds * NATIVE_FPS)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = [root / f"id{i:05d}" / "yt" / "00001.mp4" for i in range(args.videos)]
        for path in paths:
            write_video(path, num_frames, args.size, rng)
        print(
            f"{args.videos} videos of {num_frames} frames ({args.seconds:g} s at {NATIVE_FPS:g} fps), "
            f"{args.size}x{args.size} mp4v, sampled at {args.fps:g} fps"
        )
        frames = scan_collection(root, fps=args.fps).frames
        assert len(frames) == header_only_scan(paths, args.fps), "both scans sample the same frames here"
        timed = median_seconds(lambda: scan_collection(root, fps=args.fps), args.reps)
        header = median_seconds(lambda: header_only_scan(paths, args.fps), args.reps)
        decode = median_seconds(lambda: [load_frame(p, f) for p, f in zip(frames["path"], frames["frame"])], args.reps)
    per_video = 1000 / args.videos
    print(
        f"scan by timestamps (ours): {timed * per_video:8.1f} ms/video ({num_frames * args.videos / timed:,.0f} "
        "frames/s read)"
    )
    print(f"header-only scan (before): {header * per_video:8.1f} ms/video")
    print(f"decoding the {len(frames)} sampled frames (the build's read): {decode * per_video:8.1f} ms/video")
    print(
        f"ratio timestamps / header-only: {timed / header:.1f}x; scan by timestamps / build's decode: "
        f"{timed / decode:.2f}x"
    )


if __name__ == "__main__":
    main()
