"""Cleaning a detected pose sequence: swaps undone, outliers dropped, gaps filled, jitter removed without lag.

    clean = clean_sequence(poses)          # [T, 18, 3] pixels, one person per frame -> [T, 18, 3]

1. A frame whose left and right sides are exchanged (relative to the previous cleaned frame) is swapped back.
2. A joint far from the median of its neighbours in time (``outlier`` body-scale units) is dropped.
3. Dropped or undetected joints are filled by linear interpolation across gaps of up to ``max_gap`` frames;
   an empty frame (nobody detected) is filled the same way, or copied from its neighbour at the ends.
4. Each joint track is smoothed by a One-Euro filter run forwards and backwards and averaged: the adaptive
   cutoff keeps fast motion sharp, and the two directions cancel each other's lag.
5. With a pose field, frames it calls broken are repaired.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .normalize import root_and_body_scale
from .skeleton import FLIP_PERMUTATION
from .validate import check_keypoints


def _unswap(kp: torch.Tensor) -> torch.Tensor:
    out = kp.clone()
    flip = torch.tensor(FLIP_PERMUTATION)
    for t in range(1, len(out)):
        prev, cur = out[t - 1], out[t]
        both = (prev[:, 2] > 0) & (cur[:, 2] > 0)
        both_f = (prev[:, 2] > 0) & (cur[flip, 2] > 0)
        if both.sum() < 4 or both_f.sum() < 4:
            continue
        same = (cur[both, :2] - prev[both, :2]).norm(dim=-1).mean()
        swapped = (cur[flip][both_f, :2] - prev[both_f, :2]).norm(dim=-1).mean()
        if swapped < 0.5 * same:
            out[t] = cur[flip]
    return out


def _drop_outliers(kp: torch.Tensor, unit: float, threshold: float, radius: int = 2) -> torch.Tensor:
    """Joints farther than ``threshold * unit`` from the median of their (up to) ``2 radius`` neighbours in time."""
    t_len = len(kp)
    offsets = [o for o in range(-radius, radius + 1) if o != 0]
    idx = (torch.arange(t_len)[:, None] + torch.tensor(offsets)[None]).clamp(0, t_len - 1)      # [T, k]
    inside = (torch.arange(t_len)[:, None] + torch.tensor(offsets)[None] >= 0) & \
        (torch.arange(t_len)[:, None] + torch.tensor(offsets)[None] < t_len)
    nb = kp[idx]                                                        # [T, k, 18, 3]
    seen = (nb[..., 2] > 0) & inside[..., None]                         # [T, k, 18]
    xy = torch.where(seen[..., None], nb[..., :2], torch.full_like(nb[..., :2], float("nan")))
    med = xy.nanmedian(dim=1).values                                    # [T, 18, 2]
    far = (kp[..., :2] - med).norm(dim=-1) > threshold * unit
    drop = far & (seen.sum(1) >= 2) & (kp[..., 2] > 0)
    return kp * ~drop[..., None]


def _fill(kp: torch.Tensor, max_gap: int) -> torch.Tensor:
    out = kp.clone()
    t_len = len(kp)
    for j in range(kp.shape[1]):
        seen = torch.nonzero(kp[:, j, 2] > 0)[:, 0].tolist()
        if not seen:
            continue
        for a, b in zip(seen[:-1], seen[1:]):
            if 1 < b - a <= max_gap + 1:
                for t in range(a + 1, b):
                    w = (t - a) / (b - a)
                    out[t, j, :2] = kp[a, j, :2] * (1 - w) + kp[b, j, :2] * w
                    out[t, j, 2] = min(float(kp[a, j, 2]), float(kp[b, j, 2]))
        for t in range(max(0, seen[0] - max_gap), seen[0]):             # ends: hold the nearest detection
            out[t, j] = kp[seen[0], j]
        for t in range(seen[-1] + 1, min(t_len, seen[-1] + 1 + max_gap)):
            out[t, j] = kp[seen[-1], j]
    return out


def one_euro(x: torch.Tensor, fps: float, min_cutoff: float, beta: float, d_cutoff: float = 1.0) -> torch.Tensor:
    """One-Euro filter (Casiez et al. 2012) along the first dimension of ``x [T, ...]``."""
    def alpha(cutoff):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * fps)

    out = x.clone()
    dx = torch.zeros_like(x[0])
    for t in range(1, len(x)):
        d = (x[t] - out[t - 1]) * fps
        a_d = alpha(d_cutoff)
        dx = a_d * d + (1 - a_d) * dx
        cutoff = min_cutoff + beta * dx.abs()
        tau = 1.0 / (2 * math.pi * cutoff)
        a = 1.0 / (1.0 + tau * fps)
        out[t] = a * x[t] + (1 - a) * out[t - 1]
    return out


def _smooth(kp: torch.Tensor, unit: float, fps: float, min_cutoff: float, beta: float) -> torch.Tensor:
    out = kp.clone()
    full = (kp[..., 2] > 0).all(0)                                     # joints seen in every frame: one pass
    if len(kp) >= 3 and full.any():
        x = kp[:, full, :2] / unit
        fwd = one_euro(x, fps, min_cutoff, beta)
        bwd = one_euro(x.flip(0), fps, min_cutoff, beta).flip(0)
        out[:, full, :2] = (fwd + bwd) / 2 * unit
    for j in torch.nonzero(~full)[:, 0].tolist():
        seen = (kp[:, j, 2] > 0).tolist()
        t = 0
        while t < len(seen):                                             # each contiguous run separately
            if not seen[t]:
                t += 1
                continue
            e = t
            while e < len(seen) and seen[e]:
                e += 1
            if e - t >= 3:
                x = kp[t:e, j, :2] / unit                                # body units: settings independent of size
                fwd = one_euro(x, fps, min_cutoff, beta)
                bwd = one_euro(x.flip(0), fps, min_cutoff, beta).flip(0)
                out[t:e, j, :2] = (fwd + bwd) / 2 * unit
            t = e
    return out


def clean_sequence(poses: Any, *, max_gap: int = 5, outlier: float = 0.6, fps: float = 30.0,
                   min_cutoff: float = 0.5, beta: float = 0.6, unswap: bool = True, field=None) -> torch.Tensor:
    """Clean one person's pose track.

    Args:
        poses: ``[T, 18, 3]`` pixels (a frame with no joints = nobody detected).
        max_gap: longest run of missing frames (per joint) that is filled; 0 fills nothing.
        outlier: a joint farther than this (body-scale units, ~ torso lengths) from the median of its 4 temporal
            neighbours is dropped (and then filled). 0 disables.
        fps, min_cutoff, beta: One-Euro settings (Hz, Hz, per body unit/s); ``min_cutoff=0`` disables smoothing.
        unswap: undo frames whose left and right sides are exchanged.
        field: a pose field; frames it calls broken are repaired.

    Returns:
        ``[T, 18, 3]``; joints never seen within ``max_gap`` frames stay missing.
    """
    kp = check_keypoints(poses, "poses").float()
    if kp.dim() != 3:
        raise ValueError(f"poses must be one person's track [T, 18, 3], got {tuple(kp.shape)}")
    if max_gap < 0 or outlier < 0 or fps <= 0 or min_cutoff < 0 or beta < 0:
        raise ValueError("max_gap, outlier, min_cutoff and beta must be >= 0 and fps > 0")
    if len(kp) == 0 or not (kp[..., 2] > 0).any():
        return kp.clone()
    _, scale, valid = root_and_body_scale(kp)
    unit = float(scale[valid].median()) if valid.any() else 1.0
    out = _unswap(kp) if unswap else kp.clone()
    if outlier > 0:
        out = _drop_outliers(out, unit, outlier)
    out = _fill(out, max_gap)
    if min_cutoff > 0:
        out = _smooth(out, unit, fps, min_cutoff, beta)
    if field is not None:
        ok = (out[..., 2] > 0).sum(-1) >= 2
        if ok.any():
            d = field.distance(out[ok]).cpu()
            rows = torch.nonzero(ok)[:, 0][d > field.valid_threshold]
            if len(rows):
                out[rows] = field.repair(out[rows]).cpu()
    return out * (out[..., 2:] > 0)
