"""The evaluation's files: ``metrics.json`` (every figure, machine-readable: `metrics_file`), ``report.md`` (the
same figures in tables beside their baselines, each metric defined in one sentence, the pictures, and the command
that made it) and the PNGs. report.md is rendered from the typed document (`MetricsFile`) as read back from the
metrics.json just written, so the two say the same; `render_markdown` renders any metrics.json read back so.

`METRIC_DEFINITIONS` is the one place a metric's meaning is written: units and which direction is better. A figure
that could not be computed is written as such ("FID: not computed, no Inception weights"), never as a number.

The report opens with what the checkpoint trained on and the summary of the held-out collections (`summary`);
every collection's heading carries its status (held out, seen in training, partly seen, unknown).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image

from model.evaluation.evaluate import FID_MISSING
from model.evaluation.metrics_file import EvaluationHeader, MetricsFile, clean
from model.evaluation.provenance import HELD_OUT
from model.evaluation.results import (
    CollectionResult,
    CrossIdentityJudged,
    CrossIdentityResult,
    LandmarkScores,
    Metrics,
    ProtocolSkipped,
    RetrievalSection,
    Summary,
    TrainedOn,
)

# the images the identity probe reads (`ProbeResult.identity_readable`'s keys), as the report names them
IMAGE_KINDS = (("face", "embedded faces"), ("frame", "frames"), ("ideal_face", "ideal embedded faces"))
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
    "multinomial logistic regression on standardised features names correctly: the pose code itself, or an "
    "image's 128-d dlib face-recognition descriptor (an image in which dlib finds no face counts as a miss; "
    "reports before it read an image's 16x16 pooled pixels, which on scenes drawn per video read the scene); "
    "chance is the majority class's share; higher means more identity information. The embedded face's stands beside "
    "the ideal embedded face's: SynthVox's render of the person frontal and neutral in the video's scene, light "
    "and framing, the face eq. 1 asks F for (P's warp rebuilds that video's frames from it, eq. 2).",
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


def _n(count: int, noun: str) -> str:
    """ "1 video", "2 videos"; "identities" for identity."""
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{count} {noun if count == 1 else plural}"


def _f(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write_report(
    metrics: Metrics, pictures: dict[str, Image.Image], out: str | Path, *, header: EvaluationHeader
) -> Path:
    """Write metrics.json, the PNGs (`pictures`, by file name) and report.md into `out` (created); returns
    report.md's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stored = clean(MetricsFile(header, metrics, sorted(pictures), METRIC_DEFINITIONS).to_json())
    (out / "metrics.json").write_text(json.dumps(stored, indent=2, allow_nan=False) + "\n")
    for name, picture in pictures.items():
        picture.save(out / name, optimize=True)
    path = out / "report.md"
    # rendered from the file's own figures (cleaned, read back): report.md says what metrics.json says
    path.write_text(render_markdown(MetricsFile.from_json(stored)) + "\n")
    return path


def _hits_domain(r: RetrievalSection) -> list[str]:
    """Where a real collection's hits came from, and its retrieval among real candidates only (when SynthVox frames
    were candidates too)."""
    lines = []
    if r.hits_from and r.candidates_by:
        shares = ", ".join(
            f"{name} {share:.0%} ({r.candidates_by.get(name, 0):,} of the {r.candidates:,} candidates)"
            for name, share in r.hits_from.items()
        )
        lines += [f"The model's hits came from: {shares}.", ""]
    real = r.real_only
    if real is not None and real.gap_closed:
        per = ", ".join(f"{col} {_f(value, 2)}" for col, value in real.gap_closed.items())
        lines += [
            f"Among real faces only ({real.candidates:,} candidates, from {', '.join(real.candidates_from or [])}; "
            f"SynthVox's cartoon heads left out): head pose and mouth gap closed "
            f"**{_f(real.gap_closed_pose_and_mouth, 2)}**, normalised {_f(real.gap_closed_normalised, 2)}; "
            f"per parameter {per}.",
            "",
        ]
    elif real is not None and real.note:
        lines += [f"Among real faces only: {real.note}.", ""]
    return lines


