"""Recurrent pose alignment (RPA): move source texture features into the target pose before denoising.

RAFT's loop (Teed & Deng 2020) applied to pose transfer: the flow is initialised analytically from per-limb
transforms between the two skeletons (``flow.limb_flow``), then refined coarse to fine — at 1/8 and 1/4 of
the model frame — by a shared-weight ConvGRU per scale that predicts a flow delta and a visibility mask at
every iteration; the running flow is detached between iterations and every iterate is returned (for the
sequence loss). ``iterations=0`` keeps the analytic warp (the mask is read from the initial state).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..pose.encode import heatmaps, limb_maps
from .flow import limb_flow, resize_flow, warp

POSE_CHANNELS = 18 + 19  # joint heatmaps + limb maps


def pose_maps(kp: torch.Tensor, height: int, width: int, frame: tuple[int, int]) -> torch.Tensor:
    """Joint heatmaps and limb maps ``[B, 37, height, width]`` of poses given in pixels of ``frame`` (H, W)."""
    canvas = (frame[1], frame[0])  # the pose layer takes (width, height)
    sigma = max(0.75, 1.5 * height / 96)
    k = kp.float()  # computed in fp32 (fp16 models included), returned in the poses' dtype
    return torch.cat([heatmaps(k, height, width, sigma=sigma, canvas=canvas),
                      limb_maps(k, height, width, width_px=sigma, canvas=canvas)], 1).to(kp.dtype)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU())


class TextureEncoder(nn.Module):
    """Source image ``[B, 3, H, W]`` in [-1, 1] -> features at 1, 1/2, 1/4, 1/8 of the frame."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        self.stages = nn.ModuleList()
        cin = 3
        for i, c in enumerate(channels):
            self.stages.append(nn.Sequential(_conv(cin, c, 1 if i == 0 else 2), _conv(c, c)))
            cin = c

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        feats, x = [], image
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class ConvGRU(nn.Module):
    """Convolutional GRU cell (RAFT's update operator, one 3x3 pass)."""

    def __init__(self, hidden: int, inp: int):
        super().__init__()
        self.zr = nn.Conv2d(hidden + inp, 2 * hidden, 3, padding=1)
        self.q = nn.Conv2d(hidden + inp, hidden, 3, padding=1)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z, r = torch.sigmoid(self.zr(torch.cat([h, x], 1))).chunk(2, 1)
        q = torch.tanh(self.q(torch.cat([r * h, x], 1)))
        return (1 - z) * h + z * q


class UpdateBlock(nn.Module):
    """One scale's refinement: motion encoder -> ConvGRU -> (flow delta, mask logit)."""

    def __init__(self, texture: int, pose: int, hidden: int):
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(texture + 2 * pose + 2, hidden, 3, padding=1), nn.SiLU(),
                                    nn.Conv2d(hidden, hidden, 3, padding=1), nn.SiLU())
        self.init = nn.Conv2d(pose, hidden, 3, padding=1)
        self.gru = ConvGRU(hidden, hidden)
        self.flow_head = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.SiLU(), nn.Conv2d(hidden, 2, 3, padding=1))
        self.mask_head = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.SiLU(), nn.Conv2d(hidden, 1, 3, padding=1))
        nn.init.zeros_(self.flow_head[-1].weight)
        nn.init.zeros_(self.flow_head[-1].bias)


@dataclass
class Alignment:
    """The pose-aligned conditioning of one batch (all in the model frame)."""

    features: list[torch.Tensor]           # aligned texture features at 1, 1/2, 1/4, 1/8, already x mask
    tokens: torch.Tensor                    # [B, N, C] coarse source tokens (cross-attention)
    mask: torch.Tensor                      # [B, 1, H, W] visibility 0..1
    flow: torch.Tensor                      # [B, 2, H, W] final backward flow (pixels)
    warped: torch.Tensor                    # [B, 3, H, W] warped source image in [-1, 1]
    target_maps: torch.Tensor               # [B, 37, H, W] target pose maps for the denoiser input
    iterates: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (flow, mask logit) at H x W
    residuals: tuple[torch.Tensor, ...] = ()  # the learned (1/8, 1/4) flow residuals, for warm starts


