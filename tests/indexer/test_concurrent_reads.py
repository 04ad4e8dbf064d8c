"""Readers while a writer commits, over and over: every read sees one whole generation, old or new, never an error.

The writer is another process running the real `index add` once per new video (in one interpreter, so the commits
come seconds apart rather than an import apart). Two kinds of reader run meanwhile: a process that opens a fresh
`Retriever` per read and keeps a long-lived one, and `index query` in this process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from model.data.synthvox import synthesize
from ui.index_command import main

REPO = Path(__file__).resolve().parents[2]
K = 4
WRITER = """
import shutil, sys
from pathlib import Path
from ui.index_command import main
pool, root, index, checkpoint = map(Path, sys.argv[1:5])
try:
    for video in sorted(pool.glob("*/*")):
        (root / video.relative_to(pool)).parent.mkdir(exist_ok=True)
        shutil.move(video, root / video.relative_to(pool))
        main(["add", str(root), "--index", str(index), "--checkpoint", str(checkpoint), "--workers", "0",
              "--device", "cpu", "--no-progress"], standalone_mode=False)
finally:
    (root.parent / "writer.done").touch()  # the reader stops on it, whatever became of the writer
"""
READER = """
import json, sys
from pathlib import Path
import numpy as np
from retrieval.search import Retriever
index, checkpoint, done = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
seen, reads = set(), 0
with Retriever(index, checkpoint, device="cpu") as kept:
    while not done.exists():
        for retriever in (kept, Retriever(index, checkpoint, device="cpu")):
            summary = retriever.summary()
            assert summary.num_frames == summary.num_vectors, summary  # one generation: rows and codes agree
            hits = retriever.search(np.ones(retriever.dim, np.float32), %d)
            assert len(hits) == min(%d, summary.num_vectors), (len(hits), summary)
            assert len(retriever.pose_codes(hits["id"].to_numpy())) == len(hits)
            seen.add(summary.num_vectors)
            reads += 1
            if retriever is not kept:
                retriever.close()
print(json.dumps({"reads": reads, "counts_seen": sorted(seen)}))
""" % (K, K)


def test_reads_during_commits_see_a_whole_generation(runner, tiny_checkpoint, tmp_path):
    pool, root, index = tmp_path / "pool", tmp_path / "collection", tmp_path / "index"
    synthesize(pool, identities=2, videos_per_identity=6, frames=2, size=32, seed=0, workers=1, progress=False)
    for video in sorted(pool.glob("*/*"))[:2]:  # K frames to start with
        (root / video.relative_to(pool)).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(video, root / video.relative_to(pool))
    result = runner.invoke(
        main,
        [
            "build",
            str(root),
            "--checkpoint",
            str(tiny_checkpoint),
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
    done = tmp_path / "writer.done"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(pool), str(root), str(index), str(tiny_checkpoint)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(index), str(tiny_checkpoint), str(done)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    queries = 0
    try:
        while writer.poll() is None:
            result = runner.invoke(
                main,
                [
                    "query",
                    str(photo),
                    "--index",
                    str(index),
                    "--checkpoint",
                    str(tiny_checkpoint),
                    "--device",
                    "cpu",
                    "-k",
                    str(K),
                    "--json",
                ],
            )
            assert result.exit_code == 0, result.output
            assert len(json.loads(result.stdout)) == K
            queries += 1
        _, writer_err = writer.communicate(timeout=120)
        reader_out, reader_err = reader.communicate(timeout=120)
    finally:  # a failed assertion leaves no process behind
        for child in (writer, reader):
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert writer.returncode == 0, writer_err
    assert reader.returncode == 0, reader_err
    figures = json.loads(reader_out)
    assert queries >= 2 and figures["reads"] >= 10
    assert len(figures["counts_seen"]) >= 3  # the reads really overlapped several commits
    assert runner.invoke(main, ["verify", "--index", str(index)]).output == "ok\n"
