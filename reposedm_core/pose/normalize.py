"""Root-centred, scale-normalised poses (the frame the pose field and the losses work in).

``normalize_pose`` maps pixels to a body-relative frame: the origin is the *root* and one unit is
the *torso length*, so the same pose gives the same numbers whatever its position and size on the
canvas.

* root: the mid-hip when both hips are present, else the neck, else the mean of the confident joints;
* scale, the first of these that exists and is non-zero: the torso length (neck to mid-hip, needs
  the neck and both hips); the shoulder width x 2.2; the bounding-box height of the confident joints
  / 3.5; the bounding-box width / 3.5 (the constants are typical adult proportions, so that the
  fallbacks approximate the torso length).

Missing joints (confidence 0) stay exactly (0, 0, 0). Everything is batched over leading dimensions
and differentiable with respect to x and y.
"""
from __future__ import annotations

from typing import Any

import torch

from .skeleton import JOINT_INDEX
from .validate import check_keypoints

_NECK, _RHIP, _LHIP = JOINT_INDEX["neck"], JOINT_INDEX["r_hip"], JOINT_INDEX["l_hip"]
_RSHO, _LSHO = JOINT_INDEX["r_shoulder"], JOINT_INDEX["l_shoulder"]
SHOULDER_TO_TORSO = 2.2
BBOX_TO_TORSO = 3.5
_EPS = 1e-6
_FAR = 1e9  # finite sentinel for masked min/max (inf would give NaN gradients)


def safe_norm(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last dim with a finite gradient at 0: ``[..., D] -> [...]``."""
    return torch.sqrt((v * v).sum(-1).clamp_min(1e-12))


def root_and_scale(kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Root, scale and validity of poses, without raising.

    Args:
        kp: ``[..., 18, 3]`` pixels (already validated).

    Returns:
        center ``[..., 2]`` pixels, scale ``[...]`` pixels per unit (1.0 where invalid), and
        valid ``[...]`` bool (>= 2 confident joints that are not all at one point).
    """
    xy, present = kp[..., :2], kp[..., 2] > 0
    pm = present.to(kp.dtype)
    count = pm.sum(-1)
    has_neck = present[..., _NECK]
    has_hips = present[..., _RHIP] & present[..., _LHIP]
    midhip = (xy[..., _RHIP, :] + xy[..., _LHIP, :]) / 2
    mean = (xy * pm.unsqueeze(-1)).sum(-2) / count.clamp_min(1).unsqueeze(-1)
    center = torch.where(
        has_hips.unsqueeze(-1), midhip, torch.where(has_neck.unsqueeze(-1), xy[..., _NECK, :], mean)
    )

    torso = safe_norm(xy[..., _NECK, :] - midhip)
    shoulders = safe_norm(xy[..., _RSHO, :] - xy[..., _LSHO, :]) * SHOULDER_TO_TORSO
    lo = torch.where(present.unsqueeze(-1), xy, torch.full_like(xy, _FAR)).amin(-2)
    hi = torch.where(present.unsqueeze(-1), xy, torch.full_like(xy, -_FAR)).amax(-2)
    bbox = (hi - lo) / BBOX_TO_TORSO  # [..., 2] = (width, height) / 3.5
    candidates = (
        (has_neck & has_hips, torso),
        (present[..., _RSHO] & present[..., _LSHO], shoulders),
        (count >= 2, bbox[..., 1]),
        (count >= 2, bbox[..., 0]),
    )
    scale = torch.ones_like(count)
    valid = torch.zeros_like(present[..., 0])
    for available, value in reversed(candidates):  # the first candidate that exists wins
        ok = available & (value > _EPS)
        scale = torch.where(ok, value, scale)
        valid = valid | ok
    return center, scale, valid & (count >= 2)


def normalize_pose(kp: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Root-centre and scale-normalise poses (see the module docstring for root and scale).

    Args:
        kp: ``[..., 18, 3]`` pixels (x, y, confidence).

    Returns:
        normed ``[..., 18, 3]`` (x, y in torso units around the root; confidence unchanged; missing
        joints 0), center ``[..., 2]`` pixels and scale ``[...]`` pixels per unit, so that
        ``denormalize_pose(normed, center, scale)`` gives ``kp`` back.

    Raises:
        ValueError: a pose has fewer than 2 confident joints, or all of them at one point.
    """
    kp = check_keypoints(kp)
    center, scale, valid = root_and_scale(kp)
    if not bool(valid.all()):
        bad = (~valid).nonzero()[0].tolist() if valid.dim() else []
        where = f" (pose at batch index {tuple(bad)})" if bad else ""
        k = int((kp[..., 2] > 0).sum(-1)[tuple(bad)]) if bad else int((kp[..., 2] > 0).sum())
        if k < 2:
            raise ValueError(f"cannot normalise a pose with {k} confident joints; need ≥ 2{where}")
        raise ValueError(f"cannot normalise a pose whose {k} confident joints all lie at one point{where}")
    pm = (kp[..., 2:3] > 0).to(kp.dtype)
    xy = (kp[..., :2] - center.unsqueeze(-2)) / scale[..., None, None] * pm
    return torch.cat([xy, kp[..., 2:3]], dim=-1), center, scale


def denormalize_pose(normed: Any, center: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize_pose`: ``[..., 18, 3]`` torso units -> pixels.

    Args:
        normed: ``[..., 18, 3]`` as returned by :func:`normalize_pose`.
        center: ``[..., 2]`` pixels.  scale: ``[...]`` pixels per unit (> 0).
    """
    normed = check_keypoints(normed, "normed")
    center = torch.as_tensor(center, dtype=normed.dtype, device=normed.device)
    scale = torch.as_tensor(scale, dtype=normed.dtype, device=normed.device)
    if center.shape[-1:] != (2,):
        raise ValueError(f"center must have shape [..., 2], got {tuple(center.shape)}")
    if bool((scale <= 0).any()) or not bool(torch.isfinite(scale).all()):
        raise ValueError("scale must be finite and > 0 (pixels per torso unit)")
    pm = (normed[..., 2:3] > 0).to(normed.dtype)
    xy = (normed[..., :2] * scale[..., None, None] + center.unsqueeze(-2)) * pm
    return torch.cat([xy, normed[..., 2:3]], dim=-1)
