"""Train the pose interaction field on procedural poses (Pose-NDF recipe) and write a safetensors file.

    python -m reposedm_core.train field --out reposedm_core/weights/pose_field.safetensors

Loss = L1(f(corrupted), target distance) + w_valid |f(valid)| + w_eik (|grad f| - 1)^2 on corrupted poses.
Seeded and deterministic on the CPU; the calibration figures (valid-pose percentiles) go into the metadata.
"""
from __future__ import annotations

import argparse
import logging
import math
import time

import torch
from tqdm import tqdm

from ..field.api import save_pose_field
from ..field.data import KINDS, STRENGTHS
from ..field.dataset import build, combos_named
from ..field.model import TRAINING_SCALE, FieldConfig, PoseInteractionField

log = logging.getLogger("reposedm.train.field")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="safetensors file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--poses", type=int, default=200_000, help="valid (and as many corrupted) training poses")
    p.add_argument("--bank", type=int, default=50_000, help="valid poses in the nearest-neighbour bank")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--batch", type=int, default=512, help="valid + corrupted poses per step, each")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--w-valid", type=float, default=1.0)
    p.add_argument("--w-eikonal", type=float, default=0.1)
    p.add_argument("--dim", type=int, default=FieldConfig.dim)
    p.add_argument("--layers", type=int, default=FieldConfig.layers)
    p.add_argument("--heads", type=int, default=FieldConfig.heads)
    p.add_argument("--mlp-ratio", type=int, default=FieldConfig.mlp_ratio)
    p.add_argument("--head-hidden", type=int, default=FieldConfig.head_hidden)
    p.add_argument("--mine-repairs", default=None, metavar="FIELD",
                   help="hard negatives: a field (.safetensors, or 'shipped') whose repairs of a share of the "
                        "corrupted training poses are added with their real target distance (its blind spots)")
    p.add_argument("--mine-share", type=float, default=0.25, help="share of corrupted poses repaired by --mine-repairs")
    p.add_argument("--exclude-kinds", default="", metavar="KIND,KIND",
                   help="corruptions not to train on: kinds (field/data.py KINDS) or kind:strength, e.g. "
                        "legs_shifted or legs_shifted:weak,legs_shifted:medium")
    p.add_argument("--mine-min-target", type=float, default=0.3,
                   help="keep a mined repair only when it is at least this far (body units) from every valid pose")


def eikonal(model: PoseInteractionField, xy: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """mean (|grad_xy f| - 1)^2 over poses, gradient w.r.t. the normalised present joints (Pose-NDF eq. 5)."""
    xy = xy.detach().requires_grad_(True)
    d = model.forward_normalised(xy, present)
    (g,) = torch.autograd.grad(d.sum(), xy, create_graph=True)
    norm = torch.sqrt(((g * present.unsqueeze(-1)) ** 2).sum((1, 2)) + 1e-9)
    return ((norm - 1) ** 2).mean()


@torch.no_grad()
def calibrate(model: PoseInteractionField, xy: torch.Tensor, present: torch.Tensor) -> dict[str, float]:
    model.eval()
    d = torch.cat([model.forward_normalised(xy[i:i + 4096], present[i:i + 4096]) for i in range(0, len(xy), 4096)])
    q = torch.quantile(d, torch.tensor([0.5, 0.95, 0.99]))
    return {"valid_p50": float(q[0]), "valid_p95": float(q[1]), "valid_p99": float(q[2])}


def run(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    t0 = time.time()
    miner = None
    if args.mine_repairs:
        from ..field import load_pose_field

        miner = load_pose_field(None if args.mine_repairs == "shipped" else args.mine_repairs)
    excluded = [k for k in args.exclude_kinds.split(",") if k]
    kinds = None
    if excluded:
        drop = combos_named(excluded)
        kinds = tuple(f"{KINDS[k]}:{STRENGTHS[s]}" for k in range(len(KINDS)) for s in range(len(STRENGTHS))
                      if (k, s) not in drop)
    with tqdm(total=args.poses, desc="field data", unit="pose") as bar:
        data = build(args.seed, args.poses, args.bank, progress=bar.update, miner=miner, mine_share=args.mine_share,
                     mine_min_target=args.mine_min_target, kinds=kinds)
    with tqdm(total=max(2000, args.poses // 20), desc="held-out data", unit="pose") as bar:
        held = build(args.seed + 1_000_003, max(2000, args.poses // 20), args.bank // 2, progress=bar.update)
    log.info("data: %d valid, %d corrupted poses in %.0f s", len(data.valid_xy), len(data.bad_xy), time.time() - t0)

    model = PoseInteractionField(FieldConfig(dim=args.dim, layers=args.layers, heads=args.heads,
                                              mlp_ratio=args.mlp_ratio, head_hidden=args.head_hidden,
                                              scale=TRAINING_SCALE))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = max(1, min(len(data.valid_xy), len(data.bad_xy)) // args.batch)
    total = args.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 200) * 0.5 * (1 + math.cos(math.pi * s / total)))
    gen = torch.Generator().manual_seed(args.seed + 7)
    with tqdm(total=total, desc="field training", unit="step") as bar:
        for epoch in range(args.epochs):
            model.train()
            pv = torch.randperm(len(data.valid_xy), generator=gen)
            pc = torch.randperm(len(data.bad_xy), generator=gen)
            for s in range(steps_per_epoch):
                iv, ic = pv[s * args.batch:(s + 1) * args.batch], pc[s * args.batch:(s + 1) * args.batch]
                f_valid = model.forward_normalised(data.valid_xy[iv], data.valid_present[iv])
                f_bad = model.forward_normalised(data.bad_xy[ic], data.bad_present[ic])
                l_bad = (f_bad - data.target[ic]).abs().mean()
                l_valid = f_valid.abs().mean()
                half = ic[: args.batch // 4]
                l_eik = eikonal(model, data.bad_xy[half], data.bad_present[half])
                loss = l_bad + args.w_valid * l_valid + args.w_eikonal * l_eik
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                bar.update()
                if s % 50 == 0:
                    bar.set_postfix(bad=f"{l_bad.item():.3f}", valid=f"{l_valid.item():.3f}", eik=f"{l_eik.item():.3f}")
            cal = calibrate(model, held.valid_xy, held.valid_present)
            with torch.no_grad():
                f_held = model.forward_normalised(held.bad_xy[:8192], held.bad_present[:8192])
                err = (f_held - held.target[:8192]).abs().mean().item()
            log.info("epoch %d: held-out valid p95 %.3f, corrupted L1 %.3f", epoch + 1, cal["valid_p95"], err)
    model.eval()
    calibration = {**calibrate(model, held.valid_xy, held.valid_present), "seed": args.seed, "poses": args.poses,
                   "epochs": args.epochs, "mined_from": args.mine_repairs or "", "mine_share": args.mine_share,
                   "mine_min_target": args.mine_min_target, "excluded_kinds": ",".join(excluded),
                   "train_seconds": round(time.time() - t0, 1)}
    path = save_pose_field(model, args.out, calibration)
    log.info("wrote %s (%.0f KB) in %.0f s; calibration %s", path, path.stat().st_size / 1024, time.time() - t0,
             calibration)