class RecurrentPoseAlignment(nn.Module):
    """Texture encoder + pose encoder + analytic initial flow + per-scale ConvGRU refinement."""

    def __init__(self, texture_channels: tuple[int, ...], pose_channels: int = 64, hidden: int = 64,
                 iterations: int = 3):
        super().__init__()
        if len(texture_channels) != 4:
            raise ValueError(f"texture_channels must give 4 scales (1, 1/2, 1/4, 1/8), got {texture_channels}")
        self.iterations = iterations
        self.texture = TextureEncoder(texture_channels)
        self.pose4 = nn.Sequential(_conv(POSE_CHANNELS, pose_channels), _conv(pose_channels, pose_channels))
        self.pose8 = _conv(pose_channels, pose_channels, 2)
        self.update = nn.ModuleDict({"8": UpdateBlock(texture_channels[3], pose_channels, hidden),
                                     "4": UpdateBlock(texture_channels[2], pose_channels, hidden)})

    def _refine(self, block: UpdateBlock, tex: torch.Tensor, p_tgt: torch.Tensor, p_src: torch.Tensor,
                base: torch.Tensor, iterations: int, analytic: torch.Tensor, coarse: torch.Tensor,
                iterates: list, init: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Refine a residual flow at this scale; ``base`` = analytic + coarser residuals at this scale.

        Returns (the residual at this scale, the mask logit). Iterates are recorded at the frame of
        ``analytic`` as analytic + coarser residuals + this residual, all upsampled (full detail kept).
        """
        h = torch.tanh(block.init(p_tgt))
        residual = torch.zeros_like(base) if init is None else init.to(base)   # warm start: previous frame
        scale = torch.tensor([tex.shape[-1], tex.shape[-2]], device=tex.device, dtype=tex.dtype).view(1, 2, 1, 1)
        size = analytic.shape[-2:]
        for _ in range(iterations):
            residual = residual.detach()  # RAFT: no gradient through the running estimate
            flow = base + residual
            motion = block.encode(torch.cat([warp(tex, flow), p_tgt, warp(p_src, flow), flow / scale], 1))
            h = block.gru(h, motion)
            residual = residual + block.flow_head(h)
            iterates.append((analytic + coarse + resize_flow(residual, *size),
                             F.interpolate(block.mask_head(h), size=size, mode="bilinear", align_corners=False)))
        return residual, block.mask_head(h)

    def forward(self, source: torch.Tensor, source_pose: torch.Tensor, target_pose: torch.Tensor,
                iterations: int | None = None, init: tuple[torch.Tensor, torch.Tensor] | None = None) -> Alignment:
        """source ``[B, 3, H, W]`` in [-1, 1]; poses ``[B, 18, 3]`` in pixels of the same frame.

        ``init``: the (1/8, 1/4) residual flows of a previous alignment (``Alignment.residuals``) to start the
        refinement from — a warm start for consecutive frames of a pose sequence (RAFT's video warm start).
        """
        k = self.iterations if iterations is None else int(iterations)
        if k < 0:
            raise ValueError(f"iterations must be >= 0, got {k}")
        _, _, h, w = source.shape
        feats = self.texture(source)
        (h2, w2), (h4, w4), (h8, w8) = (f.shape[-2:] for f in feats[1:])
        p4_t = self.pose4(pose_maps(target_pose, h4, w4, (h, w)))
        p4_s = self.pose4(pose_maps(source_pose, h4, w4, (h, w)))
        p8_t, p8_s = self.pose8(p4_t), self.pose8(p4_s)
        # The analytic flow at 1/2 of the frame keeps the limbs' detail; the GRUs add smooth residuals.
        analytic = analytic_flow(source_pose, target_pose, (h, w), (h2, w2)).to(source.dtype)
        iterates: list = []
        r8, _ = self._refine(self.update["8"], feats[3], p8_t, p8_s, resize_flow(analytic, h8, w8), k,
                             analytic, torch.zeros_like(analytic), iterates, None if init is None else init[0])
        coarse = resize_flow(r8, h2, w2)
        r4, mask_logit = self._refine(self.update["4"], feats[2], p4_t, p4_s,
                                      resize_flow(analytic, h4, w4) + resize_flow(r8, h4, w4), k,
                                      analytic, coarse, iterates, None if init is None else init[1])
        flow2 = analytic + coarse + resize_flow(r4, h2, w2)
        flows = [resize_flow(flow2, *f.shape[-2:]) for f in feats]
        masks = [torch.sigmoid(F.interpolate(mask_logit, size=f.shape[-2:], mode="bilinear", align_corners=False))
                 for f in feats]
        aligned = [warp(f, fl) * m for f, fl, m in zip(feats, flows, masks)]
        iterates = [(resize_flow(fl, h, w), F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False))
                    for fl, m in iterates]
        return Alignment(features=aligned, tokens=feats[3].flatten(2).transpose(1, 2), mask=masks[0], flow=flows[0],
                         warped=warp(source, flows[0]), target_maps=pose_maps(target_pose, h, w, (h, w)),
                         iterates=iterates, residuals=(r8, r4))


def analytic_flow(source_pose: torch.Tensor, target_pose: torch.Tensor, frame: tuple[int, int],
                  size: tuple[int, int], **widths: float) -> torch.Tensor:
    """The refinement's starting flow: :func:`flow.limb_flow` at ``size`` (h2, w2) for poses in pixels of the
    ``frame`` (h, w), in fp32 (its distance sentinels, 1e12, overflow fp16). ``widths``: limb_flow's
    ``assign_scale`` / ``body_scale`` (default: those the model was trained with)."""
    (h, w), (h2, w2) = frame, size
    return limb_flow(_to_frame(source_pose.float(), h, w, h2, w2), _to_frame(target_pose.float(), h, w, h2, w2),
                     h2, w2, **widths)


def _to_frame(kp: torch.Tensor, h: int, w: int, h2: int, w2: int) -> torch.Tensor:
    """Pixel poses of an h x w frame -> an h2 x w2 frame (pixel centres at integers)."""
    sx, sy = w2 / w, h2 / h
    x = (kp[..., 0] + 0.5) * sx - 0.5
    y = (kp[..., 1] + 0.5) * sy - 0.5
    return torch.stack([x, y, kp[..., 2]], -1) * (kp[..., 2:] > 0)
