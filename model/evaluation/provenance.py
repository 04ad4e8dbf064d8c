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

HELD_OUT, SEEN, PARTLY_SEEN, UNKNOWN = "held out", "seen in training", "partly seen", "unknown"


def training_status(record: TrainingRecord | None, collection: EvalCollection) -> dict[str, object]:
    """The collection's status (module docstring) as metrics.json stores it: ``status`` (one of `HELD_OUT`, `SEEN`,
    `PARTLY_SEEN`, `UNKNOWN`), ``label`` (the report's words), ``identities`` (evaluated), ``seen`` (how many of
    them were trained on), ``left_out`` (seen identities not evaluated) and ``trained_as`` (the training
    collections that hold the seen ones)."""
    identities = sorted(set(collection.frames["identity"].astype(str)))
    left_out = list(collection.left_out)
    section: dict[str, object] = {"identities": len(identities), "seen": 0, "left_out": left_out, "trained_as": []}
    if record is None:
        return {"status": UNKNOWN, "label": f"{UNKNOWN} (the checkpoint does not say what it trained on)", **section}
    trained_as = {i: record.trained_as(i, collection.synth_seed) for i in identities + left_out}
    seen = sum(bool(trained_as[i]) for i in identities)
    section.update(seen=seen, trained_as=sorted({n or "(no root)" for names in trained_as.values() for n in names}))
    dropped = f"; its {_count(len(left_out))} seen in training left out" if left_out else ""
    if identities and seen == len(identities):
        return {"status": SEEN, "label": f"{SEEN} ({'all ' + _count(seen) if seen > 1 else 'its one identity'})",
                **section}
    if seen:
        return {"status": PARTLY_SEEN, "label": f"{PARTLY_SEEN} ({seen} of {_count(len(identities))})", **section}
    if not record.complete:
        return {"status": UNKNOWN, "label": f"{UNKNOWN} (the checkpoint started from weights that do not say what "
                                            f"they trained on{dropped})", **section}
    return {"status": HELD_OUT, "label": HELD_OUT + (f" ({dropped[2:]})" if left_out else ""), **section}


def _count(n: int) -> str:
    return f"{n} {'identity' if n == 1 else 'identities'}"
