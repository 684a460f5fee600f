"""The synthetic person world: procedural, deterministic people with exact pose ground truth.

    from reposedm_core.data.synthetic import render_people, SyntheticWorld
    out = render_people([7, 8], [3, 4])          # image [2, 3, 256, 176], keypoints [2, 18, 3], ...
    pair = SyntheticWorld("train")[0]             # one identity in two poses

Modules: ``skeleton`` (3D skeleton, joint limits, proportions, forward kinematics), ``poses`` (pose priors),
``camera`` (view and framing), ``appearance`` (skin, hair, garments, background), ``parts`` (body primitives),
``render`` (rasteriser), ``keypoints`` (projection and visibility), ``world`` (the API).
"""
from __future__ import annotations

from .poses import PRIOR_NAMES, PRIORS, pose_angles_from_uniforms, sample_pose_angles
from .skeleton import (
    DOF_NAMES,
    JOINT_LIMITS_DEG,
    NUM_DOFS,
    SHAPE_NAMES,
    SKELETON_JOINTS,
    clamp_to_limits,
    forward_kinematics,
    joint_limits,
    openpose18_from_3d,
    sample_body_shape,
    within_limits,
)
from .keypoints import project_poses
from .world import SPLITS, SyntheticWorld, contact_sheet, render_people, sample_projected_poses, split_of_seed

__all__ = [
    "render_people", "SyntheticWorld", "contact_sheet", "split_of_seed", "SPLITS", "project_poses",
    "sample_projected_poses",
    "sample_body_shape", "sample_pose_angles", "pose_angles_from_uniforms", "forward_kinematics",
    "openpose18_from_3d", "joint_limits", "within_limits", "clamp_to_limits",
    "JOINT_LIMITS_DEG", "DOF_NAMES", "NUM_DOFS", "SHAPE_NAMES", "SKELETON_JOINTS", "PRIORS", "PRIOR_NAMES",
]
