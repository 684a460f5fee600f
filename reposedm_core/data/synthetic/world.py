"""The world API: render people from (identity seed, pose seed), split-disjoint datasets of people and pairs,
and a contact sheet for looking at the output.

An identity seed fixes the body proportions, skin, hair, clothes and background; a pose seed fixes the pose,
the camera (yaw, pitch, roll, framing) and the light. The same (identity_seed, pose_seed, height, width)
always gives the identical image, whatever else is in the batch.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...pose.skeleton import COLORS, LIMBS, NUM_RENDERED_LIMBS
from .appearance import NUM_APPEARANCE_UNIFORMS, appearance_from_uniforms, background
from .camera import NUM_CAMERA_UNIFORMS, Camera, make_camera
from .keypoints import keypoints_and_visibility, project_poses
from .parts import build_parts
from .poses import NUM_POSE_UNIFORMS, pose_angles_from_uniforms, sample_pose_angles
from .render import rasterize
from .seeds import (STREAM_APPEARANCE, STREAM_CAMERA, STREAM_POSE, STREAM_SHAPE, as_seed_list, mix,
                    seeded_uniforms)
from .skeleton import NUM_DOFS, NUM_SHAPE_UNIFORMS, SHAPE, body_shape_from_uniforms, forward_kinematics, sample_body_shape

log = logging.getLogger("reposedm.synthetic")

SPLITS = ("train", "val", "test")
# A seed belongs to the split given by its residue mod 10, so splits can never share an identity or a pose.
SPLIT_RESIDUES = {"train": tuple(range(8)), "val": (8,), "test": (9,)}
DEFAULT_SIZE = {"train": 1_000_000, "val": 10_000, "test": 10_000}
MAX_PIXELS_PER_CALL = 1 << 22  # larger batches are rendered in chunks (the buffers take ~100 bytes a pixel)


def split_of_seed(seed: int) -> str:
    """The split that owns an identity or pose seed (by its residue mod 10)."""
    r = seed % 10
    return next(s for s, res in SPLIT_RESIDUES.items() if r in res)


def render_people(identity_seeds: Sequence[int] | torch.Tensor | int, pose_seeds: Sequence[int] | torch.Tensor | int,
                  height: int = 256, width: int = 176, device: str | torch.device = "cpu",
                  prior: str = "mixed", angles: torch.Tensor | None = None,
                  fixed_camera: bool = False) -> dict[str, torch.Tensor]:
    """Render one person per (identity seed, pose seed).

    ``angles`` ``[B, NUM_DOFS]`` (radians) replaces the pose seeds' joint angles (e.g. an interpolated pose
    sequence); ``fixed_camera`` frames every item with the first item's camera (a steady shot, for sequences).

    Returns ``image [B, 3, H, W]`` 0..1, ``keypoints [B, 18, 3]`` (x, y, confidence in pixels, OpenPose-18,
    confidence 0 -> x = y = 0), ``visibility [B, 18]`` long (2 visible, 1 self-occluded, 0 out of frame),
    ``mask [B, 1, H, W]`` 0..1, ``labels [B, 1, H, W]`` long part ids (0 = background, see ``PART_NAMES``),
    ``joints2d [B, 18, 2]`` (every joint projected, even hidden or out of frame), ``joints3d [B, J, 3]`` (metres,
    body frame), ``angles [B, NUM_DOFS]`` (radians) and ``camera_yaw [B]`` (radians in [0, 2 pi), 0 = facing the
    camera, pi = seen from the back). Images, masks and labels are on ``device``, the pose tensors on the CPU.
    """
    ids, poses = as_seed_list(identity_seeds), as_seed_list(pose_seeds)
    if len(ids) == 1 and len(poses) > 1:
        ids = ids * len(poses)
    if len(poses) == 1 and len(ids) > 1:
        poses = poses * len(ids)
    if len(ids) != len(poses) or not ids:
        raise ValueError(f"need as many identity seeds as pose seeds (or a single one of either), "
                         f"got {len(ids)} and {len(poses)}")
    if height < 16 or width < 16:
        raise ValueError(f"image size must be at least 16 x 16, got {height} x {width}")
    chunk = max(1, MAX_PIXELS_PER_CALL // (height * width))
    if angles is not None and tuple(angles.shape) != (len(ids), NUM_DOFS):
        raise ValueError(f"angles must be [{len(ids)}, {NUM_DOFS}] radians, got {tuple(angles.shape)}")
    if fixed_camera and len(ids) > chunk:
        raise ValueError(f"fixed_camera renders at most {chunk} images of {height}x{width} per call, got {len(ids)}")
    if len(ids) > chunk:  # bound the memory of the render buffers; results do not depend on the batch
        outs = [render_people(ids[i:i + chunk], poses[i:i + chunk], height, width, device, prior)
                for i in range(0, len(ids), chunk)]
        return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    shape = body_shape_from_uniforms(seeded_uniforms(ids, STREAM_SHAPE, NUM_SHAPE_UNIFORMS))
    app = appearance_from_uniforms(seeded_uniforms(ids, STREAM_APPEARANCE, NUM_APPEARANCE_UNIFORMS),
                                   shape[:, SHAPE["femininity"]], shape[:, SHAPE["child"]])
    if angles is None:
        angles = pose_angles_from_uniforms(seeded_uniforms(poses, STREAM_POSE, NUM_POSE_UNIFORMS), prior)
    angles = angles.to(torch.float64)
    joints, frames = forward_kinematics(shape, angles, return_frames=True)
    cam_u = seeded_uniforms(poses, STREAM_CAMERA, NUM_CAMERA_UNIFORMS)
    if fixed_camera:
        first = make_camera(cam_u[:1], joints[:1], height, width)
        cam = Camera(**{f.name: getattr(first, f.name).expand(len(ids), *getattr(first, f.name).shape[1:])
                        for f in dataclasses.fields(Camera)})
    else:
        cam = make_camera(cam_u, joints, height, width)
    parts = build_parts(joints, frames, shape, app)
    dev = torch.device(device)
    bg = background(app.background.to(dev), cam.floor_line.to(dev), cam.shadow.to(dev), height, width)
    out = rasterize(parts, cam, app, bg)
    kp, vis, xy = keypoints_and_visibility(joints, shape, cam, out["depth"])
    return {"image": out["image"], "keypoints": kp, "visibility": vis, "mask": out["mask"], "labels": out["labels"],
            "joints2d": xy, "joints3d": joints.to(torch.float32), "angles": angles.to(torch.float32),
            "camera_yaw": cam.yaw.remainder(2 * math.pi).to(torch.float32)}


def sample_projected_poses(gen: torch.Generator, n: int, height: int = 256, width: int = 176,
                           prior: str = "mixed") -> dict[str, torch.Tensor]:
    """``n`` random valid poses (random bodies, in-limit angles, random cameras) projected to OpenPose-18
    pixels, without rendering: ``keypoints [n, 18, 3]``, ``joints2d [n, 18, 2]``, ``camera_yaw [n]``,
    ``angles [n, NUM_DOFS]`` and ``shape [n, len(SHAPE_NAMES)]`` (float64). See :func:`project_poses`."""
    shape = sample_body_shape(gen, n)
    angles = sample_pose_angles(gen, n, prior=prior)
    cam_u = torch.rand(n, NUM_CAMERA_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)
    out = project_poses(shape, angles, cam_u, height, width)
    out.update(angles=angles, shape=shape)
    return out


class SyntheticWorld(torch.utils.data.Dataset):
    """A virtual, split-disjoint dataset of synthetic people and pairs (one identity in two poses).

    Item ``i`` of a split has an identity seed and two pose seeds hashed from (seed, split, i); the seeds of
    each split have their own residues mod 10 (train 0-7, val 8, test 9), so no identity or pose is shared
    between splits. ``identities`` limits the split to that many distinct people (each then appears in many
    pairs); by default every item is a new person. ``world[i]`` is ``world.pair(i)`` (two images, about 0.1 s
    on one CPU core); :meth:`pairs` renders a whole batch at once, several times faster per image.
    """

    def __init__(self, split: str = "train", height: int = 256, width: int = 176, seed: int = 0,
                 size: int | None = None, identities: int | None = None, prior: str = "mixed") -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if identities is not None and identities < 1:
            raise ValueError(f"identities must be a positive count or None, got {identities}")
        self.split, self.height, self.width, self.seed, self.prior = split, height, width, seed, prior
        self.size = DEFAULT_SIZE[split] if size is None else int(size)
        self.identities = identities

    def __len__(self) -> int:
        return self.size

    def _seed(self, kind: int, index: int) -> int:
        h = mix(self.seed, SPLITS.index(self.split), kind, index)
        residues = SPLIT_RESIDUES[self.split]
        return ((h >> 8) % (1 << 40)) * 10 + residues[h % len(residues)]

    def _check(self, i: int) -> int:
        if not -self.size <= i < self.size:
            raise IndexError(f"index {i} out of range for a {self.split} world of size {self.size}")
        return i % self.size

    def identity_seed(self, i: int) -> int:
        i = self._check(i)
        return self._seed(0, i if self.identities is None else mix(i) % self.identities)

    def pose_seeds(self, i: int) -> tuple[int, int]:
        """(source, target) pose seeds of item ``i``."""
        i = self._check(i)
        return self._seed(1, i), self._seed(2, i)

    def person(self, i: int) -> dict:
        """Item ``i``'s identity in its source pose: image ``[3, H, W]``, keypoints ``[18, 3]``, ..."""
        seed, pose = self.identity_seed(i), self.pose_seeds(i)[0]
        out = render_people([seed], [pose], self.height, self.width, prior=self.prior)
        res = {k: v[0] for k, v in out.items()}
        res.update(identity_seed=seed, pose_seed=pose)
        return res

    def pairs(self, indices: Sequence[int]) -> dict:
        """Batched pairs: ``source_image [B, 3, H, W]``, ``source_keypoints [B, 18, 3]``, ``target_*`` likewise,
        ``*_visibility [B, 18]``, ``*_mask [B, 1, H, W]`` and the seeds as long tensors ``[B]``."""
        indices = [self._check(int(i)) for i in indices]
        if not indices:
            raise ValueError("pairs() needs at least one index")
        ids = [self.identity_seed(i) for i in indices]
        src, tgt = zip(*(self.pose_seeds(i) for i in indices))
        out = render_people(ids + ids, list(src) + list(tgt), self.height, self.width, prior=self.prior)
        b = len(indices)
        res = {}
        for role, sl in (("source", slice(0, b)), ("target", slice(b, 2 * b))):
            for key in ("image", "keypoints", "visibility", "mask"):
                res[f"{role}_{key}"] = out[key][sl]
        res["identity_seed"] = torch.tensor(ids)
        res["source_pose_seed"], res["target_pose_seed"] = torch.tensor(src), torch.tensor(tgt)
        return res

    def pair(self, i: int) -> dict:
        """One pair, unbatched (``source_image [3, H, W]``, ``source_keypoints [18, 3]``, ..., seeds as ints)."""
        out = self.pairs([i])
        return {k: (int(v[0]) if k.endswith("seed") else v[0]) for k, v in out.items()}

    def __getitem__(self, i: int) -> dict:
        return self.pair(int(i))


