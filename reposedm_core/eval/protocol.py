"""The pose-transfer papers' evaluation protocol: generate every test pair, then score the folder.

    # generate (one process, or sharded: torchrun --nproc_per_node 8 [--nnodes N ...] -m reposedm_core.eval ...)
    python -m reposedm_core.eval protocol generate --data deepfashion --root DATA --model MODEL --out runs/gen
    # score: SSIM (both variants), LPIPS (local weights), FID vs the training images, masked for Market
    python -m reposedm_core.eval protocol score --data deepfashion --root DATA --out runs/gen

Generation writes one PNG per test pair, ``<from>___<to>.png`` at the resolution of the test images; it is sharded by
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

from ..data.anchors import LAYOUTS, AnchorPairs, load_image, person_mask
from ..sampling import add_sampler_arguments, sampler_options
from .metrics import markdown_table

log = logging.getLogger("reposedm.eval.protocol")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("generate", "score"))
    p.add_argument("--data", default="deepfashion", choices=sorted(LAYOUTS))
    p.add_argument("--root", required=True, help="the dataset folder (standard layout, see reposedm_core.data)")
    p.add_argument("--out", required=True, help="folder of generated images (one PNG per test pair)")
    p.add_argument("--model", default=None, help="RePoseDM .safetensors (generate; default: the shipped demo)")
    add_sampler_arguments(p)
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


def _device(args: argparse.Namespace) -> str:
    """``--device``, else this rank's GPU (``LOCAL_RANK`` under torchrun), else the CPU."""
    return args.device or (f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")


def generate(args: argparse.Namespace) -> int:
    """Write the missing outputs of this process's shard; returns how many it wrote."""
    from ..models import load_model
    from ..utils.images import save_png

    rank, world = shard()
    device = _device(args)
    test = AnchorPairs(args.root, LAYOUTS[args.data], "test")
    test = AnchorPairs(args.root, LAYOUTS[args.data], "test", *test.image_frame())   # the images' own resolution
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = len(test) if args.limit is None else min(args.limit, len(test))
    mine = range(rank, n, world)
    for i in mine:       # a killed run of this shard may have left a temporary file (never a final one)
        (out / (output_name(test.names(i)) + ".tmp")).unlink(missing_ok=True)
    todo = [i for i in mine if not (out / output_name(test.names(i))).is_file()]
    log.info("rank %d/%d: %d of its %d pairs left to generate", rank, world, len(todo), len(mine))
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
        images = model.sample(alignment, seed=[args.seed + i for i in idx], **sampler_options(args))
        for i, image in zip(idx, images):
            save_png(image.cpu(), out / output_name(test.names(i)))   # <name>.tmp, then renamed: atomic
        log.info("rank %d: %d/%d (%.1f s/pair)", rank, min(k + args.batch, len(todo)), len(todo),
                 (time.perf_counter() - t0) / min(k + args.batch, len(todo)))
    return len(todo)


def _pair_metrics(test: AnchorPairs, out: Path, n: int, masked: bool, lpips_net, device: str, chunk: int = 64):
    """Sums over the pairs of each metric (read ``chunk`` pairs at a time) and the generated images' features."""
    from .image_metrics import inception_features, lpips_distances, read_image, ssim_skimage, ssim_torchmetrics

    frame = (test.layout.height, test.layout.width)
    sums: dict[str, float] = {}
    features = []
    for start in range(0, n, chunk):
        names = [test.names(i) for i in range(start, min(n, start + chunk))]
        fake = torch.stack([read_image(out / output_name(p)) for p in names])
        real = torch.stack([load_image(test.image_dir / b, *frame)[0] for _, b in names])
        if fake.shape != real.shape:
            raise ValueError(f"generated images are {fake.shape[3]}x{fake.shape[2]} but the ground truth of "
                             f"{names[0][1]} is {real.shape[3]}x{real.shape[2]}; generate at the dataset's frame")
        k = len(names)
        values = {"ssim": ssim_skimage(fake, real), "ssim_tm": ssim_torchmetrics(fake, real)}
        if lpips_net is not None:
            values["lpips"] = float(lpips_distances(lpips_net, fake, real).mean())
        if masked:
            kp = torch.stack([test.poses[b] for _, b in names])
            kp[..., :2] = (kp[..., :2] + 0.5) * (real.shape[2] / frame[0]) - 0.5
            mask = person_mask(kp, real.shape[2], real.shape[3])
            values |= {"mssim": ssim_skimage(fake, real, mask), "mssim_tm": ssim_torchmetrics(fake, real, mask)}
            if lpips_net is not None:
                values["mlpips"] = float(lpips_distances(lpips_net, fake, real, mask).mean())
        for key, v in values.items():
            sums[key] = sums.get(key, 0.0) + v * k
        features.append(inception_features(fake, device=device))
    return sums, np.concatenate(features)


def score(args: argparse.Namespace) -> Path:
    """Metrics over every test pair (all must be generated) -> results.md / results.csv in ``--out``."""
    from .image_metrics import frechet_distance, inception_features, load_lpips

    layout = LAYOUTS[args.data]
    test = AnchorPairs(args.root, layout, "test", layout.height, layout.width)
    out = Path(args.out)
    n = len(test) if args.limit is None else min(args.limit, len(test))
    missing = [output_name(test.names(i)) for i in range(n) if not (out / output_name(test.names(i))).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {n} test pairs are not generated in {out} (e.g. {missing[:2]}); "
                                "run `generate` first (it resumes)")
    device = _device(args)
    try:
        lpips_net, why = load_lpips(args.lpips).to(device), ""
    except FileNotFoundError as e:
        lpips_net, why = None, str(e)
    masked = layout.name == "market"
    sums, fake_features = _pair_metrics(test, out, n, masked, lpips_net, device)
    mean = {key: v / n for key, v in sums.items()}
    na = f"n/a: {why}"
    rows = [["SSIM (skimage, papers' code)", mean["ssim"]], ["SSIM (torchmetrics)", mean["ssim_tm"]],
            ["LPIPS (AlexNet v0.1)", mean.get("lpips", na)]]
    if masked:
        rows += [["masked SSIM (skimage)", mean["mssim"]], ["masked SSIM (torchmetrics)", mean["mssim_tm"]],
                 ["masked LPIPS", mean.get("mlpips", na)]]
    train = AnchorPairs(args.root, layout, "train", layout.height, layout.width)
    names = train.images()[: args.fid_reference] if args.fid_reference else train.images()
    reference = inception_features([train.image_dir / nm for nm in names], device=device)
    rows.append([f"FID vs {len(names)} training images", frechet_distance(fake_features, reference)])
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
