"""Person-layer warp on real photos (issue 14): same-person pairs from the sports2d demo video, before any SD.

For every pair (source frame -> target frame of the same walking person; poses and masks by BlazePose) the source
is moved into the target frame's pose three ways, and each is compared with the real target frame inside the
target person's mask (masked SSIM, Market-1501 style, on the crop around that mask):

* person layer: ``reposedm_core.photo.person_layer_warp`` (only the person moved, background kept);
* whole-image limb warp: ``models.flow.limb_flow`` applied to the whole frame (RecurrentPoseAlign, iterations 0),
  the flow computed at 512 px and resized;
* whole-image refined warp: the shipped demo model's RecurrentPoseAlign preview (iterations 3).

The refined warp is the demo model's 96x64 frame resized back to the photo, so it is also a blur of the photo, and
masked SSIM rewards blur over sharp, slightly misplaced edges: a second table passes every warp through that
same 96x64 frame (``Letterbox.image_in`` then ``image_out``, as the refined warp is) and compares them at equal
resolution.

Also: pixels outside ``region`` that differ from the source (must be 0), how much of the vacated and disoccluded
pixels the inpaint mask covers (must be 1), BlazePose's reading of the composite vs the target pose (a reader
that did not produce it; torso lengths, joints both show), and the seconds per image.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_person_layer.py [--save outputs/issue14]
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

log = logging.getLogger("bench_person_layer")
FRAMES = (60, 80, 100, 120, 140, 160)     # the walking woman, in full view
GAP = 40                                  # frames between source and target


def _frames() -> dict[int, torch.Tensor]:
    import av
    from harness.photos import PHOTOS

    out = {}
    with av.open(str(PHOTOS / "demo.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in FRAMES:
                out[i] = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float() / 255
            if i >= max(FRAMES):
                break
    return out


def _masked_ssim(image: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> float:
    from reposedm_core.eval.image_metrics import ssim_skimage

    ys, xs = torch.nonzero(mask[0, 0] > 0.5, as_tuple=True)
    y0, y1 = max(0, int(ys.min()) - 16), int(ys.max()) + 17
    x0, x1 = max(0, int(xs.min()) - 16), int(xs.max()) + 17
    crop = lambda t: t[..., y0:y1, x0:x1]
    return ssim_skimage(crop(image), crop(truth), crop((mask > 0.5).float()))


def _pose_error(read: torch.Tensor, target: torch.Tensor) -> float:
    """Mean joint distance in target torso lengths over the joints both show (all missing: 10, "nobody read")."""
    from reposedm_core.models.flow import _torso_length

    both = (read[..., 2] > 0) & (target[..., 2] > 0)
    d = (read[..., :2] - target[..., :2]).norm(dim=-1)
    if not both.any():
        return 10.0
    return float((d * both).sum() / both.sum() / _torso_length(target)[0])


def _best_of_two(est, image: torch.Tensor, target: torch.Tensor) -> float:
    """Reading error of the nearer of BlazePose's two most confident people: before SD the vacated region is a
    person-shaped blur that the detector may pick first; SD paints it over. The same rule for every warp."""
    people = est.people(image, max_people=2)
    errors = [_pose_error(people.keypoints[i:i + 1], target) for i in range(len(people))]
    return min(errors, default=10.0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save", type=Path, default=None, help="folder for a PNG per pair")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    from reposedm_core.estimator import load_blazepose
    from reposedm_core.models import load_model
    from reposedm_core.models.flow import limb_flow, resize_flow, warp
    from reposedm_core.photo import person_layer_warp, select_person_masks
    from reposedm_core.pose import render_skeleton
    from reposedm_core.utils.images import save_grid

    est, demo = load_blazepose(), load_model()
    frames = _frames()
    people = {i: est.people(im) for i, im in frames.items()}
    rows = {"person layer": [], "whole-image limb warp": [], "whole-image refined warp (demo model)": []}
    low = {name: [] for name in rows}     # every warp through the demo model's frame (equal resolution)
    reads = {name: [] for name in rows}
    best = {name: [] for name in rows}
    stats = {"outside_changed": 0, "covered": [], "source_err": [], "seconds": [], "region": []}
    for s in FRAMES:
        for t in (s + GAP, s - GAP):
            if t not in frames:
                continue
            img, truth = frames[s], frames[t]
            sp, tp = people[s].keypoints[:1], people[t].keypoints[:1]
            tmask = people[t].union_masks(1)[:, None]
            start = time.perf_counter()
            out = person_layer_warp(img, sp, tp, select_person_masks(people[s], sp))
            stats["seconds"].append(time.perf_counter() - start)
            h, w = img.shape[-2:]
            k = 512 / max(h, w)                 # the analytic flow is smooth: computed at 512 px, resized
            sk = torch.tensor([k, k, 1.0])
            whole = warp(img, resize_flow(limb_flow(sp * sk, tp * sk, round(h * k), round(w * k)), h, w))
            refined = demo.align(img, sp, tp, iterations=3).warped
            frame = demo.align(img, sp, tp, iterations=0).frame
            for name, im in zip(rows, (out.composite, whole, refined)):
                rows[name].append(_masked_ssim(im, truth, tmask))
                low[name].append(_masked_ssim(frame.image_out(frame.image_in(im)), truth, tmask))
                reads[name].append(_pose_error(est.predict(im).keypoints, tp))
                best[name].append(_best_of_two(est, im, tp))
            outside = ~out.region.expand(-1, 3, -1, -1)
            stats["outside_changed"] += int((out.composite[outside] != img[outside]).sum())
            invent = out.vacated | out.disoccluded
            stats["covered"].append(float((out.inpaint[invent] >= 0.5).float().mean()) if invent.any() else 1.0)
            stats["region"].append(float(out.region.float().mean()))
            read = est.predict(out.composite).keypoints
            stats["source_err"].append(_pose_error(sp, tp))
            log.info("pair %d -> %d: SSIM %s, reading error %s, nearer of 2: %s", s, t,
                     " / ".join(f"{rows[k][-1]:.3f}" for k in rows), " / ".join(f"{reads[k][-1]:.2f}" for k in reads),
                     " / ".join(f"{best[k][-1]:.2f}" for k in best))
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                ys, xs = torch.nonzero(out.region[0, 0] | (tmask[0, 0] > 0.5), as_tuple=True)
                y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
                size = (384, max(8, 384 * (x1 - x0) // (y1 - y0)))
                box = (slice(y0, y1), slice(x0, x1))
                tiles = [img, out.composite, out.inpaint.expand(-1, 3, -1, -1), whole, refined, truth,
                         render_skeleton(read, h, w, background=out.composite[0])]
                save_grid(torch.cat([F.interpolate(x[..., box[0], box[1]], size=size, mode="area") for x in tiles]), args.save / f"pair_{s}_{t}.png", ncol=len(tiles))
    n = len(stats["seconds"])
    mean = lambda xs: sum(xs) / len(xs)
    print(f"{n} same-person pairs of the sports2d demo video ({GAP} frames apart), BlazePose poses and masks")
    print("| warp | masked SSIM inside the target person | BlazePose reading vs target (torso lengths; nobody "
          "found = 10) | the same, nearer of 2 people | pairs with nobody read |")
    print("|---|---|---|---|---|")
    for name, values in rows.items():
        missed = sum(r >= 10.0 for r in reads[name])
        print(f"| {name} | {mean(values):.3f} | {mean(reads[name]):.3f} | {mean(best[name]):.3f} | {missed}/{n} |")
    print(f"\nthe same, every warp through the demo model's {demo.config.height}x{demo.config.width} frame and back "
          "(the refined warp's own resolution): masked SSIM")
    print("| warp | masked SSIM, equal resolution |\n|---|---|")
    for name, values in low.items():
        print(f"| {name} | {mean(values):.3f} |")
    print(f"pixels outside the region that differ from the source: {stats['outside_changed']}")
    print(f"region (pixels that may change): {100 * mean(stats['region']):.1f}% of the image")
    print(f"vacated + disoccluded pixels under the inpaint mask (>= 0.5): {mean(stats['covered']):.4f}")
    print(f"the source pose vs the target pose: {mean(stats['source_err']):.3f} torso lengths (doing nothing)")
    print(f"seconds per image ({tuple(frames[FRAMES[0]].shape[-2:])} px, 1 thread): {mean(stats['seconds']):.2f}")


if __name__ == "__main__":
    main()
