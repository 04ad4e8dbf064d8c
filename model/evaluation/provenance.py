"""Held out or seen in training: each evaluated collection judged against the checkpoint's `TrainingRecord` (issue
11, "Evaluation that cannot flatter").

A collection is **held out** when the record is complete and none of its evaluated identities was trained on,
**seen in training** when all were, **partly seen (n of m identities)** otherwise, and **unknown** when the
checkpoint does not say what it trained on (a checkpoint from before the record, or one started from such weights
with none of the collection's identities recorded). Only held-out collections make the report's summary.

Choices:
- A collection partly seen is evaluated on its held-out identities only unless `EvaluationSettings.held_out_only`
  is false: `frames.load_collection` leaves the seen ones out before it draws whole videos, and the status counts
  them. A collection `daegan train` split by identity then gives its held-out identities' figures with no extra
  step, and figures of people the model was fitted to, which flatter every metric, never mix into them. With the
  setting off, the whole collection is evaluated, marked partly seen and kept out of the summary.
- The judgement is the evaluated model's own record (`DAEGAN.metadata`), made again at evaluation, whoever loaded
  the collection; identities left out at loading count as seen.
"""

from __future__ import annotations

from model.checkpoint import TrainingRecord
from model.evaluation.frames import EvalCollection
from model.evaluation.results import TrainingStatus

HELD_OUT, SEEN, PARTLY_SEEN, UNKNOWN = "held out", "seen in training", "partly seen", "unknown"


def training_status(record: TrainingRecord | None, collection: EvalCollection) -> TrainingStatus:
    """The collection's status (module docstring): one of `HELD_OUT`, `SEEN`, `PARTLY_SEEN`, `UNKNOWN`, with the
    report's words for it and the counts behind it."""
    identities = sorted(set(collection.frames["identity"].astype(str)))
    left_out = list(collection.left_out)
    if record is None:
        return TrainingStatus(
            UNKNOWN, f"{UNKNOWN} (the checkpoint does not say what it trained on)", len(identities), 0, left_out, []
        )
    trained_as = {i: record.trained_as(i, collection.synth_seed) for i in identities + left_out}
    seen = sum(bool(trained_as[i]) for i in identities)
    names = sorted({n or "(no root)" for found in trained_as.values() for n in found})
    dropped = f"; its {_count(len(left_out))} seen in training left out" if left_out else ""
    if identities and seen == len(identities):
        status, label = SEEN, f"{SEEN} ({'all ' + _count(seen) if seen > 1 else 'its one identity'})"
    elif seen:
        status, label = PARTLY_SEEN, f"{PARTLY_SEEN} ({seen} of {_count(len(identities))})"
    elif not record.complete:
        status = UNKNOWN
        label = f"{UNKNOWN} (the checkpoint started from weights that do not say what they trained on{dropped})"
    else:
        status, label = HELD_OUT, HELD_OUT + (f" ({dropped[2:]})" if left_out else "")
    return TrainingStatus(status, label, len(identities), seen, left_out, names)


def _count(n: int) -> str:
    return f"{n} {'identity' if n == 1 else 'identities'}"
