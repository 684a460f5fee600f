"""The denoiser: a diffusers ``UNet2DConditionModel`` conditioned on the target pose and the aligned texture.

* the noisy image is concatenated with the target pose maps (joint heatmaps + limb maps);
* the pose-aligned texture features enter as additive residuals of every down block and the mid block,
  through zero-initialised 1x1 projections (the ControlNet / T2I-Adapter path), so training starts from the
  pose-only model and learns how much texture to take;
* coarse source tokens enter through cross-attention, for what alignment cannot see (the back of a shirt).

Dropping the appearance condition (residuals and tokens zero) is the unconditional branch of
classifier-free guidance.
"""
from __future__ import annotations

import torch
from torch import nn

from .alignment import POSE_CHANNELS, Alignment


def _zero_conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class RePoseDenoiser(nn.Module):
    """UNet + residual and token projections. Predicts the scheduler's target (v) from (x_t, t, conditions)."""

    def __init__(self, height: int, width: int, block_channels: tuple[int, ...], texture_channels: tuple[int, ...],
                 layers_per_block: int = 1, cross_attention_dim: int = 64, attention_head_dim: int = 32,
                 tokens: int = 96):
        super().__init__()
        from diffusers import UNet2DConditionModel

        n = len(block_channels)
        if n != len(texture_channels):
            raise ValueError(f"block_channels {block_channels} and texture_channels {texture_channels} must give "
                             "the same number of scales")
        self.unet = UNet2DConditionModel(
            sample_size=(height, width), in_channels=3 + POSE_CHANNELS, out_channels=3,
            block_out_channels=block_channels, layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) * (n - 1) + ("CrossAttnDownBlock2D",),
            up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * (n - 1),
            mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=cross_attention_dim,
            attention_head_dim=attention_head_dim, norm_num_groups=8)
        # Down residuals, in the UNet's order: conv_in, then per block its resnets and (but the last) downsample.
        self.residual_scales: list[int] = [0]
        for i in range(n):
            self.residual_scales += [i] * layers_per_block + ([i + 1] if i < n - 1 else [])
        res_channels = [block_channels[0]]
        for i in range(n):
            res_channels += [block_channels[i]] * layers_per_block + ([block_channels[i]] if i < n - 1 else [])
        self.residual_proj = nn.ModuleList(_zero_conv(texture_channels[s], c)
                                           for s, c in zip(self.residual_scales, res_channels))
        self.mid_proj = _zero_conv(texture_channels[-1], block_channels[-1])
        self.token_proj = nn.Linear(texture_channels[-1], cross_attention_dim)
        self.token_pos = nn.Parameter(torch.zeros(1, tokens, cross_attention_dim))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, alignment: Alignment,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        """x_t ``[B, 3, H, W]``; t ``[B]``; ``keep`` ``[B]`` 0/1 drops the appearance per sample (CFG)."""
        feats, tokens = alignment.features, alignment.tokens
        if keep is not None:
            k = keep.to(x_t.dtype)
            feats = [f * k.view(-1, 1, 1, 1) for f in feats]
            tokens = tokens * k.view(-1, 1, 1)
        residuals = tuple(proj(feats[s]) for proj, s in zip(self.residual_proj, self.residual_scales))
        enc = self.token_proj(tokens) + self.token_pos[:, : tokens.shape[1]]
        if keep is not None:
            enc = enc * keep.to(x_t.dtype).view(-1, 1, 1)
        sample = torch.cat([x_t, alignment.target_maps], 1)
        return self.unet(sample, t, encoder_hidden_states=enc, down_block_additional_residuals=residuals,
                         mid_block_additional_residual=self.mid_proj(feats[-1])).sample
