"""The ablation runner: rows differ as Table 1 says, then add our departures one at a time; the table is written,
finished rows are skipped.

The row configs are checked on configs/ablation.yaml itself (no training). Three of the twelve rows (vanilla,
+ multi-scale, the last: every departure on) train 16 steps each of the tiny preset, its departures switched on,
on 4 SynthVox identities (seed 0) and are judged on 4 held-out identities (seed 1), as
tests/model/evaluation/test_evaluate.py builds its collections, only smaller: the test checks the plumbing, not
what the rows learn.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from model.cli import main
from model.config import Config, load_config
from model.data.errors import DataError
from model.data.synthvox import synthesize
from model.evaluation import ablation
from model.evaluation.ablation import CSV_COLUMNS, ROWS, check_full_preset, row_config, run_ablation
from model.evaluation.settings import evaluation_settings

SIZE = 32
# every departure on, each field set here so the tests hold whatever the tiny preset's own values
NO_AUGMENT = {
    f"augment.{name}": 0.0
    for name in ("brightness", "contrast", "saturation", "hue", "greyscale", "blur", "scale", "shift")
}
DEPARTURES = {
    "model.warp_full_resolution": True,
    "loss.pyramid_levels": 2,
    "loss.smooth_weight": 0.1,
    "loss.residual_weight": 0.1,
    "train.warp_warmup_epochs": 0.5,
    **NO_AUGMENT,
    "augment.brightness": 0.3,
    "augment.blur": 0.5,
    "augment.shift": 0.03,
    "model.gen_refines_decoder": True,
    "loss.content_weight": 10.0,
    "train.gen_trains_pose_embedder": False,
    "loss.contrast_weight": 0.2,
    "loss.label_weight": 0.3,
    "loss.face_smooth_weight": 0.7,
}
OVERRIDES = {
    "data.test_fraction": 0.0,
    "train.stage1_epochs": 1,
    "train.stage2_epochs": 1,
    "train.log_every": 100,
    "train.sample_every": 100,
    "train.checkpoint_every": 100,
    **DEPARTURES,
}
SETTINGS = {"num_videos": 2, "num_driving": 4, "max_queries": 20, "probe_folds": 2}


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("ablation")
    synthesize(
        base / "train", identities=4, videos_per_identity=1, frames=8, size=SIZE, seed=0, workers=1, progress=False
    )
    synthesize(
        base / "held_out", identities=4, videos_per_identity=2, frames=8, size=SIZE, seed=1, workers=1, progress=False
    )
    return {"base": base, "train": base / "train", "held_out": base / "held_out"}


def _flat(config: Config) -> dict[str, Any]:
    return {
        f"{section}.{key}": value
        for section, values in dataclasses.asdict(config).items()
        for key, value in values.items()
    }


def test_the_rows_switch_components_as_table_1_says() -> None:
    configs = {row.name: row_config("tiny", row, OVERRIDES) for row in ROWS}
    vanilla, smooth, frames, scale = (configs[n] for n in ("1_vanilla", "2_smooth", "3_multi_frame", "4_multi_scale"))
    adversarial, full = configs["5_adversarial"], configs["6_feature_matching"]
    assert (
        vanilla.data.num_frames,
        vanilla.model.multi_scale,
        vanilla.loss.smooth_weight,
        vanilla.train.adversarial,
    ) == (1, False, 0.0, False)
    assert smooth.loss.smooth_weight == 1.0 and smooth.data.num_frames == 1 and not smooth.model.multi_scale
    assert frames.data.num_frames == 2 and not frames.model.multi_scale  # the tiny preset's K
    assert scale.model.multi_scale and not scale.train.adversarial
    assert adversarial.train.adversarial and adversarial.loss.feature_matching_weight == 0.0
    assert full.train.adversarial and full.loss.feature_matching_weight == 1.0
    # one budget: rows without stage 2 train stage 1 for both stages' epochs
    assert vanilla.train.stage1_epochs == 2 and full.train.stage1_epochs + full.train.stage2_epochs == 2
    # everything else is the preset's
    assert len({(c.model.pose_dim, c.data.batch_size, c.train.seed, c.train.lr) for c in configs.values()}) == 1


def test_each_row_is_the_one_before_plus_its_switches_and_the_last_is_the_preset() -> None:
    preset = load_config("ablation")
    configs = [_flat(row_config("ablation", row)) for row in ROWS]
    assert ROWS[0].switches == {} and all(row.switches for row in ROWS[1:])
    for row, before, after in zip(ROWS[1:], configs, configs[1:]):
        changed = {name for name in after if after[name] != before[name]}
        budget = {"train.stage1_epochs"} if row.name == "5_adversarial" else set()  # stage 2's epochs move back
        assert changed == set(row.switches) | budget, row.name
        assert {name: before[name] for name in row.switches} == row.switches, row.name
    assert row_config("ablation", ROWS[-1]) == preset and ROWS[-1].overrides == {}
    assert [row.label_for(preset) for row in ROWS[6:]] == [
        "+ full-resolution warp",
        "+ pyramid L1, λ_S 0.1",
        "+ residual budget, warp warm-up",
        "+ P input augmentation",
        "+ G refines P's rendering, λ_R 10",
        "+ P not trained through G",
        "+ within-video contrast on the pose code, λ_C 0.2",
        "+ SynthVox labels on the pose code, λ_Y 0.3",
        "+ F's own λ_S 0.7",
    ]
    # the preset's departures, as configs/small.yaml means them
    assert (
        preset.model.warp_full_resolution,
        preset.loss.pyramid_levels,
        preset.loss.smooth_weight,
        preset.loss.residual_weight,
        preset.train.warp_warmup_epochs,
        preset.train.gen_trains_pose_embedder,
        preset.model.gen_refines_decoder,
        preset.loss.content_weight,
    ) == (True, 3, 0.1, 0.1, 1, False, True, 10)
    assert dataclasses.asdict(preset.augment) == {
        "brightness": 0.3,
        "contrast": 0.3,
        "saturation": 0.3,
        "hue": 0.05,
        "greyscale": 0.2,
        "blur": 0.5,
        "scale": 0.05,
        "shift": 0.03,
    }


def test_the_papers_rows_train_the_papers_model() -> None:
    paper = _flat(load_config("paper"))
    departures = {name for row in ROWS if not row.in_paper for name in row.switches}
    assert {
        "model.warp_full_resolution",
        "loss.pyramid_levels",
        "loss.smooth_weight",
        "loss.residual_weight",
        "train.warp_warmup_epochs",
        "augment.hue",
        "model.gen_refines_decoder",
        "loss.content_weight",
        "train.gen_trains_pose_embedder",
    } <= departures
    papers = [row for row in ROWS if row.in_paper]
    assert [row.name for row in papers] == [row.name for row in ROWS[:6]]
    for row in papers:
        config = _flat(row_config("ablation", row))
        off = {name: config[name] for name in departures if name != "loss.smooth_weight" or row.name != "1_vanilla"}
        assert off == {name: paper[name] for name in off}, row.name


def test_the_preset_must_be_the_full_model() -> None:
    with pytest.raises(DataError, match="must be the full model.*model.warp_full_resolution False"):
        row_config("paper", ROWS[0])  # the paper's model: no departures
    with pytest.raises(DataError, match=r"train.gen_trains_pose_embedder True \(\+ P not trained through G\)"):
        check_full_preset(load_config("tiny", {**DEPARTURES, "train.gen_trains_pose_embedder": True}), Path("x"))
    with pytest.raises(DataError, match=r"loss.smooth_weight 1.0 \(\+ pyramid L1, λ_S 1\)"):
        check_full_preset(load_config("tiny", {**DEPARTURES, "loss.smooth_weight": 1.0}), Path("x"))
    # augmentation is one switch: any of its fields turns it on
    check_full_preset(load_config("tiny", {**DEPARTURES, "augment.brightness": 0.0, "augment.shift": 0.0}), Path("x"))
    with pytest.raises(DataError, match="augment.brightness 0.0"):
        check_full_preset(
            load_config("tiny", {**DEPARTURES, "augment.brightness": 0.0, "augment.shift": 0.0, "augment.blur": 0.0}),
            Path("x"),
        )


def test_the_paper_figures_are_the_papers() -> None:
    # Table 1, VoxCeleb1: "Ours (vanilla w/ L_REC) 0.65 60.8", "+ multi-frame 0.72 47.1", "+ L_FM 0.73 24.8"
    paper = {row.name: (row.paper_ssim, row.paper_fid) for row in ROWS}
    assert paper["1_vanilla"] == (0.65, 60.8)
    assert paper["3_multi_frame"] == (0.72, 47.1)
    assert paper["6_feature_matching"] == (0.73, 24.8)


def test_a_tiny_ablation_writes_the_table_and_skips_finished_rows(
    collections: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = (ROWS[0], ROWS[3], ROWS[-1])
    out = collections["base"] / "out"
    settings = evaluation_settings(SETTINGS)
    args = dict(
        settings=settings,
        overrides=OVERRIDES,
        rows=rows,
        device=torch.device("cpu"),
        progress=False,
        command="daegan ablate ...",
    )
    results = run_ablation("tiny", [collections["train"]], [collections["held_out"]], out, **args)
    assert [r.skipped for r in results] == [False, False, False]
    assert {r.metrics["steps"] for r in results} == {16}  # one budget
    assert [r.metrics["renderer"] for r in results] == ["decoder", "decoder", "generator"]
    with open(out / "ablation.csv") as handle:
        records = list(csv.DictReader(handle))
    assert [r["row"] for r in records] == ["1_vanilla", "4_multi_scale", "15_face_smooth"]
    assert [
        (
            r["num_frames"],
            r["multi_scale"],
            r["smooth_weight"],
            r["warp_full_resolution"],
            r["augment"],
            r["gen_trains_pose_embedder"],
            r["contrast_weight"],
            r["label_weight"],
            r["face_smooth_weight"],
        )
        for r in records
    ] == [
        ("1", "False", "0.0", "False", "False", "True", "0.0", "0.0", "0.0"),
        ("2", "True", "1.0", "False", "False", "True", "0.0", "0.0", "1.0"),
        ("2", "True", "0.1", "True", "True", "False", "0.2", "0.3", "0.7"),
    ]
    assert all(0.0 < float(r["ssim"]) <= 1.0 and r["fid"] == "" for r in records)
    assert all(r["cross_ssim"] and r["retrieval_error"] and r["leakage"] for r in records)
    assert all(-5 < float(r[c]) < 5 for r in records for c in ("head_pose_gap_closed", "expression_gap_closed"))
    assert all(0 <= float(r["identity_probe"]) <= 1 and r["identity_probe_chance"] for r in records)
    assert [(r["paper_ssim"], r["paper_fid"]) for r in records] == [("0.65", "60.8"), ("0.73", "46.8"), ("", "")]
    assert set(records[0]) == set(CSV_COLUMNS)
    table = (out / "ablation.md").read_text()
    ours = table.split("## The paper's figures")[0]
    labels = [row.label_for(load_config("tiny", OVERRIDES)) for row in rows]
    assert sum(line.startswith(f"| {label} |") for label in labels for line in ours.splitlines()) == 3
    assert (
        "| leakage ↓ | leakage / chance ↓ | head pose gap closed ↑ | expression gap closed ↑ | identity probe ↓ |"
        in ours
    )
    assert "| vanilla (w/ L_REC) | 0.65 | 60.8 |" in table and "not comparable 1:1" in table
    assert f"| {labels[-1]} (ours) | – | – |" in table  # our rows: the paper has no figures
    assert "the rows after them add this project's departures one at a time" in table
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
    other = run_ablation(
        "tiny",
        [collections["train"]],
        [collections["held_out"]],
        out,
        **{**args, "settings": evaluation_settings({**SETTINGS, "seed": 1}), "rows": rows[:1]},
    )
    assert [r.skipped for r in other] == [False] and other[0].metrics["steps"] == 16
    assert other[0].metrics["evaluated_with"]["settings"]["seed"] == 1


def test_ablation_options_go_together(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["ablate", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--config" in result.output
    result = runner.invoke(
        main, ["evaluate", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--config", "tiny"]
    )
    assert result.exit_code == 2 and "No such option '--config'" in result.output
