"""Benchmark the keypoint estimator: ms per forward and per forward + backward (gradient w.r.t. the images, as
pose guidance uses it; weights frozen), batch 1 and 8, at 96 x 64, 128 x 88, 256 x 176 and 512 x 512, with one
and two torch threads.

    OMP_NUM_THREADS=1 python benchmarks/bench_estimator.py                   # the shipped small network
    python benchmarks/bench_estimator.py --openpose-random --sizes 256x176   # OpenPose body architecture

Median over --repeats after warm-up. On a machine whose cores are busy with other work the two-thread figures
are unreliable (torch's threads wait for each other at every op); compare one-thread figures.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reposedm_core.estimator import (SHIPPED, KeypointEstimator, OpenPoseBodyEstimator,  # noqa: E402
                                     SmallKeypointNet, load_estimator)
from reposedm_core.estimator.openpose import build_bodypose_model  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def measure(model: KeypointEstimator, batch: int, height: int, width: int, repeats: int) -> tuple[float, float]:
    """(ms forward under no_grad, ms forward + backward to the images)."""
    images = torch.rand(batch, 3, height, width)

    def forward() -> None:
        with torch.no_grad():
            model(images)

    def forward_backward() -> None:
        x = images.clone().requires_grad_(True)
        kp = model(x)
        (g,) = torch.autograd.grad(kp[..., :2].sum() + kp[..., 2].sum(), x)
        assert torch.isfinite(g).all()

    return timed(forward, repeats), timed(forward_backward, repeats)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="small-estimator checkpoint (default: shipped, else random)")
    p.add_argument("--openpose-random", action="store_true", help="benchmark the OpenPose body architecture")
    p.add_argument("--sizes", nargs="+", default=["96x64", "128x88", "256x176", "512x512"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    if args.openpose_random:
        model: KeypointEstimator = OpenPoseBodyEstimator(build_bodypose_model()).eval()
        label = "OpenPose body network (random weights)"
    elif args.weights or SHIPPED.is_file():
        model, label = load_estimator(args.weights), f"small network ({args.weights or 'shipped'})"
    else:
        model, label = SmallKeypointNet().eval(), "small network (random weights: no shipped file)"
    for prm in model.parameters():
        prm.requires_grad_(False)
    n_params = sum(prm.numel() for prm in model.parameters())
    print(f"{label}: {n_params / 1e6:.3f} M parameters, working size {model.work_height} x {model.work_width}")
    print("| threads | batch | input | forward ms | fwd+bwd ms | fwd+bwd ms / image |")
    print("|---|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch_sizes:
            for size in args.sizes:
                h, w = (int(v) for v in size.lower().split("x"))
                fwd, both = measure(model, batch, h, w, args.repeats)
                print(f"| {threads} | {batch} | {h}x{w} | {fwd:.2f} | {both:.2f} | {both / batch:.2f} |", flush=True)


if __name__ == "__main__":
    main()
