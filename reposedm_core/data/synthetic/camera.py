"""Camera: random yaw (front, back, side), small pitch and roll, perspective projection, and framing of the
person into an H x W canvas (full body with a random scale/offset, or a closer crop that cuts joints off).

Camera coordinates: x right, y down, z forward (metres); pixels: x to the right, y down, (0, 0) the top-left
corner of the top-left pixel, so pixel (i, j) has its centre at (j + 0.5, i + 0.5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .seeds import normal_from_uniform
from .skeleton import SJ, matmul3, matvec3, rot_y, rot_z

NUM_CAMERA_UNIFORMS = 20
TURNED_SHARE = 0.15  # realistic world: share of pictures turned by any angle (see make_camera)
FULL_BODY_FRACTION = 0.8


@dataclass
class Camera:
    """A batch of ``n`` pinhole cameras (float64). ``p_cam = rotation @ p_world + translation``."""

    rotation: torch.Tensor  # [n, 3, 3] world -> camera, includes the person's yaw
    translation: torch.Tensor  # [n, 3] metres
    focal: torch.Tensor  # [n] pixels
    cx: torch.Tensor  # [n] pixels
    cy: torch.Tensor  # [n] pixels
    yaw: torch.Tensor  # [n] radians, 0 = the person faces the camera, pi = seen from the back
    pitch: torch.Tensor  # [n] radians, > 0 = looking down at the person
    roll: torch.Tensor  # [n] radians
    light: torch.Tensor  # [n, 3] unit vector towards the light, camera coordinates
    ambient: torch.Tensor  # [n] 0..1
    diffuse: torch.Tensor  # [n] 0..1
    floor_line: torch.Tensor  # [n, 2, 2] two pixel points on the wall-floor edge behind the person
    cropped: torch.Tensor  # [n] bool, a close-up shot that may cut joints off
    shadow: torch.Tensor | None = None  # [n, 5] contact shadow on the floor: centre x, y, radii x, y (pixels), strength

    def to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``[n, P, 3]`` -> camera coordinates ``[n, P, 3]``."""
        return matvec3(self.rotation[:, None], points) + self.translation[:, None]

    def rotate(self, vectors: torch.Tensor) -> torch.Tensor:
        """World directions ``[n, P, 3]`` (or frames ``[n, P, 3, 3]``) -> camera coordinates."""
        if vectors.dim() == 4:
            return matmul3(self.rotation[:, None], vectors)
        return matvec3(self.rotation[:, None], vectors)

    def project(self, points_cam: torch.Tensor) -> torch.Tensor:
        """Camera points ``[n, P, 3]`` -> pixels ``[n, P, 2]``."""
        z = points_cam[..., 2].clamp_min(1e-6)
        return torch.stack([self.focal[:, None] * points_cam[..., 0] / z + self.cx[:, None],
                            self.focal[:, None] * points_cam[..., 1] / z + self.cy[:, None]], -1)


def _pitch(a: torch.Tensor) -> torch.Tensor:
    """Camera tilt about its x axis; ``a > 0`` looks down (y down, z forward)."""
    c, s = torch.cos(a), torch.sin(a)
    o, z = torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([torch.stack(r, -1) for r in ((o, z, z), (z, c, -s), (z, s, c))], -2)


