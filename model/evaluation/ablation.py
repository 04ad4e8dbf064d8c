"""The paper's Table 1 ablation: train each row under one budget, evaluate it, write the table (issue 6).

Paper sec. 4.1 and Table 1 (VoxCeleb1): vanilla (single-frame F, single-scale P, L_REC only), then + L_S,
+ multi-frame, + multi-scale, + adversarial learning (L_GAN + L_R), + L_FM. `ROWS` says each row as data: the
config fields it sets on the preset, whose own values are the full model's. `run_ablation` trains every row into
``out/runs/<row>/`` with `model.train.train`, evaluates it with `evaluate(..., with_pictures=False)` and writes
``ablation.md`` and ``ablation.csv`` beside the paper's figures (`PAPER_TABLE_1`).

Notable choices (the paper is silent on how its rows were budgeted):
- One budget: every row takes the same number of steps over the same batches, seed and config otherwise. Rows
  without the adversarial stage fold stage 2's epochs into stage 1 (`row_config`); a stage-2 step costs about four
  stage-1 steps, so rows 5 and 6 take longer in wall time.
- Rows without the adversarial stage reenact with the pose embedder's decoder (G is untrained), rows with it with
  G: the model's own default renderer, which the table states.
- Resume: a row with ``metrics.json`` in its folder is finished and skipped (its config must match; evaluated with
  other settings or collections, it is evaluated again, not trained); a row with a training state resumes from its
  last checkpoint (its ``train_seconds`` then count the resumed part only); a folder with neither is started over.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from model import __version__
from model.config import Config, load_config
from model.daegan import DAEGAN
from model.data.errors import DataError
from model.evaluation.evaluate import FID_MISSING, evaluate
from model.evaluation.fid import load_inception
from model.evaluation.frames import load_collection
from model.evaluation.report import METRIC_DEFINITIONS
from model.evaluation.run import unique_names
from model.evaluation.settings import EvaluationSettings
from model.train import CHECKPOINT_FILE, CONFIG_FILE, STATE_FILE, check_resumable, train

RUNS_DIR, METRICS_FILE, TABLE_MD, TABLE_CSV = "runs", "metrics.json", "ablation.md", "ablation.csv"
DEFINED = ("SSIM", "L1", "FID", "normalised error", "identity leakage")  # the report's words for the table's metrics


@dataclass(frozen=True)
class AblationRow:
    """One row of Table 1: a name for its folder, the paper's label, and the config fields it sets on the preset."""

    name: str
    label: str  # the paper's row, in words
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted config field -> value
    paper_ssim: float | None = None  # Table 1, VoxCeleb1
    paper_fid: float | None = None  # Table 1, VoxCeleb1


# Switched off: K = 1 (single-frame F), single-scale P, lambda_S = 0, stage 1 only, lambda_FM = 0.
_SINGLE_FRAME, _SINGLE_SCALE = {"data.num_frames": 1}, {"model.multi_scale": False}
_NO_SMOOTH, _NO_ADVERSARIAL, _NO_FM = {"loss.smooth_weight": 0.0}, {"train.adversarial": False}, \
    {"loss.feature_matching_weight": 0.0}
ROWS: tuple[AblationRow, ...] = (
    AblationRow("1_vanilla", "vanilla (w/ L_REC)",
                {**_SINGLE_FRAME, **_SINGLE_SCALE, **_NO_SMOOTH, **_NO_ADVERSARIAL, **_NO_FM}, 0.65, 60.8),
    AblationRow("2_smooth", "+ smoothness loss L_S", {**_SINGLE_FRAME, **_SINGLE_SCALE, **_NO_ADVERSARIAL, **_NO_FM},
                0.68, 56.9),
    AblationRow("3_multi_frame", "+ multi-frame", {**_SINGLE_SCALE, **_NO_ADVERSARIAL, **_NO_FM}, 0.72, 47.1),
    AblationRow("4_multi_scale", "+ multi-scale", {**_NO_ADVERSARIAL, **_NO_FM}, 0.73, 46.8),
    AblationRow("5_adversarial", "+ adversarial learning (L_GAN + L_R)", {**_NO_FM}, 0.73, 26.3),
    AblationRow("6_feature_matching", "+ feature matching loss L_FM (full)", {}, 0.73, 24.8),
)
PAPER_SOURCE = "DAE-GAN paper, Table 1, VoxCeleb1 test set at 256 px (their training budget)"


