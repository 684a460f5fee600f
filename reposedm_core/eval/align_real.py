"""Alignment on real photos: one person in two frames of a real video, the source frame warped into the target
frame's pose, compared with the target frame inside the target person's body mask.

    python -m reposedm_core.eval align --video .cache/photos/demo.mp4 --model shipped

The video is the sports2d demo (PyPI ``sports2d==0.8.34``, BSD-3; ``scripts/setup_env.sh test`` extracts it).
Poses and body masks are read by the BlazePose port (``estimator.load_blazepose``), which the alignment never
trained on. Each frame is cropped around its person (a 3:2 box, 1.25x the person's height) and resized to the
model frame, as a user's crop would be. Pairs: frames ``--stride`` apart, ``--gap`` or more frames between
source and target, both with exactly one person found (two people are in parts of the video) and read with
14 or more joints and a mask covering the crop's person, and on the same track (:func:`tracks`: the
video shows three people, not all of them found in every frame); ``--max-pairs`` spread evenly over all such pairs.

Rows, same pairs for every row: the model's alignment at its default iterations (the learned refinement), at
``iterations=0`` (the analytic per-limb flow it starts from), and a per-limb similarity warp with a hard
nearest-bone assignment (each target pixel takes exactly one bone's similarity transform) — the classical
baseline. With ``--results``, also the model's sampled image (the default sampler) from the default alignment -- what
a real photo through the demo model becomes -- and from the ``iterations=0`` alignment. Metrics: masked SSIM (both images multiplied by the target's BlazePose
mask, then SSIM of the papers' evaluation code) and masked L1; ``--save PNG`` writes a sheet of the first pairs
(source | target frame | warp | result per model) to look at.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from .metrics import markdown_table, write_report

log = logging.getLogger("reposedm.eval.align")
DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / ".cache" / "photos" / "demo.mp4"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", default=str(DEFAULT_VIDEO), help="a video of one person (default: the sports2d demo)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="a transfer model whose alignment to evaluate (repeatable; PATH 'shipped' = the demo model)")
    p.add_argument("--stride", type=int, default=6, help="read every N-th frame")
    p.add_argument("--gap", type=int, default=12, help="least frames between source and target")
    p.add_argument("--max-pairs", type=int, default=120)
    p.add_argument("--results", action="store_true", help="also sample each model (default sampler) and score it")
    p.add_argument("--denoise", type=float, default=None,
                   help="the results' denoise (share of the schedule, from the noised warp; default: the sampler's)")
    p.add_argument("--temperature", type=float, default=None,
                   help="the results' ddpm step-noise scale (default: the sampler's)")
    p.add_argument("--temperature-stop-t", type=int, default=None,
                   help="the timestep at and below which the steps add the scheduler's own noise (default: the "
                        "sampler's)")
    p.add_argument("--save", default=None, metavar="PNG", help="a sheet of the first 6 pairs")
    p.add_argument("--out", default="outputs/align_real.md")


def read_frames(video: str | Path, stride: int, offset: int = 0) -> tuple[list[int], torch.Tensor]:
    """Every ``stride``-th frame of a video from frame ``offset`` on, as ``[N, 3, H, W]`` float 0..1 (PyAV)."""
    try:
        import av
    except ImportError as e:
        raise ImportError("reading a video needs PyAV (pip install av)") from e
    path = Path(video)
    if not path.is_file():
        raise FileNotFoundError(f"no video at {path}: run scripts/setup_env.sh test (it extracts the sports2d demo "
                                "video into .cache/photos) or pass --video")
    idx, frames = [], []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= offset and (i - offset) % stride == 0:
                idx.append(i)
                frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).float() / 255)
    return idx, torch.stack(frames)


def crop_box(kp: torch.Tensor, aspect: float, margin: float = 1.25) -> tuple[float, float, float, float]:
    """A box (x0, y0, w, h) of height/width ``aspect`` around a pose's joints (``margin`` x its height)."""
    ok = kp[:, 2] > 0
    xy = kp[ok, :2]
    lo, hi = xy.min(0).values, xy.max(0).values
    cx, cy = float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2
    h = max(float(hi[1] - lo[1]), float(hi[0] - lo[0]) * aspect) * margin
    w = h / aspect
    return cx - w / 2, cy - h / 2, w, h


