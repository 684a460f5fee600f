"""Train the RePoseDM pose-transfer model (alignment + denoiser) and write a safetensors model file.

    python -m reposedm_core.train transfer --config demo --out outputs/train/demo
    torchrun --nproc_per_node 8 -m reposedm_core.train transfer --config deepfashion_256 --out runs/df256

Data: synthetic-world pairs out of the box, or DeepFashion / Market-1501 / an OpenPose folder (``train.data``).
Loss = the denoising MSE for the model's prediction type (``diffusion_loss``) + RAFT-style sequence loss on the warped source image (every alignment iterate, weights
gamma^(N-1-i)), weighted to the target body region + a self-supervised visibility loss. Classifier-free
guidance by dropping the appearance condition. EMA weights; every random draw depends only on (seed, step),
so a resumed run — or a run on any number of processes with the same global batch — sees the same batches;
resumable after a kill; periodic sample sheets. Multi-GPU / multi-node through torchrun
(DistributedDataParallel, the standard env vars), bf16/fp16 autocast on GPU, gradient accumulation.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..models import RePoseModel, save_model
from ..models.denoiser import WARP_CENTRED
from ..models.flow import body_weight, warp
from .config import TrainConfig, load_config
from .data import make_source, step_batches
from .distributed import Dist
from .state import Trainer

log = logging.getLogger("reposedm.train.transfer")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="a config name in reposedm_core/configs (e.g. demo) or a JSON file")
    p.add_argument("--out", required=True, help="run folder: state, sample sheets, log, final model.safetensors")
    p.add_argument("--steps", type=int, default=None, help="override the config's number of steps")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (under torchrun: each rank its local GPU)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.use_alignment=false --set train.batch=16")


T_SAMPLING = ("uniform", "mid_high")


def draws(cfg: TrainConfig, step: int, n: int, shape: tuple[int, ...], timesteps: int) -> dict[str, torch.Tensor]:
    """The step's random numbers for the whole global batch (sliced per process): t, noise, keep.

    ``t_sampling="mid_high"``: every other sample's t is drawn from ``[0.3 T, T)`` instead of ``[0, T)`` — more
    training where the image's structure is decided (the x0 estimate there is what the sampler builds on)."""
    if cfg.t_sampling not in T_SAMPLING:
        raise ValueError(f"train.t_sampling must be one of {T_SAMPLING}, got {cfg.t_sampling!r}")
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    t = torch.randint(0, timesteps, (n,), generator=gen)
    noise = torch.randn((n, *shape), generator=gen)
    keep = (torch.rand(n, generator=gen) >= cfg.uncond_prob).float()
    if cfg.t_sampling == "mid_high":
        high = torch.randint(int(0.3 * timesteps), timesteps, (n,), generator=gen)
        t = torch.where(torch.arange(n) % 2 == 1, high, t)
    return {"t": t, "noise": noise, "keep": keep}


def diffusion_loss(model: RePoseModel, pred: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor,
                   t: torch.Tensor) -> torch.Tensor:
    """The denoising loss for the model's prediction type: MSE against the noise (``epsilon``), the velocity
    (``v_prediction``) or the clean image (``sample``); with ``x0_base="warp"``/``"warp_full"`` the clean-image error is
    measured in units of the correction's scale ``c_out`` (EDM's weighting: the network's own target)."""
    kind = model.config.prediction_type
    sched = model.train_scheduler
    if kind == "v_prediction":
        return F.mse_loss(pred.float(), sched.get_velocity(x0, noise, t).float())
    if kind == "epsilon":
        return F.mse_loss(pred.float(), noise.float())
    if kind == "sample":
        if model.config.x0_base in WARP_CENTRED:
            c_out = model.denoiser.coefficients(t, x0)["c_out"].float().clamp_min(1e-3)
            return (((pred.float() - x0.float()) / c_out) ** 2).mean()
        return F.mse_loss(pred.float(), x0.float())
    raise ValueError(f"unsupported prediction_type {kind!r}")