def make_camera(u: torch.Tensor, joints: torch.Tensor, height: int, width: int, realistic: bool = False) -> Camera:
    """Cameras for ``n`` people from uniforms ``[n, NUM_CAMERA_UNIFORMS]`` and their joints ``[n, J, 3]``.

    The focal length and principal point are chosen so the person (joints inflated by a body-size margin)
    fills ``0.72..0.95`` of the canvas, or, for about 20 % of shots, a 1.15..1.9x closer crop anchored near
    the head, so legs (and sometimes an arm) fall out of frame.

    ``realistic`` (the pose field's world): pitch from -60 (below) to +80 degrees (from above; half the shots
    near eye level), roll up to +-30 degrees (and 15 % of pictures turned by any angle), camera 1.5..8 m away
    (perspective foreshortening), and 25 % crops that cut the body on any side (top, bottom, left or right).
    """
    n = u.shape[0]
    u = u.to(torch.float64)
    z = normal_from_uniform(u)
    mode = u[:, 0]
    yaw = torch.where(mode < 0.40, math.radians(25) * z[:, 1].clamp(-2.5, 2.5),
                      torch.where(mode < 0.55, math.pi + math.radians(25) * z[:, 1].clamp(-2.5, 2.5),
                                  2 * math.pi * u[:, 1]))
    pitch = (math.radians(3) + math.radians(7) * z[:, 2]).clamp(math.radians(-20), math.radians(20))
    roll = (math.radians(3) * z[:, 3]).clamp(math.radians(-10), math.radians(10))
    dist = 2.5 + 3.5 * u[:, 4]
    if realistic:
        wide = math.radians(-60) + math.radians(140) * u[:, 18]
        pitch = torch.where(u[:, 19] < 0.5, (math.radians(5) + math.radians(12) * z[:, 2]).clamp(
            math.radians(-60), math.radians(80)), wide)
        roll = (math.radians(12) * z[:, 3]).clamp(math.radians(-30), math.radians(30))
        # TURNED_SHARE of the pictures are turned by any angle (a phone held sideways, a person lying on the
        # floor or flipping in the air seen from above). The draw reuses u[:, 19] (its fraction within the
        # pitch branch it picks is uniform and independent of that branch) and u[:, 3], so the uniforms of
        # every other world, and their random streams, are unchanged.
        turned = ((u[:, 19] % 0.5) * 2) < TURNED_SHARE
        roll = torch.where(turned, math.pi * (2 * u[:, 3] - 1), roll)
        dist = 1.5 + 6.5 * u[:, 4]
    ys = joints[..., 1]
    target = 0.5 * (ys.amin(1) + ys.amax(1))
    zero = torch.zeros_like(dist)
    cam_pos = torch.stack([zero, target + dist * torch.tan(pitch), dist], -1)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)).expand(n, 3, 3)
    view = matmul3(matmul3(rot_z(roll), _pitch(pitch)), flip)  # world (unyawed) -> camera
    rotation = matmul3(view, rot_y(yaw))
    translation = -matvec3(view, cam_pos)
    cam = Camera(rotation, translation, torch.ones_like(dist), zero.clone(), zero.clone(), yaw, pitch, roll,
                 light=zero[:, None].expand(n, 3), ambient=zero, diffuse=zero, floor_line=zero[:, None, None],
                 cropped=u[:, 5] >= (0.75 if realistic else FULL_BODY_FRACTION))

    # Framing in normalised image coordinates (focal 1, principal point 0).
    pc = cam.to_camera(joints)
    zc = pc[..., 2].clamp_min(1e-3)
    margin = (0.07 * (ys.amax(1) - ys.amin(1)).clamp_min(0.3))[:, None] / zc
    xn, yn = pc[..., 0] / zc, pc[..., 1] / zc
    x0, x1 = (xn - margin).amin(1), (xn + margin).amax(1)
    y0, y1 = (yn - margin).amin(1), (yn + margin).amax(1)
    fit = torch.minimum(height / (y1 - y0), width / (x1 - x0))
    f_full = fit * (0.72 + 0.23 * u[:, 6])
    f_crop = fit * (1.15 + 0.75 * u[:, 7])
    focal = torch.where(cam.cropped, f_crop, f_full)
    slack_x, slack_y = width - focal * (x1 - x0), height - focal * (y1 - y0)
    cx = 0.5 * width - focal * 0.5 * (x0 + x1) + (u[:, 8] - 0.5) * torch.where(
        cam.cropped, torch.full_like(slack_x, 0.3 * width), 0.9 * slack_x.clamp_min(0))
    cy_full = 0.5 * height - focal * 0.5 * (y0 + y1) + (u[:, 9] - 0.5) * 0.9 * slack_y.clamp_min(0)
    cy_crop = (0.01 + 0.08 * u[:, 9]) * height - focal * y0
    cy = torch.where(cam.cropped, cy_crop, cy_full)
    if realistic:  # crops on any side: 0 head kept (legs cut), 1 feet kept (head cut), 2 / 3 cut left / right
        side = (u[:, 16] * 4).long().clamp(max=3)
        edge = 0.01 + 0.08 * u[:, 17]
        cy_mid = 0.5 * height - focal * 0.5 * (y0 + y1)
        cy = torch.where(cam.cropped & (side == 1), (1 - edge) * height - focal * y1, cy)
        cy = torch.where(cam.cropped & (side >= 2), cy_mid, cy)
        cx = torch.where(cam.cropped & (side == 2), (1 - edge) * width - focal * x1, cx)
        cx = torch.where(cam.cropped & (side == 3), edge * width - focal * x0, cx)
    cam.focal, cam.cx, cam.cy = focal, cx, cy

    # Lighting (camera coordinates; -z points back at the camera, -y up).
    az, el = math.radians(60) * (2 * u[:, 10] - 1), math.radians(10) + math.radians(50) * u[:, 11]
    cam.light = torch.stack([torch.sin(az) * torch.cos(el), -torch.sin(el), -torch.cos(az) * torch.cos(el)], -1)
    cam.ambient, cam.diffuse = 0.42 + 0.18 * u[:, 12], 0.45 + 0.2 * u[:, 13]

    # The wall-floor edge 0.5..3 m behind the person, as two projected points.
    wall = -(0.5 + 2.5 * u[:, 14])
    edge = torch.stack([torch.stack([-4 + zero, zero, wall], -1), torch.stack([4 + zero, zero, wall], -1)], 1)
    edge_cam = matvec3(view[:, None], edge) + translation[:, None]
    cam.floor_line = cam.project(edge_cam)

    # A soft contact shadow on the floor around the feet.
    feet = joints[:, [SJ["r_toe"], SJ["r_heel"], SJ["l_toe"], SJ["l_heel"]]].mean(1)
    feet = feet * torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)  # on the floor
    ext = (ys.amax(1) - ys.amin(1)).clamp_min(0.3)
    rw, rd = 0.2 * ext, 0.1 * ext
    ring = feet[:, None] + torch.stack([torch.stack([rw, zero, zero], -1), torch.stack([-rw, zero, zero], -1),
                                        torch.stack([zero, zero, rd], -1), torch.stack([zero, zero, -rd], -1)], 1)
    ring = matvec3(rotation[:, None], torch.cat([feet[:, None], ring], 1)) + translation[:, None]
    pix = cam.project(ring)
    rx = 0.5 * (pix[:, 1, 0] - pix[:, 2, 0]).abs() + 1
    ry = 0.5 * (pix[:, 3, 1] - pix[:, 4, 1]).abs() + 1
    cam.shadow = torch.stack([pix[:, 0, 0], pix[:, 0, 1], rx, ry, 0.15 + 0.25 * u[:, 15]], -1)
    return cam
