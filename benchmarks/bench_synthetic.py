"""Benchmark the synthetic person world and write a contact sheet to look at.

    python benchmarks/bench_synthetic.py                       # 256 x 176, batch sizes 1 8 32
    OMP_NUM_THREADS=1 python benchmarks/bench_synthetic.py --batch-sizes 8 64 --repeats 7

Prints images/s per batch size (median over repeats, each repeat a fresh set of seeds, after one warm-up;
torch threads as set by the environment or --threads) and writes a PNG sheet of people (rows of 6), then pairs
(source, target side by side), plus the same sheet with the keypoints drawn.

On a machine whose cores are busy with other work, use one thread per process: torch's OpenMP threads wait
for each other at every op and collapse when a core is taken (the world is meant to run in DataLoader
workers, one thread each).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reposedm_core.data.synthetic import SyntheticWorld, contact_sheet, render_people  # noqa: E402


def images_per_second(batch: int, repeats: int, height: int, width: int) -> tuple[float, float]:
    """Median and best images/s for one batch size."""
    render_people(list(range(batch)), list(range(batch)), height, width)  # warm-up
    times = []
    for r in range(repeats):
        ids = list(range(10_000 + r * batch, 10_000 + (r + 1) * batch))
        t0 = time.perf_counter()
        render_people(ids, [s * 7 + 3 for s in ids], height, width)
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times), batch / min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=176)
    parser.add_argument("--people", type=int, default=24, help="people on the sheet (rows of 6)")
    parser.add_argument("--pairs", type=int, default=6, help="pairs on the sheet (3 per row)")
    parser.add_argument("--split", default="train", help="world split for the sheet")
    parser.add_argument("--out", type=Path, default=Path("outputs/synthetic_contact_sheet.png"))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = as set by the environment)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    print(f"synthetic world at {args.height}x{args.width}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    for b in args.batch_sizes:
        med, best = images_per_second(b, args.repeats, args.height, args.width)
        print(f"  batch {b:4d}: {med:7.1f} images/s median  ({best:.1f} best of {args.repeats})")

    world = SyntheticWorld(args.split, args.height, args.width)
    people = [world.person(i) for i in range(args.people)]
    pairs = world.pairs(range(args.people, args.people + args.pairs))
    pair_images = torch.stack([pairs["source_image"], pairs["target_image"]], 1).flatten(0, 1)
    pair_kp = torch.stack([pairs["source_keypoints"], pairs["target_keypoints"]], 1).flatten(0, 1)
    images = torch.cat([torch.stack([p["image"] for p in people]), pair_images])
    keypoints = torch.cat([torch.stack([p["keypoints"] for p in people]), pair_kp])
    sheet = contact_sheet(images, args.out, ncol=6)
    with_kp = contact_sheet(images, args.out.with_name(args.out.stem + "_keypoints.png"), ncol=6, keypoints=keypoints)
    print(f"contact sheet: {sheet.resolve()}  ({args.people} people, then {args.pairs} pairs as source|target)")
    print(f"with keypoints: {with_kp.resolve()}")


if __name__ == "__main__":
    main()
