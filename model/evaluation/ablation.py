"""The Table 1 ablation and this project's departures from the paper: train each row under one budget, evaluate
it, write the table (issues 6 and 11).

Paper sec. 4.1 and Table 1 (VoxCeleb1): vanilla (single-frame F, single-scale P, L_REC only), then + L_S,
+ multi-frame, + multi-scale, + adversarial learning (L_GAN + L_R), + L_FM. Rows 7-13 go on from the paper's
model in the same cumulative way, adding this project's departures from the paper one at a time (issue 11; each
a config switch, off in configs/paper.yaml): the full-resolution warp, the pyramid L1 with a lower lambda_S, the
residual budget with the warp-only warm-up, P's input augmentation, G refining P's rendering with lambda_R 10,
P learning from eq. 5 alone in stage 2, the within-video contrastive term on the pose code, and SynthVox's labels
supervising the code. `ROWS` says each
row as data: the config fields it switches on (with the values they had in the row before) and the fields it sets
on the preset, whose own values are the last row's.
`run_ablation` trains every row into ``out/runs/<row>/`` with `model.train.train`, evaluates it with
`evaluate` (no pictures) and writes ``ablation.md`` and ``ablation.csv`` beside the paper's figures.

Notable choices (the paper is silent on how its rows were budgeted; rows 7-15 are ours):
- One budget: every row takes the same number of steps over the same batches, seed and config otherwise. Rows
  without the adversarial stage fold stage 2's epochs into stage 1 (`row_config`); a stage-2 step costs about four
  stage-1 steps, so rows 5-13 take longer in wall time.
- The paper's six rows train the paper's model: every departure off, at the paper's values (lambda_S 1,
  lambda_R 1). The preset must be the full model (`check_full_preset`): each row's switches differ there from
  their values in the row before, so every row differs from the one before in exactly what its label names.
- The departures' order follows issue 11's argument: the geometry path first (a warp that can move the face, the
  loss that lets it move, the budget and warm-up that make it carry the pose), then what P's encoder sees, then
  stage 2 (Table 1 too ends with the adversarial rows). Pairs that go together share a row: the pyramid L1 and
  lambda_S 0.1 (measured: with lambda_S 1 the full-resolution warp moves 0.3 px), the residual budget and the
  warm-up (two halves of one idea: the warp, not the residuals, carries the pose), G's refining and lambda_R 10
  (with lambda_R 1 the adversarial terms pulled G off its targets: configs/small.yaml). Stopping G's gradient into
  P is a row of its own: the content gradient it stops is ten times larger once lambda_R is 10. The contrastive
  term and then the synthetic labels come next: they were added after the others, on the model they make; F's own
  lambda_S last, the latest. The shipped checkpoint learns it in a last epoch with P's encoder frozen
  (`train.freeze_pose_encoder`); a row trains from scratch, so here it is F's weight alone.
- Rows without the adversarial stage reenact with the pose embedder's decoder (G is untrained), rows with it with
  G: the model's own default renderer, which the table states.
- One dlib judge serves every row (`make_judge`): the held-out collections' own images (frames, ideal faces) are
  read once for the table; each row's embedded faces and reenactments are read for that row.
- Resume: a row with ``metrics.json`` in its folder is finished and skipped (its config must match; evaluated with
  other settings or collections, it is evaluated again, not trained); a row with a training state resumes from its
  last checkpoint (its ``train_seconds`` then count the resumed part only); a folder with neither is started over.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from model import __version__
from model.config import AugmentConfig, Config, load_config
from model.daegan import DAEGAN
from model.data.errors import DataError
from model.evaluation.evaluate import FID_MISSING, evaluate, make_judge
from model.evaluation.fid import load_inception
from model.evaluation.frames import load_collection
from model.evaluation.report import METRIC_DEFINITIONS
from model.evaluation.run import unique_names
from model.evaluation.settings import EvaluationSettings
from model.train import CHECKPOINT_FILE, CONFIG_FILE, STATE_FILE, check_resumable, train

RUNS_DIR, METRICS_FILE, TABLE_MD, TABLE_CSV = "runs", "metrics.json", "ablation.md", "ablation.csv"
# the report's words for the table's metrics, defined at the end of ablation.md
DEFINED = ("SSIM", "L1", "FID", "normalised error", "gap closed", "identity leakage", "identity probe accuracy")


@dataclass(frozen=True)
class AblationRow:
    """One row of the table: a name for its folder, a label, the config fields it switches on and the config fields
    it sets on the preset (`_cumulative` derives them from the switches of the rows after it)."""

    name: str
    label: str  # the row in words; `{c.loss.smooth_weight:g}`-style fields come from the row's config (`label_for`)
    switches: dict[str, Any] = field(default_factory=dict)  # dotted config field -> its value in the row before
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted config field -> value set on the preset
    paper_ssim: float | None = None  # Table 1, VoxCeleb1; None for our rows, which the paper does not have
    paper_fid: float | None = None  # Table 1, VoxCeleb1

    @property
    def in_paper(self) -> bool:
        return self.paper_ssim is not None

    def label_for(self, config: Config) -> str:
        """The label with the values it names taken from `config` (the row's own)."""
        return self.label.format(c=config)


def _cumulative(
    steps: tuple[tuple[str, str, dict[str, Any], float | None, float | None], ...],
) -> tuple[AblationRow, ...]:
    """Rows from (name, label, switches, paper SSIM, paper FID): each row sets on the preset the before-values of
    every later row's switches, the earliest row's where two name one field (lambda_S: 0 until row 2 switches
    L_S on, the paper's 1 until row 8 lowers it). The last row sets nothing: it is the preset."""
    rows = []
    for i, (name, label, switches, paper_ssim, paper_fid) in enumerate(steps):
        overrides: dict[str, Any] = {}
        for later in reversed(steps[i + 1 :]):
            overrides.update(later[2])  # earlier rows' before-values win
        rows.append(AblationRow(name, label, switches, overrides, paper_ssim, paper_fid))
    return tuple(rows)


_NO_AUGMENT = {f"augment.{f.name}": 0.0 for f in dataclasses.fields(AugmentConfig)}  # the paper augments nothing
ROWS: tuple[AblationRow, ...] = _cumulative(
    (
        # the paper's Table 1: before each row, its component is off (K = 1, single-scale P, lambda_S = 0, stage 1
        # only, lambda_FM = 0); every departure below is off in all six
        ("1_vanilla", "vanilla (w/ L_REC)", {}, 0.65, 60.8),
        ("2_smooth", "+ smoothness loss L_S", {"loss.smooth_weight": 0.0}, 0.68, 56.9),
        ("3_multi_frame", "+ multi-frame", {"data.num_frames": 1}, 0.72, 47.1),
        ("4_multi_scale", "+ multi-scale", {"model.multi_scale": False}, 0.73, 46.8),
        ("5_adversarial", "+ adversarial learning (L_GAN + L_R)", {"train.adversarial": False}, 0.73, 26.3),
        (
            "6_feature_matching",
            "+ feature matching loss L_FM (paper's model)",
            {"loss.feature_matching_weight": 0.0},
            0.73,
            24.8,
        ),
        # ours (issue 11): before each row, its departure is at the paper's value
        ("7_full_res_warp", "+ full-resolution warp", {"model.warp_full_resolution": False}, None, None),
        (
            "8_pyramid_l1",
            "+ pyramid L1, λ_S {c.loss.smooth_weight:g}",
            {"loss.pyramid_levels": 1, "loss.smooth_weight": 1.0},
            None,
            None,
        ),
        (
            "9_residual_budget",
            "+ residual budget, warp warm-up",
            {"loss.residual_weight": 0.0, "train.warp_warmup_epochs": 0.0},
            None,
            None,
        ),
        ("10_augment", "+ P input augmentation", _NO_AUGMENT, None, None),
        (
            "11_gen_refines",
            "+ G refines P's rendering, λ_R {c.loss.content_weight:g}",
            {"model.gen_refines_decoder": False, "loss.content_weight": 1.0},
            None,
            None,
        ),
        ("12_pose_not_through_gen", "+ P not trained through G", {"train.gen_trains_pose_embedder": True}, None, None),
        (
            "13_contrast",
            "+ within-video contrast on the pose code, λ_C {c.loss.contrast_weight:g}",
            {"loss.contrast_weight": 0.0},
            None,
            None,
        ),
        (
            "14_labels",
            "+ SynthVox labels on the pose code, λ_Y {c.loss.label_weight:g}",
            {"loss.label_weight": 0.0},
            None,
            None,
        ),
        (
            "15_face_smooth",
            "+ F's own λ_S {c.loss.face_smooth_weight}",
            {"loss.face_smooth_weight": None},
            None,
            None,
        ),
    )
)
PAPER_SOURCE = "DAE-GAN paper, Table 1, VoxCeleb1 test set at 256 px (their training budget)"


def _config_value(config: Config, dotted: str) -> Any:
    """The value of a dotted config field (``loss.smooth_weight``)."""
    section, name = dotted.split(".")
    return getattr(getattr(config, section), name)


def _unchanged(config: Config, row: AblationRow) -> list[str]:
    """The fields `row` switches on that `config` leaves at their value in the row before; augmentation's fields
    are one switch, on when any of them is."""
    same = [name for name, before in row.switches.items() if _config_value(config, name) == before]
    augment = [name for name in row.switches if name.startswith("augment.")]
    if augment and not set(augment) <= set(same):
        same = [name for name in same if name not in augment]
    return same


def check_full_preset(config: Config, source: Path) -> None:
    """The preset is the full model (every row's switches on), else a row would not differ as its label says."""
    off = [
        f"{name} {row.switches[name]!r} ({row.label_for(config)})" for row in ROWS for name in _unchanged(config, row)
    ]
    if off:
        raise DataError(source, f"the ablation preset must be the full model; it has {', '.join(off)}")


def row_config(preset: str | Path, row: AblationRow, overrides: dict[str, Any] | None = None) -> Config:
    """The preset with `overrides` (the user's), then the row's overrides; stage 2's epochs move into stage 1 where
    the row has no adversarial stage, so every row trains the same number of steps."""
    base = load_config(preset, overrides)
    check_full_preset(base, Path(preset))
    values = dict(overrides or {}) | row.overrides
    if values.get("train.adversarial") is False:
        values["train.stage1_epochs"] = base.train.stage1_epochs + base.train.stage2_epochs
    return load_config(preset, values)


@dataclass
class RowResult:
    """One trained and evaluated row."""

    row: AblationRow
    config: Config
    metrics: dict[str, Any]  # evaluate's metrics plus "steps", "train_seconds", "resumed", "evaluated_with"
    skipped: bool  # True: found finished in its folder, not trained again


def run_ablation(
    preset: str | Path,
    train_roots: list[Path],
    eval_roots: list[Path],
    out: str | Path,
    *,
    settings: EvaluationSettings,
    overrides: dict[str, Any] | None = None,
    rows: tuple[AblationRow, ...] = ROWS,
    inception_weights: str | Path | None = None,
    device: torch.device = torch.device("cpu"),
    command: str = "",
    progress: bool = True,
) -> list[RowResult]:
    """Train and evaluate `rows` on `train_roots` / `eval_roots` into `out` (module docstring); writes
    ablation.md and ablation.csv and returns the rows' results."""
    out = Path(out)
    if not train_roots or not eval_roots:
        raise DataError(out, "the ablation needs training collections (--data) and held-out ones (--eval-data)")
    configs = [row_config(preset, row, overrides) for row in rows]  # bad presets fail before any training
    inception = load_inception(inception_weights, device) if inception_weights is not None else None
    size, fps = configs[0].data.size, configs[0].data.fps
    names = unique_names([Path(r) for r in eval_roots])
    collections = [
        load_collection(
            root, size=size, fps=fps, max_frames=settings.max_frames, seed=settings.seed, name=name, progress=progress
        )
        for root, name in zip(eval_roots, names)
    ]
    evaluated_with = {
        "settings": settings.to_dict(),
        "eval_data": [str(r) for r in eval_roots],
        "fid_weights": str(inception_weights) if inception_weights is not None else None,
    }
    results = []
    judge, _ = make_judge(settings, progress=progress)  # one for all rows: it reads the collections' images once
    for row, config in zip(tqdm(rows, unit="row", desc="ablation", disable=not progress), configs):
        run_dir = out / RUNS_DIR / row.name
        done = _finished(run_dir, config)
        if done is not None and done.get("evaluated_with") == evaluated_with:
            results.append(RowResult(row, config, done, skipped=True))
            continue
        if done is not None:  # trained, evaluated otherwise: evaluate again, keep the training's figures
            checkpoint, trained = run_dir / CHECKPOINT_FILE, {k: done[k] for k in ("steps", "train_seconds", "resumed")}
        else:
            resume = (run_dir / STATE_FILE).is_file() and (run_dir / CHECKPOINT_FILE).is_file()
            if run_dir.exists() and not resume:
                shutil.rmtree(run_dir)  # started but never checkpointed: nothing to keep
            started = time.perf_counter()
            result = train(config, list(train_roots), run_dir, device=device, resume=resume, progress=progress)
            checkpoint = result.checkpoint
            trained = {"steps": result.step, "train_seconds": time.perf_counter() - started, "resumed": resume}
        model = DAEGAN.from_checkpoint(checkpoint, device)
        found = evaluate(model, collections, settings, inception=inception, judge=judge, progress=progress)
        metrics = {**found.metrics.to_json(), **trained, "evaluated_with": evaluated_with}
        (run_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1, default=float))
        results.append(RowResult(row, config, metrics, skipped=False))
    header = {
        "posedex_version": __version__,
        "preset": str(preset),
        "overrides": overrides or {},
        "train_data": [str(r) for r in train_roots],
        "eval_data": [str(r) for r in eval_roots],
        "settings": settings.to_dict(),
        "command": command,
        "fid": "computed" if inception is not None else FID_MISSING,
    }
    write_tables(results, out, header=header)
    return results


