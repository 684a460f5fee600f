"""Train the repair proposer (where a broken pose's joints belonged) and write a safetensors file.

    python -m reposedm_core.train repair --out reposedm_core/weights/pose_repair.safetensors

Data: the pose field's procedural data (``field.dataset.build``: the realistic pose world, every corruption kind
and strength, annotation jitter on every pose) -- each corrupted pose paired with the valid pose it came from,
expressed in the corrupted pose's normalised frame, plus valid jittered poses paired with themselves. Loss:
smooth L1 on the present joints' positions + 0.1 x BCE on "this joint was moved beyond the jitter". Seeded and
deterministic on the CPU. The evaluation seed of ``eval field`` (424242) is disjoint from these seeds.
"""
from __future__ import annotations

import argparse
import logging
import time

import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..field.dataset import build
from ..field.model import TRAINING_SCALE, normalise, root_and_unit
from ..field.proposer import ProposerConfig, RepairProposer, save_repair_proposer

log = logging.getLogger("reposedm.train.repair")
TOUCHED = 0.15       # body units: a joint moved further than this by its corruption counts as broken (the jitter
                     # alone moves a joint up to ~0.14 on the face)
SANE = 4.0           # body units: pairs with a joint further than this from the root are dropped (a pose whose
                     # body scale collapsed; squared errors of such outliers wrecked training in a first run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="safetensors file to write")
    p.add_argument("--seed", type=int, default=6_000_013)
    p.add_argument("--poses", type=int, default=2_000_000, help="procedural poses drawn (about as many corrupted)")
    p.add_argument("--valid-share", type=float, default=0.25,
                   help="valid poses added (mapped to themselves), as a share of the corrupted ones")
    p.add_argument("--stretch", type=float, default=0.0, metavar="SHARE",
                   help="this share of the corrupted pairs has its corruption scaled by a factor drawn from "
                        "0.5..--stretch-max (breakages beyond the data's strengths, as a user's can be)")
    p.add_argument("--stretch-max", type=float, default=3.0)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=ProposerConfig.width)
    p.add_argument("--layers", type=int, default=ProposerConfig.layers)


def stretch(bad_kp: torch.Tensor, source_kp: torch.Tensor, share: float, top: float,
            gen: torch.Generator) -> torch.Tensor:
    """``bad_kp`` with a ``share`` of the poses moved further from (or back toward) their source: the corruption
    (and its jitter) scaled by a factor drawn uniformly from 0.5..``top``."""
    if share <= 0:
        return bad_kp
    n = len(bad_kp)
    pick = torch.rand(n, generator=gen) < share
    factor = torch.where(pick, 0.5 + (top - 0.5) * torch.rand(n, generator=gen), torch.ones(n))
    present = bad_kp[..., 2:] > 0
    xy = source_kp[..., :2] + factor[:, None, None] * (bad_kp[..., :2] - source_kp[..., :2])
    return torch.cat([torch.where(present, xy, bad_kp[..., :2]), bad_kp[..., 2:]], -1)


def pairs(bad_kp: torch.Tensor, source_kp: torch.Tensor, valid_kp: torch.Tensor, valid_share: float):
    """(input xy, present, target xy, broken) in each input pose's normalised frame, outliers dropped."""
    q, present = normalise(bad_kp, TRAINING_SCALE)
    centre, unit = root_and_unit(bad_kp, TRAINING_SCALE)
    target = (source_kp[..., :2] - centre[:, None]) / unit[:, None, None] * present.unsqueeze(-1)
    broken = ((q - target).norm(dim=-1) > TOUCHED) & present
    n_valid = min(len(valid_kp), int(valid_share * len(bad_kp)))
    vq, vp = normalise(valid_kp[:n_valid], TRAINING_SCALE)
    q, present = torch.cat([q, vq]), torch.cat([present, vp])
    target, broken = torch.cat([target, vq]), torch.cat([broken, torch.zeros_like(vp)])
    keep = (q.abs().amax((1, 2)) < SANE) & (target.abs().amax((1, 2)) < SANE)
    return q[keep], present[keep], target[keep], broken[keep]


def loss_terms(model: RepairProposer, q, present, target, broken) -> tuple[torch.Tensor, torch.Tensor]:
    out, logit = model(q, present)
    m = present.to(q.dtype)
    l_xy = (F.smooth_l1_loss(out, target, beta=0.1, reduction="none").sum(-1) * m).sum() / m.sum().clamp_min(1)
    l_broken = (F.binary_cross_entropy_with_logits(logit, broken.to(q.dtype), reduction="none") * m).sum() \
        / m.sum().clamp_min(1)
    return l_xy, l_broken


def run(args: argparse.Namespace) -> None:
    if args.poses < 100 or args.epochs < 1 or args.batch < 1:
        raise SystemExit("--poses must be >= 100, --epochs and --batch >= 1")
    torch.manual_seed(args.seed)
    t0 = time.time()
    with tqdm(total=args.poses, desc="repair data", unit="pose") as bar:
        data = build(args.seed, args.poses, 1000, progress=bar.update, fit_steps=0)
    bad = stretch(data.bad_kp, data.source_kp, args.stretch, args.stretch_max,
                  torch.Generator().manual_seed(args.seed + 11))
    q, present, target, broken = pairs(bad, data.source_kp, data.valid_kp, args.valid_share)
    held = build(args.seed + 1_000_003, max(2000, args.poses // 50), 1000, fit_steps=0)
    hq, hp, ht, hb = pairs(held.bad_kp, held.source_kp, held.valid_kp, 0.0)
    log.info("data: %d pairs (%.1f %% of joints broken) in %.0f s", len(q), 100 * float(broken[present].float().mean()),
             time.time() - t0)
    model = RepairProposer(ProposerConfig(width=args.width, layers=args.layers))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    total = args.epochs * max(1, len(q) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=total)
    gen = torch.Generator().manual_seed(args.seed + 7)
    step = 0
    with tqdm(total=total, desc="repair training", unit="step") as bar:
        for epoch in range(args.epochs):
            model.train()
            order = torch.randperm(len(q), generator=gen)
            for s in range(total // args.epochs):
                i = order[s * args.batch:(s + 1) * args.batch]
                l_xy, l_broken = loss_terms(model, q[i], present[i], target[i], broken[i])
                opt.zero_grad(set_to_none=True)
                (l_xy + 0.1 * l_broken).backward()
                opt.step()
                sched.step()
                step += 1
                bar.update()
                if s % 50 == 0:
                    bar.set_postfix(xy=f"{l_xy.item():.4f}", broken=f"{l_broken.item():.3f}")
            model.eval()
            with torch.no_grad():
                out, _ = model(hq, hp)
                err = ((out - ht).norm(dim=-1) * hp).sum() / hp.sum()
                base = ((hq - ht).norm(dim=-1) * hp).sum() / hp.sum()
            log.info("epoch %d: held-out corrupted poses, mean joint error %.4f (input %.4f) body units",
                     epoch + 1, float(err), float(base))
    extra = {"seed": args.seed, "poses": args.poses, "pairs": len(q), "epochs": args.epochs, "steps": step,
             "stretch": args.stretch, "stretch_max": args.stretch_max,
             "held_out_joint_error": round(float(err), 4), "held_out_input_error": round(float(base), 4),
             "train_seconds": round(time.time() - t0, 1)}
    path = save_repair_proposer(model, args.out, extra)
    log.info("wrote %s (%.0f KB) in %.0f s: %s", path, path.stat().st_size / 1024, time.time() - t0, extra)
