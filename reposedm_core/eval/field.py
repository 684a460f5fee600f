"""Evaluate a pose field on held-out procedural poses (seeds never used in training).

    python -m reposedm_core.eval field [--weights FILE] [--poses 6000] [--out outputs/field_eval.md]

Prints: the pass rate of real human poses (BlazePose readings of real footage, ``eval/data/real_poses.json``,
by pose type, with every rejected pose listed), AUROC valid-vs-corrupted per corruption kind and strength, mean
distance per strength (monotone?), calibration of predicted vs true distance, repair success (under the valid
median with the distance to the nearest valid pose of a bank at least halved) and how far repair moved the
joints, and the invariance of the distance to shifting and scaling the same pose.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from ..field import load_pose_field
from ..field.corrupt import STRENGTHS
from ..field.data import KINDS
from ..field.data import normalised
from ..field.dataset import build
from ..field.distance import aligned_distance
from ..field.model import root_and_unit
from .metrics import auroc, markdown_table, write_report

log = logging.getLogger("reposedm.eval.field")
EVAL_SEED = 424_242
REAL_POSES = Path(__file__).resolve().parent / "data" / "real_poses.json"
OFF_MANIFOLD = 0.2  # torso lengths: a corruption at least this far from every valid body left the manifold  # training uses seeds 0 and 1_000_003 (+ its own offsets); this one is disjoint


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default=None, help="field checkpoint (default: the shipped one)")
    p.add_argument("--poses", type=int, default=6000, help="held-out valid (and as many corrupted) poses")
    p.add_argument("--bank", type=int, default=50_000)
    p.add_argument("--repair-poses", type=int, default=600, help="medium corruptions to repair")
    p.add_argument("--seed", type=int, default=EVAL_SEED)
    p.add_argument("--real-poses", default=str(REAL_POSES),
                   help="POSE_KEYPOINT JSON of real poses with a 'type' per frame (scripts/make_real_poses.py)")
    p.add_argument("--out", default="outputs/field_eval.md", help="Markdown report to write")


def detection_tables(f_valid, f_bad, data) -> tuple[str, str, float]:
    """AUROC per kind and strength over all corruptions, and over those that leave the manifold (true distance
    >= OFF_MANIFOLD; the rest can be drawn by a valid body and no 2D field can tell them from valid poses)."""
    rows, mono_rows = [], []
    off = data.target >= OFF_MANIFOLD
    for k, kind in enumerate(KINDS):
        row, means, truth = [kind], [], []
        for s in range(len(STRENGTHS)):
            sel = (data.kind == k) & (data.strength == s)
            row += [auroc(f_valid, f_bad[sel]), f"{float(off[sel].float().mean()):.2f}", auroc(f_valid, f_bad[sel & off])]
            means.append(float(f_bad[sel].mean()))
            truth.append(float(data.target[sel].mean()))
        rows.append(row)
        mono_rows.append([kind, *means, *truth, "yes" if means[0] < means[1] < means[2] else "NO"])
    medium = data.strength == STRENGTHS.index("medium")
    rows.append(["all kinds", *[v for s in range(len(STRENGTHS)) for v in (
        auroc(f_valid, f_bad[data.strength == s]), f"{float(off[data.strength == s].float().mean()):.2f}",
        auroc(f_valid, f_bad[(data.strength == s) & off]))]])
    mono_rows.append(["valid poses", float(f_valid.mean()), "", "", "", "", "", ""])
    gap = float(f_bad[medium].mean() - f_valid.mean())
    header = ["corruption"] + [f"{h} {s}" for s in STRENGTHS for h in ("AUROC all", "share off", "AUROC off")]
    return (markdown_table(header, rows),
            markdown_table(["corruption", *[f"predicted {s}" for s in STRENGTHS], *[f"true {s}" for s in STRENGTHS],
                            "monotone"], mono_rows), gap)


def calibration_table(f_bad, target) -> str:
    edges = [0.0, 0.25, 0.5, 1.0, 2.0, float("inf")]
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (target >= lo) & (target < hi)
        if sel.any():
            rows.append([f"[{lo:g}, {hi:g})", int(sel.sum()), float(target[sel].mean()), float(f_bad[sel].mean())])
    corr = float(torch.corrcoef(torch.stack([f_bad, target]))[0, 1])
    mae = float((f_bad - target).abs().mean())
    return (markdown_table(["true distance", "poses", "mean true", "mean predicted"], rows)
            + f"\n\nPearson r = {corr:.3f}, mean |predicted - true| = {mae:.3f} torso lengths")


def real_pose_report(field, path: str) -> tuple[str, float]:
    """Pass rate (distance below the valid 95th percentile) of real poses by type; every rejected pose listed."""
    import json

    from ..pose import load_pose_keypoint

    frames = json.loads(Path(path).read_text())
    kp = torch.stack([load_pose_keypoint([f], require_person=True)[0].keypoints[0] for f in frames])
    d = field.distance(kp)
    ok = d < field.valid_threshold
    types = sorted({f["type"] for f in frames})
    rows = [[t, sum(f["type"] == t for f in frames), float(ok[[f["type"] == t for f in frames]].float().mean())]
            for t in types]
    rows.append(["all", len(frames), float(ok.float().mean())])
    rejected = [f"- {f['source']} ({f['type']}): {float(v):.3f}" for f, v, good in zip(frames, d, ok) if not good]
    text = (markdown_table(["pose type", "poses", "pass rate (< valid p95)"], rows)
            + f"\n\nvalid p95 = {field.valid_threshold:.3f}. Rejected ({len(rejected)}):\n\n"
            + ("\n".join(rejected) or "none"))
    return text, float(ok.float().mean())


def repair_report(field, data, n: int) -> str:
    medium = torch.nonzero(data.strength == STRENGTHS.index("medium")).squeeze(1)[:n]
    bad, src = data.bad_kp[medium], data.source_kp[medium]
    fixed = field.repair(bad)
    report = field.repair_report(bad, fixed)
    # the nearest valid pose: the uncorrupted source (aligned on the visible joints) or the bank, whichever is
    # nearer -- the corruption's own target distance, measured again after repair
    for when, kp in (("before", bad), ("after", fixed)):
        q, present = normalised(kp)
        s_xy, _ = normalised(torch.cat([src[..., :2], kp[..., 2:]], -1))
        report[f"nearest_{when}"] = torch.minimum(report[f"nearest_{when}"], aligned_distance(q, s_xy, present))
    after, before = report["field_after"], report["field_before"]
    thr = field.valid_median
    success = (after < thr) & (report["nearest_after"] <= 0.5 * report["nearest_before"])
    _, scale = root_and_unit(src, field.model.config.scale)
    move = (fixed[..., :2] - bad[..., :2]).norm(dim=-1) / scale[:, None]            # torso lengths
    present = bad[..., 2] > 0
    # every joint of a data-set pose carries annotation jitter (up to 0.14 body units on the face): "touched" means
    # moved by the corruption beyond that
    touched = ((bad[..., :2] - src[..., :2]).norm(dim=-1) / scale[:, None] > 0.15) & present
    untouched = present & ~touched
    err_before = ((bad[..., :2] - src[..., :2]).norm(dim=-1) / scale[:, None])[present].mean()
    err_after = ((fixed[..., :2] - src[..., :2]).norm(dim=-1) / scale[:, None])[present].mean()
    rows = []
    for k, kind in enumerate(KINDS):
        sel = data.kind[medium] == k
        rows.append([kind, int(sel.sum()), float(success[sel].float().mean()), float((after[sel] < thr).float().mean()),
                     float(before[sel].mean()), float(after[sel].mean()), float(report["nearest_before"][sel].mean()),
                     float(report["nearest_after"][sel].mean())])
    rows.append(["all", len(medium), float(success.float().mean()), float((after < thr).float().mean()),
                 float(before.mean()), float(after.mean()), float(report["nearest_before"].mean()),
                 float(report["nearest_after"].mean())])
    return (markdown_table(["medium corruption", "poses", "repaired (< median, nearest halved)", "< valid median",
                            "d before", "d after", "nearest before", "nearest after"], rows)
            + f"\n\nvalid median = {thr:.3f}; 'nearest' = distance to the nearest valid pose known: the uncorrupted "
            "source or the nearest of 20,000 valid poses (an independent check: a pose moved into a blind spot of "
            "the field stays far from every valid pose). "
            "Mean joint movement by repair (field units): "
            f"{float(move[untouched].mean()):.3f} on joints the corruption did not move (beyond the jitter), "
            f"{float(move[touched].mean()):.3f} on corrupted joints. Mean joint error vs the uncorrupted pose: "
            f"{float(err_before):.3f} before, {float(err_after):.3f} after repair.")


def invariance_report(field, data, gap: float, seed: int) -> str:
    gen = torch.Generator().manual_seed(seed + 1)
    kp = torch.cat([data.valid_kp[:1000], data.bad_kp[:1000]])
    base = field.distance(kp)
    shift = (torch.rand(len(kp), 1, 2, generator=gen) - 0.5) * 200
    scale = torch.exp((torch.rand(len(kp), 1, 1, generator=gen) - 0.5) * 2 * 0.7)  # 0.5x .. 2x
    moved = kp.clone()
    moved[..., :2] = (kp[..., :2] - 100) * scale + 100 + shift
    moved = moved * (kp[..., 2:] > 0)
    delta = (field.distance(moved) - base).abs()
    return (f"Shift by up to +-100 px and scale 0.5x..2x: mean |change| = {float(delta.mean()):.2e}, "
            f"max = {float(delta.max()):.2e} torso lengths = {100 * float(delta.max()) / gap:.3f} % of the "
            f"valid-corrupted gap ({gap:.3f}).")


def run(args: argparse.Namespace) -> None:
    field = load_pose_field(args.weights)
    real, _ = real_pose_report(field, args.real_poses)
    data = build(args.seed, args.poses, args.bank)
    f_valid, f_bad = field.distance(data.valid_kp), field.distance(data.bad_kp)
    det, mono, gap = detection_tables(f_valid, f_bad, data)
    report = "\n\n".join([
        f"# Pose field evaluation\n\nweights: {args.weights or 'shipped'}; held-out seed {args.seed}; "
        f"{len(f_valid)} valid and {len(f_bad)} corrupted poses.",
        "## Real human poses\n\n" + real,
        f"## Valid vs corrupted (AUROC)\n\n'all' uses every corrupted pose; 'off' only those whose true distance "
        f"(fitted, an upper bound) is >= {OFF_MANIFOLD} torso lengths, the share given by 'share off'. A corrupted "
        "pose closer than that can be drawn by a valid body in some view (e.g. a hyper-extended elbow seen from "
        "the other side), so no 2D field can separate it from valid poses.\n\n" + det,
        "## Mean predicted distance by strength\n\n" + mono,
        "## Calibration (corrupted poses)\n\n" + calibration_table(f_bad, data.target),
        "## Repair\n\n" + repair_report(field, data, args.repair_poses),
        "## Invariance\n\n" + invariance_report(field, data, gap, args.seed),
    ])
    write_report(args.out, report, log)