def _draw_pose(draw: ImageDraw.ImageDraw, kp: np.ndarray, ox: int, oy: int, radius: int = 2) -> None:
    for i, (a, b) in enumerate(LIMBS[:NUM_RENDERED_LIMBS]):
        if kp[a, 2] > 0 and kp[b, 2] > 0:
            draw.line([(ox + kp[a, 0], oy + kp[a, 1]), (ox + kp[b, 0], oy + kp[b, 1])], fill=COLORS[i], width=1)
    for j in range(kp.shape[0]):
        if kp[j, 2] > 0:
            x, y = ox + kp[j, 0], oy + kp[j, 1]
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=COLORS[j], outline=(0, 0, 0))


def contact_sheet(images: torch.Tensor, path: str | os.PathLike, ncol: int = 6,
                  keypoints: torch.Tensor | None = None, pad: int = 2) -> Path:
    """Write images ``[N, 3, H, W]`` 0..1 as a PNG grid (white padding), with ``keypoints [N, 18, 3]`` drawn
    as OpenPose skeletons when given. Returns the path."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W], got {tuple(images.shape)}")
    n, _, h, w = images.shape
    nrow = -(-n // ncol)
    sheet = Image.new("RGB", (ncol * (w + pad) + pad, nrow * (h + pad) + pad), (255, 255, 255))
    arr = (images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        r, c = divmod(i, ncol)
        ox, oy = pad + c * (w + pad), pad + r * (h + pad)
        sheet.paste(Image.fromarray(arr[i]), (ox, oy))
        if keypoints is not None:
            _draw_pose(draw, keypoints[i].detach().cpu().numpy(), ox, oy)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    log.info("wrote %s", path)
    return path
