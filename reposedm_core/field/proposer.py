"""A learned first move for pose repair: where the broken joints of a pose most likely belonged.

Gradient steps on the pose field alone stop where the field first calls a pose valid. Measured on held-out
medium corruptions (``eval field``), that is mostly a place the field cannot tell from a valid pose but that is
still far from every real body: the distance to the uncorrupted pose fell only 0.87 -> 0.78 body units. A field
value says *how far* a pose is from the manifold, not *which* valid pose it came from.

The proposer learns the second thing from the same procedural data the field is trained on: pairs of a
corrupted (and annotation-jittered) pose and the valid pose it came from, every corruption kind and strength,
plus valid jittered poses that map to themselves. It is a residual MLP on the field's normalised joints
(root-centred, body-scaled, so shift and scale do not matter): input the present joints and the presence mask,
output a position for every joint (the input plus a learned correction) and a logit that the joint was broken.
:meth:`PoseField.repair <reposedm_core.field.api.PoseField.repair>` applies it to poses the field calls broken and
in which the proposer is sure (:data:`GATE`) that a joint is broken -- every joint of such a pose takes its
proposed place (gating per joint measured worse) -- then finishes with the field's gradient steps. Train with ``python -m reposedm_core.train repair``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..utils.checkpoint import load_checkpoint_module, save_checkpoint
from .model import TRAINING_SCALE, normalise, root_and_unit

KIND = "pose-repair-proposer"
# A pose takes its proposal only where the proposer is this sure that one of its joints is broken. Chosen on a
# selection seed (`eval field --seed 515151`, and the same table at other gates): gate 0.8 / 0.85 / 0.9 / 0.95
# repaired 45.3 / 44.8 / 44.2 / 43.0 % of medium corruptions while 13.4 / 10.0 / 6.3 / 4.0 % of the real readings
# took the proposal: 0.85 keeps the real readings' share where the smaller proposer shipped before kept it at 0.8
# (9 %). Measured with the shipped weights on the evaluation seed (`python -m reposedm_core.eval field`, its "Repair
# gate" table): gate 0 / 0.5 / 0.85, medium corruptions repaired 47.5 / 47.3 / 46.2 %; the real readings, which the
# field mostly scores above the valid median (74 %) and repair therefore touches, take the proposal 74 / 31 / 10 %
# of the time (the joints of the correct ones move a mean 0.043 / 0.026 / 0.011 body units; 0.004 by field steps
# alone); real readings with the hips swapped by hand end 0.21 / 0.11 / 0.10 from the reading (field steps alone
# 0.11).
GATE = 0.85
SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "pose_repair.safetensors"


@dataclass
class ProposerConfig:
    width: int = 1536
    layers: int = 3
    scale: str = TRAINING_SCALE

    def to_dict(self) -> dict:
        return asdict(self)


class RepairProposer(nn.Module):
    """``(xy [N, 18, 2] normalised, present [N, 18] bool) -> (proposed xy [N, 18, 2], broken logit [N, 18])``."""

    def __init__(self, config: ProposerConfig | None = None):
        super().__init__()
        self.config = config or ProposerConfig()
        c = self.config
        if c.width < 1 or c.layers < 1:
            raise ValueError(f"proposer width and layers must be >= 1, got {c.width} and {c.layers}")
        layers: list[nn.Module] = [nn.Linear(18 * 3, c.width), nn.SiLU()]
        for _ in range(c.layers - 1):
            layers += [nn.Linear(c.width, c.width), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c.width, 18 * 3)
        nn.init.zeros_(self.head.weight)   # starts as the identity: no correction
        nn.init.zeros_(self.head.bias)

    def forward(self, xy: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = present.to(xy.dtype).unsqueeze(-1)
        out = self.head(self.body(torch.cat([xy * m, m], -1).flatten(1))).view(-1, 18, 3)
        return xy + out[..., :2], out[..., 2]

    @torch.no_grad()
    def propose(self, keypoints: torch.Tensor, gate: float = GATE) -> torch.Tensor:
        """Pixel poses ``[N, 18, 3]`` -> the proposed poses (pixels); missing joints and confidences unchanged.

        A pose in which no present joint is broken with probability above ``gate`` (the network's own
        auxiliary output) is returned as it is (``gate=0``: every pose takes its proposal)."""
        kp = keypoints.to(next(self.parameters()).dtype)
        xy, present = normalise(kp, self.config.scale)
        centre, unit = root_and_unit(kp, self.config.scale)
        out, logit = self(xy, present)
        sure = (torch.sigmoid(logit) * present).amax(1) > gate                      # [N]
        pix = out * unit[:, None, None] + centre[:, None]
        take = present.unsqueeze(-1) & sure[:, None, None]
        return torch.cat([torch.where(take, pix, kp[..., :2]), kp[..., 2:]], -1).to(keypoints.dtype)


def save_repair_proposer(model: RepairProposer, path: str | os.PathLike, extra: dict) -> Path:
    """Write a proposer checkpoint (safetensors, fp16 tensors; config and training figures in the metadata)."""
    tensors = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    return save_checkpoint(path, KIND, model.config.to_dict(), tensors, extra=extra)


def load_repair_proposer(path: str | os.PathLike | None = None) -> RepairProposer:
    """Load a proposer; ``path=None`` loads the one shipped in the package (FileNotFoundError if it is absent)."""
    if path is None and not SHIPPED.is_file():
        raise FileNotFoundError(f"the shipped repair proposer {SHIPPED} is missing; reinstall the pack or train "
                                "one with `python -m reposedm_core.train repair --out FILE`")
    model, _ = load_checkpoint_module(SHIPPED if path is None else path, KIND,
                                      lambda c: RepairProposer(ProposerConfig(**c)), "repair proposer")
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()
