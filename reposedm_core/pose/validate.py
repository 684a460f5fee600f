"""Validation of keypoint arrays: anything array-like in, a float32 ``[..., N, 3]`` tensor out.

Every public function of the pose layer funnels its keypoint arguments through here, so that a bad
input fails early with a ``ValueError`` that says what was wrong and which shape was expected.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .skeleton import NUM_JOINTS

_NUMERIC_KINDS = "biuf"  # numpy dtype kinds accepted: bool is rejected below, ints and floats converted


def _describe(value: Any) -> str:
    """A short description of a value for error messages (type, and shape where there is one)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__


def check_points(
    kp: Any,
    num_points: int,
    name: str = "keypoints",
    *,
    channels: tuple[int, ...] = (3,),
    check_values: bool = True,
) -> torch.Tensor:
    """Validate ``kp`` as points ``[..., num_points, C]`` and return it as a float32 tensor.

    Args:
        kp: a ``torch.Tensor``, ``numpy.ndarray`` or nested list of numbers.
        num_points: required size of the second-to-last dimension (18 for OpenPose-18).
        name: the argument's name, used in error messages.
        channels: allowed sizes of the last dimension (3 = x, y, confidence).
        check_values: also require every value to be finite and the last channel (confidence or
            visibility) to be >= 0. Set False on hot paths where the values come from our own code
            (it avoids a device synchronisation on GPU tensors).

    Returns:
        ``torch.Tensor  # [..., num_points, C] float32``, on the input's device; values unchanged.

    Raises:
        ValueError: non-numeric input, wrong shape, NaN/inf, or negative confidence.
    """
    expected = f"[..., {num_points}, {' or '.join(str(c) for c in channels)}]"
    if isinstance(kp, torch.Tensor):
        t = kp
        if t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"{name} must be a real numeric tensor {expected}, got dtype {t.dtype}")
    else:
        if isinstance(kp, (str, bytes, dict)) or kp is None or isinstance(kp, bool):
            raise ValueError(f"{name} must be a tensor, array or nested list {expected}, got {_describe(kp)}")
        try:
            arr = np.asarray(kp)
        except (ValueError, TypeError) as err:  # ragged nesting, unconvertible objects
            raise ValueError(f"{name} is not a rectangular numeric array {expected}: {err}") from err
        if arr.dtype.kind not in _NUMERIC_KINDS or arr.dtype.kind == "b":
            raise ValueError(
                f"{name} must contain only numbers, got an array of dtype {arr.dtype} "
                f"(strings, booleans, None or ragged lists?); expected {expected}"
            )
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if t.dim() < 2 or t.shape[-2] != num_points or t.shape[-1] not in channels:
        raise ValueError(f"{name} must have shape {expected}, got shape {tuple(t.shape)}")
    if t.dtype != torch.float32:
        t = t.to(torch.float32)
    if check_values and t.numel() > 0:
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinite values; expected finite numbers {expected}")
        if bool((t[..., -1] < 0).any()):
            raise ValueError(
                f"{name} has a negative confidence (last channel); expected confidence >= 0 "
                f"(0 = missing joint)"
            )
    return t


def check_keypoints(kp: Any, name: str = "keypoints", *, check_values: bool = True) -> torch.Tensor:
    """Validate OpenPose-18 keypoints and return them as ``torch.Tensor  # [..., 18, 3] float32``.

    (x, y) are pixels of some canvas, the third channel is the confidence (0 = missing).
    Raises ``ValueError`` for non-numeric input, a shape other than ``[..., 18, 3]``, NaN/inf, or a
    negative confidence (see :func:`check_points`).
    """
    return check_points(kp, NUM_JOINTS, name, check_values=check_values)


def zero_missing(kp: torch.Tensor) -> torch.Tensor:
    """Return ``kp  # [..., N, 3]`` with x, y set to 0 wherever the confidence is 0 (canonical form)."""
    present = (kp[..., 2:3] > 0).to(kp.dtype)
    return torch.cat([kp[..., :2] * present, kp[..., 2:3]], dim=-1)
