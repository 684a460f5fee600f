"""Pose encodings for networks: Gaussian heatmaps, limb maps, the OpenPose RGB render, bone vectors.

Pure torch, vectorised over the batch, no OpenCV. Pixel convention: pixel (row i, column j) has its
centre at (x = j, y = i), as in OpenPose/OpenCV. Missing joints (confidence 0) produce nothing.
"""
from __future__ import annotations

import numbers
from typing import Any

import torch

from .normalize import root_and_scale, safe_norm
from .skeleton import COLORS, LIMBS, NUM_JOINTS, NUM_RENDERED_LIMBS
from .validate import check_keypoints

_LIMB_A = [a for a, _ in LIMBS]
_LIMB_B = [b for _, b in LIMBS]


def _check_size(height: Any, width: Any) -> tuple[int, int]:
    for label, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
            raise ValueError(f"{label} must be a positive int number of pixels, got {v!r}")
    return int(height), int(width)


def _to_grid(kp: torch.Tensor, height: int, width: int, canvas: tuple[int, int] | None) -> torch.Tensor:
    """Rescale x, y from pixels of ``canvas = (W, H)`` to pixels of the ``width x height`` grid."""
    if canvas is None:
        return kp
    if not isinstance(canvas, (tuple, list)) or len(canvas) != 2:
        raise ValueError(f"canvas must be (width, height) in pixels, got {canvas!r}")
    ch, cw = _check_size(canvas[1], canvas[0])
    sx, sy = width / cw, height / ch
    x = (kp[..., 0] + 0.5) * sx - 0.5
    y = (kp[..., 1] + 0.5) * sy - 0.5
    return torch.stack([x, y, kp[..., 2]], dim=-1)


def _default_sigma(height: int, width: int) -> float:
    return max(1.0, min(height, width) / 64)


