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


# Body-scale estimates: (joint a, joint b, typical |a - b| in torso lengths), measured on the synthetic
# skeleton's bodies at rest (2,000 seeded shapes; spread 4-8 %). The mid-hip is joint -1.
BODY_SEGMENTS: tuple[tuple[int, int, float], ...] = (
    (_NECK, -1, 1.0),
    (_RSHO, _LSHO, 0.614),
    (_RSHO, _RHIP, 1.011), (_LSHO, _LHIP, 1.011),
    (_RSHO, JOINT_INDEX["r_elbow"], 0.578), (_LSHO, JOINT_INDEX["l_elbow"], 0.578),
    (JOINT_INDEX["r_elbow"], JOINT_INDEX["r_wrist"], 0.466), (JOINT_INDEX["l_elbow"], JOINT_INDEX["l_wrist"], 0.466),
    (_RHIP, JOINT_INDEX["r_knee"], 0.741), (_LHIP, JOINT_INDEX["l_knee"], 0.741),
    (JOINT_INDEX["r_knee"], JOINT_INDEX["r_ankle"], 0.683), (JOINT_INDEX["l_knee"], JOINT_INDEX["l_ankle"], 0.683),
    (_NECK, JOINT_INDEX["nose"], 0.465),
)
BODY_SCALE_QUANTILE = 0.75


def root_and_body_scale(kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Like :func:`root_and_scale`, with a body scale that does not collapse when the torso is seen end-on.

    Every visible body segment (torso, shoulders, body sides, upper and lower limbs, neck-nose) gives an
    estimate of the torso length, ``2D length / typical ratio``; a projection only shortens segments, so each
    estimate is a lower bound up to proportions. The scale is their upper quartile: a bent-forward, lying or
    seen-from-above torso does not shrink it, and one corrupted (too long) segment does not inflate it. With
    fewer than 3 segments visible, the :func:`root_and_scale` scale is used.
    """
    center, fallback, valid = root_and_scale(kp)
    xy, present = kp[..., :2], kp[..., 2] > 0
    midhip = (xy[..., _RHIP, :] + xy[..., _LHIP, :]) / 2
    has_mid = present[..., _RHIP] & present[..., _LHIP]
    est, ok = [], []
    for a, b, ratio in BODY_SEGMENTS:
        pb = midhip if b < 0 else xy[..., b, :]
        hb = has_mid if b < 0 else present[..., b]
        est.append(safe_norm(xy[..., a, :] - pb) / ratio)
        ok.append(present[..., a] & hb)
    est, ok = torch.stack(est, -1), torch.stack(ok, -1)                       # [..., K]
    count = ok.sum(-1)
    ranked = torch.sort(torch.where(ok, est, torch.full_like(est, -1.0)), dim=-1, descending=True).values
    # upper quartile of the count available: rank (1 - q) * (count - 1) from the top, interpolated
    pos = ((1 - BODY_SCALE_QUANTILE) * (count - 1).clamp_min(0).to(est.dtype))
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=est.shape[-1] - 1)
    w = (pos - lo.to(est.dtype)).unsqueeze(-1)
    q = (ranked.gather(-1, lo.unsqueeze(-1)) * (1 - w) + ranked.gather(-1, hi.unsqueeze(-1)) * w).squeeze(-1)
    use = (count >= 3) & (q > _EPS)
    return center, torch.where(use, q, fallback), valid


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
