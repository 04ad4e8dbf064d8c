"""Crash loop (issue 14): `index add` on a growing index, killed with SIGKILL at random moments, again and again.

Each round moves one more SynthVox video into the collection and starts the real `index add` as a child process;
after a random delay it is killed with SIGKILL (or, when it finishes first, counted as a completed write). Every
fifth round runs uncut: the index keeps growing, and its time bounds the next delays (0 to 1.1 times it). After
every round, `index verify` and `index query` run (the real commands, in this process) and the loop checks:
- every frame committed before the round is still there, and the frames are the old set or the old set plus the
  whole round: no frame is half there (verify: FAISS ids = rows, sha256, counts);
- `index verify` says "ok", or, after kills since a kill between the database commit and the manifest's
  replacement, reports only the lagging `manifest.json` (the documented leftover the next writer tidies as it
  opens); after a completed write it says "ok"; `index query` answers with k hits;
- no orphan generation file (an `index.N.faiss` that is not the live one) outlives the next completed write.

The child reads its disk slowly and fsyncs slowly (sleeps injected around the store's reads and its commit steps),
so kills land in every phase: start-up, encoding, the generation write, the commit and the manifest's replacement.
Any broken invariant stops the loop with exit code 1 and says which.

    .venv/bin/python benchmarks/crash_loop.py [--kills 50 --seed 0 --json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from click.testing import CliRunner

from indexer.store import Store
from model.config import load_config
from model.daegan import DAEGAN
from model.data.synthvox import synthesize
from ui.index_command import main as index_main

REPO = Path(__file__).resolve().parents[1]
K = 3  # hits asked of each query
UNCUT_EVERY = 5  # every 5th round (the first included) runs to its end
SLOW_ADD = """
import sys, time
from indexer import build, generations
read = build.FrameReader.__getitem__
build.FrameReader.__getitem__ = lambda self, i: (time.sleep(0.03), read(self, i))[1]  # a slow disk
for name in ("fsync_file", "fsync_dir", "write_manifest"):  # slow commit steps: kills land between them
    step = getattr(generations, name)
    setattr(generations, name, lambda *a, _step=step, **k: (time.sleep(0.1), _step(*a, **k))[1])