def check_full_preset(config: Config, source: Path) -> None:
    """The preset is the full model (every component on), else the rows would not differ as Table 1 says."""
    off = [name for name, is_off in (("data.num_frames = 1", config.data.num_frames == 1),
                                     ("model.multi_scale false", not config.model.multi_scale),
                                     ("loss.smooth_weight 0", config.loss.smooth_weight == 0),
                                     ("train.adversarial false", not config.train.adversarial),
                                     ("loss.feature_matching_weight 0", config.loss.feature_matching_weight == 0))
           if is_off]
    if off:
        raise DataError(source, f"the ablation preset must be the full model; it has {', '.join(off)}")


def row_config(preset: str | Path, row: AblationRow, overrides: dict[str, Any] | None = None) -> Config:
    """The preset with `overrides` (the user's), then the row's switches; stage 2's epochs move into stage 1 where
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


def run_ablation(preset: str | Path, train_roots: list[Path], eval_roots: list[Path], out: str | Path, *,
                 settings: EvaluationSettings, overrides: dict[str, Any] | None = None,
                 rows: tuple[AblationRow, ...] = ROWS, inception_weights: str | Path | None = None,
                 device: torch.device = torch.device("cpu"), command: str = "",
                 progress: bool = True) -> list[RowResult]:
    """Train and evaluate `rows` on `train_roots` / `eval_roots` into `out` (module docstring); writes
    ablation.md and ablation.csv and returns the rows' results."""
    out = Path(out)
    if not train_roots or not eval_roots:
        raise DataError(out, "the ablation needs training collections (--data) and held-out ones (--eval-data)")
    configs = [row_config(preset, row, overrides) for row in rows]  # bad presets fail before any training
    inception = load_inception(inception_weights, device) if inception_weights is not None else None
    size, fps = configs[0].data.size, configs[0].data.fps
    names = unique_names([Path(r) for r in eval_roots])
    collections = [load_collection(root, size=size, fps=fps, max_frames=settings.max_frames, seed=settings.seed,
                                   name=name, progress=progress) for root, name in zip(eval_roots, names)]
    evaluated_with = {"settings": settings.to_dict(), "eval_data": [str(r) for r in eval_roots],
                      "fid_weights": str(inception_weights) if inception_weights is not None else None}
    results = []
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
        found = evaluate(model, collections, settings, inception=inception, with_pictures=False, progress=progress)
        metrics = {**found.metrics, **trained, "evaluated_with": evaluated_with}
        (run_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1, default=float))
        results.append(RowResult(row, config, metrics, skipped=False))
    header = {"posedex_version": __version__, "preset": str(preset), "overrides": overrides or {},
              "train_data": [str(r) for r in train_roots], "eval_data": [str(r) for r in eval_roots],
              "settings": settings.to_dict(), "command": command,
              "fid": "computed" if inception is not None else FID_MISSING}
    write_tables(results, out, header=header)
    return results


def _finished(run_dir: Path, config: Config) -> dict[str, Any] | None:
    """The metrics of a row finished in `run_dir` with `config`, else None; another config is a DataError."""
    if not (run_dir / METRICS_FILE).is_file():
        return None
    check_resumable(load_config(run_dir / CONFIG_FILE), config, run_dir / CONFIG_FILE)
    return json.loads((run_dir / METRICS_FILE).read_text())


# -- the table ---------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("row", "label", "collection", "status", "num_frames", "multi_scale", "smooth_weight", "adversarial",
               "feature_matching_weight", "steps", "train_minutes", "renderer", "ssim", "fid", "cross_ssim",
               "cross_ssim_source", "cross_ssim_driving", "cross_l1", "cross_l1_source", "cross_l1_driving",
               "retrieval_error", "retrieval_error_random", "retrieval_error_oracle", "leakage", "leakage_chance",
               "paper_ssim", "paper_fid")


