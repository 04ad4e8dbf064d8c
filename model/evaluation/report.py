"""The evaluation's files: ``metrics.json`` (every figure, machine-readable), ``report.md`` (the same figures in
tables beside their baselines, each metric defined in one sentence, the pictures, and the command that made it)
and the PNGs.

`METRIC_DEFINITIONS` is the one place a metric's meaning is written: units and which direction is better. A figure
that could not be computed is written as such ("FID: not computed, no Inception weights"), never as a number.

The report opens with what the checkpoint trained on and the summary of the held-out collections (`summary`);
every collection's heading carries its status (held out, seen in training, partly seen, unknown).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from model.evaluation.evaluate import FID_MISSING, Evaluation
from model.evaluation.provenance import HELD_OUT

METRIC_DEFINITIONS = {
    "SSIM": "structural similarity (Wang et al. 2004; 11-pixel Gaussian window, sigma 1.5) between an image and its "
            "target, on RGB in [0, 1] at the model's resolution, averaged over pixels, channels and frames; in "
            "[-1, 1], higher is better, 1 = identical.",
    "L1": "mean absolute pixel difference between an image and its target in the model's [-1, 1] units "
          "(1.0 = 127.5 levels of 8 bits), averaged over pixels, channels and frames; lower is better.",
    "FID": "Fréchet distance between Gaussians fitted to the 2048 Inception-v3 pool3 features (standard "
           "pt_inception-2015-12-05 weights, images resized to 299 px) of the driving frames and of the "
           "reenactments; lower is better, 0 = same distribution.",
    "retrieval error": "for each query frame, the mean over its top-k hits by cosine similarity of pose codes, "
                       "among frames of other identities only, of the absolute difference of each pose parameter "
                       "(degrees for yaw, pitch, roll; label units in [0, 1] for expressions; dlib's measures on "
                       "real frames), averaged over queries; lower is better.",
    "random k": "the same error for k frames drawn uniformly from the same candidates: what a pose code without "
                "pose information gets.",
    "oracle": "the same error for the k candidates nearest the query in all pose values together (each "
              "parameter divided by its standard deviation): what a perfect pose code retrieves; since it balances "
              "every parameter, the model can beat it on a single one.",
    "gap closed": "(random - model) / (random - oracle) of a retrieval error, per parameter or of the normalised "
                  "error over several: 0 = no better than random, 1 = as good as the oracle.",
    "normalised error": "the retrieval error of each parameter divided by that parameter's standard deviation over "
                        "the frames, averaged over the parameters; lower is better.",
    "identity leakage": "share of the unfiltered top-k (every identity; the query's own video left out) that has "
                        "the query's identity; a pose code free of identity sits at the chance share (such frames' "
                        "share of the pool) or at the oracle's share (that of the k nearest in true pose).",
    "pose probe R^2": "coefficient of determination of a ridge regression (standardised features, penalty "
                      "chosen by cross-validation folds of whole identities) predicting one pose parameter, "
                      "fitted on the frames of some identities "
                      "and scored on held-out identities; 1 = perfect, 0 = no better than the mean, higher means "
                      "more pose information in the features.",
    "identity probe accuracy": "share of the frames of held-out videos (one per identity) whose identity a "
                               "multinomial logistic regression on standardised features names correctly; chance "
                               "is the majority class's share; higher means more identity information.",
    "AKD": "average keypoint distance: mean Euclidean distance in pixels, at the model's resolution, between the "
           "68 corresponding dlib landmarks of the driving frame and of the reenactment (or of the unchanged "
           "source frame, its baseline), over the pairs where dlib finds the face in the driving frame, the source "
           "frame and the reenactment, the same pairs for model and baseline; lower is better.",
    "CSIM": "cosine similarity of the 128-d dlib face-recognition descriptors of the source frame and of the "
            "reenactment, over the pairs where dlib finds both faces; in [-1, 1], higher means more alike.",
    "CSIM same person": "the CSIM of the source frame and a hold-out frame of its own video (another frame of the "
                        "same person): what a reenactment that keeps the identity perfectly would reach.",
    "faces detected": "share of the images in which dlib's face detector finds a face (images enlarged to 256 px "
                      "first); an image without one gets no landmarks and leaves AKD and CSIM.",
    "missing-face rate": "share of the pairs whose driving frame has a face in which dlib finds none in the "
                         "reenactment (FOMM's missing keypoint rate, by faces); lower is better.",
    "region L1": "L1 against the ground truth inside the box of the pixels that the mouth parameters (mouth_open, "
                 "smile) or the eye parameters (blink, brow_raise) change in the source identity in the driving "
                 "frame's head pose, from SynthVox renders; lower is better.",
    "training status": "held out: the checkpoint trained on none of the collection's evaluated identities; seen in "
                       "training: on all; partly seen: on some; unknown: the checkpoint does not say; only "
                       "held-out collections make the summary.",
}


def _clean(value: object) -> object:
    """JSON-safe: NaN and infinities become null; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _n(count: int, noun: str) -> str:
    """"1 video", "2 videos"; "identities" for identity."""
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{count} {noun if count == 1 else plural}"