def _finished(run_dir: Path, config: Config) -> dict[str, Any] | None:
    """The metrics of a row finished in `run_dir` with `config`, else None; another config is a DataError."""
    if not (run_dir / METRICS_FILE).is_file():
        return None
    check_resumable(load_config(run_dir / CONFIG_FILE), config, run_dir / CONFIG_FILE)
    return json.loads((run_dir / METRICS_FILE).read_text())


# -- the table ---------------------------------------------------------------------------------------------------

HEAD_POSE = ("yaw", "pitch", "roll")  # head pose gap closed: the mean of these parameters' gaps closed
# expression gap closed: the mean over those a collection measures (SynthVox's four; dlib's mouth_open, eye_open)
EXPRESSION = ("mouth_open", "smile", "blink", "brow_raise", "eye_open")
SWITCH_COLUMNS = (
    "num_frames",
    "multi_scale",
    "smooth_weight",
    "adversarial",
    "feature_matching_weight",
    "warp_full_resolution",
    "pyramid_levels",
    "residual_weight",
    "warp_warmup_epochs",
    "augment",
    "gen_refines_decoder",
    "content_weight",
    "gen_trains_pose_embedder",
    "contrast_weight",
    "label_weight",
    "face_smooth_weight",
)
CSV_COLUMNS = (
    "row",
    "label",
    "collection",
    "status",
    *SWITCH_COLUMNS,
    "steps",
    "train_minutes",
    "renderer",
    "ssim",
    "fid",
    "cross_ssim",
    "cross_ssim_source",
    "cross_ssim_driving",
    "cross_l1",
    "cross_l1_source",
    "cross_l1_driving",
    "retrieval_error",
    "retrieval_error_random",
    "retrieval_error_oracle",
    "leakage",
    "leakage_chance",
    "head_pose_gap_closed",
    "expression_gap_closed",
    "identity_probe",
    "identity_probe_face",
    "identity_probe_chance",
    "paper_ssim",
    "paper_fid",
)


