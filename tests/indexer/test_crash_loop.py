"""The crash loop (`benchmarks/crash_loop.py`), small: `index add` killed with SIGKILL at random moments loses nothing.

The script checks every invariant itself (its docstring) and exits 1 naming any it finds broken; the full 50 kills
run from the command line, and their figures are in the README.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KILLS = 4


@pytest.mark.slow
def test_random_kills_of_index_add_lose_no_committed_frame():
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "crash_loop.py"), "--kills", str(KILLS), "--seed", "1", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    assert figures["violations"] == [] and figures["kills"] == KILLS
    assert figures["queries"] == KILLS + figures["completed"]  # the index answered after every round
    assert figures["final_frames"] > 3 and figures["commits_survived"] >= 2
