"""Write synthetic-world pairs as a DeepFashion- or Market-1501-layout dataset (see :mod:`reposedm_core.data.anchors`).

    python -m reposedm_core.data.export --out data/synthetic_df --train 2000 --test 200
    python -m reposedm_core.data.export --layout market --out data/synthetic_market   # 128x64, market-*.csv

The whole paper protocol (training on ``deepfashion``, ``python -m reposedm_core.eval protocol ...``) can then run
on data with exact ground truth, and the tests check it end to end on a tiny export.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
from pathlib import Path

from ..pose.convert import format_deepfashion_keypoints
from ..utils.images import save_png
from .anchors import LAYOUTS, Layout
from .synthetic import SyntheticWorld

log = logging.getLogger("reposedm.data.export")


def _name(identity: int, pose: int) -> str:
    return f"synthetic_id{identity:06d}_pose{pose:06d}.png"


def export_split(root: Path, split: str, count: int, height: int, width: int, world_split: str,
                 layout: Layout = LAYOUTS["deepfashion"]) -> int:
    """Write ``count`` pairs of a synthetic split; returns the number of distinct images written."""
    world = SyntheticWorld(world_split, height=height, width=width, prior="natural")
    image_dir = root / layout.images.format(split=split)
    factor = height // layout.height
    image_dir.mkdir(parents=True, exist_ok=True)
    annotations: dict[str, tuple[str, str]] = {}
    pairs = []
    for start in range(0, count, 16):
        batch = world.pairs(list(range(start, min(count, start + 16))))
        for k in range(len(batch["identity_seed"])):
            ident = int(batch["identity_seed"][k])
            names = []
            for role in ("source", "target"):
                name = _name(ident, int(batch[f"{role}_pose_seed"][k]))
                if name not in annotations:
                    kp = batch[f"{role}_keypoints"][k].clone()
                    kp[:, :2] = (kp[:, :2] + 0.5) / factor - 0.5      # to the annotation frame
                    kp[:, :2] = kp[:, :2].clamp(min=0)
                    kp[:, 0] = kp[:, 0].clamp(max=layout.width - 1)
                    kp[:, 1] = kp[:, 1].clamp(max=layout.height - 1)
                    annotations[name] = format_deepfashion_keypoints(kp)
                    save_png(batch[f"{role}_image"][k], image_dir / name)
                names.append(name)
            pairs.append(names)
    with open(root / layout.annotation.format(split=split), "w", newline="") as f:
        w = csv.writer(f, delimiter=":")
        w.writerow(["name", "keypoints_y", "keypoints_x"])
        for name, (ys, xs) in annotations.items():
            w.writerow([name, ys, xs])
    with open(root / layout.pairs.format(split=split), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["from", "to"])
        w.writerows(pairs)
    return len(annotations)


def export(root: str | os.PathLike, train: int, test: int, height: int | None = None, width: int | None = None,
           layout: str = "deepfashion") -> Path:
    """A dataset folder in ``layout``'s standard form; images at ``height x width``, the layout's frame (default) or
    an integer multiple of it (512x352 DeepFashion), with the annotation in the layout's frame as the readers expect."""
    lay = LAYOUTS[layout]
    height, width = height or lay.height, width or lay.width
    if height % lay.height or height * lay.width != width * lay.height:
        raise ValueError(f"{layout} images must be {lay.width}x{lay.height} or an integer multiple of it, got "
                         f"{width}x{height}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for split, count, world_split in (("train", train, "train"), ("test", test, "test")):
        n = export_split(root, split, count, height, width, world_split, lay)
        log.info("%s: %d pairs, %d images", split, count, n)
    return root


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--layout", default="deepfashion", choices=("deepfashion", "market"))
    p.add_argument("--height", type=int, default=None, help="image height (default: the layout's, 256 or 128)")
    p.add_argument("--width", type=int, default=None, help="image width (default: the layout's, 176 or 64)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("wrote %s", export(args.out, args.train, args.test, args.height, args.width, args.layout))


if __name__ == "__main__":
    main()
