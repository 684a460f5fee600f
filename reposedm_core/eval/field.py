"""Evaluate a pose field on held-out procedural poses (seeds never used in training).

    python -m reposedm_core.eval field [--weights FILE] [--proposer FILE|none] [--poses 6000] [--out outputs/field_eval.md]

Prints: the pass rate of real human poses (BlazePose readings of real footage, ``eval/data/real_poses.json``,
by pose type over the correct readings, the share of misreadings rejected, every rejected pose listed), AUROC
valid-vs-corrupted per corruption kind and strength, the same AUROC of an oracle that knows each pose's body,
mean distance per strength (monotone?), calibration of predicted vs true distance, repair success (under the
valid median with the distance to the nearest valid pose of a bank at least halved) and how far repair moved
the joints, hand-made breakages of real poses scored and repaired, what the repair proposer's gate trades
(corruptions repaired vs real readings moved), and the invariance of the distance to shifting and scaling the
same pose.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from ..field import load_pose_field
from ..field.corrupt import STRENGTHS, hip_swap
from ..field.data import KINDS
from ..field.data import normalised
from ..field.dataset import build
from ..field.distance import aligned_distance
from ..field.model import root_and_unit
from .metrics import auroc, markdown_table, write_report

log = logging.getLogger("reposedm.eval.field")
EVAL_SEED = 424_242  # training uses seeds 0 and 1_000_003 (+ its own offsets); this one is disjoint
REAL_POSES = Path(__file__).resolve().parent / "data" / "real_poses.json"
OFF_MANIFOLD = 0.2  # body units: a corruption at least this far from every valid body left the manifold


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default=None, help="field checkpoint (default: the shipped one)")
    p.add_argument("--proposer", default="shipped",
                   help="repair proposer checkpoint the repair starts with ('shipped', a safetensors file, or 'none' "
                        "for the field's steps alone)")
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
            row += [auroc(f_valid, f_bad[sel]), f"{float(off[sel].float().mean()):.2f}",
                    auroc(f_valid, f_bad[sel & off])]
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


def oracle_table(f_valid, f_bad, data) -> str:
    """AUROC on medium corruptions of the field vs an oracle that knows every pose's body: the target distance
    (fit from the body the pose came from, less the jitter allowance) measured on valid and corrupted poses
    alike. Where the oracle cannot separate the two, the jitter that valid poses carry covers the corruption."""
    medium = data.strength == STRENGTHS.index("medium")
    rows = []
    for k, kind in enumerate([*KINDS, "all kinds"]):
        sel = medium & (data.kind == k) if k < len(KINDS) else medium
        rows.append([kind, int(sel.sum()), auroc(f_valid, f_bad[sel]), auroc(data.valid_target, data.target[sel])])
    return markdown_table(["medium corruption", "poses", "field AUROC", "oracle AUROC (knows the body)"], rows)


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


def read_real_poses(path: str, keep=lambda frame: True) -> tuple[list[dict], torch.Tensor]:
    """The frames of a real-pose file (POSE_KEYPOINT JSON with a 'type' and maybe a 'reading' per frame) that
    ``keep`` accepts, and their first person's pose ``[n, 18, 3]`` (pixels)."""
    import json

    from ..pose import load_pose_keypoint

    frames = [f for f in json.loads(Path(path).read_text()) if keep(f)]
    if not frames:
        return frames, torch.zeros(0, 18, 3)
    return frames, torch.stack([load_pose_keypoint([f], require_person=True)[0].keypoints[0] for f in frames])


