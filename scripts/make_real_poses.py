#!/usr/bin/env python3
"""Real human poses for validating the pose field: BlazePose readings of real footage, with a pose type each.

    python scripts/make_real_poses.py --out reposedm_core/eval/data/real_poses.json

Sources (all install offline; see tests/harness/photos.py): every 2nd frame of the sports2d demo video (BSD-3;
a walker and a parkour jumper), scikit-image's astronaut and camera (public domain). Each reading is also
turned by 90 and 180 degrees (a person lying on the floor seen from above, or upside down in a flip, is the
same picture turned) and cropped at the hips (truncated). bus.jpg (AGPL) is not used: its poses would be
derived data of an AGPL file. Reserved data (pose2sim demo videos, pocketpose's COCO annotations) is never read.

The type of each pose is decided from the pose itself (torso direction and leg bend), so the file says how it
was labelled: ``standing`` (torso within 30 degrees of upright, legs straight), ``bending`` (torso 30-70
degrees from upright), ``lying`` (torso 70-135 degrees from upright), ``upside down`` (more), ``sitting/crouching``
(upright torso with a knee bent past 60 degrees), ``truncated`` (cropped, or fewer than 12 joints in frame).
Written as a POSE_KEYPOINT list (one frame per pose) plus ``"type"`` and ``"source"`` per frame.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from reposedm_core.estimator import load_blazepose  # noqa: E402
from reposedm_core.pose import JOINT_INDEX as J  # noqa: E402
from reposedm_core.pose import PoseFrame, to_pose_keypoint  # noqa: E402

log = logging.getLogger("make_real_poses")


def _angle(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> float:
    """Interior angle at b (degrees)."""
    u, v = a - b, c - b
    cos = float((u @ v) / (u.norm() * v.norm()).clamp_min(1e-6))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def pose_type(kp: torch.Tensor) -> str:
    present = kp[:, 2] > 0
    if int(present.sum()) < 12:
        return "truncated"
    if not (present[J["neck"]] and present[J["r_hip"]] and present[J["l_hip"]]):
        return "truncated"
    hip = (kp[J["r_hip"], :2] + kp[J["l_hip"], :2]) / 2
    up = kp[J["neck"], :2] - hip
    tilt = math.degrees(math.acos(max(-1.0, min(1.0, float(-up[1] / up.norm().clamp_min(1e-6))))))
    if tilt > 135:
        return "upside down"
    if tilt > 70:
        return "lying"
    if tilt > 30:
        return "bending"
    knees = []
    for s in ("r", "l"):
        h, k, a = J[f"{s}_hip"], J[f"{s}_knee"], J[f"{s}_ankle"]
        if present[h] and present[k] and present[a]:
            knees.append(180 - _angle(kp[h, :2], kp[k, :2], kp[a, :2]))
    return "sitting/crouching" if knees and max(knees) > 60 else "standing"


def turned(kp: torch.Tensor, w: int, h: int, quarter: int) -> tuple[torch.Tensor, int, int]:
    """The pose of the image turned clockwise by quarter * 90 degrees."""
    out = kp.clone()
    x, y = kp[:, 0], kp[:, 1]
    if quarter == 1:
        out[:, 0], out[:, 1], w, h = (h - 1) - y, x, h, w
    elif quarter == 2:
        out[:, 0], out[:, 1] = (w - 1) - x, (h - 1) - y
    return out * (kp[:, 2:] > 0), w, h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "reposedm_core" / "eval" / "data" / "real_poses.json"))
    ap.add_argument("--every", type=int, default=2, help="video frame step")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import av
    import numpy as np
    from skimage import data

    from harness.photos import PHOTOS, as_tensor

    images = [("skimage astronaut", data.astronaut()), ("skimage camera", np.repeat(data.camera()[..., None], 3, -1))]
    with av.open(str(PHOTOS / "demo.mp4")) as video:
        for i, frame in enumerate(video.decode(video=0)):
            if i % args.every == 0:
                images.append((f"sports2d demo.mp4 frame {i}", frame.to_ndarray(format="rgb24")))
    est = load_blazepose()
    frames = []
    for source, im in images:
        with torch.no_grad():
            people = est.people(as_tensor(im), max_people=2)
        h, w = im.shape[:2]
        for kp in people.keypoints:
            if int((kp[:, 2] > 0).sum()) < 4:
                continue
            variants = [(kp, w, h, "")]
            for q in (1, 2):
                t, tw, th = turned(kp, w, h, q)
                variants.append((t, tw, th, f", image turned {90 * q} degrees"))
            cut = kp.clone()
            hip_y = float(kp[[J["r_hip"], J["l_hip"]], 1].max())
            if kp[J["r_hip"], 2] > 0 and kp[J["l_hip"], 2] > 0:
                cut[cut[:, 1] > hip_y + 0.02 * h] = 0     # cropped just below the hips
                variants.append((cut, w, h, ", cropped below the hips"))
            for v, vw, vh, note in variants:
                entry = to_pose_keypoint([PoseFrame(v[None].float(), vw, vh)])[0]
                entry.update(type="truncated" if "cropped" in note else pose_type(v), source=source + note)
                frames.append(entry)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(frames, separators=(",", ":")) + "\n")
    counts: dict[str, int] = {}
    for f in frames:
        counts[f["type"]] = counts.get(f["type"], 0) + 1
    log.info("wrote %s: %d poses %s", out, len(frames), counts)


if __name__ == "__main__":
    main()
