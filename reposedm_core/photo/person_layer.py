"""Person-layer warp: move only the person of a photo into a target pose, over the background with them removed.

The photo path of the pack (issue 14): a model trained on synthetic people cannot render photos, but the user's
own Stable Diffusion can — if it is asked to invent only what the source never showed. So the person's own
pixels are moved, part by part, into the target pose (the analytic per-limb transforms of
:func:`~reposedm_core.models.flow.part_maps`, with no blend into the background), the place they leave is filled
from the surrounding background, body parts the source never showed start from the person's colours around them,
and a mask says what SD must paint:

    composite = warped person (alpha) over the background with the person removed
    inpaint   = vacated background  U  disoccluded body  U  a seam band around the warped person (feathered)

A target pixel takes its colour from the part nearest to it in the target pose, and only if the source pixel it
samples belongs to that part (or a neighbour, sharing a joint) in the source: an arm moved over the legs never
copies the legs. Pixels outside ``region`` (the two person regions grown by the seam) are the source's, exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.flow import BONES, _grid, _torso_length, part_maps, resize_flow, warp
from ..pose.skeleton import NUM_JOINTS
from ..utils.images import box_sum, dilate

NUM_PARTS = len(BONES) + 1        # 17 bones + the torso (see part_maps)
REACH = 2.5                       # the warped person stays within this many body half-thicknesses of its bones


def _part_adjacency() -> torch.Tensor:
    """``[18, 18]`` 1 where two parts are the same or share a joint (the torso touches every bone at the neck,
    shoulders or hips)."""
    adj = torch.eye(NUM_PARTS)
    for i, (a, b) in enumerate(BONES):
        for j, (c, d) in enumerate(BONES):
            if {a, b} & {c, d}:
                adj[i, j] = 1
        if {a, b} & {1, 2, 5, 8, 11}:
            adj[i, -1] = adj[-1, i] = 1
    return adj


_ADJ = _part_adjacency()


@dataclass
class PersonLayer:
    """The result, all at the image's size. ``composite [B, 3, H, W]`` 0..1; ``inpaint [B, 1, H, W]`` 0..1 (1 =
    SD must invent it; a soft feather outside); ``alpha [B, 1, H, W]`` the warped person's coverage; ``background
    [B, 3, H, W]`` the photo with the person removed and filled; ``vacated``, ``disoccluded`` ``[B, 1, H, W]``
    bool; ``region [B, 1, H, W]`` bool, every pixel that may differ from the source; ``flow [B, 2, H, W]``."""

    composite: torch.Tensor
    inpaint: torch.Tensor
    alpha: torch.Tensor
    background: torch.Tensor
    vacated: torch.Tensor
    disoccluded: torch.Tensor
    region: torch.Tensor
    flow: torch.Tensor


def fill_background(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Push-pull fill: ``image [B, C, H, W]`` where ``known [B, 1, H, W]`` (bool) is False is replaced by the
    known colours around it (a mean over a pyramid, finer levels first); known pixels are returned unchanged."""
    def push_pull(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        h, wd = x.shape[-2:]
        own = x / w.clamp_min(1e-8)
        if max(h, wd) <= 1:
            return own
        size = ((h + 1) // 2, (wd + 1) // 2)
        coarse = push_pull(F.adaptive_avg_pool2d(x, size), F.adaptive_avg_pool2d(w, size))
        up = F.interpolate(coarse, size=(h, wd), mode="bilinear", align_corners=False)
        a = w.clamp(0, 1)
        return own * a + up * (1 - a)

    k = known.to(image.dtype)
    if not bool(known.any()):
        raise ValueError("the person covers the whole image: no background is left to fill the vacated region from")
    return torch.where(known, image, push_pull(image * k, k))


def _work_scale(height: int, width: int, work_size: int) -> float:
    return min(1.0, work_size / max(height, width))


def _layer_flow(source: torch.Tensor, target: torch.Tensor, height: int, width: int, assign_scale: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(backward flow ``[B, 2, h, w]`` with no background blend, part consistency ``[B, 1, h, w]``, distance to
    the nearest part both poses show, distance to the nearest part of the target ``[B, 1, h, w]``) in the
    ``height x width`` frame of the poses."""
    d2_t, maps = part_maps(source, target, height, width)
    tau2 = (2 * (assign_scale * _torso_length(target)) ** 2)[:, None, None, None]
    assign = torch.softmax(-d2_t / tau2, 1)                                   # target pixel -> its part
    p = _grid(height, width, source.device, source.dtype)
    flow = ((assign.unsqueeze(-1) * maps).sum(1) - p).permute(0, 3, 1, 2)
    d2_s, _ = part_maps(source, source, height, width)
    tau2_s = (2 * (assign_scale * _torso_length(source)) ** 2)[:, None, None, None]
    labels = torch.softmax(-d2_s / tau2_s, 1)                                 # source pixel -> its part
    sampled = warp(labels, flow)                                              # part of the pixel each target takes
    allowed = torch.einsum("bkhw,kj->bjhw", assign, _ADJ.to(assign))
    consistent = (allowed * sampled).sum(1, keepdim=True).clamp(0, 1)
    d2_all, _ = part_maps(target, target, height, width)                     # parts the source may not show
    return flow.contiguous(), consistent, d2_t.amin(1, keepdim=True).sqrt(), d2_all.amin(1, keepdim=True).sqrt()


def _thickness(mask: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Half-thickness of the body in pixels ``[B]``: the person's area over twice the length of its bones."""
    a, b = source[:, [i for i, _ in BONES]], source[:, [j for _, j in BONES]]
    ok = (a[..., 2] > 0) & (b[..., 2] > 0)
    length = ((a[..., :2] - b[..., :2]).norm(dim=-1) * ok).sum(1).clamp_min(1.0)
    return mask.flatten(1).sum(1) / (2 * length)


def _size_ratio(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How much larger the target body is than the source's ``[B]``: the median ratio of the bones both show
    (1 where they share none)."""
    def lengths(kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = kp[:, [i for i, _ in BONES]], kp[:, [j for _, j in BONES]]
        return (a[..., :2] - b[..., :2]).norm(dim=-1), (a[..., 2] > 0) & (b[..., 2] > 0)

    (ls, oks), (lt, okt) = lengths(source), lengths(target)
    ratio = torch.where(oks & okt & (ls > 1), lt / ls.clamp_min(1), torch.full_like(ls, float("nan")))
    return torch.nan_to_num(ratio.nanmedian(1).values, nan=1.0)


def check_poses(poses: torch.Tensor, batch: int, what: str, min_joints: int = 4) -> None:
    if poses.dim() != 3 or poses.shape[1:] != (NUM_JOINTS, 3) or poses.shape[0] != batch:
        raise ValueError(f"{what} must be [{batch}, {NUM_JOINTS}, 3] (one OpenPose-18 pose per image), "
                         f"got {tuple(poses.shape)}")
    count = (poses[..., 2] > 0).sum(-1)
    if bool((count < min_joints).any()):
        i = int(torch.nonzero(count < min_joints)[0, 0])
        raise ValueError(f"{what} of image {i} has {int(count[i])} joints; the person-layer warp needs at least "
                         f"{min_joints} (e.g. neck, shoulders, hips) to move the body")


def person_layer_warp(image: torch.Tensor, source_pose: torch.Tensor, target_pose: torch.Tensor,
                      person_mask: torch.Tensor, feather: int = 6, grow: int = 4, assign_scale: float = 0.08,
                      work_size: int = 256) -> PersonLayer:
    """Warp the person of ``image`` from ``source_pose`` into ``target_pose`` over the background.

    Args:
        image: ``[B, 3, H, W]`` 0..1.
        source_pose, target_pose: OpenPose-18 ``[B, 18, 3]`` in pixels of the image (confidence 0 = missing).
        person_mask: ``[B, 1, H, W]`` 0..1, the source person (BlazePose's segmentation, or the user's).
        feather: width in pixels of the seam band around the warped person's edge that SD repaints (half on
            each side), and of the soft outer edge of the inpaint mask (0 = hard edges, no seam).
        grow: pixels the source person region is grown by before removal (hair, soft edges of the mask).
        assign_scale: width of the soft part assignment in torso lengths (as in ``limb_flow``).
        work_size: the flow is computed with the longer side at most this (then resized): cost, not quality.
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be [B, 3, H, W] with values 0..1, got {tuple(image.shape)}")
    b, _, h, w = image.shape
    if person_mask.shape != (b, 1, h, w):
        raise ValueError(f"person_mask must be [{b}, 1, {h}, {w}] (the image's size), got {tuple(person_mask.shape)}")
    check_poses(source_pose, b, "source_pose")
    check_poses(target_pose, b, "target_pose")
    person = person_mask.float().clamp(0, 1)
    if bool((person.flatten(1).amax(1) < 0.5).any()):
        raise ValueError("no person in the person mask of at least one image (all values < 0.5): segment the "
                         "person, or pass a mask")
    s = _work_scale(h, w, work_size)
    hw, ww = max(1, round(h * s)), max(1, round(w * s))
    scale = torch.tensor([ww / w, hw / h, 1.0], device=image.device)
    flow_w, consistent_w, dist_w, dist_all_w = _layer_flow(source_pose.float() * scale, target_pose.float() * scale, hw, ww,
                                               assign_scale)
    flow = resize_flow(flow_w, h, w)
    consistent = F.interpolate(consistent_w, size=(h, w), mode="bilinear", align_corners=False)
    dist, dist_all = (F.interpolate(d, size=(h, w), mode="bilinear", align_corners=False) / s
                      for d in (dist_w, dist_all_w))

    ratio = _size_ratio(source_pose.float(), target_pose.float())
    thick = (_thickness(person > 0.5, source_pose.float()) * ratio)[:, None, None, None]
    envelope = dist_all <= thick                        # where the target body surely is
    unseen = envelope & (dist > thick)                  # near parts the source does not show (no joints there)
    reach = (dist <= REACH * thick).float()             # nothing of the person lands farther from its bones
    sampled = warp(person, flow)
    alpha = (sampled * consistent * reach).clamp(0, 1)
    pos = _grid(h, w, image.device, flow.dtype).permute(2, 0, 1) + flow
    outside = ((pos[:, :1] < -0.5) | (pos[:, :1] > w - 0.5) | (pos[:, 1:] < -0.5) | (pos[:, 1:] > h - 0.5))
    colour = warp(image, flow)
    source_region = dilate(person > 0.5, grow)
    covered = alpha > 0.5
    target_region = covered | envelope
    vacated = source_region & ~covered
    # body the source never showed: the part's pixels are hidden by another part, out of the frame, or the
    # source pose lacks the part's joints
    disoccluded = envelope & ~covered & ((sampled > 0.5) | outside | unseen)
    half = feather // 2
    seam = dilate(covered, half) & dilate(~covered, half) if half > 0 else torch.zeros_like(covered)
    core = vacated | disoccluded | seam
    inpaint = core.float()
    if feather > 0:
        soft = box_sum(dilate(core, feather).float(), feather) / box_sum(torch.ones_like(inpaint), feather)
        inpaint = torch.maximum(inpaint, soft)
    region = dilate(source_region | target_region | (alpha > 0.01), 2 * feather) | (inpaint > 0)
    background = fill_background(image, ~source_region)
    alpha = alpha * region
    layered = colour * alpha + background * (1 - alpha)
    # body the source never showed starts from the warped person's own colours carried in from the parts around
    # it (SD repaints it under the inpaint mask; a background start would leave a hole in the body to fill)
    if bool(disoccluded.any()) and bool(covered.any()):
        layered = torch.where(disoccluded, fill_background(colour, covered), layered)
    composite = torch.where(region, layered, image)
    return PersonLayer(composite, inpaint, alpha, background, vacated, disoccluded, region, flow)


def select_person_masks(people, poses: torch.Tensor) -> torch.Tensor:
    """The segmentation ``[B, 1, H, W]`` of the person in each image whose reading is nearest to ``poses``
    (``[B, 18, 3]`` pixels; e.g. the source pose from Detect Pose), from BlazePose's ``people(images, ...)``."""
    b = poses.shape[0]
    masks = people.masks() if len(people) else None
    out = poses.new_zeros(b, 1, *people.image_size)
    for i in range(b):
        rows = torch.nonzero(people.image_index == i)[:, 0]
        if len(rows) == 0:
            raise ValueError(f"no person was found in image {i} to segment: use a photo with a person in view, "
                             "or connect a MASK of the person")
        kp = people.keypoints[rows].to(poses)
        both = (kp[..., 2] > 0) & (poses[i, :, 2] > 0)
        err = ((kp[..., :2] - poses[i, :, :2]).norm(dim=-1) * both).sum(-1) / both.sum(-1).clamp_min(1)
        err = torch.where(both.any(-1), err, torch.full_like(err, float("inf")))
        out[i, 0] = masks[rows[int(err.argmin())]].to(out)
    return out
