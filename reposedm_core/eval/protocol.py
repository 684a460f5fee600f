"""The pose-transfer papers' evaluation protocol: generate every test pair, then score the folder.

    # generate (one process, or sharded: torchrun --nproc_per_node 8 [--nnodes N ...] -m reposedm_core.eval ...)
    python -m reposedm_core.eval protocol generate --data deepfashion --root DATA --model MODEL --out runs/gen
    # score: SSIM (both variants), LPIPS (local weights), FID vs the training images, masked for Market
    python -m reposedm_core.eval protocol score --data deepfashion --root DATA --out runs/gen

Generation writes one PNG per test pair, ``<from>___<to>.png`` at the dataset's frame; it is sharded by
``RANK``/``WORLD_SIZE`` (pairs ``i`` with ``i % WORLD_SIZE == RANK``), skips pairs whose file exists (resume
after a kill) and writes each file under a temporary name then renames it, so a kill never leaves a half-written
image. ``score`` writes ``results.md`` and ``results.csv`` next to the images.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.anchors import LAYOUTS, AnchorPairs, load_image, person_mask
from .metrics import markdown_table

log = logging.getLogger("reposedm.eval.protocol")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("generate", "score"))
    p.add_argument("--data", default="deepfashion", choices=sorted(LAYOUTS))
    p.add_argument("--root", required=True, help="the dataset folder (standard layout, see reposedm_core.data)")
    p.add_argument("--out", required=True, help="folder of generated images (one PNG per test pair)")
    p.add_argument("--model", default=None, help="RePoseDM .safetensors (generate; default: the shipped demo)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=2.0)
    p.add_argument("--scheduler", default="dpmpp_2m")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="only the first N test pairs")
    p.add_argument("--device", default=None)
    p.add_argument("--lpips", default=None, help="folder with the LPIPS weights (see eval.image_metrics)")
    p.add_argument("--fid-reference", type=int, default=None,
                   help="number of training images in the FID reference set (default: all)")


def output_name(pair: tuple[str, str]) -> str:
    return f"{Path(pair[0]).stem}___{Path(pair[1]).stem}.png"


def shard() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def generate(args: argparse.Namespace) -> int:
    """Write the missing outputs of this process's shard; returns how many it wrote."""
    from ..models import load_model
    from ..utils.images import save_png

    rank, world = shard()
    device = args.device or (f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    layout = LAYOUTS[args.data]
    test = AnchorPairs(args.root, layout, "test", layout.height, layout.width)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = len(test) if args.limit is None else min(args.limit, len(test))
    todo = [i for i in range(rank, n, world) if not (out / output_name(test.names(i))).is_file()]
    log.info("rank %d/%d: %d of its %d pairs left to generate", rank, world, len(todo), len(range(rank, n, world)))
    if not todo:
        return 0
    model = load_model(args.model, device=device)
    t0 = time.perf_counter()
    for k in range(0, len(todo), args.batch):
        idx = todo[k:k + args.batch]
        batch = test.pairs(idx)
        dev = {key: v.to(device) for key, v in batch.items() if isinstance(v, torch.Tensor)}
        alignment = model.align(dev["source_image"], dev["source_keypoints"], dev["target_keypoints"])
        # one seed per pair (from its index): sharding and batching do not change any image
        images = model.sample(alignment, steps=args.steps, cfg=args.cfg, seed=[args.seed + i for i in idx],
                              scheduler=args.scheduler)
        for i, image in zip(idx, images):
            final = out / output_name(test.names(i))
            tmp = final.with_name(f".{final.name}.{rank}.tmp.png")
            save_png(image.cpu(), tmp)
            os.replace(tmp, final)   # atomic: a kill leaves the old state or the whole file
        log.info("rank %d: %d/%d (%.1f s/pair)", rank, min(k + args.batch, len(todo)), len(todo),
                 (time.perf_counter() - t0) / min(k + args.batch, len(todo)))
    return len(todo)


def _read(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


def score(args: argparse.Namespace) -> Path:
    """Metrics over every test pair (all must be generated) -> results.md / results.csv in ``--out``."""
    from .image_metrics import frechet_inception_distance, lpips_or_reason, ssim_skimage, ssim_torchmetrics

    layout = LAYOUTS[args.data]
    test = AnchorPairs(args.root, layout, "test", layout.height, layout.width)
    out = Path(args.out)
    n = len(test) if args.limit is None else min(args.limit, len(test))
    missing = [output_name(test.names(i)) for i in range(n) if not (out / output_name(test.names(i))).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {n} test pairs are not generated in {out} (e.g. {missing[:2]}); "
                                "run `generate` first (it resumes)")
    fakes, reals, masks = [], [], []
    for i in range(n):
        a, b = test.names(i)
        fake = _read(out / output_name((a, b)))
        real, _ = load_image(test.image_dir / b, layout.height, layout.width)
        if fake.shape != real.shape:
            raise ValueError(f"{output_name((a, b))} is {fake.shape[2]}x{fake.shape[1]}, ground truth "
                             f"{real.shape[2]}x{real.shape[1]}")
        fakes.append(fake), reals.append(real)
        kp = test.poses[b][None]
        masks.append(person_mask(kp, real.shape[1], real.shape[2])[0])
    fake, real, mask = torch.stack(fakes), torch.stack(reals), torch.stack(masks)
    train = AnchorPairs(args.root, layout, "train", layout.height, layout.width)
    names = train.images()[: args.fid_reference] if args.fid_reference else train.images()
    reference = torch.stack([load_image(train.image_dir / nm, layout.height, layout.width)[0] for nm in names])
    lp, why = lpips_or_reason(fake, real, args.lpips)
    rows = [["SSIM (skimage, papers' code)", ssim_skimage(fake, real)],
            ["SSIM (torchmetrics)", ssim_torchmetrics(fake, real)],
            ["LPIPS (AlexNet v0.1)", lp if lp is not None else f"n/a: {why}"]]
    if args.data.startswith("market"):
        mlp, mwhy = lpips_or_reason(fake, real, args.lpips, mask=mask)
        rows += [["masked SSIM (skimage)", ssim_skimage(fake, real, mask)],
                 ["masked SSIM (torchmetrics)", ssim_torchmetrics(fake, real, mask)],
                 ["masked LPIPS", mlp if mlp is not None else f"n/a: {mwhy}"]]
    rows.append([f"FID vs {len(reference)} training images", frechet_inception_distance(fake, reference)])
    table = markdown_table(["metric", "value"], rows)
    report = (f"# {args.data} test protocol\n\n{n} test pairs generated in {out}; ground truth from {test.image_dir}."
              f"\n\n{table}\n")
    (out / "results.md").write_text(report)
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "value"])
        w.writerows(rows)
    log.info("%s", report)
    return out / "results.md"


def run(args: argparse.Namespace) -> None:
    if args.action == "generate":
        generate(args)
    else:
        score(args)
