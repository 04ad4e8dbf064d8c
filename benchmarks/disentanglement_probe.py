"""Quick disentanglement and reenactment figures of a checkpoint on SynthVox identities it never saw.

Each figure stands beside a baseline (copying a source frame, a random other identity, the ground-truth oracle,
the unchanged source frame). This is the quick look, kept for the figures checkpoints/README.md quotes;
`daegan evaluate` (model/evaluation/) measures the same things with the full protocol and defines each metric
(top-k rather than top-1, the query's own video out of the leakage pool, probes, landmarks on real frames):

    .venv/bin/python benchmarks/disentanglement_probe.py checkpoints/daegan-small.safetensors --renderer decoder

Units: L1 in [-1, 1] pixel units; pose errors in degrees (yaw, pitch, roll) or [0, 1] (expression parameters).
"""

import argparse

import numpy as np
import torch

from model.daegan import DAEGAN
from model.data.synthvox import (
    POSE_COLUMNS,
    Identity,
    Pose,
    render,
    talking_trajectory,
    video_rng,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("checkpoint")
parser.add_argument("--renderer", choices=["generator", "decoder"], default=None, help="default: the checkpoint's")
parser.add_argument("--seed", type=int, default=7, help="SynthVox seed of the unseen identities")
args = parser.parse_args()
RENDERER = args.renderer
torch.manual_seed(0)
m = DAEGAN.from_checkpoint(args.checkpoint)
S, SEED, NID, NV, NF, K = m.size, args.seed, 20, 2, 32, 4
ids = [Identity.from_seed(SEED, i) for i in range(NID)]
frames, poses, who, vid = [], [], [], []
for i, ident in enumerate(ids):
    for v in range(NV):
        for p in talking_trajectory(video_rng(SEED, i, v), NF):
            frames.append(render(ident, p, S))
            poses.append([getattr(p, c) for c in POSE_COLUMNS])
            who.append(i)
            vid.append(v)
frames = np.stack(frames)
poses = np.array(poses)
who = np.array(who)
vid = np.array(vid)
x = m.to_frames(frames)  # (N,3,S,S) in [-1,1]
print(f"checkpoint {args.checkpoint}, renderer {RENDERER or m.default_renderer}, {NID} unseen identities (seed {SEED})")
# 1. reconstruction of held-out frames from K other frames of the same video
rec_err, copy_err = [], []
for i in range(NID):
    for v in range(NV):
        idx = np.flatnonzero((who == i) & (vid == v))
        src, tgt = idx[:K], idx[K:]
        r = m.reconstruct(x[src], x[tgt]).reconstruction
        rec_err.append((r - x[tgt]).abs().mean().item())
        copy_err.append((x[src[:1]] - x[tgt]).abs().mean().item())
print(
    f"held-out reconstruction L1 ([-1,1] units): {np.mean(rec_err):.4f}"
    f"  (baseline: copy a source frame {np.mean(copy_err):.4f})"
)
# 2. embedded faces: two videos of one identity vs two identities
faces = torch.stack(
    [m.embed_face(x[np.flatnonzero((who == i) & (vid == v))[:8]]).face for i in range(NID) for v in range(NV)]
).view(NID, NV, -1)
same = (faces[:, 0] - faces[:, 1]).abs().mean(1).mean().item()
diff = np.mean([(faces[i, 0] - faces[j, 0]).abs().mean().item() for i in range(NID) for j in range(NID) if i != j])
print(f"embedded-face L1: same identity {same:.4f} vs different identities {diff:.4f}")
# 3. pose codes: the same pose across identities vs different poses of one identity
grid = [
    Pose(yaw=y, pitch=p, mouth_open=mo)
    for y, p, mo in [(0, 0, 0), (35, 0, 0), (-35, 0, 0), (0, 18, 0), (0, -18, 0), (0, 0, 0.9), (25, -12, 0.5)]
]
codes = torch.stack([m.encode_pose(np.stack([render(ident, q, S) for q in grid])) for ident in ids])  # (NID, P, D)
sim = torch.einsum("ipd,jqd->ijpq", codes, codes)
eye_p = torch.eye(len(grid), dtype=bool)
eye_i = torch.eye(NID, dtype=bool)
same_pose = sim[~eye_i][:, eye_p].mean().item()
same_id = sim[eye_i][:, ~eye_p].mean().item()
print(f"pose-code cosine: same pose, other identity {same_pose:.3f} vs same identity, other pose {same_id:.3f}")
# 4. retrieval across identities: top-1 pose-code neighbour among other identities
z = m.encode_pose(x)
s = z @ z.T
rng = np.random.default_rng(0)
err, rnd, orc, leak = [], [], [], []
scale = np.array([45, 25, 20, 1, 1, 1, 1.0])
for q in range(len(z)):
    other = who != who[q]
    best = np.flatnonzero(other)[s[q, other].argmax().item()]
    err.append(np.abs(poses[best] - poses[q]))
    rnd.append(np.abs(poses[rng.choice(np.flatnonzero(other))] - poses[q]))
    gt = np.abs(poses[other] - poses[q]) / scale
    orc.append(np.abs(poses[np.flatnonzero(other)[gt.sum(1).argmin()]] - poses[q]))
    top5 = np.argsort(-s[q].numpy())[1:6]
    leak.append((who[top5] == who[q]).mean())
for name, e in [("top-1 by pose code", err), ("random other identity", rnd), ("oracle (nearest ground truth)", orc)]:
    e = np.mean(e, 0)
    print(f"{name:32s} mean abs error: " + ", ".join(f"{c} {v:.2f}" for c, v in zip(POSE_COLUMNS, e)))
chance = (NV * NF - 1) / (len(z) - 1)
print(f"identity leakage: {np.mean(leak):.3f} of the unfiltered top-5 share the query's identity (chance {chance:.3f})")
# 5. cross-identity reenactment against exact ground truth
l1, src_l1, drv_l1 = [], [], []
for i in range(0, NID, 2):
    j = (i + 1) % NID
    src = x[np.flatnonzero((who == i) & (vid == 0))[:K]]
    drv_idx = np.flatnonzero((who == j) & (vid == 1))[::4]
    target = m.to_frames(np.stack([render(ids[i], Pose(**dict(zip(POSE_COLUMNS, poses[d]))), S) for d in drv_idx]))
    out = m.reenact(src, x[drv_idx], renderer=RENDERER).image
    l1.append((out - target).abs().mean().item())
    src_l1.append((src[:1] - target).abs().mean().item())
    drv_l1.append((x[drv_idx] - target).abs().mean().item())
print(
    f"cross-identity reenactment L1 vs ground truth: {np.mean(l1):.4f} (unchanged source frame "
    f"{np.mean(src_l1):.4f}, driving frame {np.mean(drv_l1):.4f})"
)
