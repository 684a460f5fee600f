"""Soak test: many pose-transfer prompts through one ComfyUI server, some cancelled mid-sampling.

    python benchmarks/soak.py [--prompts 300] [--interrupt-every 7] [--steps 8] [--plot outputs/soak_rss.png]

Prints how many prompts succeeded, were interrupted (on purpose) and failed (should be 0), and the server's
resident memory (RSS) after every ``--every`` prompts: a leak keeps climbing, a plateau flattens out. The
verdict compares the last RSS with the RSS after ``--warmup`` prompts (goal: within +10 %) and fits a slope
over the second half of the run (MiB per 100 prompts; about 0 for a plateau). ``--plot`` draws the curve.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from harness.comfy_server import ComfyServer  # noqa: E402
from reposedm_core.sampling import DEFAULT_CFG, DEFAULT_DENOISE, DEFAULT_SCHEDULER  # noqa: E402

log = logging.getLogger("soak")


def prompt(i: int, steps: int, model: str) -> dict:
    return {"1": {"class_type": "RePoseSyntheticPerson", "inputs": {"seed": i, "pose_seed": 2 * i, "width": 176,
                                                                    "height": 256, "batch_size": 1}},
            "2": {"class_type": "RePoseSyntheticPerson", "inputs": {"seed": i, "pose_seed": 2 * i + 1, "width": 176,
                                                                    "height": 256, "batch_size": 1 + i % 3}},
            "3": {"class_type": "LoadRePoseModel", "inputs": {"model_name": model}},
            "4": {"class_type": "RecurrentPoseAlign", "inputs": {
                "model": ["3", 0], "source_image": ["1", 0], "source_pose": ["1", 1], "target_pose": ["2", 1],
                "iterations": 3, "person_index": 0, "warm_start": True}},
            "5": {"class_type": "RePoseSampler", "inputs": {"model": ["3", 0], "alignment": ["4", 0], "seed": i,
                                                            "steps": steps, "cfg": DEFAULT_CFG,
                                                            "scheduler": DEFAULT_SCHEDULER, "shared_noise": False,
                                                            "denoise": DEFAULT_DENOISE}},
            "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "soak"}}}


def slope_per_100(xs: list[int], ys: list[float]) -> float:
    """Least-squares slope of ys over xs, scaled to 100 prompts."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return 100 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def plot(path: Path, xs: list[int], ys: list[float], warmup: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.plot(xs, ys, lw=1.2)
    ax.axvline(warmup, color="grey", ls="--", lw=0.8)
    ref = ys[min(warmup, len(ys)) - 1]
    ax.axhline(ref * 1.10, color="red", ls=":", lw=0.8, label="+10 % over the RSS after the warm-up")
    ax.set_xlabel("prompts")
    ax.set_ylabel("server RSS (MiB)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=300)
    p.add_argument("--interrupt-every", type=int, default=7)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=20, help="prompts before the reference RSS is taken")
    p.add_argument("--every", type=int, default=20, help="print the RSS every N prompts")
    p.add_argument("--model", default="reposedm_demo (shipped)")
    p.add_argument("--plot", type=Path, default=None, help="write the RSS curve to this PNG")
    args = p.parse_args()
    counts = {"success": 0, "interrupted": 0, "error": 0, "timeout": 0}
    rss: list[float] = []
    with ComfyServer() as comfy:
        for i in range(args.prompts):
            cancel = args.interrupt_every and i % args.interrupt_every == args.interrupt_every - 1
            fired = []

            def on_message(kind, data, cancel=cancel, fired=fired):
                if cancel and kind == "progress" and data.get("value", 0) >= 2 and not fired:
                    fired.append(1)
                    threading.Thread(target=comfy.interrupt).start()

            result = comfy.run(prompt(i, args.steps, args.model), timeout=300, on_message=on_message)
            counts[result.status] += 1
            if result.status == "error" or (result.status == "interrupted" and not cancel):
                log.warning("prompt %d: %s: %s", i, result.status, result.error())
            rss.append(comfy.rss_bytes() / 2**20)
            if (i + 1) % args.every == 0 or i == 0:
                log.info("after %4d prompts: RSS %6.0f MiB", i + 1, rss[-1])
    expected = sum(1 for i in range(args.prompts)
                   if args.interrupt_every and i % args.interrupt_every == args.interrupt_every - 1)
    log.info("%d prompts: %d succeeded, %d interrupted (%d cancelled on purpose), %d failed, %d timed out",
             args.prompts, counts["success"], counts["interrupted"], expected, counts["error"], counts["timeout"])
    xs = list(range(1, len(rss) + 1))
    ref = rss[min(args.warmup, len(rss)) - 1]
    half = len(rss) // 2
    log.info("server RSS: %.0f MiB after the first prompt, %.0f MiB after %d, %.0f MiB at the end, peak %.0f MiB; "
             "growth after the warm-up %+.1f %%; slope over the second half %+.1f MiB per 100 prompts",
             rss[0], ref, min(args.warmup, len(rss)), rss[-1], max(rss), 100 * (rss[-1] / ref - 1),
             slope_per_100(xs[half:], rss[half:]))
    if args.plot:
        plot(args.plot, xs, rss, args.warmup)
        log.info("RSS curve: %s", args.plot)
    sys.exit(0 if counts["error"] == counts["timeout"] == 0 else 1)


if __name__ == "__main__":
    main()