def heatmaps(
    kp: Any,
    height: int,
    width: int,
    sigma: float | None = None,
    *,
    canvas: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Gaussian joint heatmaps ``exp(-|p - joint|^2 / (2 sigma^2))``, peak 1 at the joint.

    Args:
        kp: ``[..., 18, 3]`` pixels (of the ``width x height`` map, or of ``canvas`` if given).
        height, width: the map size in pixels.
        sigma: Gaussian standard deviation in map pixels; default ``max(1, min(H, W) / 64)``.
        canvas: ``(W, H)`` of the canvas the keypoints are in, when it differs from the map.

    Returns:
        ``[..., 18, H, W]`` in [0, 1]; all zero for missing joints. Differentiable w.r.t. x, y.
    """
    kp = _to_grid(check_keypoints(kp, check_values=False), *_check_size(height, width), canvas)
    s = _default_sigma(height, width) if sigma is None else float(sigma)
    xs = torch.arange(width, device=kp.device, dtype=kp.dtype)
    ys = torch.arange(height, device=kp.device, dtype=kp.dtype)
    gx = torch.exp(-((xs - kp[..., 0, None]) ** 2) / (2 * s * s))  # [..., 18, W]
    gy = torch.exp(-((ys - kp[..., 1, None]) ** 2) / (2 * s * s))  # [..., 18, H]
    present = (kp[..., 2] > 0).to(kp.dtype)[..., None, None]
    return gy.unsqueeze(-1) * gx.unsqueeze(-2) * present


def limb_maps(
    kp: Any,
    height: int,
    width: int,
    width_px: float | None = None,
    *,
    canvas: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Soft maps of the 19 :data:`LIMBS`: ``exp(-d^2 / (2 w^2))``, d = distance to the limb segment.

    Args:
        kp: ``[..., 18, 3]`` pixels (of the map, or of ``canvas = (W, H)`` if given).
        height, width: the map size in pixels.
        width_px: the Gaussian width w in map pixels; default ``max(1, min(H, W) / 64)``.

    Returns:
        ``[..., 19, H, W]`` in [0, 1], 1 on the segment; zero when either end is missing.
    """
    kp = _to_grid(check_keypoints(kp, check_values=False), *_check_size(height, width), canvas)
    w = _default_sigma(height, width) if width_px is None else float(width_px)
    a = kp[..., _LIMB_A, :]  # [..., 19, 3]
    b = kp[..., _LIMB_B, :]
    d = (b[..., :2] - a[..., :2])[..., None, None, :]  # [..., 19, 1, 1, 2]
    xs = torch.arange(width, device=kp.device, dtype=kp.dtype)
    ys = torch.arange(height, device=kp.device, dtype=kp.dtype)
    px = xs.view(1, width) - a[..., 0, None, None]  # [..., 19, 1, W] -> broadcast [..., 19, H, W]
    py = ys.view(height, 1) - a[..., 1, None, None]
    t = ((px * d[..., 0] + py * d[..., 1]) / (d * d).sum(-1).clamp_min(1e-6)).clamp(0, 1)
    dist2 = (px - t * d[..., 0]) ** 2 + (py - t * d[..., 1]) ** 2
    present = ((a[..., 2] > 0) & (b[..., 2] > 0)).to(kp.dtype)[..., None, None]
    return torch.exp(-dist2 / (2 * w * w)) * present


def render_skeleton(
    kp: Any,
    height: int,
    width: int,
    *,
    stickwidth: float = 4,
    radius: float = 4,
    background: torch.Tensor | None = None,
    reference_size: int | None = 512,
    antialias: bool = False,
) -> torch.Tensor:
    """Draw poses like the standard OpenPose / comfyui_controlnet_aux body renderer.

    Limb ``i`` (the first 17 :data:`LIMBS`; the renderer never draws the two ear-shoulder limbs) is a
    filled ellipse along the limb, semi-axes (length / 2, stickwidth), blended in ``COLORS[i]`` at
    0.6 over the canvas (``canvas = 0.4 canvas + 0.6 colour`` inside it); then every joint ``j`` is
    a filled circle of ``radius`` in ``COLORS[j]``. Missing joints and their limbs are not drawn.

    Size: ``stickwidth`` and ``radius`` are pixels on a canvas whose short side is ``reference_size``
    (controlnet_aux draws at a 512 short side and resizes), so both are multiplied by
    ``min(H, W) / reference_size`` and clamped to >= 1 pixel. ``reference_size=None`` uses them as
    given.

    Args:
        kp: ``[18, 3]``, ``[B, 18, 3]``, or ``[B, P, 18, 3]`` (P people drawn on one canvas), pixels.
        height, width: canvas size in pixels.
        background: ``[3, H, W]`` or ``[B, 3, H, W]`` in [0, 1] to draw on; default black.
        antialias: soft 1-pixel edges (and gradients w.r.t. x, y); default hard edges like OpenCV.

    Returns:
        ``[3, H, W]`` for one pose, else ``[B, 3, H, W]``, float in [0, 1].
    """
    kp = check_keypoints(kp, check_values=False)
    height, width = _check_size(height, width)
    single = kp.dim() == 2
    if kp.dim() == 2:
        kp = kp[None, None]
    elif kp.dim() == 3:
        kp = kp[:, None]
    elif kp.dim() != 4:
        raise ValueError(f"keypoints must be [18, 3], [B, 18, 3] or [B, P, 18, 3], got {tuple(kp.shape)}")
    batch = kp.shape[0]
    scale = 1.0 if reference_size is None else min(height, width) / reference_size
    stick = max(1.0, float(stickwidth) * scale)
    rad = max(1.0, float(radius) * scale)

    canvas = kp.new_zeros(batch, 3, height, width)
    if background is not None:
        bg = torch.as_tensor(background, dtype=kp.dtype, device=kp.device)
        if bg.shape[-3:] != (3, height, width) or bg.dim() not in (3, 4) or (
            bg.dim() == 4 and bg.shape[0] not in (1, batch)
        ):
            raise ValueError(f"background must be [3, {height}, {width}] or [B, 3, {height}, {width}], "
                             f"got {tuple(bg.shape)}")
        canvas = canvas + bg
    colors = kp.new_tensor(COLORS) / 255.0  # [18, 3]
    xs = torch.arange(width, device=kp.device, dtype=kp.dtype).view(1, 1, 1, width)
    ys = torch.arange(height, device=kp.device, dtype=kp.dtype).view(1, 1, height, 1)

    for i in range(NUM_RENDERED_LIMBS):
        a, b = kp[:, :, LIMBS[i][0]], kp[:, :, LIMBS[i][1]]  # [B, P, 3]
        mask = _ellipse(a, b, stick, xs, ys, antialias)  # [B, P, H, W]
        mask = mask.amax(1, keepdim=True)  # union of the people -> [B, 1, H, W]
        canvas = canvas * (1 - 0.6 * mask) + 0.6 * mask * colors[i].view(1, 3, 1, 1)
    for j in range(NUM_JOINTS):
        p = kp[:, :, j]
        dist = torch.sqrt((xs - p[..., 0, None, None]) ** 2 + (ys - p[..., 1, None, None]) ** 2 + 1e-12)
        mask = ((rad + 0.5 - dist).clamp(0, 1) if antialias else (dist <= rad).to(kp.dtype))
        mask = (mask * (p[..., 2] > 0).to(kp.dtype)[..., None, None]).amax(1, keepdim=True)
        canvas = canvas * (1 - mask) + mask * colors[j].view(1, 3, 1, 1)
    canvas = canvas.clamp(0, 1)
    return canvas[0] if single else canvas


def _ellipse(
    a: torch.Tensor, b: torch.Tensor, minor: float, xs: torch.Tensor, ys: torch.Tensor, antialias: bool
) -> torch.Tensor:
    """Coverage ``[B, P, H, W]`` of the ellipse with the segment a-b (``[B, P, 3]``) as major axis."""
    m = (a[..., :2] + b[..., :2]) / 2
    d = b[..., :2] - a[..., :2]
    length = safe_norm(d)
    degenerate = (length < 1e-3).unsqueeze(-1)  # a == b: any axis will do (a tiny ellipse)
    x_axis = torch.tensor([1.0, 0.0], dtype=d.dtype, device=d.device)
    u = torch.where(degenerate, x_axis, d / length.unsqueeze(-1))
    major = (length / 2).clamp_min(0.5)[..., None, None]
    px = xs - m[..., 0, None, None]
    py = ys - m[..., 1, None, None]
    du = px * u[..., 0, None, None] + py * u[..., 1, None, None]  # along the limb
    dv = -px * u[..., 1, None, None] + py * u[..., 0, None, None]  # across it
    f2 = (du / major) ** 2 + (dv / minor) ** 2
    present = ((a[..., 2] > 0) & (b[..., 2] > 0)).to(a.dtype)[..., None, None]
    if not antialias:
        return (f2 <= 1).to(a.dtype) * present
    f = torch.sqrt(f2 + 1e-12)
    grad = torch.sqrt((du / major**2) ** 2 + (dv / minor**2) ** 2 + 1e-12) / f
    cover = (0.5 - (f - 1) / grad).clamp(0, 1)  # first-order signed distance to the outline
    return torch.where(f < 0.5, torch.ones_like(cover), cover) * present


def bone_vectors(kp: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bone vectors of the 19 :data:`LIMBS` in the normalised frame (see :mod:`.normalize`).

    Args:
        kp: ``[..., 18, 3]`` pixels.

    Returns:
        vectors ``[..., 19, 2]`` (end - start, in torso units), lengths ``[..., 19]`` (torso units)
        and mask ``[..., 19]`` bool (both ends present). Bones with a missing end are zero. Unlike
        :func:`normalize_pose` this never raises: a pose with < 2 joints simply has no bones.
        Differentiable w.r.t. x, y.
    """
    kp = check_keypoints(kp, check_values=False)
    center, scale, _ = root_and_scale(kp)
    xy = (kp[..., :2] - center.unsqueeze(-2)) / scale[..., None, None]
    present = kp[..., 2] > 0
    mask = present[..., _LIMB_A] & present[..., _LIMB_B]
    m = mask.to(kp.dtype)
    vectors = (xy[..., _LIMB_B, :] - xy[..., _LIMB_A, :]) * m.unsqueeze(-1)
    return vectors, safe_norm(vectors) * m, mask
