"""Pose-field speed on this CPU: poses/s scored in batches, and ms per single-pose repair.

    python benchmarks/bench_field.py [--threads 2] [--poses 65536]

Figures are medians of several runs measured in one process (the machines are noisy; compare ratios).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reposedm_core.field import load_pose_field  # noqa: E402
from reposedm_core.field import api  # noqa: E402
from reposedm_core.field import data as D  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--poses", type=int, default=65536)
    p.add_argument("--repairs", type=int, default=50)
    p.add_argument("--chunks", default="", metavar="N,N",
                   help="also score with these poses-per-forward chunk sizes, interleaved in one run (e.g. 512,1024)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    field = load_pose_field()
    gen = torch.Generator().manual_seed(0)
    bodies = D.sample_bodies(gen, 2048)
    kp = D.project(bodies, gen=gen)
    kp = kp[(kp[..., 2] > 0).sum(-1) >= 4]
    batch = kp[torch.randint(0, len(kp), (args.poses,), generator=gen)]
    field.distance(batch[:2048])  # warm-up
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        field.distance(batch)
        rates.append(len(batch) / (time.perf_counter() - t0))
    print(f"scoring: {statistics.median(rates):,.0f} poses/s (median of 5 x {len(batch)} poses, "
          f"{torch.get_num_threads()} threads, chunks of {api.CHUNK})")
    if args.chunks:
        sizes, default = [int(c) for c in args.chunks.split(",")], api.CHUNK
        by_size: dict[int, list[float]] = {c: [] for c in sizes}
        for _ in range(5):
            for c in sizes:
                api.CHUNK = c
                t0 = time.perf_counter()
                field.distance(batch)
                by_size[c].append(len(batch) / (time.perf_counter() - t0))
        api.CHUNK = default
        print("scoring by chunk size: " + ", ".join(f"{c}: {statistics.median(r):,.0f}" for c, r in by_size.items()) +
              " poses/s (medians of 5, interleaved)")
    broken = D.corrupt(bodies[: args.repairs], kp[: args.repairs], "detached_joint", "medium", gen)
    field.repair(broken[:1])
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.repairs):
        for propose in (True, False):            # interleaved: the same machine state for both
            t0 = time.perf_counter()
            field.repair(broken[i:i + 1], propose=propose)
            times[propose].append((time.perf_counter() - t0) * 1000)
    for propose, label in ((True, "repair"), (False, "repair by the field's steps alone (propose=False)")):
        t = times[propose]
        print(f"{label}: {statistics.median(t):.1f} ms per single pose (median of {args.repairs}, up to 64 steps, "
              f"stopping at the valid median or a plateau; p90 {sorted(t)[int(0.9 * len(t))]:.1f} ms)")


if __name__ == "__main__":
    main()
