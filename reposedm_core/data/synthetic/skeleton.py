"""3D kinematic skeleton: degrees of freedom with anatomical limits, body proportions, forward kinematics.

Body frame (metres): +x = the person's left, +y = up, +z = the direction the person faces (right-handed).
The person stands on the floor y = 0 with the pelvis above the origin. All rotations act on column vectors;
a joint's *frame* is the global rotation of the segment that starts at it (its columns are the segment's
local x/y/z axes in the body frame). Per-sample computations are float64 (see ``seeds.py``).
"""
from __future__ import annotations

import math

import torch

from ...pose.skeleton import JOINT_NAMES, NUM_JOINTS
from .seeds import normal_from_uniform

# ----------------------------------------------------------------------------------- degrees of freedom
# name: (lo, hi) in degrees. Sign conventions (for both sides, mirrored by the side factor inside FK):
# root_pitch/spine_flex/neck_flex > 0 bend forward; *_lat > 0 bend to the person's left; *_rot > 0 turn left;
# shoulder: plane of elevation (0 = sideways, 90 = forward, < 0 behind, > 90 across the body), elevation from
# hanging (0) to straight up (180), axial rotation > 0 internal; elbow/knee flexion >= 0 (no hyper-extension);
# wrist > 0 palm-side flexion; hip flex > 0 thigh forward, abd > 0 outward, rot > 0 internal; ankle > 0 toes up.
JOINT_LIMITS_DEG: dict[str, tuple[float, float]] = {
    "root_pitch": (-30.0, 100.0), "root_roll": (-25.0, 25.0),
    "spine_flex": (-30.0, 80.0), "spine_lat": (-35.0, 35.0), "spine_rot": (-45.0, 45.0),
    "neck_flex": (-60.0, 70.0), "neck_lat": (-40.0, 40.0), "neck_rot": (-80.0, 80.0),
    **{f"{s}_{k}": v for s in ("r", "l") for k, v in (
        ("shoulder_plane", (-90.0, 135.0)), ("shoulder_elev", (0.0, 180.0)), ("shoulder_rot", (-70.0, 90.0)),
        ("elbow", (0.0, 150.0)), ("wrist", (-70.0, 80.0)))},
    **{f"{s}_{k}": v for s in ("r", "l") for k, v in (
        ("hip_flex", (-25.0, 125.0)), ("hip_abd", (-30.0, 50.0)), ("hip_rot", (-40.0, 45.0)),
        ("knee", (0.0, 150.0)), ("ankle", (-45.0, 25.0)))},
}
DOF_NAMES: tuple[str, ...] = tuple(JOINT_LIMITS_DEG)
DOF = {name: i for i, name in enumerate(DOF_NAMES)}
NUM_DOFS = len(DOF_NAMES)
# Coupled limit: the arm cannot point further behind the body than this (shoulder extension ~60 deg).
MAX_ARM_BACKWARD_DEG = 60.0
# DOFs whose sign flips under a left/right mirror (the per-side DOFs swap instead).
MIRROR_NEGATE = ("root_roll", "spine_lat", "spine_rot", "neck_lat", "neck_rot")


