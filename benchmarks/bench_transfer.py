"""Pose-transfer speed on this machine, as ratios measured in one run (the machines are noisy).

    python benchmarks/bench_transfer.py [--model FILE] [--steps 20] [--comfy | --comfy-only]

Prints: alignment time vs one denoiser forward pass at the model's resolution; seconds per image for the
demo settings; guided / unguided sampling time (pose-field guidance, same steps and seeds); with --comfy, the
ComfyUI path (a prompt through a real ComfyUI server, timed from submission to execution_success) vs the
direct core calls for the same work (two synthetic people, align with its two preview images, sample, PNG),
with the median seconds of each stage both ways (from the ComfyUI websocket messages' arrival times).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reposedm_core.data.synthetic import SyntheticWorld  # noqa: E402
from reposedm_core.models import load_model  # noqa: E402
from reposedm_core.sampling import DEFAULT_CFG, DEFAULT_DENOISE, DEFAULT_SCHEDULER  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def core_costs(model, pair, repeats: int) -> tuple[float, float]:
    """(alignment seconds, one denoiser forward seconds) for one image in the model frame."""
    c = model.config
    src = torch.rand(1, 3, c.height, c.width) * 2 - 1
    sk = model.align(pair["source_image"][:1], pair["source_keypoints"][:1], pair["target_keypoints"][:1])
    with torch.inference_mode():
        align = timed(lambda: model.condition(src, sk.source_pose, sk.target_pose), repeats)
        x = torch.randn(1, 3, c.height, c.width)
        t = torch.tensor([500])
        denoise = timed(lambda: model.denoiser(x, t, sk.inner), repeats)
    return align, denoise


def stage_times(result, prompt: dict) -> dict[str, float]:
    """Where a prompt's time went, from the arrival times of its websocket messages: submission to
    execution_start (HTTP, validation, queue), each executed node by class (from its 'executing' message to
    the next), and the last node to execution_success."""
    out: dict[str, float] = {}
    start = last = None
    label = None
    for (kind, data), t in zip(result.messages, result.times):
        if kind == "execution_start":
            out["submit -> start"] = t
            start = last = t
        elif kind == "executing" and start is not None:
            if label is not None:
                out[label] = out.get(label, 0.0) + t - last
            node = data.get("node")
            label = f"node {prompt[node]['class_type']}" if node is not None else "after the last node"
            last = t
        elif kind == "execution_success" and label is not None:
            out[label] = out.get(label, 0.0) + t - last
    return out


def comfy_vs_direct(model_path, steps: int, repeats: int) -> tuple[float, float]:
    """Median seconds of the same job (render 2 synthetic people, align, sample, write a PNG) both ways."""
    sys.path.insert(0, str(REPO / "tests"))
    from harness.comfy_server import ComfyServer
    from reposedm_core.data.synthetic import render_people
    from reposedm_core.pose import render_skeleton
    from reposedm_core.utils.images import save_png

    model = load_model(model_path)

    def direct(i: int, stages: dict[str, list[float]]) -> None:
        marks = [time.perf_counter()]
        src = render_people([100 + i], [1], 256, 176)
        tgt = render_people([100 + i], [2], 256, 176)
        marks.append(time.perf_counter())
        a = model.align(src["image"], src["keypoints"], tgt["keypoints"])
        previews = (a.warped, render_skeleton(tgt["keypoints"], 256, 176))  # the align node's two image outputs
        marks.append(time.perf_counter())
        image = model.sample(a, steps=steps, seed=i)[0]
        marks.append(time.perf_counter())
        save_png(image, "/tmp/bench_direct.png")
        marks.append(time.perf_counter())
        assert all(p.shape[-2:] == (256, 176) for p in previews)
        for name, t0, t1 in zip(("synthetic people", "align + previews", "sample", "save PNG"), marks, marks[1:]):
            stages.setdefault(name, []).append(t1 - t0)

    def prompt(i: int) -> dict:
        return {"1": {"class_type": "RePoseSyntheticPerson", "inputs": {"seed": 100 + i, "pose_seed": 1, "width": 176,
                                                                        "height": 256, "batch_size": 1}},
                "2": {"class_type": "RePoseSyntheticPerson", "inputs": {"seed": 100 + i, "pose_seed": 2, "width": 176,
                                                                        "height": 256, "batch_size": 1}},
                "3": {"class_type": "LoadRePoseModel", "inputs": {"model_name": "reposedm_demo (shipped)"}},
                "4": {"class_type": "RecurrentPoseAlign", "inputs": {
                    "model": ["3", 0], "source_image": ["1", 0], "source_pose": ["1", 1], "target_pose": ["2", 1],
                    "iterations": model.config.iterations, "person_index": 0, "warm_start": True}},
                "5": {"class_type": "RePoseSampler", "inputs": {"model": ["3", 0], "alignment": ["4", 0], "seed": i,
                                                                "steps": steps, "cfg": DEFAULT_CFG,
                                                                "scheduler": DEFAULT_SCHEDULER, "shared_noise": False,
                                                                "denoise": DEFAULT_DENOISE}},
                "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "bench"}}}

    with ComfyServer(threads=torch.get_num_threads()) as comfy:
        assert comfy.run(prompt(1000)).status == "success"  # loads the model once, like a user's first run
        via, core = [], []
        direct_stages: dict[str, list[float]] = {}
        comfy_stages: dict[str, list[float]] = {}
        for i in range(repeats):  # interleaved, so both see the same machine load
            t0 = time.perf_counter()
            direct(i, direct_stages)
            core.append(time.perf_counter() - t0)
            result = comfy.run(prompt(i))
            assert result.status == "success", result.error()
            via.append(result.seconds)
            for name, sec in stage_times(result, prompt(i)).items():
                comfy_stages.setdefault(name, []).append(sec)
    for title, stages in (("ComfyUI path", comfy_stages), ("direct calls", direct_stages)):
        print(f"{title}, median seconds per stage: " +
              ", ".join(f"{name} {statistics.median(v):.3f}" for name, v in stages.items()))
    return statistics.median(via), statistics.median(core)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--comfy", action="store_true", help="also time the ComfyUI path (starts a server)")
    p.add_argument("--guidance-scale", type=float, default=1.0)
    p.add_argument("--comfy-only", action="store_true", help="only the ComfyUI-vs-direct comparison")
    args = p.parse_args()
    if args.comfy_only:
        via, core = comfy_vs_direct(args.model, args.steps, args.repeats)
        print(f"ComfyUI path {via:.2f} s vs direct core call {core:.2f} s for the same job: ratio {via / core:.3f}")
        return
    model = load_model(args.model)
    c = model.config
    pairs = SyntheticWorld("test", height=256, width=176, prior="natural").pairs(list(range(4)))
    print(f"model {c.height}x{c.width}, {sum(q.numel() for q in model.parameters()) / 1e6:.1f} M parameters, "
          f"{torch.get_num_threads()} threads")
    align, denoise = core_costs(model, pairs, 10)
    print(f"alignment ({c.iterations} iterations/scale): {1000 * align:.1f} ms; one denoiser forward: "
          f"{1000 * denoise:.1f} ms; ratio {align / denoise:.2f}")
    a = model.align(pairs["source_image"][:1], pairs["source_keypoints"][:1], pairs["target_keypoints"][:1])
    per_image = timed(lambda: model.sample(model.align(pairs["source_image"][:1], pairs["source_keypoints"][:1],
                                                       pairs["target_keypoints"][:1]),
                                           steps=args.steps, seed=0), args.repeats)
    print(f"demo: {per_image:.2f} s per image (align + {args.steps} {DEFAULT_SCHEDULER} steps, cfg {DEFAULT_CFG:g}, "
          f"median of {args.repeats})")
    from reposedm_core.estimator import load_estimator
    from reposedm_core.field import load_pose_field
    from reposedm_core.guidance import PoseFieldGuidance

    guide = PoseFieldGuidance(load_pose_field(), load_estimator(), scale=args.guidance_scale)
    plain, guided = [], []
    for i in range(args.repeats):
        for runs, g in ((plain, None), (guided, guide)):
            t0 = time.perf_counter()
            model.sample(a, steps=args.steps, seed=i, guidance=g)
            runs.append(time.perf_counter() - t0)
    gp, gg = statistics.median(plain), statistics.median(guided)
    print(f"guidance (window {guide.start}-{guide.end}): unguided {gp:.2f} s, guided {gg:.2f} s, ratio {gg / gp:.3f}")
    if args.comfy:
        via, core = comfy_vs_direct(args.model, args.steps, args.repeats)
        print(f"ComfyUI path {via:.2f} s vs direct core call {core:.2f} s for the same job: ratio {via / core:.3f}")


if __name__ == "__main__":
    main()
