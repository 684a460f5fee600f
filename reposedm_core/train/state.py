"""The training bookkeeping around a model: optimiser, LR schedule, EMA, resumable state, logs, sample sheets."""
from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path

import torch

from ..models import RePoseModel
from ..pose.encode import render_skeleton
from ..sampling.sampler import DEFAULT_CFG, DEFAULT_DENOISE, DEFAULT_SCHEDULER, make_scheduler, sample
from ..utils.checkpoint import load_training_state, save_training_state
from ..utils.images import save_grid
from .config import TrainConfig

log = logging.getLogger("reposedm.train")
STATE = "state.safetensors"


class Trainer:
    def __init__(self, model: RePoseModel, cfg: TrainConfig, out: Path, dist):
        from diffusers.training_utils import EMAModel

        self.model, self.cfg, self.out, self.dist, self.device = model, cfg, out, dist, dist.device
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = max(1, cfg.steps)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup)) *
                                                       (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))))
        self.ema = EMAModel(self.params, decay=cfg.ema_decay, use_ema_warmup=True, power=0.75)
        fp16 = cfg.amp == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if fp16 else None

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def update(self) -> None:
        """Clip, step the optimiser and the LR schedule, update the EMA, clear the gradients."""
        if self.scaler:
            self.scaler.unscale_(self.opt)
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        if self.scaler:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.sched.step()
        self.ema.step(self.params)
        self.opt.zero_grad(set_to_none=True)

    # --- state ------------------------------------------------------------------------------------------
    def save_state(self, step: int) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"ema.{i}": p for i, p in enumerate(self.ema.shadow_params)})
        save_training_state(self.out / STATE, tensors, self.opt,
                            {"step": step, "ema_step": self.ema.optimization_step, "sched": self.sched.state_dict()})

    def resume(self) -> int:
        path = self.out / STATE
        if not path.is_file():
            return 0
        tensors, meta = load_training_state(path, self.opt)
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        for i, p in enumerate(self.ema.shadow_params):
            p.data.copy_(tensors[f"ema.{i}"])
        self.ema.optimization_step = meta["ema_step"]
        self.sched.load_state_dict(meta["sched"])
        log.info("resumed from %s at step %d", path, meta["step"])
        return int(meta["step"])

    def log(self, step: int, values: dict[str, float]) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "lr": self.sched.get_last_lr()[0], **values}) + "\n")

    # --- outputs ----------------------------------------------------------------------------------------
    def ema_model(self) -> RePoseModel:
        """A copy of the model holding the EMA weights, in eval mode."""
        model = copy.deepcopy(self.model)
        self.ema.copy_to([p for p in model.parameters() if p.requires_grad])
        return model.eval()

    @torch.no_grad()
    def sample_sheet(self, step: int, source, n: int = 4) -> Path:
        """source | target pose | warped source | sample (EMA, the default sampler, cfg and denoise users get) |
        ground truth, one row per val pair."""
        model = self.ema_model()
        batch = source.preview(n, self.device)
        alignment = model.condition(batch["source"], batch["source_pose"], batch["target_pose"], self.cfg.iterations)
        sched = make_scheduler(DEFAULT_SCHEDULER, dict(model.train_scheduler.config))
        gen = torch.Generator().manual_seed(0)
        noise = torch.randn(batch["target"].shape, generator=gen).to(self.device)
        step_noise = gen if self.device.type == "cpu" else torch.Generator(self.device).manual_seed(1)
        off = model.offset(alignment)
        x = sample(model.denoise_fn(alignment, DEFAULT_CFG), noise, sched, self.cfg.sample_steps,
                   generator=step_noise, strength=DEFAULT_DENOISE, init=alignment.warped - off) + off
        h, w = x.shape[-2:]
        cols = [(batch["source"] + 1) / 2, render_skeleton(batch["target_pose"].cpu(), h, w).to(self.device),
                (alignment.warped.clamp(-1, 1) + 1) / 2, (x.clamp(-1, 1) + 1) / 2, (batch["target"] + 1) / 2]
        grid = torch.stack(cols, 1).flatten(0, 1).cpu()
        path = save_grid(grid, self.out / "samples" / f"step_{step:06d}.png", ncol=len(cols))
        model.train()
        return path