def real_pose_report(field, path: str) -> tuple[str, float]:
    """Pass rate (distance below the valid 95th percentile) of real poses by type, over the correct readings
    (``scripts/make_real_poses.py`` marks the ones BlazePose misread, looked at by eye), the share of
    misreadings rejected, and every rejected pose listed. Returns (Markdown, pass rate of correct readings)."""
    frames, kp = read_real_poses(path)
    d = field.distance(kp)
    ok = d < field.valid_threshold
    misread = torch.tensor([f.get("reading") == "misread" for f in frames])
    types = sorted({f["type"] for f in frames})
    rows = []
    for t in types:
        sel = torch.tensor([f["type"] == t for f in frames]) & ~misread
        rows.append([t, int(sel.sum()), float(ok[sel].float().mean()) if sel.any() else float("nan")])
    rows.append(["all correct readings", int((~misread).sum()), float(ok[~misread].float().mean())])
    rows.append(["all readings", len(frames), float(ok.float().mean())])
    rejected = [f"- {f['source']} ({f['type']}): {float(v):.3f}" + (f" -- misread: {f['note']}" if bad else "")
                for f, v, good, bad in zip(frames, d, ok, misread.tolist()) if not good]
    mis = (f"Misreadings (BlazePose did not read the person; marked by eye, with their turned and cropped "
           f"variants): {int(misread.sum())} poses, {float((~ok[misread]).float().mean()) if misread.any() else 0:.3f} "
           "rejected (a misreading can still be a plausible pose, e.g. a standing skeleton drawn on a sun flare).")
    text = (markdown_table(["pose type (correct readings)", "poses", "pass rate (< valid p95)"], rows)
            + f"\n\n{mis}\n\nvalid p95 = {field.valid_threshold:.3f}. Rejected ({len(rejected)}):\n\n"
            + ("\n".join(rejected) or "none"))
    return text, float(ok[~misread].float().mean())


