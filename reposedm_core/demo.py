"""The README's demo: pose transfer with the shipped demo model on unseen synthetic people.

    python -m reposedm_core.demo --out outputs/demo.png

Each row: source person | target pose | warped source (alignment preview) | result | ground truth. It also
round-trips the poses through POSE_KEYPOINT and OpenPose JSON, as a check of the pose layer.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import torch

from .data.synthetic import SyntheticWorld
from .pose import frames_from_tensor, load_pose_keypoint, render_skeleton, to_pose_keypoint
from .sampling import add_sampler_arguments, sampler_options
from .utils.images import save_grid

log = logging.getLogger("reposedm.demo")


def pose_roundtrip(keypoints: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """keypoints [B, 18, 3] pixels -> POSE_KEYPOINT (normalised) -> JSON -> OpenPose JSON (pixels) -> [B, 18, 3]."""
    frames = frames_from_tensor(keypoints, width, height)
    normalised = json.dumps(to_pose_keypoint(frames, normalized=True))
    frames = load_pose_keypoint(normalised, fmt="normalized")
    openpose_json = [json.dumps(to_pose_keypoint([f])[0]) for f in frames]  # one OpenPose file per frame
    back = [load_pose_keypoint(text, fmt="pixels")[0].keypoints[0] for text in openpose_json]
    return torch.stack(back)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/demo.png"), help="PNG to write")
    parser.add_argument("--pairs", type=int, default=6, help="number of test pairs")
    add_sampler_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="a RePoseDM .safetensors file (default: the shipped demo)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from .models import load_model

    t0 = time.perf_counter()
    world = SyntheticWorld("test", height=256, width=176, prior="natural")
    pairs = world.pairs(list(range(args.pairs)))
    sk, tk = pairs["source_keypoints"], pairs["target_keypoints"]
    back = pose_roundtrip(tk, 176, 256)
    err = (back[..., :2] - tk[..., :2]).abs().max().item()
    if err > 1e-3:
        raise RuntimeError(f"pose round trip changed the keypoints (max error {err:.2e} px)")
    log.info("pose round trip POSE_KEYPOINT -> JSON -> OpenPose JSON: exact to %.1e px", err)

    model = load_model(args.model)
    log.info("model: %s frame %dx%d, %.1f M parameters", args.model or "shipped demo", model.config.height,
             model.config.width, sum(p.numel() for p in model.parameters()) / 1e6)
    results, warped, seconds = [], [], []
    for i in range(args.pairs):  # one image at a time: the figure users get per image
        start = time.perf_counter()
        alignment = model.align(pairs["source_image"][i:i + 1], sk[i:i + 1], tk[i:i + 1])
        results.append(model.sample(alignment, seed=args.seed, **sampler_options(args)))
        seconds.append(time.perf_counter() - start)
        warped.append(alignment.warped)
    cols = [pairs["source_image"], render_skeleton(tk, 256, 176), torch.cat(warped), torch.cat(results),
            pairs["target_image"]]
    save_grid(torch.stack(cols, 1).flatten(0, 1), args.out, ncol=len(cols))
    log.info("%d pose transfers, %d steps (%s), cfg %.1f, denoise %g, temperature %g above t = %d: median %.2f s "
             "per image (%s threads); total %.1f s", args.pairs, args.steps, args.scheduler, args.cfg, args.denoise,
             args.temperature, args.temperature_stop_t, statistics.median(seconds), torch.get_num_threads(),
             time.perf_counter() - t0)
    log.info("columns: source | target pose | warped source | result | ground truth")
    log.info("wrote %s", args.out.resolve())
    return args.out


if __name__ == "__main__":
    main()
