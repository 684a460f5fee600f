"""Synthetic world, 3D layer: joint limits, proportions, pose priors, forward kinematics, OpenPose mapping."""
from __future__ import annotations

import math

import pytest
import torch

from reposedm_core.data.synthetic import (
    DOF_NAMES,
    JOINT_LIMITS_DEG,
    NUM_DOFS,
    PRIOR_NAMES,
    PRIORS,
    SHAPE_NAMES,
    SKELETON_JOINTS,
    clamp_to_limits,
    forward_kinematics,
    joint_limits,
    openpose18_from_3d,
    sample_body_shape,
    sample_pose_angles,
    within_limits,
)
from reposedm_core.data.synthetic.skeleton import DOF, SHAPE, SJ
from reposedm_core.pose import JOINT_INDEX as J


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_limit_table_is_anatomical():
    assert len(DOF_NAMES) == NUM_DOFS == len(JOINT_LIMITS_DEG) == 28
    lim = joint_limits()
    assert lim.shape == (NUM_DOFS, 2) and bool((lim[:, 0] < lim[:, 1]).all())
    for side in ("r", "l"):  # hinges: no hyper-extension, flexion up to 150 degrees
        for hinge in ("elbow", "knee"):
            assert JOINT_LIMITS_DEG[f"{side}_{hinge}"] == (0.0, 150.0)
        assert JOINT_LIMITS_DEG[f"{side}_shoulder_elev"] == (0.0, 180.0)
    assert JOINT_LIMITS_DEG["neck_rot"][1] <= 90 and JOINT_LIMITS_DEG["spine_rot"][1] <= 50


@pytest.mark.parametrize("prior", PRIOR_NAMES)
def test_sampler_respects_limits(prior):
    angles = sample_pose_angles(gen(1), 400, prior=prior)
    assert angles.shape == (400, NUM_DOFS) and angles.dtype == torch.float64
    assert bool(within_limits(angles).all())
    assert torch.isfinite(angles).all()


def test_within_limits_rejects_and_clamp_repairs():
    good = sample_pose_angles(gen(2), 64)
    bad = good.clone()
    bad[:8, DOF["r_knee"]] = math.radians(-20)  # hyper-extended knee
    bad[8:16, DOF["l_elbow"]] = math.radians(170)
    bad[16:24, DOF["l_shoulder_plane"]] = math.radians(-90)  # arm pointing straight back: past extension
    bad[16:24, DOF["l_shoulder_elev"]] = math.radians(90)
    ok = within_limits(bad)
    assert not bool(ok[:24].any()) and bool(ok[24:].all())
    fixed = clamp_to_limits(bad)
    assert bool(within_limits(fixed).all())
    assert torch.equal(fixed[24:], good[24:])
    with pytest.raises(ValueError, match="NUM_DOFS|28"):
        within_limits(torch.zeros(3, 5))


def test_priors_look_like_their_names():
    deg = lambda a, k: a[:, DOF[k]] * 180 / math.pi  # noqa: E731
    sit = sample_pose_angles(gen(3), 100, prior="sitting")
    assert bool((deg(sit, "r_hip_flex") > 65).all() and (deg(sit, "r_knee") > 60).all())
    raised = sample_pose_angles(gen(3), 100, prior="arms_raised")
    assert bool((torch.maximum(deg(raised, "r_shoulder_elev"), deg(raised, "l_shoulder_elev")) > 110).all())
    stand = sample_pose_angles(gen(3), 100, prior="standing")
    assert bool((deg(stand, "r_knee") < 35).all() and (deg(stand, "l_knee") < 35).all())
    mixed = sample_pose_angles(gen(4), 2000)
    natural = sample_pose_angles(gen(4), 2000, prior="natural")
    assert 0.05 < (mixed != natural).any(-1).float().mean() < 0.2  # ~12 % uniform poses
    with pytest.raises(ValueError, match="prior"):
        sample_pose_angles(gen(0), 2, prior="dancing")
    assert set(PRIORS) < set(PRIOR_NAMES)


