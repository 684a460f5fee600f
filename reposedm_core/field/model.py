"""The pose interaction field (PIF): a learned distance from a 2D pose to the manifold of valid human poses.

Input: a pose ``[..., 18, 3]`` in pixels. It is root-centred and torso-scaled (``pose.normalize_pose``), cut
into the 17 body bones as tokens (both end points, unit direction, length, visibility, a learned bone
embedding), and the tokens interact through masked self-attention — the pairwise joint/limb interactions of
the name. Bones with a missing end are masked out of the attention and their inputs zeroed, so a missing
joint is never pulled on. A masked mean/max pool and a small MLP give the distance, >= 0 by a softplus.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..pose.normalize import root_and_body_scale, root_and_scale
from ..pose.skeleton import LIMBS

# The 17 bones of the body (the OpenPose limbs without the two ear-shoulder connectors).
BONES: tuple[tuple[int, int], ...] = LIMBS[:17]
_A = torch.tensor([a for a, _ in BONES])
_B = torch.tensor([b for _, b in BONES])
TOKEN_FEATURES = 8  # xa, ya, xb, yb, ux, uy, length, log-length


@dataclass
class FieldConfig:
    dim: int = 32          # token width
    heads: int = 4
    layers: int = 1
    mlp_ratio: int = 4
    head_hidden: int = 128
    # "torso" (neck to mid-hip, the first fields) or "body" (upper quartile of per-segment estimates, which
    # does not collapse for torsos seen end-on; pose.normalize.root_and_body_scale)
    scale: str = "torso"

    def to_dict(self) -> dict:
        return asdict(self)


class _Block(nn.Module):
    """Pre-norm transformer block over bone tokens; ``bias`` [N, 1, 1, T] is 0 for kept and -1e4 for masked keys."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if torch.is_grad_enabled():  # plain attention: twice differentiable (the eikonal loss needs it)
            a = ((q @ k.transpose(-1, -2)) * (d // self.heads) ** -0.5 + bias).softmax(-1) @ v
        else:  # fused kernel for fast scoring
            a = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)   # [N, heads, T, d/heads]
        x = x + self.proj(a.transpose(1, 2).reshape(n, t, d))
        return x + self.mlp(self.norm2(x))


# The scale the field's training data is built in (``FieldConfig.scale`` of newly trained fields).
TRAINING_SCALE = "body"


def root_and_unit(keypoints: torch.Tensor, scale: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(root ``[N, 2]``, pixels per unit ``[N]``) of the field's frame for a scale mode."""
    if scale not in ("torso", "body"):
        raise ValueError(f"field scale must be 'torso' or 'body', got {scale!r}")
    center, unit, _ = (root_and_body_scale if scale == "body" else root_and_scale)(keypoints)
    return center, unit


def normalise(keypoints: torch.Tensor, scale: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels ``[N, 18, 3]`` -> (root-centred xy in the field's unit ``[N, 18, 2]``, present ``[N, 18]``)."""
    center, unit = root_and_unit(keypoints, scale)
    present = keypoints[..., 2] > 0
    xy = (keypoints[..., :2] - center.unsqueeze(-2)) / unit[..., None, None]
    return xy * present.unsqueeze(-1), present


class PoseInteractionField(nn.Module):
    """``f(pose) -> distance >= 0`` to the manifold of valid 2D human poses (in torso-length units)."""

    def __init__(self, config: FieldConfig | None = None):
        super().__init__()
        self.config = config or FieldConfig()
        c = self.config
        self.embed = nn.Linear(TOKEN_FEATURES, c.dim)
        self.bone_embedding = nn.Parameter(torch.randn(len(BONES), c.dim) * 0.02)
        self.blocks = nn.ModuleList(_Block(c.dim, c.heads, c.mlp_ratio) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Sequential(nn.Linear(2 * c.dim, c.head_hidden), nn.GELU(), nn.Linear(c.head_hidden, 1))

    def normalise(self, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels ``[N, 18, 3]`` -> (normalised xy ``[N, 18, 2]``, present ``[N, 18]`` bool); differentiable."""
        return normalise(keypoints, self.config.scale)

    def tokens(self, xy: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bone tokens ``[N, 17, 8]`` and their mask ``[N, 17]`` from normalised joints ``[N, 18, 2]``."""
        a, b = xy[:, _A.to(xy.device)], xy[:, _B.to(xy.device)]
        mask = present[:, _A.to(xy.device)] & present[:, _B.to(xy.device)]
        d = b - a
        length = torch.sqrt((d * d).sum(-1, keepdim=True) + 1e-8)
        feats = torch.cat([a, b, d / length, length, torch.log(length + 1e-3)], -1)
        return feats * mask.unsqueeze(-1), mask

    def forward_normalised(self, xy: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Distance from normalised joints ``[N, 18, 2]`` + presence ``[N, 18]`` -> ``[N]``."""
        feats, mask = self.tokens(xy, present)
        x = self.embed(feats) + self.bone_embedding
        # Masked bones are no key for anyone; a pose with no complete bone attends to all (no empty rows).
        keep = mask | ~mask.any(-1, keepdim=True)
        bias = torch.where(keep, 0.0, -1e4).to(x.dtype)[:, None, None, :]
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        m = mask.unsqueeze(-1).to(x.dtype)
        mean = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        peak = torch.where(mask.unsqueeze(-1), x, torch.full_like(x, -1e4)).amax(1)
        peak = torch.where(mask.any(-1, keepdim=True), peak, torch.zeros_like(peak))
        return nn.functional.softplus(self.head(torch.cat([mean, peak], -1)).squeeze(-1))

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        """keypoints ``[..., 18, 3]`` pixels -> distance ``[...]`` (torso lengths)."""
        lead = keypoints.shape[:-2]
        xy, present = self.normalise(keypoints.reshape(-1, 18, 3))
        return self.forward_normalised(xy, present).reshape(lead)
