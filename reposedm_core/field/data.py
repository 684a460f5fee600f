"""Procedural training and evaluation data for the pose field (Pose-NDF recipe, in 2D).

Valid poses are projections of in-limit 3D poses of the synthetic kinematic skeleton (varied proportions,
camera views, partial visibility, cropped bodies). Corrupted poses come at graded strengths from six kinds:
four made in 2D (``field.corrupt``) and two made in 3D before projection — rotations past a joint limit and
impossible (hyper-extended) elbow/knee bends. Each corrupted pose gets the target distance
``min(d(c, its valid source), min_bank d(c, b))`` (``field.distance``), in torso lengths.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data.synthetic.camera import NUM_CAMERA_UNIFORMS, make_camera
from ..data.synthetic.poses import sample_pose_angles
from ..data.synthetic.skeleton import (DOF, JOINT_LIMITS_DEG, NUM_SHAPE_UNIFORMS, SJ, body_shape_from_uniforms,
                                       forward_kinematics, openpose18_from_3d)
from ..pose.normalize import root_and_scale
from ..pose.skeleton import JOINT_INDEX as J
from .corrupt import CORRUPTIONS_2D, STRENGTHS
from .distance import aligned_distance, nearest_distance
from .fit import fit_distance
from .model import PoseInteractionField

KINDS = ("joint_noise", "bone_length", "swap_sides", "detached_joint", "joint_limit", "impossible_bend")
# Degrees past the limit for the 3D corruptions, per strength.
PAST_LIMIT_DEG = {"weak": 15.0, "medium": 35.0, "strong": 60.0}
# DOFs pushed past a limit (direction: +1 above the upper limit, -1 below the lower one).
LIMIT_DOFS = (("neck_rot", 1), ("neck_rot", -1), ("spine_rot", 1), ("spine_rot", -1), ("r_hip_abd", 1),
              ("l_hip_abd", 1), ("r_hip_flex", -1), ("l_hip_flex", -1), ("neck_lat", 1), ("neck_lat", -1),
              ("r_shoulder_plane", -1), ("l_shoulder_plane", -1))
BEND_DOFS = ("r_elbow", "l_elbow", "r_knee", "l_knee")
FACE = (J["nose"], J["r_eye"], J["l_eye"], J["r_ear"], J["l_ear"])
DROP_RATE = 0.04  # random detector misses among otherwise visible joints


@dataclass
class Bodies:
    """A batch of 3D bodies and their cameras, enough to re-project corrupted angles."""

    shape_u: torch.Tensor   # [n, NUM_SHAPE_UNIFORMS] uniforms of the body proportions
    angles: torch.Tensor    # [n, DOFS] radians
    cam_u: torch.Tensor     # [n, NUM_CAMERA_UNIFORMS]

    @property
    def shape(self) -> torch.Tensor:
        """Body proportions ``[n, S]``."""
        return body_shape_from_uniforms(self.shape_u)

    def __getitem__(self, rows) -> "Bodies":
        return Bodies(self.shape_u[rows], self.angles[rows], self.cam_u[rows])


def sample_bodies(gen: torch.Generator, n: int, full_body: bool = False) -> Bodies:
    """n random bodies: shape, in-limit angles and camera uniforms (``full_body`` forbids cropped shots)."""
    u = torch.rand(n, NUM_CAMERA_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
    if full_body:
        u[:, 5] = u[:, 5] * 0.79  # camera.FULL_BODY_FRACTION: below it the shot is full-body
    shape_u = torch.rand(n, NUM_SHAPE_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)
    return Bodies(shape_u, sample_pose_angles(gen, n), u)


def project(bodies: Bodies, angles: torch.Tensor | None = None, height: int = 256, width: int = 176,
            gen: torch.Generator | None = None) -> torch.Tensor:
    """Pixels ``[n, 18, 3]`` of the bodies (optionally with other angles, same camera framing).

    Visibility: out-of-frame joints are missing; face points turned away from the camera are missing (as
    detectors behave); with ``gen``, a few other joints are dropped at random (detector misses).
    """
    joints = forward_kinematics(bodies.shape, bodies.angles)
    cam = make_camera(bodies.cam_u, joints, height, width)       # framing fixed by the valid pose
    if angles is not None:
        joints = forward_kinematics(bodies.shape, angles)
    pc = cam.to_camera(joints)
    xy = openpose18_from_3d(cam.project(pc))                       # [n, 18, 2]
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    # A face point is seen when its outward direction from the head centre faces the camera.
    head = pc[:, SJ["head_center"]]
    out_dir = openpose18_from_3d(pc)[:, list(FACE)] - head[:, None]
    to_cam = -openpose18_from_3d(pc)[:, list(FACE)]
    facing = (out_dir * to_cam).sum(-1) / (out_dir.norm(dim=-1) * to_cam.norm(dim=-1)).clamp_min(1e-9)
    visible = inside.clone()
    visible[:, list(FACE)] &= facing > torch.tensor([0.0, 0.0, 0.0, -0.35, -0.35], dtype=facing.dtype)
    if gen is not None:
        visible &= torch.rand(visible.shape, generator=gen) >= DROP_RATE
    kp = torch.cat([xy, torch.ones_like(xy[..., :1])], -1).float()
    return kp * visible.unsqueeze(-1)


def past_limit(bodies: Bodies, strength: str, gen: torch.Generator) -> torch.Tensor:
    """Angles with one DOF rotated past its anatomical limit by PAST_LIMIT_DEG[strength] (+-20 %)."""
    n = len(bodies.angles)
    pick = torch.randint(0, len(LIMIT_DOFS), (n,), generator=gen)
    extra = math.radians(PAST_LIMIT_DEG[strength]) * (0.8 + 0.4 * torch.rand(n, generator=gen, dtype=torch.float64))
    out = bodies.angles.clone()
    for k, (name, sign) in enumerate(LIMIT_DOFS):
        rows = pick == k
        lo, hi = (math.radians(v) for v in JOINT_LIMITS_DEG[name])
        out[rows, DOF[name]] = (hi + extra[rows]) if sign > 0 else (lo - extra[rows])
    return out


def impossible_bend(bodies: Bodies, strength: str, gen: torch.Generator) -> torch.Tensor:
    """Angles with an elbow or knee bent backwards (hyper-extended) by PAST_LIMIT_DEG[strength] (+-20 %)."""
    n = len(bodies.angles)
    pick = torch.randint(0, len(BEND_DOFS), (n,), generator=gen)
    extra = math.radians(PAST_LIMIT_DEG[strength]) * (0.8 + 0.4 * torch.rand(n, generator=gen, dtype=torch.float64))
    out = bodies.angles.clone()
    for k, name in enumerate(BEND_DOFS):
        rows = pick == k
        out[rows, DOF[name]] = -extra[rows]
    return out


def normalised(kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The field's own normalisation (root-centred, torso-scaled): ``[n, 18, 2]``, present ``[n, 18]``."""
    return PoseInteractionField.normalise(kp)