def break_by_hand(kp: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The broken poses of the issue that asked for this report, made by hand from whole poses ``[n, 18, 3]``
    (pixels, every joint present): name -> broken poses ``[n, 18, 3]``."""
    from ..pose import JOINT_INDEX as J

    xy = kp[..., :2]
    neck = xy[:, J["neck"]]
    hips = (xy[:, J["r_hip"]] + xy[:, J["l_hip"]]) / 2
    torso = (hips - neck).norm(dim=-1, keepdim=True)
    legs = [J[k] for k in ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle")]
    head = [J[k] for k in ("nose", "r_eye", "l_eye", "r_ear", "l_ear")]
    out = {}
    b = xy.clone()                                            # the right forearm three times its length
    b[:, J["r_wrist"]] = xy[:, J["r_elbow"]] + 3 * (xy[:, J["r_wrist"]] - xy[:, J["r_elbow"]])
    out["forearm 3x too long"] = b
    b = xy.clone()                                            # the legs carried up until the hips are over the neck
    b[:, legs] += (neck - 0.5 * (hips - neck) - hips)[:, None]
    out["hips above the neck"] = b
    b = xy.clone()                                            # shoulders 4x as wide, the arms carried along
    for side in ("r", "l"):
        arm = [J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]]
        b[:, arm] += (3 * (xy[:, J[f"{side}_shoulder"]] - neck))[:, None]
    out["shoulders 4x too wide"] = b
    # the hips exchanged, the legs left where they were (the corruption kind's weak strength)
    out["legs crossed at the hips"] = hip_swap(xy, kp[..., 2] > 0, "weak", gen)
    b = xy.clone()                                            # the head pushed down into the chest
    b[:, head] += (0.4 * (hips - neck) + neck - xy[:, J["nose"]])[:, None]
    out["head in the chest"] = b
    out["heavy noise"] = xy + 0.3 * torso[:, None] * torch.randn(xy.shape, generator=gen)
    return {name: torch.cat([v, kp[..., 2:]], -1) for name, v in out.items()}


def whole_standing_real_poses(path: str) -> torch.Tensor:
    """Pixels ``[n, 18, 3]`` of the correctly read standing real poses (base readings, not their turned or
    cropped variants) with every joint seen: what :func:`break_by_hand` breaks."""
    _, kp = read_real_poses(path, lambda f: f["type"] == "standing" and f.get("reading") != "misread"
                            and "," not in f["source"])
    return kp[(kp[..., 2] > 0).all(-1)]


def handmade_report(field, path: str, seed: int) -> str:
    """Score and repair the hand-made breakages (:func:`break_by_hand`) of :func:`whole_standing_real_poses`
    ("repaired": flagged broken before, under the valid median after, and nearer to the unbroken reading)."""
    kp = whole_standing_real_poses(path)
    if len(kp) == 0:
        return "no whole standing real pose to break"
    rows = []
    q0, _ = normalised(kp)
    for name, bad in break_by_hand(kp, torch.Generator().manual_seed(seed)).items():
        fixed = field.repair(bad)
        rep = field.repair_report(bad, fixed)
        to_orig = {}
        for when, poses in (("before", bad), ("after", fixed)):
            q, present = normalised(poses)
            to_orig[when] = aligned_distance(q, q0, present)
        flagged = rep["field_before"] >= field.valid_threshold
        ok = flagged & (rep["field_after"] < field.valid_median) & (to_orig["after"] < to_orig["before"])
        rows.append([name, len(kp), float(flagged.float().mean()), float(rep["field_before"].mean()),
                     float(rep["field_after"].mean()), float((rep["field_after"] < field.valid_median).float().mean()),
                     float(to_orig["before"].mean()), float(to_orig["after"].mean()),
                     float(rep["nearest_before"].mean()), float(rep["nearest_after"].mean()), float(ok.float().mean())])
    return (markdown_table(["breakage", "poses", "flagged (>= valid p95)", "d before", "d after", "< valid median",
                            "to the reading before", "to the reading after", "bank nearest before",
                            "bank nearest after", "repaired"], rows)
            + f"\n\nThe {len(kp)} correctly read standing real poses with every joint seen, broken by hand; "
            "'to the reading' = aligned distance to the unbroken reading (body units); 'repaired' = flagged, under "
            "the valid median after repair, and nearer to the unbroken reading.")


def _repair_success(field, bad: torch.Tensor, src: torch.Tensor, fixed: torch.Tensor) -> dict[str, torch.Tensor]:
    """Field and nearest-valid distances before/after, and success (under the valid median after, nearest-valid
    distance at least halved). 'Nearest' = the uncorrupted source (aligned on the visible joints) or the bank's
    nearest, whichever is nearer -- the corruption's own target distance, measured again after repair."""
    report = field.repair_report(bad, fixed)
    for when, kp in (("before", bad), ("after", fixed)):
        q, present = normalised(kp)
        s_xy, _ = normalised(torch.cat([src[..., :2], kp[..., 2:]], -1))
        report[f"nearest_{when}"] = torch.minimum(report[f"nearest_{when}"], aligned_distance(q, s_xy, present))
    report["success"] = (report["field_after"] < field.valid_median) & \
        (report["nearest_after"] <= 0.5 * report["nearest_before"])
    return report


def _medium(data, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``n`` medium corruptions: (their indices, the corrupted poses, their sources)."""
    medium = torch.nonzero(data.strength == STRENGTHS.index("medium")).squeeze(1)[:n]
    return medium, data.bad_kp[medium], data.source_kp[medium]


def repair_report(field, data, n: int, seed: int = EVAL_SEED) -> str:
    from ..field.dataset import jitter

    medium, bad, src = _medium(data, n)
    fixed = field.repair(bad)
    report = _repair_success(field, bad, src, fixed)
    after, before, success = report["field_after"], report["field_before"], report["success"]
    thr = field.valid_median
    _, scale = root_and_unit(src, field.model.config.scale)
    move = (fixed[..., :2] - bad[..., :2]).norm(dim=-1) / scale[:, None]            # torso lengths
    present = bad[..., 2] > 0
    # every joint of a data-set pose carries annotation jitter (up to 0.14 body units on the face): "touched" means
    # moved by the corruption beyond that
    touched = ((bad[..., :2] - src[..., :2]).norm(dim=-1) / scale[:, None] > 0.15) & present
    untouched = present & ~touched
    err_before = ((bad[..., :2] - src[..., :2]).norm(dim=-1) / scale[:, None])[present].mean()
    err_after = ((fixed[..., :2] - src[..., :2]).norm(dim=-1) / scale[:, None])[present].mean()
    # what a perfect repair would return (the pose each came from), and that pose re-jittered and repaired: the
    # ceilings, per kind in the first table and overall in the second
    exact = torch.cat([src[..., :2], bad[..., 2:]], -1) * present.unsqueeze(-1)
    rejittered = field.repair(jitter(exact, torch.Generator().manual_seed(seed + 5)))
    ceiling = _repair_success(field, bad, src, rejittered)["success"]
    rows = []
    for k, kind in enumerate(KINDS):
        sel = data.kind[medium] == k
        rows.append([kind, int(sel.sum()), float(success[sel].float().mean()), float((after[sel] < thr).float().mean()),
                     float(before[sel].mean()), float(after[sel].mean()), float(report["nearest_before"][sel].mean()),
                     float(report["nearest_after"][sel].mean()), float(ceiling[sel].float().mean())])
    rows.append(["all", len(medium), float(success.float().mean()), float((after < thr).float().mean()),
                 float(before.mean()), float(after.mean()), float(report["nearest_before"].mean()),
                 float(report["nearest_after"].mean()), float(ceiling.float().mean())])
    variants = [("the default repair (proposal, then field steps)" if field.proposer is not None
                 else "the default repair (field steps; no proposer)", fixed)]
    if field.proposer is not None:
        variants.append(("field steps alone (propose=False)", field.repair(bad, propose=False)))
        variants.append(("the proposal alone (no field steps)", field.repair(bad, steps=1)))
    variants += [("ceiling: the uncorrupted pose, fresh annotation jitter, then repaired", rejittered),
                 ("ceiling: the uncorrupted pose, no jitter", exact)]
    summary = []
    for label, poses in variants:
        r = report if poses is fixed else _repair_success(field, bad, src, poses)
        summary.append([label, float(r["success"].float().mean()), float((r["field_after"] < thr).float().mean()),
                        float(r["nearest_after"].mean())])
    return (markdown_table(["medium corruption", "poses", "repaired (< median, nearest halved)", "< valid median",
                            "d before", "d after", "nearest before", "nearest after",
                            "ceiling (its source re-jittered, repaired)"], rows)
            + f"\n\nvalid median = {thr:.3f}; 'nearest' = distance to the nearest valid pose known: the uncorrupted "
            "source or the nearest of 20,000 valid poses (an independent check: a pose moved into a blind spot of "
            "the field stays far from every valid pose); 'ceiling' = the same criterion met by the pose each came "
            "from, given fresh annotation jitter and repaired (the second ceiling below, by kind). "
            "Mean joint movement by repair (field units): "
            f"{float(move[untouched].mean()):.3f} on joints the corruption did not move (beyond the jitter), "
            f"{float(move[touched].mean()):.3f} on corrupted joints. Mean joint error vs the uncorrupted pose: "
            f"{float(err_before):.3f} before, {float(err_after):.3f} after repair.\n\n"
            + markdown_table(["repair of the same poses", "repaired (< median, nearest halved)", "< valid median",
                              "nearest after"], summary)
            + "\n\nThe ceilings: every corrupted pose replaced by the pose it came from. Each data-set pose carries "
            "annotation jitter (the corrupted ones too), so even the uncorrupted pose with fresh jitter of the same "
            "law is not at half the distance when the corruption was small against the jitter, and half of valid "
            "poses score above the valid median by definition.")


def gate_report(field, data, path: str, n: int, seed: int = EVAL_SEED, gates=(0.0, 0.5)) -> str:
    """What the proposer's gate trades: medium corruptions repaired (as in :func:`repair_report`) against how
    often real readings take a proposal and how far repair then moves their joints, at each gate and at
    ``proposer.GATE`` (the default), with field steps alone as the reference row."""
    from ..field.proposer import GATE

    if field.proposer is None:
        return "no repair proposer: repair is by the field's steps alone (no gate)"
    _, bad, src = _medium(data, n)
    frames, real = read_real_poses(path)
    correct = torch.tensor([f.get("reading") != "misread" for f in frames])
    present = real[..., 2] > 0
    _, unit = root_and_unit(real, field.model.config.scale)
    offered = field.distance(real) >= field.valid_median        # what repair offers to the proposer
    kp0 = whole_standing_real_poses(path)
    crossed = break_by_hand(kp0, torch.Generator().manual_seed(seed))["legs crossed at the hips"] if len(kp0) else None
    q0 = normalised(kp0)[0] if crossed is not None else None
    rows = []
    for label, options in ([(f"gate {g:g}", {"gate": g}) for g in gates if g != GATE]
                           + [(f"gate {GATE:g} (the default)", {"gate": GATE}),
                              ("field steps alone (no proposal)", {"propose": False})]):
        success = _repair_success(field, bad, src, field.repair(bad, **options))["success"]
        fixed = field.repair(real, **options)
        if options.get("propose", True):       # taken = the proposal changed the pose it was offered
            proposal = field.proposer.propose(real[offered], gate=options["gate"])
            taken = torch.zeros(len(real), dtype=torch.bool)
            taken[offered] = (proposal[..., :2] != real[offered][..., :2]).any(-1).any(-1)
            share = float(taken.float().mean())
        else:
            share = 0.0
        move = (fixed[..., :2] - real[..., :2]).norm(dim=-1) / unit[:, None]
        moved = float(move[present & correct[:, None]].mean())
        to_reading = float("nan")
        if crossed is not None:
            q, vis = normalised(field.repair(crossed, **options))
            to_reading = float(aligned_distance(q, q0, vis).mean())
        rows.append([label, float(success.float().mean()), share, moved, to_reading])
    return (markdown_table(["repair", "medium corruptions repaired", "real readings taking the proposal",
                            "correct readings: mean joint move", "legs crossed at the hips: to the reading after"],
                           rows)
            + f"\n\nThe proposer's gate: a pose the field calls broken takes its proposal only when the proposer is "
            f"at least this sure that one of its joints is broken. Real readings: the {len(real)} of the real-pose "
            f"set ({int(correct.sum())} correct); joint moves in body units; 'legs crossed at the hips' as in the "
            "hand-made table (its 'to the reading after').")


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
    field = load_pose_field(args.weights, proposer=None if args.proposer == "none" else args.proposer)
    real, _ = real_pose_report(field, args.real_poses)
    data = build(args.seed, args.poses, args.bank, valid_targets=True)
    f_valid, f_bad = field.distance(data.valid_kp), field.distance(data.bad_kp)
    det, mono, gap = detection_tables(f_valid, f_bad, data)
    report = "\n\n".join([
        f"# Pose field evaluation\n\nweights: {args.weights or 'shipped'}; repair proposer: {args.proposer}; held-out seed {args.seed}; "
        f"{len(f_valid)} valid and {len(f_bad)} corrupted poses.",
        "## Real human poses\n\n" + real,
        f"## Valid vs corrupted (AUROC)\n\n'all' uses every corrupted pose; 'off' only those whose true distance "
        f"(fitted, an upper bound) is >= {OFF_MANIFOLD} torso lengths, the share given by 'share off'. A corrupted "
        "pose closer than that can be drawn by a valid body in some view (e.g. a hyper-extended elbow seen from "
        "the other side), so no 2D field can separate it from valid poses.\n\n" + det,
        "## The field vs an oracle that knows each pose's body (medium corruptions)\n\n"
        + oracle_table(f_valid, f_bad, data),
        "## Mean predicted distance by strength\n\n" + mono,
        "## Calibration (corrupted poses)\n\n" + calibration_table(f_bad, data.target),
        "## Repair\n\n" + repair_report(field, data, args.repair_poses, args.seed),
        "## Hand-made broken poses\n\n" + handmade_report(field, args.real_poses, args.seed),
        "## Repair gate\n\n" + gate_report(field, data, args.real_poses, args.repair_poses, args.seed),
        "## Invariance\n\n" + invariance_report(field, data, gap, args.seed),
    ])
    write_report(args.out, report, log)