def _mean_gap(gaps: dict[str, float | None], names: tuple[str, ...]) -> float | None:
    """The mean of the finite gaps closed of `names` that the collection has; None when there are none."""
    found = [gaps[n] for n in names if isinstance(gaps.get(n), (int, float)) and math.isfinite(gaps[n])]
    return sum(found) / len(found) if found else None


def _switches(c: Config) -> dict[str, Any]:
    """The switch columns of one row's config (augment: whether any augmentation is on)."""
    adversarial = c.train.adversarial
    return {
        "num_frames": c.data.num_frames,
        "multi_scale": c.model.multi_scale,
        "smooth_weight": c.loss.smooth_weight,
        "adversarial": adversarial,
        "feature_matching_weight": c.loss.feature_matching_weight if adversarial else 0.0,
        "warp_full_resolution": c.model.warp_full_resolution,
        "pyramid_levels": c.loss.pyramid_levels,
        "residual_weight": c.loss.residual_weight,
        "warp_warmup_epochs": c.train.warp_warmup_epochs,
        "augment": c.augment.enabled,
        "gen_refines_decoder": c.model.gen_refines_decoder,
        "content_weight": c.loss.content_weight if adversarial else 0.0,
        "gen_trains_pose_embedder": c.train.gen_trains_pose_embedder,
        "contrast_weight": c.loss.contrast_weight,
        "label_weight": c.loss.label_weight,
        # F's lambda_S as the loss uses it: its own, else the one lambda_S of eq. 5
        "face_smooth_weight": c.loss.smooth_weight if c.loss.face_smooth_weight is None else c.loss.face_smooth_weight,
    }


