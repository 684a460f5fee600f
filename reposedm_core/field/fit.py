"""Distance to the manifold by fitting: the nearest projection of a valid 3D body to a 2D pose.

A corrupted 2D pose can coincide with the projection of some *other* valid body (a hyper-extended elbow seen
from one side looks like a normal bend seen from the other). The bank's nearest neighbour cannot find such a
body unless the bank is astronomically dense, so the target distance is also bounded by fitting: starting from
the body the corruption came from, the joint angles (kept inside the anatomical limits by projection), the
body proportions and a global rotation of the body are optimised to minimise the aligned 2D distance.
"""
from __future__ import annotations

import torch

from ..data.synthetic.camera import make_camera
from ..data.synthetic.skeleton import (body_shape_from_uniforms, clamp_to_limits,
                                       forward_kinematics, openpose18_from_3d, orient_bodies, rot_x, rot_y, rot_z,
                                       matmul3)
from .distance import aligned_distance
from .model import TRAINING_SCALE, normalise


def _rotation(r: torch.Tensor) -> torch.Tensor:
    """Small global body rotation from (yaw, pitch, roll) ``[n, 3]`` radians -> ``[n, 3, 3]``."""
    return matmul3(matmul3(rot_y(r[:, 0]), rot_x(r[:, 1])), rot_z(r[:, 2]))


def fit_distance(query: torch.Tensor, shape_u: torch.Tensor, angles: torch.Tensor, cam_u: torch.Tensor,
                 steps: int = 40, lr: float = 0.04, height: int = 256, width: int = 176,
                 orient: torch.Tensor | None = None, realistic: bool = False) -> torch.Tensor:
    """Upper bound of the distance from pixel poses ``query [n, 18, 3]`` to the valid manifold, ``[n]``.

    shape_u ``[n, NUM_SHAPE_UNIFORMS]``, angles ``[n, DOFS]`` (start, inside the limits) and cam_u: the body and
    camera to start from. Returns the smallest aligned distance seen during the optimisation (torso units of
    the query's normalisation).
    """
    q, present = normalise(query, TRAINING_SCALE)
    q = q.double()
    lay = (lambda j: orient_bodies(j, orient)) if orient is not None else (lambda j: j)  # noqa: E731
    joints = lay(forward_kinematics(body_shape_from_uniforms(shape_u), angles))
    cam = make_camera(cam_u, joints, height, width, realistic)
    centre = joints.mean(1, keepdim=True).detach()
    logit_u = torch.logit(shape_u.clamp(1e-4, 1 - 1e-4)).clone().requires_grad_(True)
    ang = angles.clone().requires_grad_(True)
    rot = torch.zeros(len(query), 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([logit_u, ang, rot], lr=lr)
    best = torch.full((len(query),), float("inf"), dtype=torch.float64)
    for _ in range(steps + 1):
        body = lay(forward_kinematics(body_shape_from_uniforms(torch.sigmoid(logit_u)), ang))
        body = torch.einsum("nij,npj->npi", _rotation(rot), body - centre) + centre
        xy = openpose18_from_3d(cam.project(cam.to_camera(body)))
        fitted, _ = normalise(torch.cat([xy, torch.ones_like(xy[..., :1])], -1), TRAINING_SCALE)
        d = aligned_distance(q, fitted.double(), present)
        best = torch.minimum(best, d.detach())
        opt.zero_grad(set_to_none=True)
        (d * d).sum().backward()
        opt.step()
        with torch.no_grad():
            ang.copy_(clamp_to_limits(ang))
            rot[:, 1:].clamp_(-0.5, 0.5)  # any turn about the vertical axis; pitch/roll as the camera allows
    return best.float()