class TrainingStep(nn.Module):
    """The forward pass of one training step as a module, so DistributedDataParallel can wrap it.

    Every loss is a mean over samples of a per-sample value, so the mean of equal-sized per-process losses
    equals the loss of the global batch (the distributed run follows the single-process loss curve).
    """

    def __init__(self, model: RePoseModel, cfg: TrainConfig):
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, batch: dict[str, torch.Tensor], rnd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model, cfg = self.model, self.cfg
        src, tgt = batch["source"], batch["target"]
        alignment = model.condition(src, batch["source_pose"], batch["target_pose"], cfg.iterations)
        sched = model.train_scheduler
        t, noise = rnd["t"], rnd["noise"]
        x0 = tgt - model.offset(alignment)  # the image, or the image minus the warp (x0_base="residual")
        x_t = sched.add_noise(x0, noise, t)
        pred = model.denoiser(x_t, t, alignment, rnd["keep"])
        out = {"diffusion": diffusion_loss(model, pred, x0, noise, t)}
        n = len(alignment.iterates)
        if n and model.config.use_alignment:
            seq, vis = src.new_zeros(()), src.new_zeros(())
            # The warp must bring the source body onto the target body; elsewhere (background, the source
            # person's old place) it only gets a small weight, or the photometric loss shrinks the person away.
            region = body_weight(batch["target_pose"], *tgt.shape[-2:]) + cfg.background_weight
            for i, (flow, mask_logit) in enumerate(alignment.iterates):
                w = cfg.gamma ** (n - 1 - i)
                err = (warp(src, flow) - tgt).abs().mean(1, keepdim=True)      # [B, 1, H, W]
                seq = seq + w * ((err * region).sum((1, 2, 3)) / region.sum((1, 2, 3))).mean()
                proxy = torch.exp(-err.detach() / cfg.visibility_tau)           # 1 where the warp explains it
                vis = vis + w * F.binary_cross_entropy_with_logits(mask_logit.float(), proxy.float())
            out["sequence"], out["visibility"] = seq, vis
        out["total"] = out["diffusion"] + cfg.w_sequence * out.get("sequence", 0.0) + \
            cfg.w_visibility * out.get("visibility", 0.0)
        return out


def run(args: argparse.Namespace) -> None:
    model_cfg, cfg = load_config(args.config, args.set)
    if args.steps is not None:
        cfg.steps = args.steps
    dist = Dist.from_env(args.device)
    if cfg.batch % (dist.world * cfg.accumulate):
        raise ValueError(f"train.batch={cfg.batch} must be divisible by processes ({dist.world}) x "
                         f"train.accumulate ({cfg.accumulate})")
    out = Path(args.out)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps({"model": model_cfg.to_dict(), "train": cfg.to_dict()}, indent=2))
    torch.manual_seed(cfg.seed)  # identical initial weights on every process
    model = RePoseModel(model_cfg)
    if cfg.init_from:
        from ..models.io import SHIPPED, init_from

        counts = init_from(model, SHIPPED if cfg.init_from == "shipped" else cfg.init_from)
        if dist.main:
            log.info("initialised from %s: %s", cfg.init_from, counts)
    model = model.to(dist.device).train()
    step_module = dist.wrap(TrainingStep(model, cfg), find_unused=not model_cfg.use_alignment)
    source = make_source(cfg, model_cfg)
    trainer = Trainer(model, cfg, out, dist)
    start = trainer.resume()
    if dist.main:
        log.info("model %.2f M parameters (alignment %.2f M); %d process(es) on %s; global batch %d; step %d of %d",
                 sum(p.numel() for p in model.parameters()) / 1e6,
                 sum(p.numel() for p in model.alignment.parameters()) / 1e6, dist.world, dist.device, cfg.batch,
                 start, cfg.steps)
    per_rank = cfg.batch // dist.world
    micro = per_rank // cfg.accumulate
    t0 = time.time()
    shape = (3, model_cfg.height, model_cfg.width)
    with tqdm(total=cfg.steps, initial=start, desc="transfer training", unit="step", disable=not dist.main) as bar:
        mine = slice(dist.rank * per_rank, (dist.rank + 1) * per_rank)
        batches = step_batches(source, start, cfg.steps, cfg.batch, mine, cfg.workers)
        for step, batch in zip(range(start, cfg.steps), batches):
            rnd = draws(cfg, step, cfg.batch, shape, model_cfg.train_timesteps)
            batch = {key: v.to(dist.device) for key, v in batch.items()}
            parts_sum: dict[str, float] = {}
            for k in range(cfg.accumulate):
                sl = slice(k * micro, (k + 1) * micro)
                rows = {key: v[mine][sl].to(dist.device) for key, v in rnd.items()}
                with dist.no_sync(step_module, last=k == cfg.accumulate - 1), dist.autocast(cfg.amp):
                    parts = step_module({key: v[sl] for key, v in batch.items()}, rows)
                trainer.backward(parts["total"] / cfg.accumulate)
                for key, v in parts.items():
                    parts_sum[key] = parts_sum.get(key, 0.0) + float(v.detach()) / cfg.accumulate
            trainer.update()
            bar.update()
            if step % cfg.log_every == 0:
                values = dist.mean(parts_sum)
                bar.set_postfix({k: f"{v:.4f}" for k, v in values.items() if k != "total"})
                if dist.main:
                    trainer.log(step, values)
            if (step + 1) % cfg.sample_every == 0 or step + 1 == cfg.steps:
                if dist.main:
                    trainer.sample_sheet(step + 1, source)
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
                if dist.main:
                    trainer.save_state(step + 1)
                dist.barrier()
    if dist.main:
        path = save_model(trainer.ema_model(), out / "model.safetensors",
                          extra={"steps": cfg.steps, "train_seconds": round(time.time() - t0, 1), "data": cfg.data,
                                 "seed": cfg.seed, "processes": dist.world, "init_from": cfg.init_from})
        log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    dist.close()
