"""Differentiable keypoint estimators: images ``[B, 3, H, W]`` 0..1 -> OpenPose-18 keypoints ``[B, 18, 3]``.

    est = load_estimator()                              # the small network shipped with the pack
    kp = est(images)                                    # x, y in pixels of the input, confidence 0..1
    op = load_openpose_estimator("body_pose_model.pth") # the OpenPose body network, weights the user has
    bp = load_blazepose()                               # MediaPipe BlazePose (Apache-2.0), for photographs

The first two share :class:`KeypointEstimator` (letterbox to a working size, heatmaps, local soft-argmax,
coordinates mapped back); BlazePose runs MediaPipe's detector -> region of interest -> landmark pipeline
(:mod:`.blazepose_estimator`). All are differentiable with respect to the images (used by pose guidance).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .blazepose_estimator import BlazePoseEstimator, BlazePoseOutput, BlazePosePeople, load_blazepose, pose_rois
from .base import EstimatorOutput, KeypointEstimator, Letterbox, letterbox, letterbox_geometry, local_soft_argmax
from .openpose import OpenPoseBodyEstimator, load_openpose_estimator
from .small import KIND, SmallEstimatorConfig, SmallKeypointNet, load_small_estimator, save_small_estimator

SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "estimator.safetensors"


def load_estimator(path: str | os.PathLike | None = None,
                   device: str | torch.device | None = None) -> SmallKeypointNet:
    """Load a small-network estimator checkpoint (eval mode, parameters frozen); ``path=None`` loads the
    shipped ``reposedm_core/weights/estimator.safetensors``.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: not a ``keypoint-estimator`` safetensors checkpoint (see :func:`load_small_estimator`).
    """
    target = SHIPPED if path is None else Path(path)
    if not target.is_file():
        hint = ("the shipped estimator weights are missing from the package; reinstall the pack or train them "
                "with `python -m reposedm_core.train estimator --out reposedm_core/weights/estimator.safetensors`"
                if path is None else "check the path")
        raise FileNotFoundError(f"keypoint estimator checkpoint {target} not found: {hint}")
    model, _ = load_small_estimator(target, device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


__all__ = [
    "KeypointEstimator", "EstimatorOutput", "Letterbox", "letterbox", "letterbox_geometry", "local_soft_argmax",
    "SmallKeypointNet", "SmallEstimatorConfig", "save_small_estimator", "load_small_estimator", "load_estimator",
    "OpenPoseBodyEstimator", "load_openpose_estimator", "KIND", "SHIPPED",
    "BlazePoseEstimator", "BlazePoseOutput", "BlazePosePeople", "load_blazepose", "pose_rois",
]
