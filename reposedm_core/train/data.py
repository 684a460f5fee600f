"""Batches of pose-transfer pairs for training, from the synthetic world (or a real dataset)."""
from __future__ import annotations

import torch

from ..data.synthetic import SyntheticWorld
from ..models import RePoseConfig
from .config import TrainConfig


class PairSource:
    """``batch(step, size, device)`` -> dict(source, target [B, 3, H, W] in [-1, 1], source_pose, target_pose
    [B, 18, 3] model-frame pixels); the batch depends only on the step (resumable, seeded)."""

    def __init__(self, world: SyntheticWorld, seed: int):
        self.world, self.seed = world, seed

    def indices(self, step: int, size: int) -> list[int]:
        gen = torch.Generator().manual_seed(self.seed * 7_919 + step)
        return torch.randint(0, len(self.world), (size,), generator=gen).tolist()

    def batch(self, step: int, size: int, device: torch.device, rows: slice = slice(None)) -> dict[str, torch.Tensor]:
        """The step's global batch of ``size`` pairs, or the ``rows`` of it this process trains on."""
        return self.collate(self.world.pairs(self.indices(step, size)[rows]), device)

    @staticmethod
    def collate(pairs: dict, device: torch.device) -> dict[str, torch.Tensor]:
        return {"source": pairs["source_image"].to(device) * 2 - 1, "target": pairs["target_image"].to(device) * 2 - 1,
                "source_pose": pairs["source_keypoints"].to(device), "target_pose": pairs["target_keypoints"].to(device)}

    def preview(self, n: int, device: torch.device) -> dict[str, torch.Tensor]:
        """A fixed batch of validation pairs (never trained on) for sample sheets."""
        val = SyntheticWorld("val", height=self.world.height, width=self.world.width, prior=self.world.prior)
        return self.collate(val.pairs(list(range(n))), device)


def make_source(cfg: TrainConfig, model: RePoseConfig) -> PairSource:
    if cfg.data != "synthetic":
        raise ValueError(f"training data {cfg.data!r} is not wired in yet; use 'synthetic'")
    return PairSource(SyntheticWorld("train", height=model.height, width=model.width, prior=cfg.prior), cfg.seed)
