"""Keypoint accuracy: PCK normalised by torso length, pixel errors, per joint group."""
from __future__ import annotations

import torch

from ..pose.skeleton import BODY_PARTS, JOINT_INDEX

_NECK, _RHIP, _LHIP = JOINT_INDEX["neck"], JOINT_INDEX["r_hip"], JOINT_INDEX["l_hip"]
GROUPS: dict[str, tuple[int, ...]] = {
    "head": BODY_PARTS["head"], "torso": BODY_PARTS["torso"],
    "arms": BODY_PARTS["right_arm"][1:] + BODY_PARTS["left_arm"][1:],   # elbows, wrists
    "legs": BODY_PARTS["right_leg"][1:] + BODY_PARTS["left_leg"][1:],   # knees, ankles
    "all": tuple(range(18)),
}


def torso_length(joints2d: torch.Tensor) -> torch.Tensor:
    """``[B, 18, 2]`` true projected joints (every joint, even hidden) -> neck-to-mid-hip length ``[B]`` pixels."""
    mid_hip = (joints2d[:, _RHIP] + joints2d[:, _LHIP]) / 2
    return (joints2d[:, _NECK] - mid_hip).norm(dim=-1).clamp_min(1.0)


def keypoint_scores(pred: torch.Tensor, joints2d: torch.Tensor, visibility: torch.Tensor,
                    thresholds: tuple[float, ...] = (0.05, 0.1, 0.2)) -> dict[str, dict[str, float]]:
    """Per joint group: PCK at each threshold (a missed joint counts as wrong), mean error in pixels over
    detected joints, detection rate, over joints with ``visibility > 0``; and the false-positive rate on
    out-of-frame joints (``visibility == 0``) for the group.

    Args:
        pred: ``[B, 18, 3]`` predicted pixels + confidence.  joints2d: ``[B, 18, 2]`` truth (pixels).
        visibility: ``[B, 18]`` 2 visible, 1 self-occluded, 0 out of frame.
    """
    torso = torso_length(joints2d)
    err = (pred[..., :2] - joints2d).norm(dim=-1)                     # [B, 18]
    detected = pred[..., 2] > 0
    labelled = visibility > 0
    out: dict[str, dict[str, float]] = {}
    for name, idx in GROUPS.items():
        sel = torch.zeros(18, dtype=torch.bool)
        sel[list(idx)] = True
        lab = labelled & sel
        n = int(lab.sum())
        row: dict[str, float] = {"joints": float(n)}
        for t in thresholds:
            ok = detected & (err <= t * torso[:, None]) & lab
            row[f"pck@{t:g}"] = float(ok.sum()) / max(n, 1)
        det = detected & lab
        row["mean_px"] = float(err[det].mean()) if det.any() else float("nan")
        row["detected"] = float(det.sum()) / max(n, 1)
        absent = (~labelled) & sel
        row["false_pos"] = float((detected & absent).sum()) / max(int(absent.sum()), 1)
        out[name] = row
    return out
