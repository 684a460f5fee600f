"""Backend (a): the project's small keypoint network, fast enough to run forward + backward at every diffusion step.

Working size 128 x 88 (H x W): the 256 x 176 DeepFashion frame and the demo model's 128 x 88 frame have exactly
this aspect ratio, so those inputs are only resized, never padded, and 128 x 88 inputs pass through unchanged
(96 x 64 ones are upscaled with 1-2 px bars). Heatmaps at 1/4 of it (32 x 22 cells, 4 px each; 8 px of a
256 x 176 image), read with a local soft-argmax at a learned temperature, which gives sub-cell coordinates.

Network (about 0.29 M parameters): two stride-2 convolutions to 1/4, residual stages at 1/4, 1/8 and 1/16 (the
coarse ones give the whole-body context needed to tell left from right), a top-down path with lateral
additions back to 1/4, and a 1 x 1 head of 18 logits (BatchNorm after every 3 x 3 convolution).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..pose.skeleton import NUM_JOINTS
from ..utils.checkpoint import CheckpointError, load_state_strict, read_checkpoint, save_checkpoint
from .base import KeypointEstimator

KIND = "keypoint-estimator"
BACKEND = "small"
STRIDE = 4


@dataclass
class SmallEstimatorConfig:
    """Hyper-parameters of :class:`SmallKeypointNet` (stored in the checkpoint metadata).

    work_height, work_width: working frame in pixels (multiples of 4).
    channels: widths of the stem, 1/4, 1/8, 1/16 stages (the stem's first conv has ``channels[0]``).
    blocks: residual blocks at 1/4, 1/8, 1/16.
    threshold: minimum heatmap peak (0..1) for a joint to count as present. 0.3: on 300 validation-split people
        the shipped weights' peaks are median 0.73 (10th percentile 0.39) on visible joints, 0.66 (0.27) on
        self-occluded ones and 0.01 (90th percentile 0.24) on out-of-frame ones; at 0.3, 93 % of labelled joints
        are reported and 5 % of out-of-frame joints are falsely reported (0.1: 99 % and 24 %).
    window: soft-argmax radius in heatmap cells (2 -> a 5 x 5 window, 20 x 20 working pixels).
    sigma: standard deviation of the training target Gaussians, in heatmap cells.
    """

    work_height: int = 128
    work_width: int = 88
    channels: tuple[int, ...] = (16, 32, 48, 64)
    blocks: tuple[int, ...] = (1, 1, 2)
    threshold: float = 0.3
    window: int = 2
    sigma: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"], d["blocks"] = list(self.channels), list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SmallEstimatorConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        unknown = sorted(set(d) - set(known) - {"backend"})
        if unknown:
            raise CheckpointError(f"estimator config has unknown fields {unknown}; expected a subset of "
                                  f"{sorted(cls.__dataclass_fields__)} (file written by a newer version?)")
        cfg = cls(**known)
        cfg.channels, cfg.blocks = tuple(cfg.channels), tuple(cfg.blocks)
        if len(cfg.channels) != 4 or len(cfg.blocks) != 3:
            raise CheckpointError(f"estimator config needs 4 channel widths and 3 block counts, got "
                                  f"{cfg.channels} and {cfg.blocks}")
        return cfg


def _conv_bn(cin: int, cout: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b = _conv_bn(c, c), _conv_bn(c, c, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(self.a(x)))


class SmallKeypointNet(KeypointEstimator):
    """The project's small estimator; ``forward(images [B, 3, H, W] 0..1) -> [B, 18, 3]`` (see the base class)."""

    def __init__(self, config: SmallEstimatorConfig | None = None) -> None:
        cfg = config or SmallEstimatorConfig()
        super().__init__((cfg.work_height, cfg.work_width), STRIDE, cfg.threshold, cfg.window)
        self.config = cfg
        c0, c1, c2, c3 = cfg.channels
        self.stem = nn.Sequential(_conv_bn(3, c0, 2), _conv_bn(c0, c1, 2))
        self.stage1 = nn.Sequential(*[_Residual(c1) for _ in range(cfg.blocks[0])])
        self.down2, self.stage2 = _conv_bn(c1, c2, 2), nn.Sequential(*[_Residual(c2) for _ in range(cfg.blocks[1])])
        self.down3, self.stage3 = _conv_bn(c2, c3, 2), nn.Sequential(*[_Residual(c3) for _ in range(cfg.blocks[2])])
        self.lateral3, self.merge2 = nn.Conv2d(c3, c2, 1), _conv_bn(c2, c2)
        self.lateral2, self.merge1 = nn.Conv2d(c2, c1, 1), _conv_bn(c1, c1)
        self.head = nn.Conv2d(c1, NUM_JOINTS, 1)
        nn.init.constant_(self.head.bias, -4.0)  # start with empty heatmaps (sigmoid ~ 0.02)
        self.log_beta = nn.Parameter(torch.zeros(()))  # soft-argmax temperature: weights = softmax(beta * logits)

    def score_maps(self, work_images: torch.Tensor) -> torch.Tensor:
        x = (work_images - 0.5) * 4.0
        x1 = self.stage1(self.stem(x))
        x2 = self.stage2(self.down2(x1))
        x3 = self.stage3(self.down3(x2))
        u2 = self.merge2(x2 + F.interpolate(self.lateral3(x3), size=x2.shape[-2:], mode="nearest"))
        u1 = self.merge1(x1 + F.interpolate(self.lateral2(u2), size=x1.shape[-2:], mode="nearest"))
        return self.head(u1)

    def argmax_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return scores * self.log_beta.exp()


def save_small_estimator(model: SmallKeypointNet, path: str | os.PathLike,
                         extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as a ``keypoint-estimator`` safetensors checkpoint (config in the metadata)."""
    config = {"backend": BACKEND, **model.config.to_dict()}
    return save_checkpoint(path, KIND, config, model.state_dict(), extra)


@torch.inference_mode(False)  # normal tensors even when called under inference mode (ComfyUI): they are differentiated
def load_small_estimator(path: str | os.PathLike,
                         device: str | torch.device | None = None) -> tuple[SmallKeypointNet, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_small_estimator` -> (model in eval mode, extra metadata).

    Raises:
        CheckpointError: not a safetensors file (``.pth`` pickles are never loaded), truncated, another
            kind of model, another backend, or weights that do not match the config.
    """
    path = Path(path)
    if path.suffix in (".pth", ".pt", ".ckpt", ".bin"):
        raise CheckpointError(f"{path.name}: the small estimator loads only .safetensors files written by "
                              "`python -m reposedm_core.train estimator`; for an OpenPose body_pose_model.pth "
                              "use reposedm_core.estimator.load_openpose_estimator(path)")
    config, tensors, extra = read_checkpoint(path, KIND)
    if config.get("backend") != BACKEND:
        raise CheckpointError(f"{path.name} is a {config.get('backend')!r} estimator, expected {BACKEND!r}")
    model = SmallKeypointNet(SmallEstimatorConfig.from_dict(config))
    load_state_strict(model, tensors, f"keypoint estimator {path.name}")
    if not math.isfinite(float(model.log_beta.detach())):
        raise CheckpointError(f"{path.name} has a non-finite soft-argmax temperature")
    model.eval()
    if device is not None:
        model.to(device)
    return model, extra
