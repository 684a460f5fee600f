"""Pose sequences: frame-to-frame change of the rendered sequence with and without the alignment warm start.

    python benchmarks/bench_sequence.py [--model FILE] [--frames 12] [--sequences 4]

A synthetic "dance": one person, a steady camera, joint angles interpolated between two poses over N frames.
The same source image is re-rendered into every frame (the node's batch-of-target-poses path). Reported: the
mean absolute change between consecutive frames (0..1 pixel units) of the warped previews and of the results,
next to the ground-truth sequence's own change, and the error to the ground truth. Flicker is the excess of
the result's change over the ground truth's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reposedm_core.data.synthetic import render_people  # noqa: E402
from reposedm_core.models import load_model  # noqa: E402
from reposedm_core.utils.images import save_grid  # noqa: E402


def sequence(identity: int, pose_a: int, pose_b: int, frames: int, height: int, width: int) -> dict:
    ends = render_people([identity, identity], [pose_a, pose_b], height, width, prior="natural")
    t = torch.linspace(0, 1, frames, dtype=torch.float64)[:, None]
    angles = ends["angles"][0].double() * (1 - t) + ends["angles"][1].double() * t
    seq = render_people([identity] * frames, [pose_a] * frames, height, width, angles=angles, fixed_camera=True)
    return {"source": ends["image"][:1], "source_pose": ends["keypoints"][:1], "frames": seq["image"],
            "poses": seq["keypoints"]}


def change(x: torch.Tensor) -> float:
    return float((x[1:] - x[:-1]).abs().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--sheet", default="outputs/sequence_sheet.png")
    args = p.parse_args()
    model = load_model(args.model)
    h, w = 256, 176
    rows = {k: [] for k in ("gt", "warp_cold", "warp_warm", "out_cold", "out_warm", "err_cold", "err_warm")}
    sheet = []
    for s in range(args.sequences):
        seq = sequence(9 + 10 * s, 9 + 10 * s, 19 + 10 * s, args.frames, h, w)  # test-split seeds (residue 9)
        n = args.frames
        src, sp = seq["source"].expand(n, -1, -1, -1), seq["source_pose"].expand(n, -1, -1)
        results = {}
        for warm in (False, True):
            a = model.align(src, sp, seq["poses"], warm_start=warm)
            out = model.sample(a, steps=args.steps, seed=0, shared_noise=True)
            tag = "warm" if warm else "cold"
            rows[f"warp_{tag}"].append(change(a.warped))
            rows[f"out_{tag}"].append(change(out))
            rows[f"err_{tag}"].append(float((out - seq["frames"]).abs().mean()))
            results[tag] = out
        rows["gt"].append(change(seq["frames"]))
        if s == 0:
            sheet = torch.cat([seq["frames"], results["cold"], results["warm"]])
    mean = {k: sum(v) / len(v) for k, v in rows.items()}
    print(f"{args.sequences} sequences x {args.frames} frames, {args.steps} steps, shared noise; mean |frame t - t-1|:")
    print(f"  ground truth              {mean['gt']:.4f}")
    print(f"  warped preview  cold/warm {mean['warp_cold']:.4f} / {mean['warp_warm']:.4f}")
    print(f"  result          cold/warm {mean['out_cold']:.4f} / {mean['out_warm']:.4f}")
    print(f"  error to ground truth (mean |result - GT|) cold/warm {mean['err_cold']:.4f} / {mean['err_warm']:.4f}")
    save_grid(sheet, args.sheet, ncol=args.frames)
    print(f"wrote {args.sheet} (rows: ground truth, cold start, warm start)")


if __name__ == "__main__":
    main()