def table_rows(results: list[RowResult]) -> list[dict[str, Any]]:
    """One flat record per (row, evaluated collection), keyed by `CSV_COLUMNS`."""
    records = []
    for result in results:
        c, m = result.config, result.metrics
        for name, section in m["collections"].items():
            protocol, cross = section.get("protocol", {}), section.get("cross_identity", {})
            retrieval, leakage = section.get("retrieval", {}), section.get("leakage", {})
            normalised = retrieval.get("normalised", {}) if isinstance(retrieval, dict) else {}
            gaps = retrieval.get("gap_closed", {}) if isinstance(retrieval, dict) else {}
            probes = section.get("probes", {})
            records.append(
                {
                    "row": result.row.name,
                    "label": result.row.label_for(c),
                    "collection": name,
                    "status": section.get("training", {}).get("label", "unknown (evaluated before the record)"),
                    **_switches(c),
                    "steps": m["steps"],
                    "train_minutes": round(m["train_seconds"] / 60, 2),
                    "renderer": m["renderer"],
                    "ssim": protocol.get("ssim"),
                    "fid": protocol.get("fid"),
                    "cross_ssim": cross.get("ssim", {}).get("model"),
                    "cross_ssim_source": cross.get("ssim", {}).get("source"),
                    "cross_ssim_driving": cross.get("ssim", {}).get("driving"),
                    "cross_l1": cross.get("l1", {}).get("model"),
                    "cross_l1_source": cross.get("l1", {}).get("source"),
                    "cross_l1_driving": cross.get("l1", {}).get("driving"),
                    "retrieval_error": normalised.get("model"),
                    "retrieval_error_random": normalised.get("random"),
                    "retrieval_error_oracle": normalised.get("oracle"),
                    "leakage": leakage.get("model"),
                    "leakage_chance": leakage.get("chance"),
                    "head_pose_gap_closed": _mean_gap(gaps, HEAD_POSE),
                    "expression_gap_closed": _mean_gap(gaps, EXPRESSION),
                    "identity_probe": probes.get("identity_accuracy_from_pose_code"),
                    "identity_probe_face": probes.get("identity_accuracy_from_face"),
                    "identity_probe_chance": probes.get("identity_chance"),
                    "paper_ssim": result.row.paper_ssim,
                    "paper_fid": result.row.paper_fid,
                }
            )
    return records