def render_markdown(document: MetricsFile) -> str:
    """report.md from metrics.json's document (`MetricsFile.from_json` reads one back from the file)."""
    ck, m, settings = document.header.checkpoint, document.metrics, document.header.settings
    lines = [
        "# posedex evaluation",
        "",
        f"Checkpoint `{ck.path}` (sha256 `{ck.sha256[:16]}`, {ck.size} px, pose code of {ck.pose_dim}, trained "
        f"to step {ck.step}), reenacting with the **{m.renderer}**, {m.num_sources} source frames per video, "
        + ("pasted over the first source frame outside the head" if settings.keep_background else "whole frames")
        + (
            "; real collections' cross-identity reenactments drawn at their frames' size from the source frames"
            if settings.real_at_frame_size
            else ""
        )
        + (
            "; cross-identity reenactments driven by **relative motion** (each driving code's departure from its "
            "video's mean, on the source's mean code)"
            if settings.motion == "relative"
            else ""
        )
        + f". posedex {document.header.posedex_version}.",
        "",
        *([f"Trained with: `{ck.trained_with}`", ""] if ck.trained_with else []),
        *_trained_on(m.trained_on),
        "Regenerate with:",
        "",
        "```sh",
        document.header.command,
        "```",
        "",
        f"- {FID_MISSING if m.fid == FID_MISSING else 'FID computed with ' + str(document.header.fid_weights)}",
        f"- Real frames judged by: {m.landmarks}",
        f"- Seed {settings.seed}; settings in metrics.json. Every metric is defined at the end.",
        "",
    ]
    lines += _summary(m.summary)
    for name, section in m.collections.items():
        lines += _collection(name, section, document.pictures)
    lines += ["## Definitions", ""]
    lines += [f"- **{term}**: {text}" for term, text in document.definitions.items()]
    return "\n".join(lines)


def _trained_on(record: TrainedOn | None) -> list[str]:
    """What the checkpoint says it trained on, in one paragraph."""
    if record is None:
        return ["Trained on: **unknown** (the checkpoint does not say; no collection here can be called held out).", ""]
    parts = [
        f"`{c.name or '(no root)'}` ({_n(c.trained, 'identity')} trained on, {c.held_out} held out by the "
        f"split{'; SynthVox seed ' + str(c.synthvox_seed) if c.synthvox_seed is not None else ''})"
        for c in record.collections
    ]
    incomplete = (
        [] if record.complete else ["; it started from weights whose checkpoint does not say what they trained on"]
    )
    return ["Trained on: " + "; ".join(parts) + "".join(incomplete) + ".", ""]


def _summary(summary: Summary) -> list[str]:
    """The held-out collections' headline figures, each beside its baseline and target."""
    lines = ["## Summary: held-out collections only", ""]
    left = summary.left_out_of_summary
    if left:
        lines += ["Not in the summary: " + "; ".join(f"`{n}`, {label}" for n, label in left.items()) + ".", ""]
    if not summary.figures:
        return lines + ["No held-out collection was evaluated: nothing to summarise.", ""]
    lines += ["| collection | figure | value | baseline | target | met |", "|---|---|---|---|---|---|"]
    for row in summary.figures:
        met = {True: "yes", False: "**no**", None: "n/a"}[row.met] if row.target else ""
        lines.append(
            f"| {row.collection} | {row.figure} | {_f(row.value)} | {_f(row.baseline_value)} "
            f"({row.baseline}) | {row.target} | {met} |"
        )
    return lines + [""]