def test_body_shapes_vary_like_people():
    shape = sample_body_shape(gen(5), 2000)
    assert shape.shape == (2000, len(SHAPE_NAMES))
    h = shape[:, SHAPE["height"]]
    assert 0.8 < float(h.min()) and float(h.max()) < 2.1
    adults = shape[:, SHAPE["child"]] < 0.15
    kids = shape[:, SHAPE["child"]] > 0.6
    assert adults.float().mean() > 0.6 and kids.sum() > 50
    head_ratio = shape[:, SHAPE["head"]] / h
    assert float(head_ratio[kids].mean()) > float(head_ratio[adults].mean()) + 0.03  # children: bigger heads
    fem = shape[:, SHAPE["femininity"]] > 0.5
    assert float(h[adults & fem].mean()) < float(h[adults & ~fem].mean())
    for k in ("upper_arm", "thigh", "shoulder_half", "girth"):
        ratio = shape[adults, SHAPE[k]] / h[adults]
        assert float(ratio.std() / ratio.mean()) > 0.02  # proportions vary, not only the scale


def test_forward_kinematics_rest_pose():
    shape = sample_body_shape(gen(6), 16)
    joints, frames = forward_kinematics(shape, torch.zeros(16, NUM_DOFS, dtype=torch.float64), return_frames=True)
    assert joints.shape == (16, len(SKELETON_JOINTS), 3) and frames.shape == (16, len(SKELETON_JOINTS), 3, 3)
    P = lambda k: joints[:, SJ[k]]  # noqa: E731
    assert torch.allclose(joints[..., 1].amin(1), torch.zeros(16, dtype=torch.float64))  # feet on the floor
    assert torch.allclose(P("head_top")[:, 1], shape[:, SHAPE["height"]], atol=0.03)  # standing height
    assert bool((P("l_shoulder")[:, 0] > 0).all() and (P("r_shoulder")[:, 0] < 0).all())  # +x = person's left
    assert bool((P("nose")[:, 2] > P("head_center")[:, 2]).all())  # the face points +z
    assert bool((P("r_wrist")[:, 1] < P("r_elbow")[:, 1]).all())  # arms hang
    assert torch.allclose(P("r_elbow")[:, 1] - P("r_wrist")[:, 1], shape[:, SHAPE["forearm"]])
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(frames @ frames.transpose(-1, -2), eye.expand_as(frames), atol=1e-9)  # rotations


def test_forward_kinematics_hinges_bend_the_right_way():
    shape = sample_body_shape(gen(7), 4)
    a = torch.zeros(4, NUM_DOFS, dtype=torch.float64)
    a[:, DOF["l_shoulder_plane"]] = a[:, DOF["l_shoulder_elev"]] = math.pi / 2  # left arm straight forward
    a[:, DOF["l_elbow"]] = math.pi / 2
    a[:, DOF["r_hip_flex"]] = a[:, DOF["r_knee"]] = math.pi / 2  # right thigh forward, shin down
    a[:, DOF["r_shoulder_elev"]] = math.pi / 2  # right arm out to the side (plane 0)
    j = forward_kinematics(shape, a)
    P = lambda k: j[:, SJ[k]]  # noqa: E731
    assert bool((P("l_elbow")[:, 2] > P("l_shoulder")[:, 2] + 0.1).all())  # forward
    assert bool((P("l_wrist")[:, 1] > P("l_elbow")[:, 1] + 0.1).all())  # forearm bends up, not backwards
    assert bool((P("r_knee")[:, 2] > P("r_hip")[:, 2] + 0.1).all())
    assert bool((P("r_ankle")[:, 1] < P("r_knee")[:, 1] - 0.1).all())  # knee bends the shin back/down
    assert bool((P("r_elbow")[:, 0] < P("r_shoulder")[:, 0] - 0.1).all())  # right arm goes to the right (-x)


def test_fk_validates_and_openpose_mapping():
    shape = sample_body_shape(gen(8), 3)
    with pytest.raises(ValueError, match="angles"):
        forward_kinematics(shape, torch.zeros(3, 5))
    j = forward_kinematics(shape, sample_pose_angles(gen(8), 3))
    op = openpose18_from_3d(j)
    assert op.shape == (3, 18, 3)
    assert torch.allclose(op[:, J["neck"]], 0.5 * (j[:, SJ["r_shoulder"]] + j[:, SJ["l_shoulder"]]))
    for name in ("nose", "r_wrist", "l_ankle", "r_ear"):
        assert torch.equal(op[:, J[name]], j[:, SJ[name]])
