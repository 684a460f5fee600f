"""Letterboxing: images and poses of any size into the model's fixed frame and back.

The image is scaled by one factor (aspect ratio kept) to fit the model frame, centred, and the margins are
filled by replicating the edge pixels; poses get the same transform. Outputs are cropped back and resized to
the input size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Letterbox:
    """Maps an ``in_h x in_w`` image into an ``out_h x out_w`` frame: scaled to ``(new_h, new_w)`` at (top, left)."""

    in_h: int
    in_w: int
    out_h: int
    out_w: int

    @property
    def scale(self) -> float:
        return min(self.out_h / self.in_h, self.out_w / self.in_w)

    @property
    def new_size(self) -> tuple[int, int]:
        return max(1, round(self.in_h * self.scale)), max(1, round(self.in_w * self.scale))

    @property
    def offset(self) -> tuple[int, int]:
        nh, nw = self.new_size
        return (self.out_h - nh) // 2, (self.out_w - nw) // 2

    def image_in(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, C, in_h, in_w]`` -> ``[B, C, out_h, out_w]`` (edge-replicated margins)."""
        nh, nw = self.new_size
        top, left = self.offset
        x = image if (nh, nw) == (self.in_h, self.in_w) else \
            F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        return F.pad(x, (left, self.out_w - nw - left, top, self.out_h - nh - top), mode="replicate")

    def image_out(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, C, out_h, out_w]`` -> ``[B, C, in_h, in_w]``: crop the letterbox, resize back."""
        nh, nw = self.new_size
        top, left = self.offset
        x = image[..., top:top + nh, left:left + nw]
        if (nh, nw) == (self.in_h, self.in_w):
            return x
        return F.interpolate(x, size=(self.in_h, self.in_w), mode="bilinear", align_corners=False,
                             antialias=(nh > self.in_h))

    def pose_in(self, kp: torch.Tensor) -> torch.Tensor:
        """Pixel poses ``[..., 18, 3]`` of the input frame -> the model frame (pixel centres at integers)."""
        nh, nw = self.new_size
        top, left = self.offset
        sx, sy = nw / self.in_w, nh / self.in_h
        x = (kp[..., 0] + 0.5) * sx - 0.5 + left
        y = (kp[..., 1] + 0.5) * sy - 0.5 + top
        present = kp[..., 2] > 0
        return torch.stack([x * present, y * present, kp[..., 2]], -1)

    def pose_out(self, kp: torch.Tensor) -> torch.Tensor:
        """Model-frame pixel poses -> the input frame."""
        nh, nw = self.new_size
        top, left = self.offset
        sx, sy = nw / self.in_w, nh / self.in_h
        x = (kp[..., 0] - left + 0.5) / sx - 0.5
        y = (kp[..., 1] - top + 0.5) / sy - 0.5
        present = kp[..., 2] > 0
        return torch.stack([x * present, y * present, kp[..., 2]], -1)