def _collection(name: str, s: CollectionResult, pictures: list[str]) -> list[str]:
    """One collection's section: its status, then each analysis that ran, then its pictures."""
    kind = f"SynthVox, seed {s.synthvox_seed}, labelled" if s.kind == "synthvox" else "real frames, no labels"
    t = s.training
    status = t.label if t.status == HELD_OUT else f"{t.label}: not held-out figures"
    trained_as = f" (trained on as {', '.join(f'`{n}`' for n in t.trained_as)})" if t.trained_as else ""
    lines = [
        f"## {name} ({kind}): {status}",
        "",
        f"`{s.root}`: {_n(s.frames, 'frame')} of {_n(s.videos, 'video')} of "
        f"{_n(s.identities, 'identity')}, {s.frame_size} px on disk. Training status: **{t.label}**"
        f"{trained_as}.",
        "",
    ]
    p = s.protocol
    lines += ["### Reenactment: the paper's protocol (same person)", ""]
    if isinstance(p, ProtocolSkipped):
        return lines + [p.note, ""]
    lines += [
        f"{_n(p.videos, 'video')} (paper: 50), {p.driving_frames} driving frames "
        f"({p.driving_per_video[0]}-{p.driving_per_video[1]} per video; paper: 32), "
        f"{p.sources_per_video[0]}-{p.sources_per_video[1]} source frames per video from the rest.",
        "",
        "| metric | model | unchanged source frame |",
        "|---|---|---|",
        f"| SSIM ↑ | {_f(p.ssim)} | {_f(p.ssim_source)} |",
        f"| L1 ↓ | {_f(p.l1, 4)} | {_f(p.l1_source, 4)} |",
    ]
    if p.judged is not None:
        lines += _judged_rows(p.judged)
    lines += ["", f"FID ↓: {_f(p.fid, 2)}" if p.fid is not None else (p.fid_note or FID_MISSING), ""]
    c = s.cross_identity
    if isinstance(c, CrossIdentityResult):
        lines += [
            "### Cross-identity reenactment against the rendered ground truth",
            "",
            f"{_n(c.videos, 'source video')}, each driven by frames of one video of another identity "
            f"({c.frames} driving frames in all); the target is the source identity rendered in the "
            f"driving frame's pose.",
            "",
            "| metric | model | unchanged source frame | driving frame |",
            "|---|---|---|---|",
            f"| SSIM ↑ | {_f(c.ssim.model)} | {_f(c.ssim.source)} | {_f(c.ssim.driving)} |",
            f"| L1 ↓ | {_f(c.l1.model, 4)} | {_f(c.l1.source, 4)} | {_f(c.l1.driving, 4)} |",
            *(
                f"| {region} region L1 ↓ ({r.pairs} pairs) | {_f(r.model, 4)} | {_f(r.source, 4)} | "
                f"{_f(r.driving, 4)} |"
                for region, r in c.regions.items()
            ),
            "",
        ]
    elif isinstance(c, CrossIdentityJudged):
        lines += [
            "### Cross-identity reenactment (no ground truth: judged by dlib)",
            "",
            f"{_n(c.videos, 'source video')}, {c.frames} driving frames of other identities "
            + (f"in {c.driver_videos} videos " if c.driver_videos is not None else "")
            + f"(from {', '.join(c.drivers_from)}).",
            "",
            "| metric | model | baseline |",
            "|---|---|---|",
            *_judged_rows(c.judged),
            "",
        ]
        if c.faces_detected_by_driver:
            found = ", ".join(f"{name} {share:.0%}" for name, share in c.faces_detected_by_driver.items())
            lines += [f"Faces found in the reenactments by the driving frames' collection: {found}.", ""]
    r = s.retrieval
    if r is not None and r.error:
        judge = "dlib's measures of query and hits" if r.judge else "the SynthVox labels"
        lines += [
            f"### Pose retrieval across identities (Fig. 8): top-{r.k} by pose code, other identities only",
            "",
            f"{r.queries} queries; errors against {judge}."
            + (
                f" Candidates: {r.candidates} frames with a face, from {', '.join(r.candidates_from or [])}; "
                f"faces found in {r.faces_found_queries:.0%} of the queries."
                if r.judge
                else ""
            ),
            "",
            "| parameter | model top-k | random k | oracle | gap closed |",
            "|---|---|---|---|---|",
        ]
        gap_closed, normalised = r.gap_closed or {}, r.normalised or {}
        for col in r.parameters or []:
            m, rnd, o = (r.error[n][col] for n in ("model", "random", "oracle"))
            lines.append(f"| {col} | {_f(m)} | {_f(rnd)} | {_f(o)} | {_f(gap_closed[col], 2)} |")
        lines += [
            f"| **normalised error** | **{_f(normalised['model'])}** | {_f(normalised['random'])} | "
            f"{_f(normalised['oracle'])} | {_f(r.gap_closed_normalised, 2)} |",
            f"| head pose and mouth (yaw, pitch, roll, mouth_open), normalised | | | | "
            f"{_f(r.gap_closed_pose_and_mouth, 2)} |",
            "",
        ]
        lines += _hits_domain(r)
    elif r is not None and r.note:
        lines += ["### Pose retrieval across identities", "", r.note, ""]
    leak = s.leakage
    if leak is not None:
        lines += [
            "### Identity leakage of the pose code",
            "",
            f"Share of the unfiltered top-{r.k if r is not None else ''} with the query's identity "
            f"({leak.queries} queries): model **{_f(leak.model)}**, chance {_f(leak.chance)}, oracle "
            f"{_f(leak.oracle)}.",
            "",
        ]
    probes = s.probes
    if probes is not None and (
        probes.pose_r2_from_pose_code is not None or probes.identity_accuracy_from_pose_code is not None
    ):  # a probe ran
        lines += ["### Linear probes", ""]
        if probes.pose_r2_from_pose_code is not None and probes.pose_identities is not None:
            ids, from_face = probes.pose_identities, probes.pose_r2_from_face or {}
            from_frame, from_ideal = probes.pose_r2_from_frame or {}, probes.pose_r2_from_ideal_face or {}
            lines += [
                f"Pose R² on {ids['test']} identities held out of the fit ({ids['train']} fitted):",
                "",
                "| pose parameter | R² from pose code ↑ | R² from embedded face | R² from the frame | "
                "R² from the ideal embedded face |",
                "|---|---|---|---|---|",
            ]
            for col, value in probes.pose_r2_from_pose_code.items():
                lines.append(
                    f"| {col} | {_f(value)} | {_f(from_face[col])} | {_f(from_frame.get(col))} "
                    f"| {_f(from_ideal.get(col))} |"
                )
            lines.append("")
        if probes.identity_accuracy_from_pose_code is not None:
            readable = probes.identity_readable or {}
            reader = (
                f"images read by the {probes.identity_reader}, which found a face in "
                + ", ".join(f"{_f(readable.get(kind))} of the {label}" for kind, label in IMAGE_KINDS)
                if probes.identity_reader
                else "images read as pooled pixels"
            )
            lines += [
                f"Identity accuracy on held-out videos ({probes.identity_classes} identities; {reader}): from the "
                f"pose code **{_f(probes.identity_accuracy_from_pose_code)}**, from the embedded face "
                f"{_f(probes.identity_accuracy_from_face)}, from the frames themselves "
                f"{_f(probes.identity_accuracy_from_frame)} (the person as the video shows them), from the ideal "
                f"embedded face {_f(probes.identity_accuracy_from_ideal_face)} (SynthVox's own render of the "
                "person frontal and neutral in the video's scene, light and framing, which P's warp would rebuild "
                "the video's frames from, eq. 2: what a face embedder should give this probe), chance "
                f"{_f(probes.identity_chance)}.",
                "",
            ]
    shown = [f for f in pictures if f.startswith(f"{name}_")]
    if shown:
        lines += ["### Pictures", ""]
        captions = {
            "retrieval": "Pose retrieval (Fig. 8): query, then its top hits among other identities",
            "disentangling": "One video (Fig. 7): frames, F's warps, embedded faces, P's warps, reconstructions",
            "reenactment": "Reenactment: drivers across the top, sources down the side",
            "metrics": "The metrics beside their baselines",
        }
        for f in shown:
            kind = f[len(name) + 1 : -4]
            lines += [f"![{captions.get(kind, kind)}]({f})", ""]
    return lines


def _judged_rows(judged: LandmarkScores) -> list[str]:
    """The dlib rows of a table with columns metric | model | baseline."""
    akd, csim, faces, missing = judged.akd, judged.csim, judged.faces_detected, judged.missing_face_rate
    other = (
        f"; {_f(csim.driving)} (driving frame, another person, {csim.driving_pairs} pairs)"
        if csim.driving is not None
        else ""
    )
    return [
        f"| faces detected ↑ | {_f(faces.reenacted, 2)} | {_f(faces.driving, 2)} (driving frames) |",
        f"| missing-face rate ↓ | {_f(missing.model, 2)} | {_f(missing.source, 2)} (unchanged source frame) |",
        f"| AKD to the driver ↓ (px, {akd.pairs} detected pairs) | {_f(akd.model, 2)} | "
        f"{_f(akd.source, 2)} (unchanged source frame, same pairs; {_f(akd.source_all, 2)} over its "
        f"{akd.source_all_pairs} pairs) |",
        f"| CSIM to the source ↑ ({csim.pairs} pairs) | {_f(csim.model)} | {_f(csim.same_person)} "
        f"(same person, {csim.same_person_pairs} pairs; model / same person {_f(csim.ratio, 2)}){other} |",
    ]
