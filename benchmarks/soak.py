"""Soak test: many pose-transfer prompts through one ComfyUI server, some cancelled mid-sampling.

    python benchmarks/soak.py [--prompts 100] [--interrupt-every 7] [--steps 8]

Prints how many prompts succeeded, were interrupted (on purpose) and failed (should be 0), and the server's
resident memory after the first prompt and at the end (growth = a leak suspect).
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from harness.comfy_server import ComfyServer  # noqa: E402


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
                                                            "steps": steps, "cfg": 2.0, "scheduler": "dpmpp_2m",
                                                            "shared_noise": False}},
            "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "soak"}}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=100)
    p.add_argument("--interrupt-every", type=int, default=7)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--model", default="reposedm_demo (shipped)")
    args = p.parse_args()
    counts = {"success": 0, "interrupted": 0, "error": 0, "timeout": 0}
    with ComfyServer() as comfy:
        first_rss = None
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
                print(f"prompt {i}: {result.status}: {result.error()}", flush=True)
            if first_rss is None:
                first_rss = comfy.rss_bytes()
        last_rss = comfy.rss_bytes()
    expected = sum(1 for i in range(args.prompts)
                   if args.interrupt_every and i % args.interrupt_every == args.interrupt_every - 1)
    print(f"{args.prompts} prompts: {counts['success']} succeeded, {counts['interrupted']} interrupted "
          f"({expected} cancelled on purpose), {counts['error']} failed, {counts['timeout']} timed out")
    print(f"server memory: {first_rss / 2**20:.0f} MiB after the first prompt, {last_rss / 2**20:.0f} MiB at the "
          f"end (growth {(last_rss - first_rss) / 2**20:+.0f} MiB)")
    sys.exit(0 if counts["error"] == counts["timeout"] == 0 else 1)


if __name__ == "__main__":
    main()
