"""Batches of pose-transfer pairs for training, from the synthetic world (or a real dataset)."""
from __future__ import annotations

import torch

from ..data.synthetic import SyntheticWorld
from ..models import RePoseConfig
from .config import TrainConfig


class PairSource:
    """``batch(step, size, device)`` -> dict(source, target [B, 3, H, W] in [-1, 1], source_pose, target_pose
    [B, 18, 3] model-frame pixels); the batch depends only on the step (resumable, seeded)."""

    def __init__(self, world, seed: int, preview_set=None):
        """``world``: anything with ``len()`` and ``pairs(indices)`` (synthetic world, datasets); ``preview_set``:
        the pairs for sample sheets (default: the synthetic validation split)."""
        self.world, self.seed, self.preview_set = world, seed, preview_set

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
        val = self.preview_set or SyntheticWorld("val", height=self.world.height, width=self.world.width,
                                                 prior=self.world.prior)
        return self.collate(val.pairs(list(range(min(n, len(val))))), device)


DATA = ("synthetic", "deepfashion", "market", "folder")


def make_source(cfg: TrainConfig, model: RePoseConfig) -> PairSource:
    """Training pairs named by ``train.data`` (``data_root`` for the real ones), in the model frame."""
    h, w = model.height, model.width
    kind = {"market1501": "market", "openpose_folder": "folder"}.get(cfg.data, cfg.data)
    if kind == "synthetic":
        return PairSource(SyntheticWorld("train", height=h, width=w, prior=cfg.prior), cfg.seed)
    if kind not in DATA:
        raise ValueError(f"train.data={cfg.data!r}; expected one of {DATA}")
    if not cfg.data_root:
        raise ValueError(f"train.data={cfg.data!r} needs train.data_root (the dataset folder), e.g. "
                         f"--set train.data_root=/data/{kind}")
    if kind == "folder":
        from ..data.folder import FolderPairs

        pairs = FolderPairs(cfg.data_root, h, w)
        return PairSource(pairs, cfg.seed, preview_set=pairs)
    from ..data.anchors import AnchorPairs

    return PairSource(AnchorPairs(cfg.data_root, kind, "train", h, w), cfg.seed,
                      preview_set=AnchorPairs(cfg.data_root, kind, "test", h, w))
