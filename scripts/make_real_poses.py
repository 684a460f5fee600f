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

Misreadings: every base reading was looked at over its frame (``--sheet``), and the ones where BlazePose did
not read the person -- a skeleton drawn on a sun flare or the background, two people merged into one, the head
put on the hips -- carry ``"reading": "misread"`` and a ``"note"`` (as do their turned and cropped variants),
from :data:`MISREADS`. A pose field *should* reject those if they are implausible; its pass rate is reported
on the correct readings. ``--relabel`` applies :data:`MISREADS` to an existing file without reading footage.
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

# (source, k-th reading of that source) -> what is wrong with it; decided by eye from the --sheet pictures
# (criteria: the skeleton is not on one person's body). Unclear cases are left as correct readings.
MISREADS: dict[tuple[str, int], str] = {
    ("sports2d demo.mp4 frame 88", 0): "skeleton on the sun flare and the tree, feet on the walker",
    ("sports2d demo.mp4 frame 94", 0): "skeleton on the sun flare and the tree, feet on the walker",
    ("sports2d demo.mp4 frame 102", 1): "jumper at the frame's edge: an arm into the sky, legs across the background",
    ("sports2d demo.mp4 frame 122", 1): "jumper on the wall: legs drawn across the background",
    ("sports2d demo.mp4 frame 126", 0): "jumper's feet and the walker below merged into one body",
    ("sports2d demo.mp4 frame 148", 1): "second reading of the walker: neck and head above her, limbs crossed",
    ("sports2d demo.mp4 frame 160", 1): "jumper in the sun flare: limbs drawn across the flare",
    ("sports2d demo.mp4 frame 188", 1): "skeleton from the sun flare down to the walker",
    ("sports2d demo.mp4 frame 192", 1): "jumper crouching: the face put on his hips, shoulders beside him",
}


def label_misreads(frames: list[dict]) -> int:
    """Mark the :data:`MISREADS` entries and their variants in place; returns how many poses were marked."""
    seen: dict[str, int] = {}
    current = None
    marked = 0
    for f in frames:
        base = f["source"].split(",")[0]
        if "," not in f["source"]:
            current = (base, seen.get(base, 0))
            seen[base] = current[1] + 1
        f.pop("reading", None)
        f.pop("note", None)
        if current is not None and current[0] == base and current in MISREADS:
            f.update(reading="misread", note=MISREADS[current])
            marked += 1
    missing = [k for k in MISREADS if k[1] >= seen.get(k[0], 0)]
    if missing:
        raise ValueError(f"MISREADS names readings this file does not have: {missing}")
    return marked


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


def load_images(every: int) -> list[tuple[str, object]]:
    """(source, RGB uint8 ``[H, W, 3]`` numpy image) of the footage the readings come from."""
    import av
    import numpy as np
    from skimage import data

    from harness.photos import PHOTOS

    images = [("skimage astronaut", data.astronaut()), ("skimage camera", np.repeat(data.camera()[..., None], 3, -1))]
    with av.open(str(PHOTOS / "demo.mp4")) as video:
        for i, frame in enumerate(video.decode(video=0)):
            if i % every == 0:
                images.append((f"sports2d demo.mp4 frame {i}", frame.to_ndarray(format="rgb24")))
    return images


def read_poses(images) -> list[dict]:
    from harness.photos import as_tensor

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
    return frames


def write_sheet(frames: list[dict], images, path: Path, tile: int = 330, columns: int = 6) -> None:
    """Every base reading drawn over its picture (right side red, left blue), numbered, misreads marked."""
    from PIL import Image, ImageDraw

    from reposedm_core.pose.skeleton import LIMBS

    pictures = dict(images)
    right = {J[k] for k in ("r_shoulder", "r_elbow", "r_wrist", "r_hip", "r_knee", "r_ankle")}
    tiles = []
    for f in frames:
        if "," in f["source"]:
            continue
        kp = torch.tensor(f["people"][0]["pose_keypoints_2d"]).view(18, 3)
        im = Image.fromarray(pictures[f["source"]])
        draw = ImageDraw.Draw(im)
        for a, b in LIMBS[:17]:
            if kp[a, 2] > 0 and kp[b, 2] > 0:
                draw.line([tuple(kp[a, :2].tolist()), tuple(kp[b, :2].tolist())], width=5,
                          fill=(255, 60, 60) if b in right else (60, 60, 255))
        seen = kp[kp[:, 2] > 0]
        box = (max(0, int(seen[:, 0].min()) - 60), max(0, int(seen[:, 1].min()) - 60),
               min(im.width, int(seen[:, 0].max()) + 60), min(im.height, int(seen[:, 1].max()) + 60))
        crop = im.crop(box)
        crop.thumbnail((tile, tile - 20))
        t = Image.new("RGB", (tile, tile))
        t.paste(crop, (0, 0))
        label = f"#{len(tiles)} {f['source'].replace('sports2d demo.mp4 ', '')}"
        ImageDraw.Draw(t).text((5, tile - 16), label + (" MISREAD" if f.get("reading") == "misread" else ""),
                               fill=(255, 255, 0))
        tiles.append(t)
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (tile * columns, tile * rows))
    for k, t in enumerate(tiles):
        sheet.paste(t, (tile * (k % columns), tile * (k // columns)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    log.info("wrote %s: %d readings", path, len(tiles))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "reposedm_core" / "eval" / "data" / "real_poses.json"))
    ap.add_argument("--every", type=int, default=2, help="video frame step")
    ap.add_argument("--relabel", action="store_true", help="only apply MISREADS to the existing --out file")
    ap.add_argument("--sheet", default=None, help="also draw every base reading over its picture into this PNG")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    images = load_images(args.every) if (args.sheet or not args.relabel) else []
    frames = json.loads(out.read_text()) if args.relabel else read_poses(images)
    marked = label_misreads(frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(frames, separators=(",", ":")) + "\n")
    counts: dict[str, int] = {}
    for f in frames:
        counts[f["type"]] = counts.get(f["type"], 0) + 1
    log.info("wrote %s: %d poses %s, %d marked as misread", out, len(frames), counts, marked)
    if args.sheet:
        write_sheet(frames, images, Path(args.sheet))


if __name__ == "__main__":
    main()
