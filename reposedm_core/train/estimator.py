"""Train the small keypoint estimator on synthetic train-split people and write a safetensors file.

    OMP_NUM_THREADS=1 python -m reposedm_core.train estimator --out reposedm_core/weights/estimator.safetensors

People are rendered at 256 x 176, 128 x 88, 96 x 64 and 160 x 160, letterboxed into the working frame and
kept in an in-memory pool (uint8) that is refreshed with newly rendered people as training goes (the oldest
leave), so rendering costs a fraction of the time while every image is seen only a few times. Augmentation,
targets and loss: ``reposedm_core.estimator.training``. AdamW, warm-up + cosine schedule, EMA of the weights
(the EMA is what is saved), seeded. Held-out validation-split people report PCK@0.1 as it goes.

The shipped weights are these defaults: 5500 steps of 32, 36,928 people rendered, 30 min on one shared CPU thread
(``OMP_NUM_THREADS=1 nice -n 5``), validation PCK@0.1 0.77.
"""
from __future__ import annotations

import argparse
import logging
import math
import time

import torch
from tqdm import tqdm

from ..data.synthetic import SyntheticWorld, render_people
from ..estimator.metrics import keypoint_scores
from ..estimator.small import SmallEstimatorConfig, SmallKeypointNet, save_small_estimator
from ..estimator.training import RENDER_SIZES, augment, loss_terms, render_batch

log = logging.getLogger("reposedm.train.estimator")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="safetensors file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=5500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--pool", type=int, default=4000, help="rendered people kept in memory")
    p.add_argument("--refresh", type=int, default=96, help="new people rendered every --refresh-every steps")
    p.add_argument("--refresh-every", type=int, default=16)
    p.add_argument("--chunk", type=int, default=48, help="people per render call")
    p.add_argument("--coord-weight", type=float, default=0.5, help="weight of the coordinate L1 (cells)")
    p.add_argument("--ema", type=float, default=0.998, help="EMA decay of the saved weights (0 = no EMA)")
    p.add_argument("--val", type=int, default=96, help="validation people per size for the progress log")
    p.add_argument("--log-every", type=int, default=500)
    p.add_argument("--channels", type=int, nargs=4, default=list(SmallEstimatorConfig.channels))
    p.add_argument("--blocks", type=int, nargs=3, default=list(SmallEstimatorConfig.blocks))


class Pool:
    """A ring of rendered working-frame people: ``image [N, 3, h, w]`` uint8, ``xy [N, 18, 2]``, ``vis [N, 18]``."""

    def __init__(self, size: int, cfg: SmallEstimatorConfig, seed: int) -> None:
        self.size, self.cfg = size, cfg
        self.world = SyntheticWorld("train", seed=seed)
        self.gen = torch.Generator().manual_seed(seed + 11)
        self.image = torch.zeros(size, 3, cfg.work_height, cfg.work_width, dtype=torch.uint8)
        self.xy = torch.zeros(size, 18, 2)
        self.vis = torch.zeros(size, 18, dtype=torch.long)
        self.filled, self.cursor, self.next_person = 0, 0, 0
        self.rendered = 0

    def render(self, n: int) -> None:
        """Render ``n`` new people (two poses per identity) into the oldest slots."""
        shares = torch.tensor([s for *_, s in RENDER_SIZES])
        k = int(torch.multinomial(shares, 1, generator=self.gen))
        h, w = RENDER_SIZES[k][:2]
        people = range(self.next_person, self.next_person + (n + 1) // 2)
        self.next_person += len(people)
        ids = [self.world.identity_seed(i) for i in people]
        poses = [s for i in people for s in self.world.pose_seeds(i)]
        out = render_batch([i for i in ids for _ in range(2)][:n], poses[:n], h, w,
                           self.cfg.work_height, self.cfg.work_width)
        idx = (torch.arange(n) + self.cursor) % self.size
        self.image[idx], self.xy[idx], self.vis[idx] = out["image"], out["xy"], out["visibility"]
        self.cursor = (self.cursor + n) % self.size
        self.filled = min(self.size, self.filled + n)
        self.rendered += n

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(self.filled, (n,), generator=gen)
        return self.image[idx], self.xy[idx], self.vis[idx]


def validation_set(n: int) -> list[tuple[str, dict[str, torch.Tensor]]]:
    world = SyntheticWorld("val")
    ids = [world.identity_seed(i) for i in range(n)]
    poses = [world.pose_seeds(i)[0] for i in range(n)]
    return [(f"{h}x{w}", render_people(ids, poses, h, w)) for h, w in ((256, 176), (96, 64))]


@torch.no_grad()
def validate(model: SmallKeypointNet, sets: list[tuple[str, dict[str, torch.Tensor]]]) -> dict[str, float]:
    model.eval()
    res = {}
    for name, data in sets:
        pred = torch.cat([model(data["image"][i:i + 64]) for i in range(0, len(data["image"]), 64)])
        res[name] = keypoint_scores(pred, data["joints2d"], data["visibility"])["all"]["pck@0.1"]
    return res


def run(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    t0 = time.time()
    cfg = SmallEstimatorConfig(channels=tuple(args.channels), blocks=tuple(args.blocks))
    model = SmallKeypointNet(cfg)
    ema = SmallKeypointNet(cfg)
    ema.load_state_dict(model.state_dict())
    ema.eval()
    n_params = sum(p.numel() for p in model.parameters())
    pool = Pool(args.pool, cfg, args.seed)
    with tqdm(total=args.pool, desc="rendering pool", unit="person") as bar:
        while pool.filled < args.pool:
            n = min(args.chunk, args.pool - pool.filled)
            pool.render(n)
            bar.update(n)
    val = validation_set(args.val)
    log.info("estimator: %d parameters; pool of %d people in %.0f s", n_params, args.pool, time.time() - t0)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = max(1, min(200, args.steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    gen = torch.Generator().manual_seed(args.seed + 5)
    with tqdm(total=args.steps, desc="estimator training", unit="step") as bar:
        for step in range(args.steps):
            if step and step % args.refresh_every == 0:
                for _ in range(max(1, args.refresh // args.chunk)):
                    pool.render(min(args.chunk, args.refresh))
            model.train()
            image, xy, vis = augment(*pool.sample(args.batch, gen), gen)
            terms = loss_terms(model, image, xy, vis, cfg.sigma)
            loss = terms["heatmap"] + args.coord_weight * terms["coord"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            with torch.no_grad():
                decay = min(args.ema, (1 + step) / (10 + step)) if args.ema > 0 else 0.0
                for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
                    if e.is_floating_point():
                        e.mul_(decay).add_(m.detach(), alpha=1 - decay)
                    else:
                        e.copy_(m)
            bar.update()
            if step % 25 == 0:
                bar.set_postfix(hm=f"{terms['heatmap'].item():.2f}", coord=f"{terms['coord'].item():.3f}",
                                beta=f"{model.log_beta.exp().item():.2f}")
            if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
                log.info("step %d: val PCK@0.1 %s (EMA weights); %d people rendered so far", step + 1,
                         {k: round(v, 3) for k, v in validate(ema, val).items()}, pool.rendered)
    extra = {"seed": args.seed, "steps": args.steps, "batch": args.batch, "people_rendered": pool.rendered,
             "train_seconds": round(time.time() - t0, 1), "val_pck@0.1": validate(ema, val)}
    path = save_small_estimator(ema, args.out, extra)
    log.info("wrote %s (%.0f KB) in %.0f s; %s", path, path.stat().st_size / 1024, time.time() - t0, extra)
