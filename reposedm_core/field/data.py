"""Procedural training and evaluation data for the pose field (Pose-NDF recipe, in 2D).

Valid poses are projections of in-limit 3D poses of the synthetic kinematic skeleton (varied proportions,
camera views, partial visibility, cropped bodies), with annotation jitter (``field.dataset``). Corrupted poses
come at graded strengths from the eleven :data:`KINDS`: nine made in 2D (``field.corrupt``) and two made in 3D
before projection -- rotations past a joint limit and impossible (hyper-extended) elbow/knee bends. Each
corrupted pose gets the target distance ``min(d(c, its valid source), min_bank d(c, b), fitted d)``
(``field.distance``, ``field.fit``), in body units.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data.synthetic.camera import NUM_CAMERA_UNIFORMS, make_camera
from ..data.synthetic.poses import NUM_POSE_UNIFORMS, pose_angles_from_uniforms, realistic_family, sample_pose_angles
from ..data.synthetic.skeleton import (DOF, JOINT_LIMITS_DEG, NUM_SHAPE_UNIFORMS, SJ, body_shape_from_uniforms,
                                       forward_kinematics, openpose18_from_3d, orient_bodies)
from ..pose.skeleton import JOINT_INDEX as J
from .corrupt import CORRUPTIONS_2D, STRENGTHS
from .distance import aligned_distance, nearest_distance
from .fit import fit_distance
from .model import TRAINING_SCALE, normalise, root_and_unit

KINDS = ("joint_noise", "bone_length", "swap_sides", "detached_joint", "joint_limit", "impossible_bend",
         "hip_swap", "shoulder_swap", "head_in_chest", "mirrored_limb", "torso_width", "legs_shifted")
# Degrees past the limit for the 3D corruptions, per strength.
PAST_LIMIT_DEG = {"weak": 15.0, "medium": 35.0, "strong": 60.0}
# DOFs pushed past a limit (direction: +1 above the upper limit, -1 below the lower one).
LIMIT_DOFS = (("neck_rot", 1), ("neck_rot", -1), ("spine_rot", 1), ("spine_rot", -1), ("r_hip_abd", 1),
              ("l_hip_abd", 1), ("r_hip_flex", -1), ("l_hip_flex", -1), ("neck_lat", 1), ("neck_lat", -1),
              ("r_shoulder_plane", -1), ("l_shoulder_plane", -1), ("neck_flex", 1), ("neck_flex", -1))
BEND_DOFS = ("r_elbow", "l_elbow", "r_knee", "l_knee")
FACE = (J["nose"], J["r_eye"], J["l_eye"], J["r_ear"], J["l_ear"])
DROP_RATE = 0.04  # random detector misses among otherwise visible joints
OCCLUDED_MISSING = 0.6  # share of joints hidden behind the torso that detectors / annotators leave out
# Orientation of the whole body (lying families): upright, on the back, on the front, on either side.
ORIENTATIONS = ("upright", "back", "front", "side_r", "side_l")


@dataclass
class Bodies:
    """A batch of 3D bodies and their cameras, enough to re-project corrupted angles."""

    shape_u: torch.Tensor   # [n, NUM_SHAPE_UNIFORMS] uniforms of the body proportions
    angles: torch.Tensor    # [n, DOFS] radians
    cam_u: torch.Tensor     # [n, NUM_CAMERA_UNIFORMS]
    orient: torch.Tensor | None = None   # [n] index into ORIENTATIONS (None: all upright)
    realistic: bool = False              # the realistic world's cameras

    @property
    def shape(self) -> torch.Tensor:
        """Body proportions ``[n, S]``."""
        return body_shape_from_uniforms(self.shape_u)

    def __getitem__(self, rows) -> "Bodies":
        return Bodies(self.shape_u[rows], self.angles[rows], self.cam_u[rows],
                      None if self.orient is None else self.orient[rows], self.realistic)

    def joints(self, angles: torch.Tensor | None = None) -> torch.Tensor:
        """3D joints ``[n, J, 3]`` of the bodies (optionally with other angles), laid down when lying."""
        joints = forward_kinematics(self.shape, self.angles if angles is None else angles)
        return orient_bodies(joints, self.orient) if self.orient is not None else joints


def sample_bodies(gen: torch.Generator, n: int, full_body: bool = False, realistic: bool = True) -> Bodies:
    """n random bodies: shape, in-limit angles and camera uniforms (``full_body`` forbids cropped shots).

    ``realistic`` (default): the realistic world's poses (``poses.REALISTIC_EXTRA`` families with lying bodies
    laid on the back, front or side) and cameras (``make_camera(realistic=True)``); else the original world.
    """
    u = torch.rand(n, NUM_CAMERA_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
    if full_body:
        u[:, 5] = u[:, 5] * 0.74  # below both worlds' crop fractions: the shot is full-body
    shape_u = torch.rand(n, NUM_SHAPE_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)
    if not realistic:
        return Bodies(shape_u, sample_pose_angles(gen, n), u)
    pu = torch.rand(n, NUM_POSE_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)
    angles = pose_angles_from_uniforms(pu, "realistic")
    lying = torch.from_numpy(realistic_family(pu) == "lying")
    side = 1 + (torch.rand(n, generator=gen) * 4).long().clamp(max=3)
    orient = torch.where(lying, side, torch.zeros_like(side))
    return Bodies(shape_u, angles, u, orient, True)


def project(bodies: Bodies, angles: torch.Tensor | None = None, height: int = 256, width: int = 176,
            gen: torch.Generator | None = None) -> torch.Tensor:
    """Pixels ``[n, 18, 3]`` of the bodies (optionally with other angles, same camera framing).

    Visibility: out-of-frame joints are missing; face points turned away from the camera are missing (as
    detectors behave); with ``gen``, a few other joints are dropped at random (detector misses).
    """
    joints = bodies.joints()
    cam = make_camera(bodies.cam_u, joints, height, width, bodies.realistic)   # framing fixed by the valid pose
    if angles is not None:
        joints = bodies.joints(angles)
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
        if bodies.realistic:
            hidden = behind_torso(xy, openpose18_from_3d(pc)[..., 2])
            visible &= ~(hidden & (torch.rand(visible.shape, generator=gen) < OCCLUDED_MISSING))
    kp = torch.cat([xy, torch.ones_like(xy[..., :1])], -1).float()
    return kp * visible.unsqueeze(-1)


_TORSO = (J["r_shoulder"], J["l_shoulder"], J["l_hip"], J["r_hip"])
_LIMB_JOINTS = [J[k] for k in ("r_elbow", "r_wrist", "l_elbow", "l_wrist", "r_knee", "r_ankle", "l_knee", "l_ankle")]


def behind_torso(xy: torch.Tensor, depth: torch.Tensor, margin: float = 0.08) -> torch.Tensor:
    """``[n, 18]`` bool: limb joints more than ``margin`` metres behind the torso whose projection falls inside
    the torso's quadrilateral (shoulders and hips) -- hidden by the body (self-occlusion)."""
    quad = xy[:, list(_TORSO)]                                             # [n, 4, 2]
    z_torso = depth[:, list(_TORSO)].mean(1, keepdim=True)
    p = xy[:, _LIMB_JOINTS][:, :, None]                                    # [n, L, 1, 2]
    a, b = quad[:, None], quad.roll(-1, 1)[:, None]                        # edges a -> b
    cross = (b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (p[..., 0] - a[..., 0])
    inside = (cross > 0).all(-1) | (cross < 0).all(-1)                     # [n, L]
    out = torch.zeros(xy.shape[:2], dtype=torch.bool)
    out[:, _LIMB_JOINTS] = inside & (depth[:, _LIMB_JOINTS] > z_torso + margin)
    return out


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
    """The training data's normalisation (root-centred, body-scaled): ``[n, 18, 2]``, present ``[n, 18]``."""
    return normalise(kp, TRAINING_SCALE)


def corrupt(bodies: Bodies, valid_kp: torch.Tensor, kind: str, strength: str, gen: torch.Generator,
            height: int = 256, width: int = 176) -> torch.Tensor:
    """Corrupted pixels ``[n, 18, 3]`` of ``kind`` at ``strength``; visibility is that of the valid pose."""
    if kind not in KINDS or strength not in STRENGTHS:
        raise ValueError(f"unknown corruption {kind!r}/{strength!r}; kinds {KINDS}, strengths {STRENGTHS}")
    present = valid_kp[..., 2] > 0
    if kind in CORRUPTIONS_2D:
        xy, _ = normalised(valid_kp)
        center, scale = root_and_unit(valid_kp, TRAINING_SCALE)
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
        best = torch.minimum(best, fit_distance(corrupted, bodies.shape_u, bodies.angles, bodies.cam_u, fit_steps,
                                                orient=bodies.orient, realistic=bodies.realistic))
    return best


def make_bank(gen: torch.Generator, n: int, height: int = 256, width: int = 176) -> torch.Tensor:
    """``[n, 18, 2]`` normalised full-body valid poses with every joint present (the nearest-neighbour bank)."""
    bodies = sample_bodies(gen, n, full_body=True)
    joints = bodies.joints()
    cam = make_camera(bodies.cam_u, joints, height, width, bodies.realistic)
    xy = openpose18_from_3d(cam.project(cam.to_camera(joints))).float()
    kp = torch.cat([xy, torch.ones_like(xy[..., :1])], -1)
    return normalised(kp)[0]
