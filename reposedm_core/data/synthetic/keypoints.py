"""Projected OpenPose-18 keypoints with COCO-style visibility from a depth test against the rendered body.

visibility: 2 = visible, 1 = in frame but hidden by the body (self-occluded), 0 = out of frame.
confidence: 1 if visible; if occluded, 0 for face points (nose, eyes, ears: detectors drop a turned-away
face) and 1 for body joints; 0 out of frame. Keypoints with confidence 0 have x = y = 0.

Keypoints use the pose layer's pixel convention (OpenPose/OpenCV): pixel (i, j) has its centre at x = j,
y = i. The camera projects onto a continuous canvas whose pixel centres are at j + 0.5, hence the shift.
"""
from __future__ import annotations

import math

import torch

from ...pose.skeleton import JOINT_INDEX, NUM_JOINTS
from .camera import Camera, make_camera
from .parts import body_radii
from .skeleton import FACE_SITES, SHAPE, SJ, forward_kinematics, matvec3, openpose18_from_3d

FACE_JOINTS = tuple(JOINT_INDEX[k] for k in ("nose", "r_eye", "l_eye", "r_ear", "l_ear"))
BODY_TOLERANCE = 0.03  # x height: how far behind the surface a body joint may lie and still count as visible
FACE_TOLERANCE = 0.012
PIXEL_CENTRE = 0.5  # continuous canvas -> integer pixel-centre coordinates


def joint_radii(shape: torch.Tensor) -> torch.Tensor:
    """Depth of each OpenPose joint below the body surface that covers it, ``[n, 18]`` metres."""
    r = body_radii(shape)
    zero = torch.zeros_like(r["neck"])
    by_name = {
        "nose": zero, "r_eye": zero, "l_eye": zero, "r_ear": zero, "l_ear": zero,
        "neck": 0.9 * r["chest_depth"],
        "r_shoulder": torch.maximum(r["upper_arm"], 0.8 * r["chest_depth"]), "r_elbow": r["elbow"],
        "r_wrist": r["wrist"],
        "r_hip": r["pelvis_depth"], "r_knee": r["knee"], "r_ankle": r["ankle"],
    }
    for k in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        by_name[f"l_{k}"] = by_name[f"r_{k}"]
    return torch.stack([by_name[k] for k in JOINT_INDEX], -1)


def keypoints_and_visibility(joints3d: torch.Tensor, shape: torch.Tensor, cam: Camera, depth: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keypoints ``[n, 18, 3]`` (x, y, confidence; pixels), visibility ``[n, 18]`` long, and the unmasked
    projected points ``[n, 18, 2]``, from skeleton joints ``[n, J, 3]`` and the rendered depth ``[n, H, W]``."""
    n, H, W = depth.shape
    pts = cam.to_camera(openpose18_from_3d(joints3d))
    xy = cam.project(pts)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < W) & (xy[..., 1] >= 0) & (xy[..., 1] < H)
    px = xy[..., 0].floor().clamp(0, W - 1).long()
    py = xy[..., 1].floor().clamp(0, H - 1).long()
    surface = depth.reshape(n, H * W).gather(1, (py * W + px).to(depth.device)).to(torch.float64).cpu()
    height = shape[:, SHAPE["height"]][:, None]
    face = torch.zeros(NUM_JOINTS, dtype=torch.bool)
    face[list(FACE_JOINTS)] = True
    tol = torch.where(face, FACE_TOLERANCE, BODY_TOLERANCE) * height
    hidden = surface < pts[..., 2] - joint_radii(shape) - tol
    vis = torch.where(inside, torch.where(hidden, 1, 2), 0).long()
    conf = ((vis == 2) | ((vis == 1) & ~face)).to(torch.float64)
    xy = xy - PIXEL_CENTRE
    kp = torch.cat([xy * conf[..., None], conf[..., None]], -1)
    return kp.to(torch.float32), vis, xy.to(torch.float32)


def face_towards_camera(frames: torch.Tensor, joints3d: torch.Tensor, cam: Camera) -> torch.Tensor:
    """Geometric visibility of the nose and eyes without rendering, ``[n, 3]`` bool (nose, r_eye, l_eye):
    the site's outward normal must face the camera (the nose, which sticks out, a little past profile)."""
    head = cam.rotate(frames[:, SJ["head"]][:, None])[:, 0]  # [n, 3, 3] head axes in camera coordinates
    out = []
    for name, thr in (("nose", -0.25), ("r_eye", 0.05), ("l_eye", 0.05)):
        (x, y, z), _ = FACE_SITES["nose" if name == "nose" else "eye"]
        d = torch.tensor([(-1.0 if name == "r_eye" else 1.0) * x, y, z], dtype=torch.float64)
        normal = matvec3(head, d / d.norm())
        site = cam.to_camera(joints3d[:, SJ[name]][:, None])[:, 0]
        out.append((normal * -site).sum(-1) / site.norm(dim=-1) > thr)
    return torch.stack(out, -1)


def project_poses(shape: torch.Tensor, angles: torch.Tensor, camera_uniforms: torch.Tensor, height: int = 256,
                  width: int = 176) -> dict[str, torch.Tensor]:
    """OpenPose-18 keypoints of 3D poses seen by random cameras, without rendering (fast: for pose banks).

    shape ``[n, len(SHAPE_NAMES)]``, angles ``[n, NUM_DOFS]`` radians (need not be within the limits),
    camera_uniforms ``[n, NUM_CAMERA_UNIFORMS]`` in (0, 1). Returns ``keypoints [n, 18, 3]`` (confidence 1 in
    frame, 0 out of frame or for a nose/eye turned away from the camera; no body self-occlusion test),
    ``joints2d [n, 18, 2]`` (all joints projected) and ``camera_yaw [n]``.
    """
    joints, frames = forward_kinematics(shape, angles, return_frames=True)
    cam = make_camera(camera_uniforms, joints, height, width)
    xy = cam.project(cam.to_camera(openpose18_from_3d(joints)))
    conf = ((xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)).to(torch.float64)
    conf[:, list(FACE_JOINTS[:3])] *= face_towards_camera(frames, joints, cam).to(torch.float64)
    xy = xy - PIXEL_CENTRE
    kp = torch.cat([xy * conf[..., None], conf[..., None]], -1)
    return {"keypoints": kp.to(torch.float32), "joints2d": xy.to(torch.float32),
            "camera_yaw": cam.yaw.remainder(2 * math.pi).to(torch.float32)}
