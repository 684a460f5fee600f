"""Training and sampling throughput (images/s) of a config, on the GPU when there is one, else the CPU.

    python benchmarks/bench_speed.py --config deepfashion_256 [--device cuda] [--variants fp32,bf16,fp16,cl,compile]

Variants: fp32; bf16 / fp16 autocast (fp16 only on CUDA); ``cl`` = channels-last memory format; ``compile`` =
torch.compile of the denoiser. Each variant is timed in the same run after a warm-up (ratios are what
count on a noisy machine). Training = one optimiser step (forward + backward + AdamW) on a batch of
synthetic-world pairs at the config's frame; sampling = alignment + ``--sample-steps`` steps with CFG
(two branches batched). Weights are random: speed does not depend on them.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reposedm_core.models import RePoseModel  # noqa: E402
from reposedm_core.sampling.sampler import make_scheduler, sample  # noqa: E402
from reposedm_core.train.config import load_config  # noqa: E402
from reposedm_core.train.data import make_source  # noqa: E402
from reposedm_core.train.transfer import TrainingStep, draws  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_seconds(fn, device, repeats: int) -> float:
    fn()
    _sync(device)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def run_variant(name: str, args, model_cfg, train_cfg, device) -> tuple[float, float]:
    parts = set(name.split("+"))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(next((p for p in parts if p in ("bf16", "fp16")),
                                                                      None))
    torch.manual_seed(0)
    model = RePoseModel(model_cfg).to(device)
    if "cl" in parts:
        model = model.to(memory_format=torch.channels_last)
    if "compile" in parts:
        model.denoiser = torch.compile(model.denoiser)
    def autocast():
        return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    source = make_source(train_cfg, model_cfg)
    batch = source.batch(0, args.batch, device)
    shape = (3, model_cfg.height, model_cfg.width)
    rnd = {k: v.to(device) for k, v in draws(train_cfg, 0, args.batch, shape, model_cfg.train_timesteps).items()}
    step = TrainingStep(model.train(), train_cfg)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def train_once() -> None:
        with autocast():
            loss = step(batch, rnd)["total"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    train_s = _median_seconds(train_once, device, args.repeats)
    model.eval()
    n = args.sample_batch

    @torch.inference_mode()
    def sample_once() -> None:
        with autocast():
            al = model.condition(batch["source"][:n], batch["source_pose"][:n], batch["target_pose"][:n],
                                 model_cfg.iterations)
            noise = torch.randn((n, *shape), device=device)
            sched = make_scheduler("dpmpp_2m", dict(model.train_scheduler.config))
            sample(model.denoise_fn(al, 2.0), noise, sched, args.sample_steps)

    sample_s = _median_seconds(sample_once, device, max(1, args.repeats // 2))
    return args.batch / train_s, n / sample_s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="demo")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--variants", default=None, help="comma list (default: fp32,bf16,cl on CPU; all on CUDA)")
    p.add_argument("--batch", type=int, default=8, help="training batch")
    p.add_argument("--sample-batch", type=int, default=4)
    p.add_argument("--sample-steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=4)
    args = p.parse_args()
    device = torch.device(args.device)
    model_cfg, train_cfg = load_config(args.config, args.set)
    train_cfg.data = "synthetic"   # speed does not depend on the pictures; no dataset needed
    variants = (args.variants.split(",") if args.variants else
                ["fp32", "bf16", "fp16", "fp16+cl", "fp16+cl+compile"] if device.type == "cuda" else
                ["fp32", "bf16", "cl"])
    params = sum(q.numel() for q in RePoseModel(model_cfg).parameters()) / 1e6
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"config {args.config}: {model_cfg.height}x{model_cfg.width}, {params:.1f} M parameters; {name}")
    print(f"| variant | training images/s (batch {args.batch}) | sampling images/s ({args.sample_steps} steps, "
          f"cfg 2, batch {args.sample_batch}) |")
    print("|---|---|---|")
    for v in variants:
        try:
            tr, sa = run_variant(v, args, model_cfg, train_cfg, device)
            print(f"| {v} | {tr:.2f} | {sa:.3f} |")
        except (RuntimeError, NotImplementedError) as e:  # e.g. a dtype the device lacks
            print(f"| {v} | failed: {str(e).splitlines()[0][:80]} | |")


if __name__ == "__main__":
    main()
