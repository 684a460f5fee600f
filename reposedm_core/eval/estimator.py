"""Evaluate a keypoint estimator on synthetic test-split people (identities and poses never used in training).

    python -m reposedm_core.eval estimator [--weights FILE] [--people 500] [--out outputs/estimator_eval.md]
    python -m reposedm_core.eval estimator --openpose body_pose_model.pth      # the OpenPose body backend
    python -m reposedm_core.eval estimator --blazepose                         # the BlazePose port

At 256 x 176 and at the demo model's sizes (128 x 88, 96 x 64): PCK@0.05 / 0.1 / 0.2 (a joint is correct when
detected within that fraction of the true torso length, neck to mid-hip; a missed joint counts as wrong), mean
error in pixels of the evaluated frame over detected joints, detection rate, per joint group, on visible and
self-occluded joints; and the false-positive rate on out-of-frame joints. Also the same people softened by a
Gaussian blur (sigma 1 px at 128 x 88), closer to what a diffusion model's clean-image estimate looks like.
"""
from __future__ import annotations

import argparse
import logging
import time

import torch

from ..data.synthetic import SyntheticWorld, render_people
from ..estimator import load_estimator, load_openpose_estimator
from ..estimator.metrics import GROUPS, keypoint_scores
from ..utils.images import gaussian_blur
from .metrics import markdown_table, write_report

log = logging.getLogger("reposedm.eval.estimator")
SIZES = ((256, 176), (128, 88), (96, 64))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default=None, help="small-estimator checkpoint (default: the shipped one)")
    p.add_argument("--openpose", default=None, help="evaluate the OpenPose body backend with this .pth instead")
    p.add_argument("--blazepose", action="store_true", help="evaluate the BlazePose port (the photo reader) instead")
    p.add_argument("--people", type=int, default=500, help="test-split people per image size")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--out", default="outputs/estimator_eval.md", help="Markdown report to write")


def test_people(n: int, height: int, width: int) -> dict[str, torch.Tensor]:
    """``n`` test-split people (the source pose of items 0..n-1) rendered at ``height x width``."""
    world = SyntheticWorld("test")
    return render_people([world.identity_seed(i) for i in range(n)], [world.pose_seeds(i)[0] for i in range(n)],
                         height, width)


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch: int) -> tuple[torch.Tensor, float]:
    """(keypoints ``[N, 18, 3]``, ms per image)."""
    t0 = time.perf_counter()
    out = torch.cat([model(images[i:i + batch]) for i in range(0, len(images), batch)])
    return out, 1000 * (time.perf_counter() - t0) / len(images)


def size_table(rows: list[list]) -> str:
    header = ["frame", "group", "joints", "PCK@0.05", "PCK@0.1", "PCK@0.2", "mean err px", "detected",
              "false pos (out of frame)"]
    return markdown_table(header, rows)


def run(args: argparse.Namespace) -> None:
    if args.blazepose:
        from ..estimator import load_blazepose

        model, name = load_blazepose(), "BlazePose port (MediaPipe 0.10.21 weights)"
    elif args.openpose:
        model, name = load_openpose_estimator(args.openpose), f"OpenPose body ({args.openpose})"
    else:
        model, name = load_estimator(args.weights), f"small network ({args.weights or 'shipped'})"
    rows, summary = [], []
    for h, w in SIZES:
        data = test_people(args.people, h, w)
        variants = [("", data["image"])]
        if (h, w) == (128, 88):
            variants.append((" blurred", gaussian_blur(data["image"], torch.full((len(data["image"]),), 1.0))))
        for suffix, images in variants:
            pred, ms = predict(model, images, args.batch)
            scores = keypoint_scores(pred, data["joints2d"], data["visibility"])
            for group in GROUPS:
                s = scores[group]
                rows.append([f"{h}x{w}{suffix}", group, int(s["joints"]), s["pck@0.05"], s["pck@0.1"], s["pck@0.2"],
                             s["mean_px"], s["detected"], s["false_pos"]])
            a = scores["all"]
            summary.append([f"{h}x{w}{suffix}", a["pck@0.1"], a["mean_px"], f"{ms:.1f}"])
            log.info("%dx%d%s: PCK@0.1 %.3f, %.1f ms/image", h, w, suffix, a["pck@0.1"], ms)
    report = "\n\n".join([
        f"# Keypoint estimator evaluation\n\nestimator: {name}; {args.people} synthetic test-split people per "
        "size (unseen identities and poses); joints with visibility > 0 (visible or self-occluded). PCK is "
        "normalised by the true torso length (neck to mid-hip); mean error is over detected joints, in pixels "
        "of the evaluated frame; 'false pos' is the share of out-of-frame joints reported present.",
        "## Summary\n\n" + markdown_table(["frame", "PCK@0.1 all", "mean err px", "ms / image (batch "
                                           f"{args.batch}, {torch.get_num_threads()} thread(s))"], summary),
        "## Per joint group\n\nhead: nose, eyes, ears; torso: neck, shoulders, hips; arms: elbows, wrists; "
        "legs: knees, ankles.\n\n" + size_table(rows),
    ])
    write_report(args.out, report, log)