from ui.index_command import main
main(sys.argv[1:])
"""


@dataclass
class Figures:
    """What the loop did and found; `violations` lists every broken invariant (empty: the index survived)."""

    kills: int = 0  # adds killed with SIGKILL
    completed: int = 0  # adds that finished before their kill came
    commits_survived: int = 0  # committed builds (the first build and kills after the commit point included)
    killed_after_commit: int = 0  # kills that came after the database commit: the round's frames are all there
    manifest_lagging: int = 0  # rounds after which verify named only a lagging manifest.json (a writer tidies it)
    frames_checked: int = 0  # frames whose presence was checked, summed over rounds
    final_frames: int = 0  # frames in the index at the end
    orphans_found: int = 0  # generation files not live seen after kills (each removed by the next write)
    queries: int = 0  # `index query` runs that answered
    seconds: float = 0.0
    violations: list[str] | None = None


def _paths(index: Path) -> set[str]:
    with Store.open(index) as store:
        return store.paths()


def _orphans(index: Path) -> list[str]:
    with Store.open(index) as store:
        live = store.info()["index_file"]
    return sorted(f.name for f in index.glob("index.*.faiss") if f.name != live)


def _wanted(root: Path) -> set[str]:
    return {str(f.relative_to(root)) for f in root.glob("*/*/*.png")}


def crash_loop(kills: int, *, seed: int, workdir: Path, log: Callable[[str], None] = print) -> Figures:
    """Run rounds until `kills` adds have been killed; check the invariants (module docstring) after each."""
    started = time.perf_counter()
    figures, violations = Figures(commits_survived=1), []
    rng = random.Random(seed)
    checkpoint = workdir / "tiny.safetensors"
    DAEGAN.from_config(load_config("tiny")).save(checkpoint)
    pool = workdir / "pool"
    identities = 4
    synthesize(
        pool,
        identities=identities,
        videos_per_identity=(kills + 12) // identities + 1,
        frames=3,
        size=32,
        seed=seed,
        workers=1,
        progress=False,
    )
    videos = sorted(pool.glob("*/*"))
    root, index = workdir / "collection", workdir / "index"
    runner = CliRunner()

    def grow() -> None:
        video = videos.pop(0)
        shutil.move(video, root / video.relative_to(pool))

    for identity in sorted(pool.iterdir()):
        (root / identity.name).mkdir(parents=True)
    grow()
    result = runner.invoke(
        index_main,
        [
            "build",
            str(root),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(index),
            "--workers",
            "0",
            "--device",
            "cpu",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    photo = next(root.glob("*/*/*.png"))
    add = [
        sys.executable,
        "-c",
        SLOW_ADD,
        "add",
        str(root),
        "--index",
        str(index),
        "--checkpoint",
        str(checkpoint),
        "--workers",
        "0",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--no-progress",
    ]
    span = 0.0  # how long the last uncut add took: the range the kill delays are drawn from
    rounds = 0
    orphans_seen: set[str] = set()  # since the last completed write
    while figures.kills < kills and not violations:
        rounds += 1
        if videos:
            grow()
        before, wanted = _paths(index), _wanted(root)
        uncut = rounds % UNCUT_EVERY == 1  # lets the index grow, and measures how long an add takes now
        delay = None if uncut else rng.uniform(0.0, 1.1 * span)
        t0 = time.perf_counter()
        child = subprocess.Popen(add, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _, err = child.communicate(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.communicate()
            killed = True
        if uncut:
            span = time.perf_counter() - t0
        after = _paths(index)
        figures.frames_checked += len(after)
        orphans = _orphans(index)
        figures.commits_survived += after != before
        if not killed:
            figures.completed += 1
            if child.returncode != 0:
                violations.append(f"round {rounds}: an uncut add failed: {err.strip().splitlines()[-1:]}")
            if after != wanted:
                violations.append(f"round {rounds}: a completed add holds {len(after)} frames, not {len(wanted)}")
            if orphans:
                violations.append(f"round {rounds}: orphans {orphans} outlived a completed write")
            orphans_seen.clear()
        else:
            figures.kills += 1
            figures.orphans_found += len(set(orphans) - orphans_seen)
            orphans_seen.update(orphans)
            if not before <= after:
                violations.append(f"round {rounds}: committed frames lost: {sorted(before - after)[:5]}")
            elif after not in (before, wanted):
                violations.append(
                    f"round {rounds}: half a build is there: {len(after - before)} of {len(wanted - before)} new frames"
                )
            elif after == wanted and after != before:
                figures.killed_after_commit += 1
        result = runner.invoke(index_main, ["verify", "--index", str(index)])
        if result.exit_code != 0:
            problems = result.output.strip().splitlines()
            if killed and all("manifest.json" in p for p in problems):
                figures.manifest_lagging += 1
            else:
                violations.append(f"round {rounds}: verify: {problems}")
        result = runner.invoke(
            index_main,
            [
                "query",
                str(photo),
                "--index",
                str(index),
                "--checkpoint",
                str(checkpoint),
                "--device",
                "cpu",
                "-k",
                str(K),
                "--json",
            ],
        )
        if result.exit_code != 0 or len(json.loads(result.stdout)) != K:
            violations.append(f"round {rounds}: query: {result.output.strip()[-300:]}")
        else:
            figures.queries += 1
        log(
            f"round {rounds}: {'killed' if killed else 'completed'} after {time.perf_counter() - t0:.2f} s, "
            f"{len(after)} frames, orphans {orphans}"
        )
    if not violations:  # a last, uncut write: every leftover of the kills is tidied, every frame is there
        final = subprocess.run(add, cwd=REPO, capture_output=True, text=True)
        after = _paths(index)
        if final.returncode != 0 or after != _wanted(root) or _orphans(index):
            violations.append(f"final add: rc {final.returncode}, {len(after)} frames, orphans {_orphans(index)}")
        if runner.invoke(index_main, ["verify", "--index", str(index)]).output != "ok\n":
            violations.append("final verify is not ok")
        figures.final_frames = len(after)
    figures.seconds = time.perf_counter() - started
    figures.violations = violations
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="adds to kill")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill delays and the SynthVox videos")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object, nothing else")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crash_loop-") as tmp:
        figures = crash_loop(
            args.kills, seed=args.seed, workdir=Path(tmp), log=(lambda line: None) if args.json else print
        )
    if args.json:
        print(json.dumps(asdict(figures)))
    else:
        print(
            f"kills: {figures.kills} (of them after the commit point: {figures.killed_after_commit}, "
            f"manifest lagging: {figures.manifest_lagging}); uncut adds: {figures.completed}"
        )
        print(
            f"commits survived: {figures.commits_survived}; frames checked: {figures.frames_checked} "
            f"(final index: {figures.final_frames} frames); orphan generation files found: "
            f"{figures.orphans_found} (none outlived the next write); queries answered: {figures.queries}"
        )
        print(f"time: {figures.seconds:.1f} s")
        for violation in figures.violations:
            print(f"VIOLATION {violation}")
    raise SystemExit(1 if figures.violations else 0)


if __name__ == "__main__":
    main()