def pose_in_box(kp: torch.Tensor, box, height: int, width: int) -> torch.Tensor:
    x0, y0, w, h = box
    out = kp.clone()  # pixel centres at integers in both frames
    out[:, 0] = (kp[:, 0] + 0.5 - x0) / w * width - 0.5
    out[:, 1] = (kp[:, 1] + 0.5 - y0) / h * height - 0.5
    return out * (kp[:, 2:] > 0)


def read_people(frames: torch.Tensor, height: int, width: int, min_joints: int = 14):
    """BlazePose on every frame -> per usable frame: crop [3, h, w], pose [18, 3] and mask [1, h, w] (crop).
    A frame is usable when exactly one person is found (so both frames of a pair show the same person) with at
    least ``min_joints`` joints read; ``None`` otherwise."""
    from ..estimator import load_blazepose
    from ..utils.images import crop_resize

    est = load_blazepose()
    out = []
    with torch.no_grad():
        for i in range(len(frames)):
            people = est.people(frames[i:i + 1], max_people=2)
            if len(people) != 1:
                out.append(None)
                continue
            kp = people.keypoints[0].float()
            if int((kp[:, 2] > 0).sum()) < min_joints:
                out.append(None)
                continue
            box = crop_box(kp, height / width)
            mask = people.masks()[0].float()
            image, m = crop_resize(frames[i], box, height, width), crop_resize(mask[None], box, height, width)
            if float(m.mean()) < 0.12:  # a mask that misses the person the joints outline
                out.append(None)
                continue
            out.append({"image": image, "pose": pose_in_box(kp, box, height, width), "mask": m,
                        "signature": signature(image, m), "box": box})
    return out


