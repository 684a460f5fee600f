"""Pose layer: the canonical OpenPose-18 pixel format, converters, POSE_KEYPOINT I/O and encodings.

Every pose is ``torch.Tensor  # [..., 18, 3]`` = (x, y, confidence) in pixels of a stated canvas,
joints in :data:`JOINT_NAMES` order; confidence 0 means missing (x = y = 0).
"""
from __future__ import annotations

from .convert import (
    body25_to_openpose18,
    coco17_to_openpose18,
    flip_horizontal,
    format_deepfashion_keypoints,
    mediapipe33_to_openpose18,
    normalized_to_pixels,
    openpose18_to_body25,
    openpose18_to_coco17,
    openpose18_to_mediapipe33,
    parse_deepfashion_keypoints,
    pixels_to_normalized,
)
from .encode import bone_vectors, heatmaps, limb_maps, render_skeleton
from .keypoint_io import (
    FORMATS,
    dump_openpose_json,
    load_openpose_json,
    load_pose_keypoint,
    to_pose_keypoint,
)
from .normalize import denormalize_pose, normalize_pose
from .pose_frame import PoseFrame, frames_from_tensor, frames_to_tensor
from .skeleton import (
    BODY_PARTS,
    COLORS,
    FLIP_PERMUTATION,
    JOINT_INDEX,
    JOINT_NAMES,
    LIMBS,
    NUM_JOINTS,
    NUM_RENDERED_LIMBS,
)
from .validate import check_keypoints, check_points

__all__ = [
    # skeleton
    "NUM_JOINTS", "JOINT_NAMES", "JOINT_INDEX", "LIMBS", "COLORS", "FLIP_PERMUTATION", "BODY_PARTS",
    "NUM_RENDERED_LIMBS",
    # validation
    "check_keypoints", "check_points",
    # POSE_KEYPOINT / OpenPose JSON
    "FORMATS", "PoseFrame", "load_pose_keypoint", "to_pose_keypoint", "frames_to_tensor",
    "frames_from_tensor", "load_openpose_json", "dump_openpose_json",
    # converters
    "coco17_to_openpose18", "openpose18_to_coco17", "body25_to_openpose18", "openpose18_to_body25",
    "mediapipe33_to_openpose18", "openpose18_to_mediapipe33", "normalized_to_pixels",
    "pixels_to_normalized", "parse_deepfashion_keypoints", "format_deepfashion_keypoints",
    "flip_horizontal",
    # normalisation and encodings
    "normalize_pose", "denormalize_pose", "heatmaps", "limb_maps", "render_skeleton", "bone_vectors",
]
