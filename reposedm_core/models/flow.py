"""Flows between two poses: the analytic initial flow from per-limb transforms, and backward warping.

A flow here is *backward*: ``flow[b, :, y, x]`` is the displacement (dx, dy) in pixels such that target pixel
(x, y) takes its value from source position (x + dx, y + dy).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..pose.skeleton import JOINT_INDEX as J
from ..pose.skeleton import LIMBS

BONES = LIMBS[:17]
_A = torch.tensor([a for a, _ in BONES])
_B = torch.tensor([b for _, b in BONES])
TORSO = (J["neck"], J["r_shoulder"], J["l_shoulder"], J["r_hip"], J["l_hip"])


def _grid(h: int, w: int, device, dtype) -> torch.Tensor:
    """Pixel-centre coordinates ``[h, w, 2]`` (x, y); pixel (i, j) is centred at x = j, y = i (pose layer)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                            torch.arange(w, device=device, dtype=dtype), indexing="ij")
    return torch.stack([xs, ys], -1)


def _torso_affine(src: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares affine map target->source from the torso joints. -> (A [B, 2, 3], valid [B])."""
    idx = torch.tensor(TORSO, device=src.device)
    s, t = src[:, idx], tgt[:, idx]                                   # [B, 5, 3]
    m = ((s[..., 2] > 0) & (t[..., 2] > 0)).to(src.dtype)             # [B, 5]
    X = torch.cat([t[..., :2], torch.ones_like(t[..., :1])], -1) * m.unsqueeze(-1)    # [B, 5, 3]
    Y = s[..., :2] * m.unsqueeze(-1)
    reg = 1e-2 * torch.eye(3, device=src.device, dtype=src.dtype)
    sol = torch.linalg.solve(X.transpose(1, 2) @ X + reg, X.transpose(1, 2) @ Y)      # [B, 3, 2]
    return sol.transpose(1, 2), m.sum(1) >= 3


def part_maps(source: torch.Tensor, target: torch.Tensor, height: int, width: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every body part's transform target -> source and every pixel's distance to that part in the target.

    Parts: the 17 bones (``BONES``, each a similarity transform mapping its target segment onto its source
    segment) and the torso (index 17, a least-squares affine map of its joints; "distance" 0 inside the torso's
    joint hull, approx.). A part missing in either pose is at distance 1e12.

    Returns ``(d2 [B, 18, H, W]`` squared pixel distances, ``maps [B, 18, H, W, 2]`` source positions (x, y)).
    """
    dev, dt = source.device, source.dtype
    p = _grid(height, width, dev, dt)                                  # [H, W, 2] pixel centres
    sa, sb = source[:, _A.to(dev)], source[:, _B.to(dev)]             # [B, 17, 3]
    ta, tb = target[:, _A.to(dev)], target[:, _B.to(dev)]
    valid = (sa[..., 2] > 0) & (sb[..., 2] > 0) & (ta[..., 2] > 0) & (tb[..., 2] > 0)
    ds, dtg = sb[..., :2] - sa[..., :2], tb[..., :2] - ta[..., :2]
    len_s, len_t = ds.norm(dim=-1).clamp_min(1e-3), dtg.norm(dim=-1).clamp_min(1e-3)
    scale = (len_s / len_t).clamp(0.4, 2.5)
    ang = torch.atan2(ds[..., 1], ds[..., 0]) - torch.atan2(dtg[..., 1], dtg[..., 0])
    cos, sin = (torch.cos(ang) * scale)[..., None, None], (torch.sin(ang) * scale)[..., None, None]
    rel = p - ta[:, :, None, None, :2]                                # [B, 17, H, W, 2]
    mapped = torch.stack([cos * rel[..., 0] - sin * rel[..., 1], sin * rel[..., 0] + cos * rel[..., 1]], -1)
    mapped = mapped + sa[:, :, None, None, :2]
    u = (dtg / len_t.unsqueeze(-1))[:, :, None, None]
    along = (rel * u).sum(-1).clamp(min=0).minimum(len_t[..., None, None])
    dist2 = ((rel - along.unsqueeze(-1) * u) ** 2).sum(-1)            # to each target bone
    dist2 = torch.where(valid[..., None, None], dist2, torch.full_like(dist2, 1e12))
    # the torso as one more part: its affine map, "distance" 0 inside the torso's joint hull (approx.)
    affine, torso_ok = _torso_affine(source, target)
    torso_map = torch.einsum("bij,hwj->bhwi", affine[..., :2], p) + affine[:, None, None, :, 2]
    tj = target[:, list(TORSO)]
    tm = (tj[..., 2:] > 0).to(dt)
    centre = (tj[..., :2] * tm).sum(1) / tm.sum(1).clamp_min(1)
    radius = (((tj[..., :2] - centre[:, None]).norm(dim=-1) * tm[..., 0]).sum(1) / tm[..., 0].sum(1).clamp_min(1))
    d_torso = ((p - centre[:, None, None]).norm(dim=-1) - 0.8 * radius[:, None, None]).clamp_min(0) ** 2
    d_torso = torch.where(torso_ok[:, None, None], d_torso, torch.full_like(d_torso, 1e12))
    return torch.cat([dist2, d_torso[:, None]], 1), torch.cat([mapped, torso_map[:, None]], 1)


def limb_flow(source: torch.Tensor, target: torch.Tensor, height: int, width: int,
              assign_scale: float = 0.08, body_scale: float = 0.3) -> torch.Tensor:
    """Analytic backward flow ``[B, 2, H, W]`` (pixels) from per-limb similarity transforms.

    Each body bone maps its target segment onto its source segment (rotation, scale, translation) and the
    torso a least-squares affine map of its joints (:func:`part_maps`). A target pixel takes the transform of the
    part nearest to it (a soft assignment of width ``assign_scale`` torso lengths), and blends into the identity
    (background) with its distance to the body (width ``body_scale`` torso lengths).

    Args:
        source, target: poses ``[B, 18, 3]`` in pixels of the ``height x width`` frame.
    """
    p = _grid(height, width, source.device, source.dtype)
    all_d2, all_map = part_maps(source, target, height, width)        # [B, 18, H, W], [B, 18, H, W, 2]
    torso_len = _torso_length(target)[:, None, None, None]
    tau2 = 2 * (assign_scale * torso_len) ** 2
    assign = torch.softmax(-all_d2 / tau2, 1)                          # nearest part wins
    body = (assign.unsqueeze(-1) * all_map).sum(1)                     # [B, H, W, 2]
    near = torch.exp(-all_d2.amin(1) / (2 * (body_scale * torso_len[:, 0]) ** 2))
    flow = near.unsqueeze(-1) * (body - p)
    return flow.permute(0, 3, 1, 2).contiguous()


def body_weight(kp: torch.Tensor, height: int, width: int, body_scale: float = 0.3) -> torch.Tensor:
    """Soft body region ``[B, 1, H, W]`` of poses (pixels of that frame): 1 on the bones, falling off with the
    distance to the nearest bone over ``body_scale`` torso lengths; where the person should be."""
    dev, dt = kp.device, kp.dtype
    p = _grid(height, width, dev, dt)
    a, b = kp[:, _A.to(dev)], kp[:, _B.to(dev)]
    valid = (a[..., 2] > 0) & (b[..., 2] > 0)
    d = b[..., :2] - a[..., :2]
    length = d.norm(dim=-1).clamp_min(1e-3)
    u = (d / length.unsqueeze(-1))[:, :, None, None]
    rel = p - a[:, :, None, None, :2]
    along = (rel * u).sum(-1).clamp(min=0).minimum(length[..., None, None])
    dist2 = ((rel - along.unsqueeze(-1) * u) ** 2).sum(-1)
    dist2 = torch.where(valid[..., None, None], dist2, torch.full_like(dist2, 1e12)).amin(1, keepdim=True)
    sigma = (body_scale * _torso_length(kp))[:, None, None, None]
    return torch.exp(-dist2 / (2 * sigma ** 2))


def _torso_length(kp: torch.Tensor) -> torch.Tensor:
    """Neck to mid-hip length in pixels ``[B]``; falls back to the bounding-box height / 3.5."""
    neck, rh, lh = kp[:, J["neck"]], kp[:, J["r_hip"]], kp[:, J["l_hip"]]
    ok = (neck[:, 2] > 0) & (rh[:, 2] > 0) & (lh[:, 2] > 0)
    torso = (neck[:, :2] - (rh[:, :2] + lh[:, :2]) / 2).norm(dim=-1)
    present = kp[..., 2] > 0
    big = torch.where(present, kp[..., 1], torch.full_like(kp[..., 1], -1e9)).amax(1)
    small = torch.where(present, kp[..., 1], torch.full_like(kp[..., 1], 1e9)).amin(1)
    fallback = ((big - small) / 3.5).clamp_min(1.0)
    return torch.where(ok & (torso > 1), torso, fallback)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image [B, C, h, w]`` with ``flow [B, 2, H, W]`` given in pixels of the flow's frame.

    The flow's frame may differ in size from the image's (the same relative positions are sampled).
    """
    b, _, h_f, w_f = flow.shape
    grid = _grid(h_f, w_f, flow.device, flow.dtype).unsqueeze(0) + flow.permute(0, 2, 3, 1)
    norm = torch.stack([(grid[..., 0] + 0.5) / w_f * 2 - 1, (grid[..., 1] + 0.5) / h_f * 2 - 1], -1)
    return F.grid_sample(image, norm, mode="bilinear", padding_mode="border", align_corners=False)


def resize_flow(flow: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize a pixel flow to another frame, scaling its vectors with the frame."""
    sy, sx = height / flow.shape[-2], width / flow.shape[-1]  # displacements scale with the frame
    out = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
    return out * torch.tensor([sx, sy], device=flow.device, dtype=flow.dtype).view(1, 2, 1, 1)
