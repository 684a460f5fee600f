"""The pose field as users call it: distances, per-joint gradients and repair of pixel keypoints.

    field = load_pose_field()                 # the weights shipped in the package
    d = field.distance(kp)                    # kp [..., 18, 3] pixels -> [...] torso lengths
    fixed = field.repair(kp)                  # a learned first move, then projected onto the manifold
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..pose.validate import check_keypoints
from ..utils.checkpoint import load_checkpoint_module, save_checkpoint
from .distance import nearest_distance
from .model import FieldConfig, PoseInteractionField, normalise, root_and_unit
from .proposer import GATE

KIND = "pose-interaction-field"
SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "pose_field.safetensors"
CHUNK = 512  # poses per forward pass when scoring: its buffers (~4 MB) stay in the cache; 1024 measured 20-30 %
             # slower and less steady on one thread (each new buffer is page-faulted in; benchmarks/bench_field.py)


class PoseField:
    """A trained :class:`PoseInteractionField` with calibration figures from its training run."""

    def __init__(self, model: PoseInteractionField, calibration: dict | None = None, proposer=None):
        self.model = model.eval()
        self.calibration = dict(calibration or {})
        self.proposer = proposer      # a field.proposer.RepairProposer, or None (repair by field steps alone)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def valid_threshold(self) -> float:
        """95th percentile of the distance of held-out valid poses (the repair target)."""
        return float(self.calibration.get("valid_p95", 0.1))

    def to(self, device: torch.device | str) -> "PoseField":
        self.model.to(device)
        if self.proposer is not None:
            self.proposer.to(device)
        return self

    def _check(self, keypoints) -> torch.Tensor:
        kp = check_keypoints(keypoints).to(self.device)
        count = (kp[..., 2] > 0).sum(-1)
        if (count < 2).any():
            flat = count.reshape(-1)
            bad = int(torch.nonzero(flat < 2)[0])
            raise ValueError(f"pose {bad} has {int(flat[bad])} confident joint(s); the pose field needs at least "
                             "2 (a pose with all joints missing has no distance to the manifold)")
        return kp

    def distance(self, keypoints) -> torch.Tensor:
        """keypoints ``[..., 18, 3]`` pixels -> distance to the valid-pose manifold ``[...]`` (torso lengths)."""
        kp = self._check(keypoints)
        flat = kp.reshape(-1, 18, 3)
        with torch.inference_mode():
            out = torch.cat([self.model(flat[i:i + CHUNK]) for i in range(0, len(flat), CHUNK)]) \
                if len(flat) else flat.new_zeros(0)
        return out.reshape(kp.shape[:-2])

    def distance_and_gradient(self, keypoints) -> tuple[torch.Tensor, torch.Tensor]:
        """(distance ``[...]``, d distance / d pixel xy ``[..., 18, 2]``); zero gradient on missing joints."""
        kp = self._check(keypoints)
        with torch.inference_mode(False), torch.enable_grad():
            xy = kp[..., :2].detach().clone().requires_grad_(True)
            d = self.model(torch.cat([xy, kp[..., 2:].detach().clone()], -1))
            (grad,) = torch.autograd.grad(d.sum(), xy)
        return d.detach(), grad * (kp[..., 2:] > 0)

    @property
    def valid_median(self) -> float:
        """Median distance of held-out valid poses: where repair takes a broken pose."""
        return float(self.calibration.get("valid_p50", 0.5 * self.valid_threshold))

    def repair(self, keypoints, steps: int = 64, strength: float = 1.0, confidence_weight: float = 0.8,
               tolerance: float | None = None, max_step: float = 0.25, patience: int = 10,
               min_gain: float = 0.01, propose: bool = True, gate: float | None = None) -> torch.Tensor:
        """Move broken poses to where they most likely belonged, then project them onto the manifold of valid
        poses by weighted first-order steps.

        With a proposer (:mod:`.proposer`, shipped with the field) and ``propose``, every pose the field calls
        broken (``d >= tolerance``) in which the proposer is sure a joint is broken (``proposer.GATE``) first
        takes the proposer's pose: a learned guess of the valid pose it came from, which moves the broken joints
        and leaves the rest nearly where they are. Measured on held-out medium corruptions (``python -m
        reposedm_core.eval field``), it is what brings a repaired pose near a real body; the field's steps alone
        end where the field stops seeing a problem, which is mostly still far from every valid pose. The
        proposal is taken whole (confidence does not scale it); it counts as step 1.

        Each step moves x by ``-d(x) W g / (g^T W g)`` (g = grad d, W = per-joint weights), which zeroes the
        field to first order. The weights ``1 - confidence_weight * confidence`` (at least 0.25) make confident
        joints move less, never not at all: a fully confident broken pose is still repaired. A pose stops once
        ``d < tolerance`` (default: the valid poses' median) or when its distance has improved by less than
        ``min_gain`` (relative) over ``patience`` steps (a plateau). No joint moves more than ``max_step``
        body units in one step (a trust region where the field is flat).

        Args:
            keypoints: ``[..., 18, 3]`` pixels.
            steps: maximum number of steps, the proposal included (0 returns the input).
            strength: 0..1, the fraction of the correction applied (0 = unchanged, 1 = fully repaired).
            confidence_weight: 0..1, how much a joint's confidence holds it back.
            tolerance: distance under which a pose counts as repaired.
            propose: take the proposer's move first (when the field has a proposer).
            gate: how sure (0..1) the proposer must be that a joint is broken for a pose to take its proposal
                (default ``proposer.GATE``; ``python -m reposedm_core.eval field`` reports other gates).

        Returns:
            keypoints ``[..., 18, 3]``: missing joints and all confidences unchanged. See :meth:`repair_report`
            for how far the result is from the nearest valid pose.
        """
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if not 0.0 <= confidence_weight <= 1.0:
            raise ValueError(f"confidence_weight must be in [0, 1], got {confidence_weight}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if gate is not None and not 0.0 <= gate <= 1.0:
            raise ValueError(f"gate must be in [0, 1], got {gate}")
        kp = self._check(keypoints)
        tol = self.valid_median if tolerance is None else float(tolerance)
        flat = kp.reshape(-1, 18, 3).clone()
        present = flat[..., 2:] > 0
        weight = (1.0 - confidence_weight * flat[..., 2:].clamp(0, 1)).clamp_min(0.25) * present
        xy = flat[..., :2].clone()
        limit = max_step * root_and_unit(flat, self.model.config.scale)[1][:, None, None]      # pixels
        history: list[torch.Tensor] = []
        stalled = torch.zeros(len(flat), dtype=torch.bool, device=flat.device)
        if propose and self.proposer is not None and steps > 0:
            broken = self.distance(flat) >= tol
            if broken.any():
                moved = self.proposer.propose(flat[broken], GATE if gate is None else gate)[..., :2]
                xy[broken] = torch.where(present[broken], moved, xy[broken])
            steps -= 1
        for _ in range(steps):
            d, g = self.distance_and_gradient(torch.cat([xy, flat[..., 2:]], -1))
            history.append(d)
            if len(history) > patience:
                stalled |= (history[-1 - patience] - d) < min_gain * history[-1 - patience]
            active = ((d > tol) & ~stalled).to(xy.dtype)[:, None, None]
            if not active.any():
                break
            wg = weight * g
            denom = (wg * g).sum((1, 2)).clamp_min(1e-12)[:, None, None]
            step = d[:, None, None] * wg / denom
            longest = step.norm(dim=-1, keepdim=True).amax(1, keepdim=True)
            step = step * (limit / longest.clamp_min(1e-12)).clamp(max=1.0)
            xy = xy - active * step
        xy = flat[..., :2] + strength * (xy - flat[..., :2])
        out = torch.cat([torch.where(present, xy, flat[..., :2]), flat[..., 2:]], -1)
        return out.reshape(kp.shape)

    def nearest_valid_distance(self, keypoints) -> torch.Tensor:
        """Distance ``[...]`` of each pose to its nearest neighbour in a bank of 20,000 valid synthetic poses
        (similarity-aligned over the pose's visible joints, in the field's units): an independent check that
        a repaired pose is near a real body, not in a blind spot of the field."""
        kp = self._check(keypoints)
        flat = kp.reshape(-1, 18, 3).float().cpu()
        q, present = normalise(flat, self.model.config.scale)
        return nearest_distance(q, present, _bank()).reshape(kp.shape[:-2])

    def repair_report(self, before, after) -> dict[str, torch.Tensor]:
        """Field distance and nearest-valid distance of the poses before and after repair, ``[...]`` each."""
        return {"field_before": self.distance(before), "field_after": self.distance(after),
                "nearest_before": self.nearest_valid_distance(before),
                "nearest_after": self.nearest_valid_distance(after)}


_BANK: list[torch.Tensor] = []


def _bank(size: int = 20_000, seed: int = 20_251_203) -> torch.Tensor:
    """The valid-pose bank of :meth:`PoseField.nearest_valid_distance`, built once (about a second)."""
    if not _BANK:
        from .data import make_bank

        _BANK.append(make_bank(torch.Generator().manual_seed(seed), size))
    return _BANK[0]


def save_pose_field(model: PoseInteractionField, path: str | os.PathLike, calibration: dict) -> Path:
    """Write a field checkpoint (safetensors; config and calibration in the metadata)."""
    return save_checkpoint(path, KIND, model.config.to_dict(), model.state_dict(), extra=calibration)


def load_pose_field(path: str | os.PathLike | None = None, device: torch.device | str | None = None,
                    proposer: str | os.PathLike | None = "shipped") -> PoseField:
    """Load a pose field; ``path=None`` loads the weights shipped in the package.

    ``proposer``: the repair proposer (:mod:`.proposer`) its repair starts with -- ``"shipped"`` (default: the
    one shipped in the package; it learned from the procedural data alone, not from a field, so it serves any
    field), a safetensors path, or None (repair by the field's steps alone)."""
    path = Path(path) if path is not None else SHIPPED
    if path == SHIPPED and not SHIPPED.is_file():
        raise FileNotFoundError(f"the shipped pose field {SHIPPED} is missing; reinstall the pack or train one "
                                "with `python -m reposedm_core.train field --out ...`")
    # normal tensors even under inference mode: the field is differentiated (w.r.t. keypoints) in repair and guidance
    model, extra = load_checkpoint_module(path, KIND, lambda c: PoseInteractionField(FieldConfig(**c)), "pose field")
    if proposer is not None:
        from .proposer import load_repair_proposer

        proposer = load_repair_proposer(None if proposer == "shipped" else proposer)
    field = PoseField(model, extra, proposer)
    return field.to(device) if device is not None else field