def signature(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean colour of the person's upper and lower half (inside the mask): who it is, roughly (clothes)."""
    rows = mask[0].sum(1)
    ys = torch.arange(len(rows), dtype=torch.float32)
    mid = float((rows * ys).sum() / rows.sum().clamp_min(1e-6))
    halves = []
    for sl in (slice(0, int(mid)), slice(int(mid), None)):
        m = mask[:, sl]
        halves.append((image[:, sl] * m).sum((1, 2)) / m.sum().clamp_min(1e-6))
    return torch.cat(halves)


def tracks(frame_index: list[int], people: list, step: float = 0.35, tolerance: float = 0.06) -> list[int]:
    """A track id per reading (``-1`` for ``None``): a reading continues the previous reading's track when its box
    centre moved less than ``step`` box heights per 6 frames, its box height changed by less than 1.4x and its clothes colours (:func:`signature`) differ
    by less than ``tolerance``; otherwise a new track starts (another person, or the same one lost)."""
    ids, last, current = [], None, -1
    for i, p in zip(frame_index, people):
        if p is None:
            ids.append(-1)
            continue
        if last is not None:
            (j, q) = last
            (x0, y0, w0, h0), (x1, y1, w1, h1) = q["box"], p["box"]
            moved = ((x0 + w0 / 2 - x1 - w1 / 2) ** 2 + (y0 + h0 / 2 - y1 - h1 / 2) ** 2) ** 0.5 / max(h0, h1)
            same = moved < step * max(1.0, (i - j) / 6) and max(h0, h1) / min(h0, h1) < 1.4 and \
                float((p["signature"] - q["signature"]).abs().max()) < tolerance
        if last is None or not same:
            current += 1
        ids.append(current)
        last = (i, p)
    return ids


def photo_pairs(video: str | Path, height: int, width: int, stride: int = 6, gap: int = 12, max_pairs: int = 120,
                offset: int = 0) -> dict:
    """Same-person pairs of a video's frames, each cropped around its person to ``height x width``.

    Frames ``stride`` apart from ``offset`` on (:func:`read_frames`), usable as :func:`read_people` says; pairs
    ``gap`` or more frames apart on one track (:func:`tracks`), at most ``max_pairs`` spread evenly over all.
    Returns ``source`` / ``target`` ``[N, 3, H, W]``, ``source_pose`` / ``target_pose`` ``[N, 18, 3]`` (crop
    pixels), ``mask`` ``[N, 1, H, W]`` (the target person's) and ``usable`` (the count of usable frames).
    """
    idx, frames = read_frames(video, stride, offset)
    people = read_people(frames, height, width)
    usable = [k for k, p in enumerate(people) if p is not None]
    track = tracks(idx, people)
    pairs = [(a, b) for a in usable for b in usable if abs(idx[a] - idx[b]) >= gap and track[a] == track[b]]
    if len(pairs) > max_pairs:  # evenly spread over all pairs
        pairs = [pairs[round(k * (len(pairs) - 1) / (max_pairs - 1))] for k in range(max_pairs)]
    if not pairs:
        raise SystemExit(f"no usable frame pairs in {video} (usable frames: {len(usable)})")

    def pick(key: str, side: int) -> torch.Tensor:
        return torch.stack([people[pair[side]][key] for pair in pairs])

    return {"source": pick("image", 0), "target": pick("image", 1), "source_pose": pick("pose", 0),
            "target_pose": pick("pose", 1), "mask": pick("mask", 1), "usable": len(usable)}


def similarity_warp_flow(source: torch.Tensor, target: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The classical baseline: per-limb similarity transforms with a hard nearest-bone assignment."""
    from ..models.flow import limb_flow

    return limb_flow(source, target, height, width, assign_scale=0.01, body_scale=10.0)


def masked_scores(images: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
    from .image_metrics import ssim_skimage

    l1 = ((images - truth).abs() * masks).sum((1, 2, 3)) / (3 * masks.sum((1, 2, 3)).clamp_min(1))
    return {"ssim": ssim_skimage(images, truth, masks), "l1": float(l1.mean())}


def run(args: argparse.Namespace) -> None:
    from ..models import load_model
    from ..models.flow import warp

    specs = args.model or ["shipped=shipped"]
    models = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        models[name] = load_model(None if path in ("", "shipped") else path)
    first = next(iter(models.values()))
    h, w = first.config.height, first.config.width
    data = photo_pairs(args.video, h, w, args.stride, args.gap, args.max_pairs)
    src, tgt, sp, tp, masks = (data[k] for k in ("source", "target", "source_pose", "target_pose", "mask"))
    rows = []
    base = warp(src * 2 - 1, similarity_warp_flow(sp, tp, h, w))
    m = masked_scores((base.clamp(-1, 1) + 1) / 2, tgt, masks)
    rows.append(["per-limb similarity warp (hard assignment)", m["ssim"], m["l1"]])
    sheet = [src[:6], tgt[:6]]
    for name, model in models.items():
        for iterations, label in ((None, f"{name}: default ({model.config.iterations} iterations)"),
                                  (0, f"{name}: iterations=0 (analytic flow)")):
            chunks = {i: model.align(src[i:i + 16], sp[i:i + 16], tp[i:i + 16], iterations=iterations)
                      for i in range(0, len(src), 16)}
            warped = torch.cat([a.warped for a in chunks.values()])
            m = masked_scores(warped, tgt, masks)
            rows.append([label, m["ssim"], m["l1"]])
            log.info("%s: %s", label, m)
            if iterations is None:
                sheet.append(warped[:6])
                default = chunks      # the alignments the result is sampled from
            else:
                analytic = chunks
        if args.results:
            extra = {k: getattr(args, k) for k in ("denoise", "temperature", "temperature_stop_t")
                     if getattr(args, k) is not None}
            how = ", ".join(["default sampler"] + [f"{k} {v:g}" for k, v in extra.items()])
            # the result from each alignment: does the sampler still need the refinement on photos?
            for which, alignments in (("default alignment", default), ("iterations=0", analytic)):
                result = torch.cat([model.sample(a, seed=i, **extra) for i, a in alignments.items()])
                m = masked_scores(result, tgt, masks)
                rows.append([f"{name}: sampled result ({which}, {how})", m["ssim"], m["l1"]])
                log.info("%s result (%s): %s", name, which, m)
                if alignments is default:
                    sheet.append(result[:6])
    if args.save:
        from ..utils.images import save_grid

        save_grid(torch.stack(sheet, 1).flatten(0, 1), args.save, ncol=len(sheet))
        log.info("wrote %s (columns: source | target frame | per model: warp%s)", args.save,
                 " | result" if args.results else "")
    table = markdown_table(["alignment", "masked SSIM", "masked L1"], rows)
    report = (f"# Alignment on real photos\n\n{Path(args.video).name}: {len(src)} same-person pairs from "
              f"{data['usable']} usable frames (every {args.stride}th, >= {args.gap} frames apart), {h}x{w} crops; "
              f"poses and target body masks read by BlazePose.\n\n{table}\n")
    write_report(args.out, report, log)