def table_rows(results: list[RowResult]) -> list[dict[str, Any]]:
    """One flat record per (row, evaluated collection), keyed by `CSV_COLUMNS`."""
    records = []
    for result in results:
        c, m = result.config, result.metrics
        for name, section in m["collections"].items():
            protocol, cross = section.get("protocol", {}), section.get("cross_identity", {})
            retrieval, leakage = section.get("retrieval", {}), section.get("leakage", {})
            normalised = retrieval.get("normalised", {}) if isinstance(retrieval, dict) else {}
            records.append({
                "row": result.row.name, "label": result.row.label, "collection": name,
                "status": section.get("training", {}).get("label", "unknown (evaluated before the record)"),
                "num_frames": c.data.num_frames, "multi_scale": c.model.multi_scale,
                "smooth_weight": c.loss.smooth_weight, "adversarial": c.train.adversarial,
                "feature_matching_weight": c.loss.feature_matching_weight if c.train.adversarial else 0.0,
                "steps": m["steps"], "train_minutes": round(m["train_seconds"] / 60, 2), "renderer": m["renderer"],
                "ssim": protocol.get("ssim"), "fid": protocol.get("fid"),
                "cross_ssim": cross.get("ssim", {}).get("model"),
                "cross_ssim_source": cross.get("ssim", {}).get("source"),
                "cross_ssim_driving": cross.get("ssim", {}).get("driving"),
                "cross_l1": cross.get("l1", {}).get("model"), "cross_l1_source": cross.get("l1", {}).get("source"),
                "cross_l1_driving": cross.get("l1", {}).get("driving"),
                "retrieval_error": normalised.get("model"), "retrieval_error_random": normalised.get("random"),
                "retrieval_error_oracle": normalised.get("oracle"),
                "leakage": leakage.get("model"), "leakage_chance": leakage.get("chance"),
                "paper_ssim": result.row.paper_ssim, "paper_fid": result.row.paper_fid})
    return records


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
    lines = ["# Table 1 ablation on SynthVox", "",
             f"posedex {header['posedex_version']}; preset `{header['preset']}`{overridden}; trained on {trained_on}, "
             f"evaluated on {evaluated_on}, each row's status against its checkpoint's training record in the "
             "headings (evaluation settings in each runs/<row>/metrics.json).", ""]
    if header["command"]:
        lines += ["Regenerate (finished rows in runs/ are skipped):", "", "```sh", header["command"], "```", ""]
    lines += ["Every row trains the same number of steps on the same batches with the same seed; a row without the "
              "adversarial stage trains stage 1 for both stages' epochs and reenacts with the pose embedder's "
              "decoder, the others with G. " + ("" if fid_computed else f"{FID_MISSING}: the FID column is empty."),
              ""]
    for collection in dict.fromkeys(r["collection"] for r in records):
        part = [r for r in records if r["collection"] == collection]
        statuses = ", ".join(sorted({r["status"] for r in part}))
        lines += [f"## Ours, `{collection}`: {statuses}", "",
                  "| row | K | multi-scale | λ_S | adversarial | λ_FM | steps | train min | renderer | SSIM ↑ | FID ↓ "
                  "| cross SSIM ↑ | cross L1 ↓ | retrieval error ↓ | leakage ↓ |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in part:
            lines.append(f"| {r['label']} | {r['num_frames']} | {_fmt(r['multi_scale'])} "
                         f"| {_fmt(r['smooth_weight'], 1)} "
                         f"| {_fmt(r['adversarial'])} | {_fmt(r['feature_matching_weight'], 1)} | {r['steps']} "
                         f"| {_fmt(r['train_minutes'], 1)} | {r['renderer']} | {_fmt(r['ssim'])} "
                         f"| {_fmt(r['fid'], 1) if fid_computed else 'not computed'} | {_fmt(r['cross_ssim'])} "
                         f"| {_fmt(r['cross_l1'])} | {_fmt(r['retrieval_error'])} | {_fmt(r['leakage'])} |")
        first = part[0]
        lines += ["", "Baselines (the first row's; they do not depend on the model): cross-identity SSIM of the "
                  "unchanged source "
                  f"{_fmt(first['cross_ssim_source'])} and of the driving frame {_fmt(first['cross_ssim_driving'])}; "
                  f"cross L1 {_fmt(first['cross_l1_source'])} and {_fmt(first['cross_l1_driving'])}; retrieval error "
                  f"of random hits {_fmt(first['retrieval_error_random'])}, of the ground-truth oracle "
                  f"{_fmt(first['retrieval_error_oracle'])}; leakage by chance {_fmt(first['leakage_chance'])}.", ""]
    lines += [f"## The paper's figures ({PAPER_SOURCE}; not comparable 1:1 with ours)", "",
              "| row | SSIM ↑ | FID ↓ |", "|---|---|---|"]
    lines += [f"| {row.label} | {_fmt(row.paper_ssim, 2)} | {_fmt(row.paper_fid, 1)} |" for row in ROWS]
    lines += ["", "## Columns", "",
              "- **SSIM, FID**: the paper's protocol: a held-out driving frame reenacted from source frames of the "
              "rest of its video, against that driving frame.",
              "- **cross SSIM, cross L1**: a source identity reenacted with another identity's driving frame, "
              "against the source identity rendered in the driver's pose (SynthVox ground truth).",
              "- **retrieval error**: the normalised error of pose retrieval among other identities (top-k by pose "
              "code); **leakage**: identity leakage of the unfiltered top-k.", "", "## Definitions", ""]
    lines += [f"- **{term}**: {METRIC_DEFINITIONS[term]}" for term in DEFINED]
    lines.append("")
    (out / TABLE_MD).write_text("\n".join(lines))
    return out / TABLE_MD, out / TABLE_CSV
