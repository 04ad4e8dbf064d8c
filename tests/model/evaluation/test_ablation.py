"""The Table 1 ablation runner: rows differ as the paper says, the table is written, finished rows are skipped.

Three of the six rows (vanilla, + multi-scale, full) train 16 steps each of the tiny preset on 4 SynthVox
identities (seed 0) and are judged on 4 held-out identities (seed 1), as tests/model/evaluation/test_evaluate.py
builds its collections, only smaller: the test checks the plumbing, not what the rows learn.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from model.cli import main
from model.data.synthvox import synthesize
from model.evaluation import ablation
from model.evaluation.ablation import ROWS, row_config, run_ablation
from model.evaluation.settings import evaluation_settings

SIZE = 32
OVERRIDES = {"data.test_fraction": 0.0, "train.stage1_epochs": 1, "train.stage2_epochs": 1,
             "train.log_every": 100, "train.sample_every": 100, "train.checkpoint_every": 100}
SETTINGS = {"num_videos": 2, "num_driving": 4, "max_queries": 20, "probe_folds": 2}


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("ablation")
    synthesize(base / "train", identities=4, videos_per_identity=1, frames=8, size=SIZE, seed=0, workers=1,
               progress=False)
    synthesize(base / "held_out", identities=4, videos_per_identity=2, frames=8, size=SIZE, seed=1, workers=1,
               progress=False)
    return {"base": base, "train": base / "train", "held_out": base / "held_out"}


def test_the_rows_switch_components_as_table_1_says() -> None:
    configs = {row.name: row_config("tiny", row, OVERRIDES) for row in ROWS}
    vanilla, smooth, frames, scale = (configs[n] for n in ("1_vanilla", "2_smooth", "3_multi_frame", "4_multi_scale"))
    adversarial, full = configs["5_adversarial"], configs["6_feature_matching"]
    assert (vanilla.data.num_frames, vanilla.model.multi_scale, vanilla.loss.smooth_weight,
            vanilla.train.adversarial) == (1, False, 0.0, False)
    assert smooth.loss.smooth_weight == 1.0 and smooth.data.num_frames == 1 and not smooth.model.multi_scale
    assert frames.data.num_frames == 2 and not frames.model.multi_scale  # the tiny preset's K
    assert scale.model.multi_scale and not scale.train.adversarial
    assert adversarial.train.adversarial and adversarial.loss.feature_matching_weight == 0.0
    assert full.train.adversarial and full.loss.feature_matching_weight == 1.0
    # one budget: rows without stage 2 train stage 1 for both stages' epochs
    assert vanilla.train.stage1_epochs == 2 and full.train.stage1_epochs + full.train.stage2_epochs == 2
    # everything else is the preset's
    assert len({(c.model.pose_dim, c.data.batch_size, c.train.seed, c.train.lr) for c in configs.values()}) == 1


def test_the_paper_figures_are_the_papers() -> None:
    # Table 1, VoxCeleb1: "Ours (vanilla w/ L_REC) 0.65 60.8", "+ multi-frame 0.72 47.1", "+ L_FM 0.73 24.8"
    paper = {row.name: (row.paper_ssim, row.paper_fid) for row in ROWS}
    assert paper["1_vanilla"] == (0.65, 60.8)
    assert paper["3_multi_frame"] == (0.72, 47.1)
    assert paper["6_feature_matching"] == (0.73, 24.8)


def test_a_tiny_ablation_writes_the_table_and_skips_finished_rows(collections: dict[str, Path],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rows = (ROWS[0], ROWS[3], ROWS[5])
    out = collections["base"] / "out"
    settings = evaluation_settings(SETTINGS)
    args = dict(settings=settings, overrides=OVERRIDES, rows=rows, device=torch.device("cpu"), progress=False,
                command="daegan evaluate --ablation ...")
    results = run_ablation("tiny", [collections["train"]], [collections["held_out"]], out, **args)
    assert [r.skipped for r in results] == [False, False, False]
    assert {r.metrics["steps"] for r in results} == {16}  # one budget
    assert [r.metrics["renderer"] for r in results] == ["decoder", "decoder", "generator"]
    with open(out / "ablation.csv") as handle:
        records = list(csv.DictReader(handle))
    assert [r["row"] for r in records] == ["1_vanilla", "4_multi_scale", "6_feature_matching"]
    assert [(r["num_frames"], r["multi_scale"], r["smooth_weight"]) for r in records][:2] == [
        ("1", "False", "0.0"), ("2", "True", "1.0")]
    assert all(0.0 < float(r["ssim"]) <= 1.0 and r["fid"] == "" for r in records)
    assert all(r["cross_ssim"] and r["retrieval_error"] and r["leakage"] for r in records)
    table = (out / "ablation.md").read_text()
    ours = table.split("## The paper's figures")[0]
    assert sum(line.startswith(f"| {row.label} |") for row in rows for line in ours.splitlines()) == 3
    assert "| vanilla (w/ L_REC) | 0.65 | 60.8 |" in table and "not comparable 1:1" in table
    assert "not computed" in table and "## Ours, `held_out`: held out" in table  # checked against each row's record
    for row in rows:
        assert (out / "runs" / row.name / "checkpoint.safetensors").is_file()

    # a rerun trains nothing: every row is found finished, and the table is written again
    def no_training(*_, **__):
        raise AssertionError("a finished row was trained again")

    monkeypatch.setattr(ablation, "train", no_training)
    table_csv = (out / "ablation.csv").read_text()
    (out / "ablation.md").unlink()
    again = run_ablation("tiny", [collections["train"]], [collections["held_out"]], out, **args)
    assert [r.skipped for r in again] == [True, True, True] and (out / "ablation.md").is_file()
    assert (out / "ablation.csv").read_text() == table_csv  # the saved metrics, the same figures
    # other evaluation settings: the trained rows are evaluated again, not trained
    other = run_ablation("tiny", [collections["train"]], [collections["held_out"]], out,
                         **{**args, "settings": evaluation_settings({**SETTINGS, "seed": 1}), "rows": rows[:1]})
    assert [r.skipped for r in other] == [False] and other[0].metrics["steps"] == 16
    assert other[0].metrics["evaluated_with"]["settings"]["seed"] == 1


def test_ablation_options_go_together(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["evaluate", "--ablation", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--ablation takes --config and --eval-data" in result.output
    result = runner.invoke(main, ["evaluate", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                                  "--config", "tiny"])
    assert result.exit_code == 2 and "give --checkpoint" in result.output
