"""Training data and loss of the small estimator: rendered synthetic people, augmentation, targets, loss.

Images are rendered at the sizes the estimator will meet (256 x 176, the demo's 128 x 88 and 96 x 64, and a
square frame), letterboxed into the working frame exactly as at inference, and kept in memory as uint8.
Augmentation then runs on working-frame batches: random scale / rotation / shift (grey or edge-replicated
fill), horizontal flip with ``FLIP_PERMUTATION``, colour jitter, Gaussian blur (generated images are soft)
and noise. Supervision: visible and self-occluded joints get a Gaussian heatmap target and a coordinate
target; out-of-frame joints (visibility 0, or pushed out of the frame by the augmentation) get an empty
heatmap and no coordinate loss.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..data.synthetic import render_people
from ..pose.encode import heatmaps as gaussian_heatmaps
from ..pose.skeleton import FLIP_PERMUTATION
from ..utils.images import gaussian_blur
from .base import KeypointEstimator, letterbox, local_soft_argmax

# (height, width, share of rendered images)
RENDER_SIZES: tuple[tuple[int, int, float], ...] = ((256, 176, 0.45), (128, 88, 0.25), (96, 64, 0.2), (160, 160, 0.1))


def render_batch(identity_seeds: Sequence[int], pose_seeds: Sequence[int], height: int, width: int,
                 work_height: int, work_width: int) -> dict[str, torch.Tensor]:
    """Render people at ``height x width`` and letterbox them into the working frame.

    Returns ``image [B, 3, wh, ww]`` uint8, ``xy [B, 18, 2]`` working-frame pixels (every joint, even hidden),
    ``visibility [B, 18]`` long (2 visible, 1 self-occluded, 0 out of frame)."""
    out = render_people(list(identity_seeds), list(pose_seeds), height, width)
    work, geo = letterbox(out["image"], work_height, work_width)
    image = (work.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return {"image": image, "xy": geo.to_work(out["joints2d"].float()), "visibility": out["visibility"].long()}


def _affine_grid(m_inv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Sampling grid for ``grid_sample`` (align_corners=False) from inverse pixel affines ``[B, 2, 3]``."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=m_inv.dtype), torch.arange(width, dtype=m_inv.dtype),
                            indexing="ij")
    p = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, -1, 3)              # [1, HW, 3]
    src = p @ m_inv.transpose(1, 2)                                                # [B, HW, 2] pixels
    u = (2 * src[..., 0] + 1) / width - 1
    v = (2 * src[..., 1] + 1) / height - 1
    return torch.stack([u, v], -1).view(-1, height, width, 2)


def augment(image: torch.Tensor, xy: torch.Tensor, visibility: torch.Tensor,
            gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment a working-frame batch.

    Args:
        image: ``[B, 3, H, W]`` uint8.  xy: ``[B, 18, 2]`` pixels.  visibility: ``[B, 18]`` (0, 1, 2).

    Returns:
        (image ``[B, 3, H, W]`` float 0..1, xy ``[B, 18, 2]``, visibility ``[B, 18]`` with joints moved out of
        the frame set to 0).
    """
    b, _, h, w = image.shape
    x = image.float() / 255
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    # geometry: output = R * s * (p - c) + c + t, about the frame centre
    scale = torch.exp((u(b) * 2 - 1) * math.log(1.3))
    angle = (u(b) * 2 - 1) * math.radians(12) * (u(b) < 0.6)
    shift = (u(b, 2) * 2 - 1) * torch.tensor([0.12 * w, 0.10 * h])
    flip = u(b) < 0.5
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    fx = torch.where(flip, -1.0, 1.0)
    c = torch.tensor([(w - 1) / 2, (h - 1) / 2])
    a = torch.stack([torch.stack([cos * fx, -sin], -1), torch.stack([sin * fx, cos], -1)], 1)  # [B, 2, 2]
    t = c + shift - (a @ c)
    a_inv = torch.linalg.inv(a)
    m_inv = torch.cat([a_inv, -(a_inv @ t[..., None])], -1)
    grid = _affine_grid(m_inv, h, w)
    replicate = u(b) < 0.5
    out_border = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out_zero = F.grid_sample(torch.cat([x, torch.ones_like(x[:, :1])], 1), grid, mode="bilinear",
                             padding_mode="zeros", align_corners=False)
    grey = out_zero[:, :3] + 0.5 * (1 - out_zero[:, 3:])
    x = torch.where(replicate[:, None, None, None], out_border, grey)
    xy = xy @ a.transpose(1, 2) + t[:, None]
    perm = torch.tensor(FLIP_PERMUTATION)
    xy = torch.where(flip[:, None, None], xy[:, perm], xy)
    visibility = torch.where(flip[:, None], visibility[:, perm], visibility)
    inside = (xy[..., 0] > -0.5) & (xy[..., 0] < w - 0.5) & (xy[..., 1] > -0.5) & (xy[..., 1] < h - 0.5)
    visibility = visibility * inside
    # photometric: channel gains, brightness, contrast, saturation, occasional channel swap, blur, noise
    gains = 1 + (u(b, 3) * 2 - 1) * 0.15
    x = x * gains[..., None, None]
    grey_level = x.mean((1, 2, 3), keepdim=True)
    x = (x - grey_level) * (0.6 + 0.8 * u(b, 1, 1, 1)) + grey_level + (u(b, 1, 1, 1) - 0.5) * 0.3
    luma = x.mean(1, keepdim=True)
    x = luma + (x - luma) * (0.3 + 1.2 * u(b, 1, 1, 1))
    swap = u(b) < 0.2
    x = torch.where(swap[:, None, None, None], x[:, torch.randperm(3, generator=gen)], x)
    sigma = torch.where(u(b) < 0.6, u(b) * 1.6, torch.zeros(b))
    x = gaussian_blur(x, sigma)
    x = x + torch.randn(x.shape, generator=gen) * (u(b, 1, 1, 1) * 0.05)
    return x.clamp(0, 1), xy, visibility


def targets(model: KeypointEstimator, xy: torch.Tensor, visibility: torch.Tensor,
            sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(heatmap targets ``[B, 18, h, w]`` 0..1, cell coordinates ``[B, 18, 2]``, supervised mask ``[B, 18]``)."""
    cells = model.work_to_cells(xy)
    supervised = visibility > 0
    kp = torch.cat([cells, supervised[..., None].float()], -1)
    hm = gaussian_heatmaps(kp, model.work_height // model.stride, model.work_width // model.stride, sigma)
    return hm, cells, supervised


def loss_terms(model: KeypointEstimator, images: torch.Tensor, xy: torch.Tensor, visibility: torch.Tensor,
               sigma: float) -> dict[str, torch.Tensor]:
    """Heatmap BCE (summed over cells, mean over joints) and L1 of the local soft-argmax in cells on
    supervised joints. ``images`` are working-frame ``[B, 3, wh, ww]`` 0..1."""
    logits = model.score_maps(images)
    hm, cells, supervised = targets(model, xy, visibility, sigma)
    bce = F.binary_cross_entropy_with_logits(logits, hm, reduction="none").sum((-1, -2)).mean()
    pred = local_soft_argmax(model.argmax_scores(logits), model.window)
    err = (pred - cells).abs().sum(-1)
    coord = (err * supervised).sum() / supervised.sum().clamp_min(1)
    return {"heatmap": bce, "coord": coord}