def corrupt(bodies: Bodies, valid_kp: torch.Tensor, kind: str, strength: str, gen: torch.Generator,
            height: int = 256, width: int = 176) -> torch.Tensor:
    """Corrupted pixels ``[n, 18, 3]`` of ``kind`` at ``strength``; visibility is that of the valid pose."""
    if kind not in KINDS or strength not in STRENGTHS:
        raise ValueError(f"unknown corruption {kind!r}/{strength!r}; kinds {KINDS}, strengths {STRENGTHS}")
    present = valid_kp[..., 2] > 0
    if kind in CORRUPTIONS_2D:
        xy, _ = normalised(valid_kp)
        center, scale, _ = root_and_scale(valid_kp)
        bad = CORRUPTIONS_2D[kind](xy, present, strength, gen)
        pix = bad * scale[:, None, None] + center[:, None]
    else:
        angles = past_limit(bodies, strength, gen) if kind == "joint_limit" else impossible_bend(bodies, strength, gen)
        pix = project(bodies, angles, height, width)[..., :2]     # same camera; keep the valid visibility
    return torch.cat([pix, valid_kp[..., 2:]], -1) * present.unsqueeze(-1)


def target_distance(corrupted: torch.Tensor, source: torch.Tensor, bank: torch.Tensor, bodies: Bodies,
                    fit_steps: int = 40) -> torch.Tensor:
    """min(d(c, source), min_bank d(c, b), fitted d) in the corrupted pose's normalised frame, ``[n]``.

    The fit (``field.fit``) starts from the body the corruption came from; ``fit_steps=0`` skips it.
    """
    q, present = normalised(corrupted)
    src, _ = normalised(torch.cat([source[..., :2], corrupted[..., 2:]], -1))
    best = torch.minimum(aligned_distance(q, src, present), nearest_distance(q, present, bank))
    if fit_steps > 0:
        best = torch.minimum(best, fit_distance(corrupted, bodies.shape_u, bodies.angles, bodies.cam_u, fit_steps))
    return best


def make_bank(gen: torch.Generator, n: int, height: int = 256, width: int = 176) -> torch.Tensor:
    """``[n, 18, 2]`` normalised full-body valid poses with every joint present (the nearest-neighbour bank)."""
    bodies = sample_bodies(gen, n, full_body=True)
    joints = forward_kinematics(bodies.shape, bodies.angles)
    cam = make_camera(bodies.cam_u, joints, height, width)
    xy = openpose18_from_3d(cam.project(cam.to_camera(joints))).float()
    kp = torch.cat([xy, torch.ones_like(xy[..., :1])], -1)
    return normalised(kp)[0]