def joint_limits(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[NUM_DOFS, 2]`` (lo, hi) in radians, in :data:`DOF_NAMES` order."""
    return torch.tensor(list(JOINT_LIMITS_DEG.values()), dtype=dtype) * (math.pi / 180)


def _arm_backward(angles: torch.Tensor, side: str) -> torch.Tensor:
    """Backward component of the upper-arm direction (``sin(elev) * sin(-plane)``), ``[...]``."""
    return torch.sin(angles[..., DOF[f"{side}_shoulder_elev"]]) * torch.sin(-angles[..., DOF[f"{side}_shoulder_plane"]])


def within_limits(angles: torch.Tensor, tol_deg: float = 1e-3) -> torch.Tensor:
    """Whether each pose is inside the anatomical limits. angles: ``[..., NUM_DOFS]`` radians -> bool ``[...]``."""
    if angles.shape[-1] != NUM_DOFS:
        raise ValueError(f"angles must be [..., {NUM_DOFS}] (DOF_NAMES order), got shape {tuple(angles.shape)}")
    lim = joint_limits(angles.dtype).to(angles.device)
    tol = tol_deg * math.pi / 180
    ok = ((angles >= lim[:, 0] - tol) & (angles <= lim[:, 1] + tol)).all(-1)
    cap = math.sin(math.radians(MAX_ARM_BACKWARD_DEG)) + 1e-6
    for side in ("r", "l"):
        ok = ok & (_arm_backward(angles, side) <= cap)
    return ok


def clamp_to_limits(angles: torch.Tensor) -> torch.Tensor:
    """Project ``[..., NUM_DOFS]`` radians into the limits (box clamp, then the coupled shoulder limit)."""
    lim = joint_limits(angles.dtype).to(angles.device)
    out = torch.maximum(torch.minimum(angles, lim[:, 1]), lim[:, 0]).clone()
    cap = math.sin(math.radians(MAX_ARM_BACKWARD_DEG))
    for side in ("r", "l"):
        e, p = DOF[f"{side}_shoulder_elev"], DOF[f"{side}_shoulder_plane"]
        back = torch.sin(-out[..., p]).clamp_min(1e-9)
        bad = _arm_backward(out, side) > cap
        edge = torch.asin((cap / back).clamp(max=1.0))  # elevation where the limit is met, below 90 deg
        fixed = torch.where(out[..., e] < math.pi / 2, edge, math.pi - edge)
        out[..., e] = torch.where(bad, fixed, out[..., e])
    return out


# ----------------------------------------------------------------------------------- body proportions
SHAPE_NAMES: tuple[str, ...] = (
    "height", "head", "head_width", "neck", "torso", "shoulder_half", "hip_half", "upper_arm", "forearm",
    "hand", "thigh", "shin", "ankle", "foot", "girth", "femininity", "child",
)
SHAPE = {name: i for i, name in enumerate(SHAPE_NAMES)}
NUM_SHAPE_UNIFORMS = 20


def body_shape_from_uniforms(u: torch.Tensor) -> torch.Tensor:
    """Body proportions from uniforms ``[n, NUM_SHAPE_UNIFORMS]`` -> ``[n, len(SHAPE_NAMES)]`` (metres, or 0..1).

    Adults of both sexes (about 78 %), teenagers and children (head up to 1/5 of the height, shorter legs),
    slim to heavy (``girth`` 0.82..1.45), with independent +-3..5 % noise on every limb ratio.
    """
    n = u.shape[0]
    z = normal_from_uniform(u)
    age = u[:, 0]
    child = torch.where(age < 0.78, 0.15 * u[:, 1], torch.where(age < 0.90, 0.2 + 0.3 * u[:, 1], 0.55 + 0.45 * u[:, 1]))
    fem = torch.where(u[:, 2] < 0.5, 0.35 * u[:, 3], 0.65 + 0.35 * u[:, 3])
    height = (1.76 - 0.13 * fem + 0.068 * z[:, 4].clamp(-2.5, 2.5)) * (1 - 0.45 * child)
    head = height * (0.13 + 0.07 * child + 0.005 * z[:, 5].clamp(-2, 2))
    head_width = head * (0.34 + 0.02 * child + 0.012 * z[:, 6].clamp(-2, 2))
    neck = height * (0.062 - 0.02 * child) * (1 + 0.08 * z[:, 7].clamp(-2, 2))
    hip_y = height * (0.50 - 0.06 * child + 0.012 * z[:, 8].clamp(-2, 2))
    ankle = 0.04 * height
    thigh = (hip_y - ankle) * (0.52 + 0.012 * z[:, 9].clamp(-2, 2))
    shin = hip_y - ankle - thigh
    torso = height - hip_y - 0.015 * height - neck - 0.85 * head
    jitter = lambda i, s: 1 + s * z[:, i].clamp(-2, 2)  # noqa: E731
    shoulder_half = height * (0.104 - 0.012 * fem - 0.006 * child) * jitter(10, 0.04)
    hip_half = height * (0.047 + 0.008 * fem) * jitter(11, 0.05)
    upper_arm = height * (0.186 - 0.02 * child) * jitter(12, 0.03)
    forearm = height * (0.150 - 0.015 * child) * jitter(13, 0.03)
    hand = height * (0.100 - 0.01 * child) * jitter(14, 0.04)
    foot = height * 0.150 * jitter(15, 0.04)
    girth = torch.exp(0.11 * z[:, 16]).clamp(0.82, 1.45)
    cols = dict(height=height, head=head, head_width=head_width, neck=neck, torso=torso,
                shoulder_half=shoulder_half, hip_half=hip_half, upper_arm=upper_arm, forearm=forearm, hand=hand,
                thigh=thigh, shin=shin, ankle=ankle.expand(n) if ankle.dim() == 0 else ankle, foot=foot,
                girth=girth, femininity=fem, child=child)
    return torch.stack([cols[k].to(torch.float64) for k in SHAPE_NAMES], -1)


def sample_body_shape(gen: torch.Generator, n: int) -> torch.Tensor:
    """``n`` body shapes ``[n, len(SHAPE_NAMES)]`` from a torch.Generator (see :func:`body_shape_from_uniforms`)."""
    u = torch.rand(n, NUM_SHAPE_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)
    return body_shape_from_uniforms(u)


def head_axes(shape: torch.Tensor) -> torch.Tensor:
    """Head ellipsoid semi-axes ``[n, 3]`` (x half-width, y half-height, z half-depth) in metres."""
    h = shape[:, SHAPE["head"]]
    return torch.stack([shape[:, SHAPE["head_width"]], 0.5 * h, 0.43 * h], -1)


# ----------------------------------------------------------------------------------- rotations (float64)
def matmul3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[..., 3, 3] @ [..., 3, 3]`` with elementwise ops only (bit-identical for any batch size)."""
    return a[..., :, 0:1] * b[..., 0:1, :] + a[..., :, 1:2] * b[..., 1:2, :] + a[..., :, 2:3] * b[..., 2:3, :]


def matvec3(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``[..., 3, 3] @ [..., 3]`` with elementwise ops only."""
    return a[..., :, 0] * v[..., 0:1] + a[..., :, 1] * v[..., 1:2] + a[..., :, 2] * v[..., 2:3]


def _rot(axis: int, a: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(a), torch.sin(a)
    o, z = torch.ones_like(a), torch.zeros_like(a)
    rows = {0: ((o, z, z), (z, c, -s), (z, s, c)),
            1: ((c, z, s), (z, o, z), (-s, z, c)),
            2: ((c, -s, z), (s, c, z), (z, z, o))}[axis]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def rot_x(a: torch.Tensor) -> torch.Tensor:
    return _rot(0, a)


def rot_y(a: torch.Tensor) -> torch.Tensor:
    return _rot(1, a)


def rot_z(a: torch.Tensor) -> torch.Tensor:
    return _rot(2, a)


def axis_angle(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: unit ``axis [..., 3]``, ``angle [...]`` -> ``[..., 3, 3]``."""
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([torch.stack(r, -1) for r in ((zero, -z, y), (z, zero, -x), (-y, x, zero))], -2)
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device).expand_as(k)
    s, c = torch.sin(angle)[..., None, None], (1 - torch.cos(angle))[..., None, None]
    return eye + s * k + c * matmul3(k, k)


# ----------------------------------------------------------------------------------- forward kinematics
SKELETON_JOINTS: tuple[str, ...] = (
    "pelvis", "waist", "chest", "neck_base", "head", "head_top", "head_center", "nose", "r_eye", "l_eye",
    "r_ear", "l_ear",
    "r_shoulder", "r_elbow", "r_wrist", "r_hand", "l_shoulder", "l_elbow", "l_wrist", "l_hand",
    "r_hip", "r_knee", "r_ankle", "r_toe", "r_heel", "l_hip", "l_knee", "l_ankle", "l_toe", "l_heel",
)
SJ = {name: i for i, name in enumerate(SKELETON_JOINTS)}
NUM_SKELETON_JOINTS = len(SKELETON_JOINTS)
# Face sites as directions on the unit head ellipsoid (head frame), times a radial factor (>1 sticks out).
FACE_SITES = {"nose": ((0.0, -0.12, 1.0), 1.10), "eye": ((0.36, 0.12, 0.925), 1.0), "ear": ((1.0, -0.02, -0.12), 1.04)}
HEAD_CENTER = (0.0, 0.35, 0.04)  # head centre in the head frame, in head heights
OPENPOSE18_FROM_SKELETON: tuple[int | tuple[int, int], ...] = tuple(
    (SJ["r_shoulder"], SJ["l_shoulder"]) if name == "neck" else SJ[name] for name in JOINT_NAMES
)


def _site(shape: torch.Tensor, key: str, side: float) -> torch.Tensor:
    (x, y, z), radial = FACE_SITES[key]
    d = torch.tensor([side * x, y, z], dtype=shape.dtype, device=shape.device)
    return head_axes(shape) * (d / d.norm() * radial)


def forward_kinematics(shape: torch.Tensor, angles: torch.Tensor,
                       return_frames: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Joint positions of ``n`` bodies.

    shape: ``[n, len(SHAPE_NAMES)]``; angles: ``[n, NUM_DOFS]`` radians. Returns joints ``[n, J, 3]`` in metres
    (J = :data:`SKELETON_JOINTS`, feet on y = 0, pelvis above x = z = 0) and, with ``return_frames``, the
    frames ``[n, J, 3, 3]`` (global rotation of the segment that starts at each joint).
    """
    if shape.dim() != 2 or shape.shape[-1] != len(SHAPE_NAMES):
        raise ValueError(f"shape must be [n, {len(SHAPE_NAMES)}], got {tuple(shape.shape)}")
    if angles.dim() != 2 or angles.shape != (shape.shape[0], NUM_DOFS):
        raise ValueError(f"angles must be [n={shape.shape[0]}, {NUM_DOFS}] radians, got {tuple(angles.shape)}")
    shape, angles = shape.to(torch.float64), angles.to(torch.float64)
    n = shape.shape[0]
    S = lambda k: shape[:, SHAPE[k]]  # noqa: E731
    A = lambda k: angles[:, DOF[k]]  # noqa: E731
    vec = lambda x, y, z: torch.stack(torch.broadcast_tensors(  # noqa: E731
        *(torch.as_tensor(c, dtype=torch.float64) for c in (x, y, z))), -1).expand(n, 3)
    pos: dict[str, torch.Tensor] = {}
    frame: dict[str, torch.Tensor] = {}

    def child(name: str, parent: str, offset: torch.Tensor, rot: torch.Tensor) -> None:
        pos[name] = pos[parent] + matvec3(frame[parent], offset)
        frame[name] = rot

    H = S("height")
    hip_y = S("ankle") + S("shin") + S("thigh")
    pos["pelvis"] = vec(0.0, hip_y, 0.0)
    frame["pelvis"] = matmul3(rot_x(A("root_pitch")), rot_z(-A("root_roll")))
    def half_bend(k: str) -> torch.Tensor:  # half of a spine/neck bend: twist, flexion, lateral (split over 2 joints)
        return matmul3(matmul3(rot_y(0.5 * A(f"{k}_rot")), rot_x(0.5 * A(f"{k}_flex"))), rot_z(-0.5 * A(f"{k}_lat")))

    spine_half, neck_half = half_bend("spine"), half_bend("neck")
    child("waist", "pelvis", vec(0.0, 0.3 * S("torso"), -0.01 * H), matmul3(frame["pelvis"], spine_half))
    child("chest", "waist", vec(0.0, 0.35 * S("torso"), 0.0), matmul3(frame["waist"], spine_half))
    child("neck_base", "chest", vec(0.0, 0.35 * S("torso") + 0.015 * H, 0.01 * H), matmul3(frame["chest"], neck_half))
    child("head", "neck_base", vec(0.0, S("neck"), 0.01 * H), matmul3(frame["neck_base"], neck_half))
    hh = S("head")
    child("head_center", "head", vec(HEAD_CENTER[0] * hh, HEAD_CENTER[1] * hh, HEAD_CENTER[2] * hh), frame["head"])
    child("head_top", "head_center", vec(0.0, 0.5 * hh, 0.0), frame["head"])
    child("nose", "head_center", _site(shape, "nose", 1.0), frame["head"])
    for side, s in (("r", -1.0), ("l", 1.0)):
        child(f"{side}_eye", "head_center", _site(shape, "eye", s), frame["head"])
        child(f"{side}_ear", "head_center", _site(shape, "ear", s), frame["head"])
        # Arm: swing (plane, elevation) about a horizontal axis, then axial twist; elbow and wrist hinge.
        plane, elev = A(f"{side}_shoulder_plane"), A(f"{side}_shoulder_elev")
        swing_axis = torch.stack([-torch.sin(plane), torch.zeros_like(plane), s * torch.cos(plane)], -1)
        r_arm = matmul3(frame["chest"], matmul3(axis_angle(swing_axis, elev), rot_y(-s * A(f"{side}_shoulder_rot"))))
        child(f"{side}_shoulder", "chest", vec(s * S("shoulder_half"), 0.35 * S("torso"), 0.0), r_arm)
        child(f"{side}_elbow", f"{side}_shoulder", vec(0.0, -S("upper_arm"), 0.0),
              matmul3(r_arm, rot_x(-A(f"{side}_elbow"))))
        child(f"{side}_wrist", f"{side}_elbow", vec(0.0, -S("forearm"), 0.0),
              matmul3(frame[f"{side}_elbow"], rot_x(-A(f"{side}_wrist"))))
        child(f"{side}_hand", f"{side}_wrist", vec(0.0, -S("hand"), 0.0), frame[f"{side}_wrist"])
        # Leg: flexion, abduction, internal rotation; knee and ankle hinge.
        hip = matmul3(matmul3(rot_x(-A(f"{side}_hip_flex")), rot_z(s * A(f"{side}_hip_abd"))),
                      rot_y(-s * A(f"{side}_hip_rot")))
        r_leg = matmul3(frame["pelvis"], hip)
        child(f"{side}_hip", "pelvis", vec(s * S("hip_half"), 0.0, 0.0), r_leg)
        child(f"{side}_knee", f"{side}_hip", vec(0.0, -S("thigh"), 0.0), matmul3(r_leg, rot_x(A(f"{side}_knee"))))
        child(f"{side}_ankle", f"{side}_knee", vec(0.0, -S("shin"), 0.0),
              matmul3(frame[f"{side}_knee"], rot_x(-A(f"{side}_ankle"))))
        child(f"{side}_toe", f"{side}_ankle", vec(0.0, -S("ankle"), 0.78 * S("foot")), frame[f"{side}_ankle"])
        child(f"{side}_heel", f"{side}_ankle", vec(0.0, -S("ankle"), -0.2 * S("foot")), frame[f"{side}_ankle"])
    joints = torch.stack([pos[k] for k in SKELETON_JOINTS], 1)
    ground = joints[..., 1].amin(1)
    joints = joints - torch.stack([torch.zeros_like(ground), ground, torch.zeros_like(ground)], -1)[:, None]
    if return_frames:
        return joints, torch.stack([frame[k] for k in SKELETON_JOINTS], 1)
    return joints


def openpose18_from_3d(joints3d: torch.Tensor) -> torch.Tensor:
    """Skeleton joints ``[..., J, D]`` (any trailing D, e.g. 3D points) -> OpenPose-18 ``[..., 18, D]``.

    The OpenPose neck is the midpoint of the shoulders, as in COCO-derived annotations.
    """
    if joints3d.shape[-2] != NUM_SKELETON_JOINTS:
        raise ValueError(f"expected [..., {NUM_SKELETON_JOINTS}, D] skeleton joints, got {tuple(joints3d.shape)}")
    cols = [joints3d[..., list(i), :].mean(-2) if isinstance(i, tuple) else joints3d[..., i, :]
            for i in OPENPOSE18_FROM_SKELETON]
    out = torch.stack(cols, -2)
    assert out.shape[-2] == NUM_JOINTS
    return out


def orient_bodies(joints: torch.Tensor, orient: torch.Tensor) -> torch.Tensor:
    """Rotate whole bodies ``[n, J, 3]`` about the pelvis by ``orient [n]`` (0 upright, 1 on the back, 2 on the
    front, 3 / 4 on either side; ``field.data.ORIENTATIONS``) and put the lowest point on the floor."""
    pelvis = joints[:, SJ["pelvis"]][:, None]
    rots = torch.stack([torch.eye(3, dtype=joints.dtype), rot_x(torch.tensor(-math.pi / 2, dtype=joints.dtype)),
                        rot_x(torch.tensor(math.pi / 2, dtype=joints.dtype)),
                        rot_z(torch.tensor(math.pi / 2, dtype=joints.dtype)),
                        rot_z(torch.tensor(-math.pi / 2, dtype=joints.dtype))])
    out = matvec3(rots[orient][:, None], joints - pelvis) + pelvis
    return out - torch.stack([torch.zeros_like(out[:, 0, 0]), out[..., 1].amin(1), torch.zeros_like(out[:, 0, 0])],
                             -1)[:, None]
