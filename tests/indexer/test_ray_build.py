"""Index builds on a real local Ray cluster (`index build --ray`, `index add --ray --ray-address`): the same ids,
rows and codes as the single-process build, bad frames skipped and listed alike, an encoder killed mid-build
restarted and its batches retried.

One cluster for the module (`ray.init(num_cpus=2)`: Ray takes seconds to start), on the loopback address.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from indexer.build import BuildSummary, add_to_index, build_index
from indexer.store import Store
from tests.indexer.conftest import FRAMES

# Ray binds a Linux node to its outward address; the switch it keeps for laptops binds this test cluster (and the
# workers and the `index add` process, which inherit it) to 127.0.0.1 instead. Read when Ray is imported.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

LOCAL = {"workers": 0, "device": "cpu", "progress": False}
ENCODER_TITLE = "PoseEncoder))"  # in an encoder actor's title: ray::MapWorker(MapBatches(...)->MapBatches(PoseEncoder))


@pytest.fixture(scope="module")
def cluster():
    """The address of a local Ray instance this process runs (2 CPUs, no dashboard)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def damaged(synthvox_master, tmp_path_factory) -> Path:
    """The SynthVox fixture with one corrupt frame (`sv0001/v00/00002.png`)."""
    root = Path(shutil.copytree(synthvox_master, tmp_path_factory.mktemp("ray") / "synthvox"))
    (root / "sv0001" / "v00" / "00002.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    return root


@pytest.fixture(scope="module")
def local(damaged, tiny_checkpoint) -> tuple[Path, Path, BuildSummary]:
    """(collection, its single-process index, that build's summary)."""
    out = damaged.parent / "local"
    return damaged, out, build_index(damaged, tiny_checkpoint, out, batch_size=5, **LOCAL)


def _contents(index: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Every frame row (id, path, identity, video, frame, time, size) in id order, and their codes."""
    with Store.open(index) as store:
        assert store.verify() == []
        ids = store.ids()
        return store.get(ids), store.vectors(ids)


def _assert_same_index(index: Path, expected: Path) -> None:
    rows, codes = _contents(index)
    expected_rows, expected_codes = _contents(expected)
    pd.testing.assert_frame_equal(rows, expected_rows)
    assert np.allclose(codes, expected_codes, atol=1e-5)


def test_ray_build_gives_the_single_process_index(cluster, local, tiny_checkpoint, tmp_path):
    root, expected, local_summary = local
    summary = build_index(root, tiny_checkpoint, tmp_path / "ray", batch_size=4, progress=False, ray=True)
    assert summary.added == local_summary.added == FRAMES - 1
    assert summary.skipped == local_summary.skipped  # the corrupt frame, with the same reason
    assert [path for path, _ in summary.skipped] == [str(root / "sv0001" / "v00" / "00002.png")]
    _assert_same_index(tmp_path / "ray", expected)


def _encoder_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and ENCODER_TITLE in _title(int(entry)):
            pids.append(int(entry))
    return pids


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def test_an_encoder_killed_mid_build_is_retried_and_the_index_is_whole(cluster, local, tiny_checkpoint, tmp_path):
    """SIGKILL an encoder actor's process while it encodes a batch (its title ends in `.submit`); Ray restarts it
    and retries the batches it held, and the index equals the single-process one. (With `max_restarts=0` on the
    encoders the same kill leaves the build waiting forever: checked by hand, so this test does test the restart.)"""
    root, expected, local_summary = local
    killed: list[int] = []
    done = threading.Event()

    def kill_one_at_work() -> None:
        encoders, looked = [], 0.0
        while not done.is_set() and not killed:
            if time.perf_counter() - looked > 0.05:  # new encoders (a sweep of /proc costs milliseconds)
                encoders, looked = _encoder_pids(), time.perf_counter()
            for pid in encoders:
                if _title(pid).endswith(".submit"):  # Ray's title while the actor runs a batch
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.0005 if encoders else 0.05)  # leave the cores to Ray; look closely once encoders exist

    watcher = threading.Thread(target=kill_one_at_work, daemon=True)
    watcher.start()
    try:
        summary = build_index(root, tiny_checkpoint, tmp_path / "ray", batch_size=4, progress=False, ray=True)
    finally:
        done.set()
        watcher.join()
    assert killed, "no encoder was seen at work, so none was killed"
    assert (summary.added, summary.skipped) == (local_summary.added, local_summary.skipped)
    _assert_same_index(tmp_path / "ray", expected)


def test_index_add_on_the_cluster_by_address(cluster, damaged, tiny_checkpoint, tmp_path):
    """`index add --ray-address` run as its own process joins this cluster and adds what the local add adds."""
    grown = Path(shutil.copytree(damaged, tmp_path / "synthvox"))
    held_back = Path(shutil.move(grown / "sv0002", tmp_path / "sv0002"))
    build_index(grown, tiny_checkpoint, tmp_path / "local", batch_size=5, **LOCAL)
    shutil.copytree(tmp_path / "local", tmp_path / "ray")
    shutil.move(held_back, grown / "sv0002")

    local_summary = add_to_index(grown, tmp_path / "local", tiny_checkpoint, batch_size=5, **LOCAL)
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ui.index_command",
            "add",
            str(grown),
            "--index",
            str(tmp_path / "ray"),
            "--checkpoint",
            str(tiny_checkpoint),
            "--ray-address",
            cluster,
            "--batch-size",
            "3",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"added {local_summary.added} frames" in result.stdout, (result.stdout, time.perf_counter() - started)
    assert local_summary.added == 8  # sv0002's two videos of four frames
    _assert_same_index(tmp_path / "ray", tmp_path / "local")


def test_batches_reach_the_writer_in_frame_order_once_each():
    """The driver's reorder buffer: rows out of order wait, a row sent twice (a retried batch) counts once, and a
    row that never comes is an error rather than an index with a hole."""
    from indexer.ray_encode import in_order

    def batch(rows, bad=()):
        return {
            "row": np.array(rows),
            "code": np.array([[float(r), 0.0] for r in rows], np.float32),
            "width": np.full(len(rows), 32),
            "height": np.full(len(rows), 32),
            "reason": np.array(["unreadable" if r in bad else "" for r in rows], dtype=object),
        }

    out = list(in_order(iter([batch([2, 3]), batch([0, 1], bad=[1]), batch([2, 4]), batch([5])]), 6))
    assert [b.rows for b in out] == [[0, 2, 3], [4], [5]]
    assert [b.bad for b in out] == [[(1, "unreadable")], [], []]
    assert np.array_equal(np.concatenate([b.codes for b in out])[:, 0], [0, 2, 3, 4, 5])
    with pytest.raises(RuntimeError, match="returned 2 of 4 frames"):
        list(in_order(iter([batch([0, 1]), batch([3])]), 4))
