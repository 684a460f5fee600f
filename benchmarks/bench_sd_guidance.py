"""Pose-field guidance on a stock SD1.5 + ControlNet graph in a real ComfyUI: guided / unguided wall time.

    python benchmarks/bench_sd_guidance.py [--steps 8] [--size 64] [--repeats 3]

Uses the tiny random SD1.5-architecture checkpoint of the tests (tests/harness/tiny_sd.py: a one-level
320-channel UNet, the real SD VAE architecture, CLIP-L) — no SD weights exist here. The UNet is tiny while
the VAE decode + estimator + backward that guidance adds per step are full-size, so this ratio is an upper
bound of what a real SD1.5 UNet (~50x the compute per step) sees. Prompts alternate guided / unguided with
different seeds (ComfyUI's cache would skip repeated work); the median of each is reported.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from harness.comfy_server import ComfyServer  # noqa: E402
from harness.tiny_sd import write_tiny_sd  # noqa: E402

sys.path.insert(0, str(REPO / "tests" / "comfy"))
from test_sd_guidance import _graph  # noqa: E402  (the same graph the end-to-end test runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scale", type=float, default=1.0)
    args = p.parse_args()
    import test_sd_guidance

    test_sd_guidance.SIZE = args.size
    with ComfyServer() as comfy:
        write_tiny_sd(comfy.home / "models")
        assert comfy.run(_graph(0.0, seed=999, steps=args.steps)).status == "success"   # loads everything once
        assert comfy.run(_graph(args.scale, seed=998, steps=args.steps)).status == "success"
        plain, guided = [], []
        for i in range(args.repeats):
            for runs, scale in ((plain, 0.0), (guided, args.scale)):
                result = comfy.run(_graph(scale, seed=i, steps=args.steps))
                assert result.status == "success", result.error()
                runs.append(result.seconds)
    a, b = statistics.median(plain), statistics.median(guided)
    print(f"tiny SD1.5 graph, {args.size}x{args.size}, {args.steps} euler steps, cfg 5, ControlNet: unguided "
          f"{a:.2f} s, guided (scale {args.scale}, window 0-1) {b:.2f} s per prompt; ratio {b / a:.2f}")


if __name__ == "__main__":
    main()