def _ratio(share: float | None, chance: float | None) -> float | None:
    return share / chance if share is not None and chance else None


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_tables(results: list[RowResult], out: Path, *, header: dict[str, Any]) -> tuple[Path, Path]:
    """ablation.csv (one line per row and collection) and ablation.md (our rows, then the paper's)."""
    out.mkdir(parents=True, exist_ok=True)
    records = table_rows(results)
    with open(out / TABLE_CSV, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    fid_computed = header["fid"] == "computed"
    overridden = f", overrides {header['overrides']}" if header["overrides"] else ""
    trained_on = ", ".join(f"`{r}`" for r in header["train_data"])
    evaluated_on = ", ".join(f"`{r}`" for r in header["eval_data"])
    lines = [
        "# Table 1 ablation on SynthVox",
        "",
        f"posedex {header['posedex_version']}; preset `{header['preset']}`{overridden}; trained on {trained_on}, "
        f"evaluated on {evaluated_on}, each row's status against its checkpoint's training record in the "
        "headings (evaluation settings in each runs/<row>/metrics.json).",
        "",
    ]
    if header["command"]:
        lines += ["Regenerate (finished rows in runs/ are skipped):", "", "```sh", header["command"], "```", ""]
    lines += [
        "Every row trains the same number of steps on the same batches with the same seed; a row without the "
        "adversarial stage trains stage 1 for both stages' epochs and reenacts with the pose embedder's "
        "decoder, the others with G. " + ("" if fid_computed else f"{FID_MISSING}: the FID column is empty."),
        "",
    ]
    if any(not r.row.in_paper for r in results):
        lines += [
            "The paper's rows train the paper's model (every departure from it off); the rows after them add "
            "this project's departures one at a time (README), the last row being the preset itself; each "
            "row's switches are in ablation.csv.",
            "",
        ]
    for collection in dict.fromkeys(r["collection"] for r in records):
        part = [r for r in records if r["collection"] == collection]
        statuses = ", ".join(sorted({r["status"] for r in part}))
        lines += [
            f"## Ours, `{collection}`: {statuses}",
            "",
            "| row | K | multi-scale | λ_S | F's λ_S | adversarial | λ_FM | steps | train min | renderer | SSIM ↑ "
            "| FID ↓ | cross SSIM ↑ | cross L1 ↓ | retrieval error ↓ | leakage ↓ | leakage / chance ↓ "
            "| head pose gap closed ↑ | expression gap closed ↑ | identity probe ↓ | embedded face identity probe ↑ |",
            "|---" * 21 + "|",
        ]
        for r in part:
            lines.append(
                f"| {r['label']} | {r['num_frames']} | {_fmt(r['multi_scale'])} "
                f"| {_fmt(r['smooth_weight'], 1)} | {_fmt(r['face_smooth_weight'], 1)} "
                f"| {_fmt(r['adversarial'])} | {_fmt(r['feature_matching_weight'], 1)} | {r['steps']} "
                f"| {_fmt(r['train_minutes'], 1)} | {r['renderer']} | {_fmt(r['ssim'])} "
                f"| {_fmt(r['fid'], 1) if fid_computed else 'not computed'} | {_fmt(r['cross_ssim'])} "
                f"| {_fmt(r['cross_l1'])} | {_fmt(r['retrieval_error'])} | {_fmt(r['leakage'])} "
                f"| {_fmt(_ratio(r['leakage'], r['leakage_chance']), 1)} "
                f"| {_fmt(r['head_pose_gap_closed'], 2)} | {_fmt(r['expression_gap_closed'], 2)} "
                f"| {_fmt(r['identity_probe'], 2)} | {_fmt(r['identity_probe_face'], 2)} |"
            )
        first = part[0]
        lines += [
            "",
            "Baselines (the first row's; they do not depend on the model): cross-identity SSIM of the "
            "unchanged source "
            f"{_fmt(first['cross_ssim_source'])} and of the driving frame {_fmt(first['cross_ssim_driving'])}; "
            f"cross L1 {_fmt(first['cross_l1_source'])} and {_fmt(first['cross_l1_driving'])}; retrieval error "
            f"of random hits {_fmt(first['retrieval_error_random'])}, of the ground-truth oracle "
            f"{_fmt(first['retrieval_error_oracle'])}; leakage by chance {_fmt(first['leakage_chance'])}; "
            f"identity probe by chance {_fmt(first['identity_probe_chance'], 2)}.",
            "",
        ]
    lines += [
        f"## The paper's figures ({PAPER_SOURCE}; not comparable 1:1 with ours)",
        "",
        "| row | SSIM ↑ | FID ↓ |",
        "|---|---|---|",
    ]
    shown = [(r.row, r.config) for r in results if not r.row.in_paper]  # ours: the paper has no figures for them
    lines += [f"| {row.label} | {_fmt(row.paper_ssim, 2)} | {_fmt(row.paper_fid, 1)} |" for row in ROWS if row.in_paper]
    lines += [f"| {row.label_for(config)} (ours) | – | – |" for row, config in shown]
    lines += [
        "",
        "## Columns",
        "",
        "- **SSIM, FID**: the paper's protocol: a held-out driving frame reenacted from source frames of the "
        "rest of its video, against that driving frame.",
        "- **cross SSIM, cross L1**: a source identity reenacted with another identity's driving frame, "
        "against the source identity rendered in the driver's pose (SynthVox ground truth).",
        "- **retrieval error**: the normalised error of pose retrieval among other identities (top-k by pose "
        "code); **leakage**: identity leakage of the unfiltered top-k (the share of hits with the query's "
        "identity), and that share over chance's.",
        f"- **head pose gap closed**: the mean of the gaps closed of {', '.join(HEAD_POSE)}; **expression gap "
        f"closed**: the mean of those of {', '.join(n for n in EXPRESSION if n != 'eye_open')} (on a real "
        "collection, dlib's mouth_open and eye_open).",
        "- **identity probe**: identity probe accuracy from the pose code (chance under the table; from each "
        "row's embedded face in ablation.csv).",
        "",
        "## Definitions",
        "",
    ]
    lines += [f"- **{term}**: {METRIC_DEFINITIONS[term]}" for term in DEFINED]
    lines.append("")
    (out / TABLE_MD).write_text("\n".join(lines))
    return out / TABLE_MD, out / TABLE_CSV
