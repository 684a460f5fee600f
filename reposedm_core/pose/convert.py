"""Explicit converters between keypoint conventions and the canonical OpenPose-18 pixel format.

All tensors are ``[..., N, 3]`` = (x, y, confidence), batched over any leading dimensions; a point
with confidence 0 is missing and has x = y = 0 in every output. Pixel convention: the centre of
pixel column ``j`` is at ``x = j`` (as in OpenPose and OpenCV); normalised coordinates are
``x_norm = x_px / W`` (as in comfyui_controlnet_aux).
"""
from __future__ import annotations

import json
import math
import numbers
from typing import Any

import numpy as np
import torch

from .skeleton import FLIP_PERMUTATION, JOINT_INDEX, NUM_JOINTS
from .validate import check_points, zero_missing

NUM_COCO = 17
NUM_BODY25 = 25
NUM_MEDIAPIPE = 33

# COCO-17: nose, l_eye, r_eye, l_ear, r_ear, l_sho, r_sho, l_elb, r_elb, l_wri, r_wri,
#          l_hip, r_hip, l_knee, r_knee, l_ank, r_ank.
# OPENPOSE18_FROM_COCO[j] = COCO index of OpenPose joint j (-1 for the neck, which COCO lacks).
OPENPOSE18_FROM_COCO: tuple[int, ...] = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
# OPENPOSE18_FROM_BODY25[j] = BODY_25 index of OpenPose joint j (BODY_25 8 = mid-hip, 19-24 = feet).
OPENPOSE18_FROM_BODY25: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
# OPENPOSE18_FROM_MEDIAPIPE[j] = BlazePose landmark of OpenPose joint j (-1: the neck, from shoulders).
OPENPOSE18_FROM_MEDIAPIPE: tuple[int, ...] = (
    0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7,
)


