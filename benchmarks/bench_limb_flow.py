"""The analytic limb flow's two widths on real photos and synthetic people (issue 13: iterations=0 vs per-limb warp).

Recurrent Pose Align at ``iterations`` 0 warps the source with ``models.flow.limb_flow``: every target pixel takes
the similarity transform of the bone nearest to it, softly (``assign_scale`` torso lengths), blending into the
identity away from the body (``body_scale``). The classical per-limb similarity warp of ``eval align`` is the same
family with a hard assignment and no blend (0.01, 10). This sweeps the family, each flow computed the way
``RePoseModel.align`` computes it (half the model frame, resized; checked against the model's own warp for the
default widths), and scores the warp inside the target person's mask (masked SSIM, ``eval align``'s) on:

* photos: the 56 sports2d same-person pairs of ``eval align`` (every 6th frame from frame 0);
* photos, other frames: every 6th frame from frame 3 (no frame shared with the first set);
* synthetic: 128 validation pairs, the target's rendered person mask.

    nice -n 10 .venv/bin/python benchmarks/bench_limb_flow.py
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

log = logging.getLogger("bench_limb_flow")
ASSIGN = (0.01, 0.03, 0.08, 0.12)
BODY = (0.3, 1.0, 10.0)
NAMED = {(0.08, 0.3): " (iterations=0: the shipped widths)", (0.01, 10.0): " (the per-limb similarity warp)"}


def _warp(data: dict, h: int, w: int, assign: float, body: float) -> torch.Tensor:
    """The source warped as Recurrent Pose Align warps it at iterations=0: the analytic flow at half the frame (the
    texture encoder's 1/2 scale), resized to the frame."""
    from reposedm_core.models.alignment import analytic_flow
    from reposedm_core.models.flow import resize_flow, warp

    flow = analytic_flow(data["source_pose"], data["target_pose"], (h, w), (h // 2, w // 2),
                         assign_scale=assign, body_scale=body)
    return (warp(data["source"] * 2 - 1, resize_flow(flow, h, w)) + 1) / 2


def main(argv=None) -> None:
    from reposedm_core.data.synthetic.world import SyntheticWorld
    from reposedm_core.eval.align_real import DEFAULT_VIDEO, photo_pairs
    from reposedm_core.eval.image_metrics import ssim_skimage
    from reposedm_core.eval.metrics import markdown_table
    from reposedm_core.models import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default=str(DEFAULT_VIDEO))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = load_model(None)
    h, w = model.config.height, model.config.width
    sets = {"photos (eval align's pairs)": photo_pairs(args.video, h, w, stride=6),
            "photos, other frames": photo_pairs(args.video, h, w, stride=6, offset=3)}
    synthetic = SyntheticWorld("val", height=h, width=w, prior="natural").pairs(list(range(128)))
    sets["synthetic validation"] = {"source": synthetic["source_image"], "target": synthetic["target_image"],
                                    "source_pose": synthetic["source_keypoints"],
                                    "target_pose": synthetic["target_keypoints"], "mask": synthetic["target_mask"]}
    first = sets["photos (eval align's pairs)"]
    ours = model.align(first["source"][:8], first["source_pose"][:8], first["target_pose"][:8], iterations=0).warped
    gap = float((ours - _warp({k: v[:8] for k, v in first.items() if k != "usable"}, h, w, 0.08, 0.3)).abs().max())
    if gap > 1e-4:
        raise SystemExit(f"this sweep's flow is not the model's (max difference {gap:.2e}): fix _warp first")
    rows = []
    for assign in ASSIGN:
        for body in BODY:
            rows.append([f"{assign:g} / {body:g}{NAMED.get((assign, body), '')}"] + [  # 4 decimals: the rows differ in the third
                f"{ssim_skimage(_warp(d, h, w, assign, body), d['target'], d['mask']):.4f}" for d in sets.values()])
            log.info("%s", rows[-1])
    counts = ", ".join(f"{name} {len(d['source'])}" for name, d in sets.items())
    log.info("masked SSIM of the warp inside the target person (pairs: %s)\n\n%s", counts,
             markdown_table(["assign_scale / body_scale", *sets], rows))


if __name__ == "__main__":
    main()