def _f(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write_report(evaluation: Evaluation, out: str | Path, *, header: dict[str, object], command: str) -> Path:
    """Write metrics.json, the PNGs and report.md into `out` (created); returns report.md's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {**header, "command": command, **evaluation.metrics.to_json(),
               "pictures": sorted(evaluation.pictures), "definitions": METRIC_DEFINITIONS}
    metrics = _clean(metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    for name, picture in evaluation.pictures.items():
        picture.save(out / name, optimize=True)
    path = out / "report.md"
    path.write_text(render_markdown(metrics) + "\n")
    return path


def render_markdown(metrics: dict) -> str:
    """report.md from a metrics dict as `write_report` stores it."""
    ck = metrics.get("checkpoint", {})
    ck_fid = metrics.get("fid_weights")
    lines = ["# posedex evaluation", "",
             f"Checkpoint `{ck.get('path')}` (sha256 `{str(ck.get('sha256', ''))[:16]}`, {ck.get('size')} px, pose "
             f"code of {ck.get('pose_dim')}, trained to step {ck.get('step')}), reenacting with the "
             f"**{metrics['renderer']}**, {metrics['num_sources']} source frames per video. posedex "
             f"{metrics.get('posedex_version')}.", "",
             *([f"Trained with: `{ck['trained_with']}`", ""] if ck.get("trained_with") else []),
             *_trained_on(metrics.get("trained_on")),
             "Regenerate with:", "", "```sh", metrics["command"], "```", "",
             f"- {FID_MISSING if metrics['fid'] == FID_MISSING else 'FID computed with ' + str(ck_fid)}",
             f"- Real frames judged by: {metrics['landmarks']}",
             f"- Seed {metrics['settings']['seed']}; settings in metrics.json. Every metric is defined at the end.",
             ""]
    lines += _summary(metrics["summary"])
    for name, section in metrics["collections"].items():
        lines += _collection(name, section, metrics)
    lines += ["## Definitions", ""]
    lines += [f"- **{term}**: {text}" for term, text in metrics["definitions"].items()]
    return "\n".join(lines)


def _trained_on(record: dict | None) -> list[str]:
    """What the checkpoint says it trained on, in one paragraph."""
    if record is None:
        return ["Trained on: **unknown** (the checkpoint does not say; no collection here can be called held out).",
                ""]
    parts = [f"`{c['name'] or '(no root)'}` ({_n(c['trained'], 'identity')} trained on, {c['held_out']} held out by "
             f"the split{'; SynthVox seed ' + str(c['synthvox_seed']) if c['synthvox_seed'] is not None else ''})"
             for c in record["collections"]]
    incomplete = [] if record["complete"] else ["; it started from weights whose checkpoint does not say what they "
                                                "trained on"]
    return ["Trained on: " + "; ".join(parts) + "".join(incomplete) + ".", ""]


def _summary(summary: dict) -> list[str]:
    """The held-out collections' headline figures, each beside its baseline and target."""
    lines = ["## Summary: held-out collections only", ""]
    left = summary["left_out_of_summary"]
    if left:
        lines += ["Not in the summary: " + "; ".join(f"`{n}`, {label}" for n, label in left.items()) + ".", ""]
    if not summary["figures"]:
        return lines + ["No held-out collection was evaluated: nothing to summarise.", ""]
    lines += ["| collection | figure | value | baseline | target | met |", "|---|---|---|---|---|---|"]
    for row in summary["figures"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[row["met"]] if row["target"] else ""
        lines.append(f"| {row['collection']} | {row['figure']} | {_f(row['value'])} | {_f(row['baseline_value'])} "
                     f"({row['baseline']}) | {row['target']} | {met} |")
    return lines + [""]


def _collection(name: str, s: dict, metrics: dict) -> list[str]:
    kind = (f"SynthVox, seed {s['synthvox_seed']}, labelled" if s["kind"] == "synthvox"
            else "real frames, no labels")
    t = s["training"]
    status = t["label"] if t["status"] == HELD_OUT else f"{t['label']}: not held-out figures"
    trained_as = f" (trained on as {', '.join(f'`{n}`' for n in t['trained_as'])})" if t["trained_as"] else ""
    lines = [f"## {name} ({kind}): {status}", "",
             f"`{s['root']}`: {_n(s['frames'], 'frame')} of {_n(s['videos'], 'video')} of "
             f"{_n(s['identities'], 'identity')}, {s['frame_size']} px on disk. Training status: **{t['label']}**"
             f"{trained_as}.", ""]
    p = s.get("protocol", {})
    lines += ["### Reenactment: the paper's protocol (same person)", ""]
    if not p.get("videos"):
        return lines + [p.get("note", "not computed"), ""]
    lines += [f"{_n(p['videos'], 'video')} (paper: 50), {p['driving_frames']} driving frames "
              f"({p['driving_per_video'][0]}-{p['driving_per_video'][1]} per video; paper: 32), "
              f"{p['sources_per_video'][0]}-{p['sources_per_video'][1]} source frames per video from the rest.", "",
              "| metric | model | unchanged source frame |", "|---|---|---|",
              f"| SSIM ↑ | {_f(p['ssim'])} | {_f(p['ssim_source'])} |",
              f"| L1 ↓ | {_f(p['l1'], 4)} | {_f(p['l1_source'], 4)} |"]
    if "akd" in p:
        lines += _judged_rows(p)
    lines += ["", f"FID ↓: {_f(p['fid'], 2)}" if p.get("fid") is not None else (p.get("fid_note") or FID_MISSING), ""]
    c = s.get("cross_identity")
    if c and "ssim" in c:
        lines += ["### Cross-identity reenactment against the rendered ground truth", "",
                  f"{_n(c['videos'], 'source video')}, each driven by frames of one video of another identity "
                  f"({c['frames']} driving frames in all); the target is the source identity rendered in the "
                  f"driving frame's pose.",
                  "", "| metric | model | unchanged source frame | driving frame |", "|---|---|---|---|",
                  f"| SSIM ↑ | {_f(c['ssim']['model'])} | {_f(c['ssim']['source'])} | {_f(c['ssim']['driving'])} |",
                  f"| L1 ↓ | {_f(c['l1']['model'], 4)} | {_f(c['l1']['source'], 4)} | {_f(c['l1']['driving'], 4)} |",
                  *(f"| {region} region L1 ↓ ({r['pairs']} pairs) | {_f(r['model'], 4)} | {_f(r['source'], 4)} | "
                    f"{_f(r['driving'], 4)} |" for region, r in c.get("regions", {}).items()),
                  ""]
    elif c and "akd" in c:
        lines += ["### Cross-identity reenactment (no ground truth: judged by dlib)", "",
                  f"{_n(c['videos'], 'source video')}, {c['frames']} driving frames of other identities "
                  f"(from {', '.join(c['drivers_from'])}).", "",
                  "| metric | model | baseline |", "|---|---|---|", *_judged_rows(c), ""]
    r = s.get("retrieval")
    if r and r.get("error"):
        judge = "dlib's measures of query and hits" if r.get("judge") else "the SynthVox labels"
        lines += [f"### Pose retrieval across identities (Fig. 8): top-{r['k']} by pose code, other identities only",
                  "", f"{r['queries']} queries; errors against {judge}."
                  + (f" Candidates: {r['candidates']} frames with a face, from {', '.join(r['candidates_from'])}; "
                     f"faces found in {r['faces_found_queries']:.0%} of the queries." if r.get("judge") else ""), "",
                  "| parameter | model top-k | random k | oracle | gap closed |", "|---|---|---|---|---|"]
        for col in r["parameters"]:
            m, rnd, o = (r["error"][n][col] for n in ("model", "random", "oracle"))
            lines.append(f"| {col} | {_f(m)} | {_f(rnd)} | {_f(o)} | {_f(r['gap_closed'][col], 2)} |")
        n = r["normalised"]
        lines += [f"| **normalised error** | **{_f(n['model'])}** | {_f(n['random'])} | {_f(n['oracle'])} | "
                  f"{_f(r['gap_closed_normalised'], 2)} |",
                  f"| head pose and mouth (yaw, pitch, roll, mouth_open), normalised | | | | "
                  f"{_f(r['gap_closed_pose_and_mouth'], 2)} |", ""]
    elif r and r.get("note"):
        lines += ["### Pose retrieval across identities", "", r["note"], ""]
    leak = s.get("leakage")
    if leak:
        lines += ["### Identity leakage of the pose code", "",
                  f"Share of the unfiltered top-{r['k'] if r else ''} with the query's identity ({leak['queries']} "
                  f"queries): model **{_f(leak['model'])}**, chance {_f(leak['chance'])}, oracle {_f(leak['oracle'])}.",
                  ""]
    probes = s.get("probes")
    if probes:
        lines += ["### Linear probes", ""]
        if "pose_r2_from_pose_code" in probes:
            ids = probes["pose_identities"]
            lines += [f"Pose R² on {ids['test']} identities held out of the fit ({ids['train']} fitted):", "",
                      "| pose parameter | R² from pose code ↑ | R² from embedded face |", "|---|---|---|"]
            for col, value in probes["pose_r2_from_pose_code"].items():
                lines.append(f"| {col} | {_f(value)} | {_f(probes['pose_r2_from_face'][col])} |")
            lines.append("")
        if "identity_accuracy_from_pose_code" in probes:
            lines += [f"Identity accuracy on held-out videos ({probes['identity_classes']} identities): from the pose "
                      f"code **{_f(probes['identity_accuracy_from_pose_code'])}**, from the embedded face "
                      f"{_f(probes['identity_accuracy_from_face'])}, chance {_f(probes['identity_chance'])}.", ""]
    shown = [f for f in metrics["pictures"] if f.startswith(f"{name}_")]
    if shown:
        lines += ["### Pictures", ""]
        captions = {"retrieval": "Pose retrieval (Fig. 8): query, then its top hits among other identities",
                    "disentangling": "One video (Fig. 7): frames, F's warps, embedded faces, P's warps, "
                                     "reconstructions",
                    "reenactment": "Reenactment: drivers across the top, sources down the side",
                    "metrics": "The metrics beside their baselines"}
        for f in shown:
            kind = f[len(name) + 1:-4]
            lines += [f"![{captions.get(kind, kind)}]({f})", ""]
    return lines


def _judged_rows(p: dict) -> list[str]:
    """The dlib rows of a table with columns metric | model | baseline."""
    akd, csim, faces, missing = p["akd"], p["csim"], p["faces_detected"], p["missing_face_rate"]
    other = (f"; {_f(csim['driving'])} (driving frame, another person, {csim['driving_pairs']} pairs)"
             if "driving" in csim else "")
    return [f"| faces detected ↑ | {_f(faces['reenacted'], 2)} | {_f(faces['driving'], 2)} (driving frames) |",
            f"| missing-face rate ↓ | {_f(missing['model'], 2)} | {_f(missing['source'], 2)} (unchanged source "
            f"frame) |",
            f"| AKD to the driver ↓ (px, {akd['pairs']} detected pairs) | {_f(akd['model'], 2)} | "
            f"{_f(akd['source'], 2)} (unchanged source frame, same pairs; {_f(akd['source_all'], 2)} over its "
            f"{akd['source_all_pairs']} pairs) |",
            f"| CSIM to the source ↑ ({csim['pairs']} pairs) | {_f(csim['model'])} | {_f(csim['same_person'])} "
            f"(same person, {csim['same_person_pairs']} pairs; model / same person {_f(csim['ratio'], 2)}){other} |"]