def _midpoint(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Midpoint of two points ``[..., 3]``; confidence = min, missing unless both are present."""
    both = ((a[..., 2] > 0) & (b[..., 2] > 0)).to(a.dtype).unsqueeze(-1)
    xy = (a[..., :2] + b[..., :2]) / 2
    conf = torch.minimum(a[..., 2:3], b[..., 2:3])
    return torch.cat([xy, conf], dim=-1) * both


def _gather(kp: torch.Tensor, index: tuple[int, ...]) -> torch.Tensor:
    """Pick points ``kp[..., index, :]``; entries with index -1 become missing (zeros)."""
    idx = torch.tensor([max(i, 0) for i in index], device=kp.device)
    valid = torch.tensor([i >= 0 for i in index], device=kp.device, dtype=kp.dtype)
    return kp.index_select(-2, idx) * valid.unsqueeze(-1)


def _scatter(kp: torch.Tensor, index: tuple[int, ...], size: int) -> torch.Tensor:
    """Inverse of :func:`_gather`: a ``[..., size, 3]`` tensor with ``out[..., index[j]] = kp[..., j]``."""
    out = kp.new_zeros(*kp.shape[:-2], size, kp.shape[-1])
    for j, i in enumerate(index):
        if i >= 0:
            out[..., i, :] = kp[..., j, :]
    return out


def coco17_to_openpose18(kp: Any) -> torch.Tensor:
    """COCO-17 ``[..., 17, 3]`` -> OpenPose-18 ``[..., 18, 3]`` (same units).

    The neck is the midpoint of the shoulders when both are present (confidence = the smaller one),
    otherwise missing. COCO annotation visibility flags (0/1/2) pass through as confidences.
    """
    kp = zero_missing(check_points(kp, NUM_COCO, "coco17 keypoints"))
    out = _gather(kp, OPENPOSE18_FROM_COCO)
    out[..., JOINT_INDEX["neck"], :] = _midpoint(kp[..., 5, :], kp[..., 6, :])
    return out


def openpose18_to_coco17(kp: Any) -> torch.Tensor:
    """OpenPose-18 ``[..., 18, 3]`` -> COCO-17 ``[..., 17, 3]`` (the neck is dropped)."""
    kp = zero_missing(check_points(kp, NUM_JOINTS, "openpose18 keypoints"))
    return _scatter(kp, OPENPOSE18_FROM_COCO, NUM_COCO)


def body25_to_openpose18(kp: Any) -> torch.Tensor:
    """OpenPose BODY_25 ``[..., 25, 3]`` -> OpenPose-18 ``[..., 18, 3]`` (mid-hip and feet dropped)."""
    kp = zero_missing(check_points(kp, NUM_BODY25, "body25 keypoints"))
    return _gather(kp, OPENPOSE18_FROM_BODY25)


def openpose18_to_body25(kp: Any) -> torch.Tensor:
    """OpenPose-18 ``[..., 18, 3]`` -> BODY_25 ``[..., 25, 3]``.

    Mid-hip (BODY_25 index 8) is the midpoint of the hips when both are present; the six foot
    points (19-24) are missing.
    """
    kp = zero_missing(check_points(kp, NUM_JOINTS, "openpose18 keypoints"))
    out = _scatter(kp, OPENPOSE18_FROM_BODY25, NUM_BODY25)
    out[..., 8, :] = _midpoint(kp[..., JOINT_INDEX["r_hip"], :], kp[..., JOINT_INDEX["l_hip"], :])
    return out


def mediapipe33_to_openpose18(
    landmarks: Any, width: int, height: int, visibility_threshold: float = 0.5
) -> torch.Tensor:
    """MediaPipe BlazePose landmarks -> OpenPose-18 pixels ``[..., 18, 3]``.

    Args:
        landmarks: ``[..., 33, 3]`` (x, y, visibility) or ``[..., 33, 4]`` (x, y, z, visibility),
            x and y normalised to the image (0..1), visibility in 0..1.
        width, height: the canvas in pixels.
        visibility_threshold: landmarks with visibility below this are missing.

    The confidence of a joint is its visibility; the neck is the midpoint of the shoulders.
    """
    lm = check_points(landmarks, NUM_MEDIAPIPE, "mediapipe landmarks", channels=(3, 4))
    _check_canvas(width, height)
    vis = lm[..., -1]
    vis = torch.where(vis >= visibility_threshold, vis, torch.zeros_like(vis))
    pts = zero_missing(torch.stack([lm[..., 0] * width, lm[..., 1] * height, vis], dim=-1))
    out = _gather(pts, OPENPOSE18_FROM_MEDIAPIPE)
    out[..., JOINT_INDEX["neck"], :] = _midpoint(pts[..., 11, :], pts[..., 12, :])
    return out


def openpose18_to_mediapipe33(kp: Any, width: int, height: int) -> torch.Tensor:
    """OpenPose-18 pixels ``[..., 18, 3]`` -> BlazePose ``[..., 33, 3]`` (normalised x, y, visibility).

    Only the 17 landmarks OpenPose-18 has are filled (visibility = confidence); the others (inner and
    outer eye corners, mouth, hands, feet) get visibility 0. The neck has no BlazePose landmark.
    """
    kp = zero_missing(check_points(kp, NUM_JOINTS, "openpose18 keypoints"))
    return _scatter(pixels_to_normalized(kp, width, height), OPENPOSE18_FROM_MEDIAPIPE, NUM_MEDIAPIPE)


def _check_canvas(width: Any, height: Any) -> None:
    for label, v in (("width", width), ("height", height)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not 0 < v < math.inf:
            raise ValueError(f"canvas {label} must be a positive finite number of pixels, got {v!r}")


def normalized_to_pixels(kp: Any, width: int, height: int) -> torch.Tensor:
    """Keypoints ``[..., N, 3]`` with x, y in [0, 1] -> pixels of a ``width`` x ``height`` canvas."""
    t = check_points(kp, _num_points(kp), "keypoints")
    _check_canvas(width, height)
    scale = t.new_tensor([width, height, 1.0])
    return zero_missing(t * scale)


def pixels_to_normalized(kp: Any, width: int, height: int) -> torch.Tensor:
    """Keypoints ``[..., N, 3]`` in pixels of a ``width`` x ``height`` canvas -> x, y in [0, 1]."""
    t = check_points(kp, _num_points(kp), "keypoints")
    _check_canvas(width, height)
    scale = t.new_tensor([1.0 / width, 1.0 / height, 1.0])
    return zero_missing(t * scale)


def _num_points(kp: Any) -> int:
    shape = getattr(kp, "shape", None)
    if shape is None:
        try:
            shape = torch.as_tensor(kp).shape
        except (ValueError, TypeError, RuntimeError) as err:
            raise ValueError(f"keypoints must be a rectangular numeric array [..., N, 3]: {err}") from err
    if len(shape) < 2:
        raise ValueError(f"keypoints must have shape [..., N, 3], got shape {tuple(shape)}")
    return int(shape[-2])


def flip_horizontal(kp: Any, width: int) -> torch.Tensor:
    """Mirror OpenPose-18 pixels ``[..., 18, 3]`` left-right on a canvas ``width`` pixels wide.

    ``x -> (width - 1) - x`` (pixel centres at integers, so this matches ``torch.flip`` of the image)
    and left/right joints are swapped with :data:`FLIP_PERMUTATION`. Missing joints stay missing.
    """
    kp = check_points(kp, NUM_JOINTS, "keypoints")
    _check_canvas(width, 1)
    perm = torch.tensor(FLIP_PERMUTATION, device=kp.device)
    flipped = kp.index_select(-2, perm)
    x = (width - 1) - flipped[..., 0]
    return zero_missing(torch.stack([x, flipped[..., 1], flipped[..., 2]], dim=-1))


# ---------------------------------------------------------------- DeepFashion / Market-1501 strings


def _parse_int_list(text: Any, label: str) -> list[int]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise ValueError(f"{label} must be a string like '[12, -1, 40, ...]', got {type(text).__name__}")
    try:
        values = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{label} is not a JSON list of {NUM_JOINTS} integers: {text[:80]!r}") from err
    if not isinstance(values, list) or len(values) != NUM_JOINTS:
        got = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
        raise ValueError(f"{label} must list {NUM_JOINTS} integers (-1 = missing), got {got}: {text[:80]!r}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) > 1e6 or v != int(v):
            raise ValueError(f"{label}[{i}] = {v!r} is not an integer pixel coordinate (or -1 for missing)")
        if v < -1:
            raise ValueError(f"{label}[{i}] = {v!r} is negative; only -1 (missing) is allowed")
        out.append(int(v))
    return out


def parse_deepfashion_keypoints(keypoints_y: str, keypoints_x: str) -> torch.Tensor:
    """Parse one DeepFashion / Market-1501 annotation row into OpenPose-18 pixels ``[18, 3]``.

    Args:
        keypoints_y: JSON-style list of 18 integer row coordinates, e.g. ``"[12, -1, 40, ...]"``.
        keypoints_x: the same for the column coordinates. -1 in either marks the joint missing.

    Returns:
        ``torch.Tensor  # [18, 3]`` float32 (x, y, confidence 1 or 0). Parsed with ``json``, never eval.
    """
    ys = _parse_int_list(keypoints_y, "keypoints_y")
    xs = _parse_int_list(keypoints_x, "keypoints_x")
    out = torch.zeros(NUM_JOINTS, 3)
    for j, (y, x) in enumerate(zip(ys, xs)):
        if x != -1 and y != -1:
            out[j] = torch.tensor([float(x), float(y), 1.0])
    return out


def format_deepfashion_keypoints(kp: Any) -> tuple[str, str]:
    """Format OpenPose-18 pixels ``[18, 3]`` as DeepFashion ``(keypoints_y, keypoints_x)`` strings.

    Coordinates are rounded to integers; missing joints become -1. A present joint whose rounded
    coordinate is negative cannot be written in this format and raises ``ValueError``.
    """
    t = check_points(kp, NUM_JOINTS, "keypoints")
    if t.dim() != 2:
        raise ValueError(f"keypoints must be one pose [18, 3], got shape {tuple(t.shape)}")
    ys, xs = [], []
    for j, (x, y, c) in enumerate(t.detach().cpu().tolist()):
        if c > 0:
            xi, yi = int(round(x)), int(round(y))
            if xi < 0 or yi < 0:
                raise ValueError(
                    f"joint {j} at ({x:.1f}, {y:.1f}) is outside the canvas; the DeepFashion format "
                    "only stores non-negative integer coordinates"
                )
            xs.append(xi)
            ys.append(yi)
        else:
            xs.append(-1)
            ys.append(-1)
    return json.dumps(ys), json.dumps(xs)
