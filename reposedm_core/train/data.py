"""Batches of pose-transfer pairs for training, from the synthetic world (or a real dataset)."""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.utils.data

from ..data.synthetic import SyntheticWorld
from ..models import RePoseConfig
from .config import TrainConfig


class PairSource:
    """``batch(step, size, device)`` -> dict(source, target [B, 3, H, W] in [-1, 1], source_pose, target_pose
    [B, 18, 3] model-frame pixels); the batch depends only on the step (resumable, seeded)."""

    def __init__(self, world, seed: int, preview_set=None, epochs: bool = False, augment: bool = False,
                 pose_jitter: float = 0.0, augment_share: float = 1.0):
        """``world``: anything with ``len()`` and ``pairs(indices)`` (synthetic world, datasets); ``preview_set``:
        the pairs for sample sheets (default: the synthetic validation split). ``epochs``: walk seeded
        permutations of the pairs (each pair once per epoch: finite datasets) instead of independent draws.
        ``augment``: photo backgrounds and camera effects (:mod:`.augment`; needs the pairs' person masks), on
        an ``augment_share`` of the pairs (the rest as rendered).
        ``pose_jitter``: Gaussian noise on the confident joints of both poses the model is given (not on the
        images), its sigma this share of each pose's body scale: the poses a detector reads off real photos."""
        if not 0 <= pose_jitter <= 0.5:
            raise ValueError(f"train.pose_jitter must be in [0, 0.5] (a share of the body scale), got {pose_jitter}")
        self.world, self.seed, self.preview_set, self.epochs = world, seed, preview_set, epochs
        self.augment, self.pose_jitter, self.augment_share = augment, float(pose_jitter), float(augment_share)
        self._perm: tuple[int, torch.Tensor] | None = None

    def indices(self, step: int, size: int) -> list[int]:
        """The global batch of ``step``: the same on every process (each trains on its ``rows``), a function of the
        seed and the step only, so a resumed run sees the data a continuous run would."""
        if not self.epochs:
            gen = torch.Generator().manual_seed(self.seed * 7_919 + step)
            return torch.randint(0, len(self.world), (size,), generator=gen).tolist()
        n = len(self.world)
        return [int(self._permutation(p // n)[p % n]) for p in range(step * size, (step + 1) * size)]

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed * 7_919 + 1_000_003 * (epoch + 1))
            self._perm = (epoch, torch.randperm(len(self.world), generator=gen))
        return self._perm[1]

    def batch(self, step: int, size: int, device: torch.device, rows: slice = slice(None)) -> dict[str, torch.Tensor]:
        """The step's global batch of ``size`` pairs, or the ``rows`` of it this process trains on."""
        pairs = self.world.pairs(self.indices(step, size)[rows])
        if self.augment:
            from .augment import vary_batch

            pairs = vary_batch(pairs, self.seed, step, list(range(size))[rows], self.augment_share)
        out = self.collate(pairs, device)
        if self.pose_jitter > 0:
            for key, salt in (("source_pose", 1), ("target_pose", 2)):
                out[key] = jitter_poses(out[key], self.pose_jitter, self.seed, step, list(range(size))[rows], salt)
        return out

    @staticmethod
    def collate(pairs: dict, device: torch.device) -> dict[str, torch.Tensor]:
        return {"source": pairs["source_image"].to(device) * 2 - 1, "target": pairs["target_image"].to(device) * 2 - 1,
                "source_pose": pairs["source_keypoints"].to(device), "target_pose": pairs["target_keypoints"].to(device)}

    def preview(self, n: int, device: torch.device) -> dict[str, torch.Tensor]:
        """A fixed batch of validation pairs (never trained on) for sample sheets."""
        val = self.preview_set or SyntheticWorld("val", height=self.world.height, width=self.world.width,
                                                 prior=self.world.prior)
        return self.collate(val.pairs(list(range(min(n, len(val))))), device)


class StepBatches(torch.utils.data.Dataset):
    """Item ``k`` = the batch of step ``start + k`` on the CPU: the same batch :meth:`PairSource.batch` gives in the
    training process, so a ``DataLoader``'s workers can render the batches ahead of training."""

    def __init__(self, source: PairSource, start: int, steps: int, size: int, rows: slice = slice(None)):
        self.source, self.start, self.steps, self.size, self.rows = source, start, steps, size, rows

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        return self.source.batch(self.start + k, self.size, torch.device("cpu"), rows=self.rows)


def step_batches(source: PairSource, start: int, steps: int, size: int, rows: slice = slice(None),
                 workers: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """The batches of steps ``start .. steps - 1`` in order (CPU tensors). ``workers > 0`` renders them in that many
    background processes (a few steps ahead); the batches are the same either way: each is a function of its
    step."""
    if workers < 0:
        raise ValueError(f"train.workers must be >= 0 (background processes), got {workers}")
    if workers == 0:
        return (source.batch(step, size, torch.device("cpu"), rows=rows) for step in range(start, steps))
    return iter(torch.utils.data.DataLoader(StepBatches(source, start, steps, size, rows), batch_size=None,
                                            shuffle=False, num_workers=workers, prefetch_factor=4))


def jitter_poses(poses: torch.Tensor, sigma: float, seed: int, step: int, rows: list[int], salt: int) -> torch.Tensor:
    """``poses [B, 18, 3]`` pixels with Gaussian noise of ``sigma`` body scales on the confident joints' x, y; each
    row's noise depends on (seed, step, its row in the global batch, salt) only (resumable, any process count)."""
    from ..pose.normalize import root_and_body_scale

    _, scale, _ = root_and_body_scale(poses.float())
    noise = torch.stack([torch.randn((poses.shape[1], 2), generator=torch.Generator().manual_seed(
        seed * 1_000_037 + step * 8_191 + row * 5 + salt)) for row in rows])
    present = (poses[..., 2:] > 0).to(poses.dtype)
    out = poses.clone()
    out[..., :2] = poses[..., :2] + (noise.to(poses) * sigma * scale.to(poses).view(-1, 1, 1)) * present
    return out


DATA = ("synthetic", "deepfashion", "market", "folder")
ALIASES = {"market1501": "market", "openpose_folder": "folder"}


def data_spec(data: str | dict, data_root: str = "") -> tuple[str, str]:
    """``(kind, root)`` from ``train.data``: a kind (``synthetic``, ``deepfashion``, ``market``, ``folder``) with
    ``train.data_root``; ``kind:ROOT`` (``deepfashion:/data/fashion``); or ``{"kind": ..., "root": ...}``."""
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"kind", "root"})
        if unknown or "kind" not in data:
            raise ValueError(f"train.data={data!r}: a dict needs 'kind' (one of {DATA}) and optionally 'root'")
        kind, root = str(data["kind"]), str(data.get("root") or data_root)
    else:
        kind, sep, root = str(data).partition(":")
        root = root if sep else data_root
    kind = ALIASES.get(kind, kind)
    if kind not in DATA:
        raise ValueError(f"train.data={data!r}; expected one of {DATA}, optionally as KIND:ROOT "
                         "(e.g. deepfashion:/data/fashion)")
    return kind, root


def make_source(cfg: TrainConfig, model: RePoseConfig) -> PairSource:
    """Training pairs named by ``train.data`` (see :func:`data_spec`), in the model frame. Real datasets are read
    in seeded epochs; every process of a DDP run draws the same global batch and keeps its own rows."""
    h, w = model.height, model.width
    kind, root = data_spec(cfg.data, cfg.data_root)
    if kind == "synthetic":
        return PairSource(SyntheticWorld("train", height=h, width=w, prior=cfg.prior), cfg.seed, augment=cfg.augment,
                          pose_jitter=cfg.pose_jitter, augment_share=cfg.augment_share)
    if not root:
        raise ValueError(f"train.data={cfg.data!r} needs the dataset folder: train.data={kind}:/data/{kind} or "
                         f"train.data_root=/data/{kind} (e.g. --set train.data_root=/data/{kind})")
    if kind == "folder":
        from ..data.folder import FolderPairs

        pairs = FolderPairs(root, h, w)
        return PairSource(pairs, cfg.seed, preview_set=pairs, epochs=True, augment=cfg.augment,
                          pose_jitter=cfg.pose_jitter, augment_share=cfg.augment_share)
    from ..data.anchors import AnchorPairs

    return PairSource(AnchorPairs(root, kind, "train", h, w), cfg.seed,
                      preview_set=AnchorPairs(root, kind, "test", h, w), epochs=True, augment=cfg.augment,
                      pose_jitter=cfg.pose_jitter, augment_share=cfg.augment_share)
