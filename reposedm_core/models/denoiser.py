"""The denoiser: a diffusers ``UNet2DConditionModel`` conditioned on the target pose and the aligned texture.

* the noisy image is concatenated with the target pose maps (joint heatmaps + limb maps);
* the pose-aligned texture features enter as additive residuals of every down block and the mid block,
  through zero-initialised 1x1 projections (the ControlNet / T2I-Adapter path), so training starts from the
  pose-only model and learns how much texture to take;
* coarse source tokens enter through cross-attention, for what alignment cannot see (the back of a shirt).

Dropping the appearance condition (residuals and tokens zero) is the unconditional branch of
classifier-free guidance.

``x0_base="warp"`` builds the clean-image estimate around the alignment instead of rediscovering the image from
noise. The visibility-gated warped source ``b = mask * warped`` is the prior mean of the clean image, with a
prior spread ``sigma_d`` around it; with ``x_t = a x0 + s eps`` the estimate is (EDM's preconditioning,
Karras et al. 2022, centred on ``b``)

    x0_hat = b + c_skip (x_t - a b) + c_out F(c_in (x_t - a b), t, b, mask, pose, features, tokens)
    c_skip = a sigma_d^2 / (a^2 sigma_d^2 + s^2),  c_out = sigma_d s / sqrt(a^2 sigma_d^2 + s^2),
    c_in = 1 / sqrt(a^2 sigma_d^2 + s^2)

— the best linear estimate from ``x_t`` and the warp, plus a learned correction of unit scale. At high noise
the estimate is already the warp (``c_skip, c_out -> 0, sigma_d``: the network only corrects it); at low
noise it is ``x_t``. The UNet also sees the warped image and the mask as input channels. The model then
predicts the clean image (``prediction_type="sample"``), and training weights the x0 error by ``1 / c_out^2``
(the unit-scale target of ``F``). Dropping the appearance drops ``b`` too: the null condition is pose only.

``x0_base="warp_full"`` centres the estimate on the whole warped source frame ``b = warped``, not gated by the
visibility mask (the mask stays an input channel): the background and whatever the warp got right off the body
start from the source's own pixels instead of from zero, which the gated base left for the network to paint.
Its null condition drops the aligned features and tokens but keeps ``b``, so classifier-free guidance
amplifies what the texture features add on top of the warp.

``x0_base="residual"`` keeps the scheduler's prediction type (v or epsilon) and diffuses the residual
``x0 - warped`` instead of the image (the warp and the mask are input channels, kept in the null branch); the
model adds the warp back (``RePoseModel.offset``), so pure noise in the residual space starts from the warp.
"""
from __future__ import annotations

import torch
from torch import nn

from .alignment import POSE_CHANNELS, Alignment

X0_BASES = ("none", "warp", "warp_full", "residual")
WARP_CENTRED = ("warp", "warp_full")  # the x0 bases whose estimate is preconditioned around the warp (predict x0)


def _zero_conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class RePoseDenoiser(nn.Module):
    """UNet + residual and token projections. Predicts the scheduler's target (v) from (x_t, t, conditions)."""

    def __init__(self, height: int, width: int, block_channels: tuple[int, ...], texture_channels: tuple[int, ...],
                 layers_per_block: int = 1, cross_attention_dim: int = 64, attention_head_dim: int = 32,
                 tokens: int = 96, x0_base: str = "none", prior_std: float = 0.5):
        super().__init__()
        if x0_base not in X0_BASES:
            raise ValueError(f"x0_base must be one of {X0_BASES}, got {x0_base!r}")
        if not prior_std > 0:
            raise ValueError(f"prior_std must be > 0, got {prior_std}")
        self.x0_base, self.prior_std = x0_base, float(prior_std)
        extra = 0 if x0_base == "none" else 4  # warped image + mask
        # A plain attribute, not a buffer: model.to(fp16) must not round the schedule (1 - 4e-5 -> 1).
        self.alphas_cumprod = torch.ones(1000, dtype=torch.float64)
        from diffusers import UNet2DConditionModel

        n = len(block_channels)
        if n != len(texture_channels):
            raise ValueError(f"block_channels {block_channels} and texture_channels {texture_channels} must give "
                             "the same number of scales")
        self.unet = UNet2DConditionModel(
            sample_size=(height, width), in_channels=3 + POSE_CHANNELS + extra, out_channels=3,
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
        if x0_base in WARP_CENTRED:  # an untrained model's estimate is the best linear one: the warp at high noise
            nn.init.zeros_(self.unet.conv_out.weight)
            nn.init.zeros_(self.unet.conv_out.bias)
        self.token_proj = nn.Linear(texture_channels[-1], cross_attention_dim)
        self.token_pos = nn.Parameter(torch.zeros(1, tokens, cross_attention_dim))

    def set_schedule(self, alphas_cumprod: torch.Tensor) -> None:
        """The noise schedule's cumulative alphas (``x0_base="warp"`` preconditions with them)."""
        self.alphas_cumprod = alphas_cumprod.detach().to("cpu", torch.float64).clone()

    def coefficients(self, t: torch.Tensor, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """``a, s, c_skip, c_out, c_in`` ``[B, 1, 1, 1]`` at (possibly fractional) timesteps ``t [B]``."""
        ac = self.alphas_cumprod.to(like.device, torch.float32)
        tt = t.reshape(-1).to(like.device, torch.float32).clamp(0, len(ac) - 1)
        lo = tt.floor().long()
        hi = (lo + 1).clamp(max=len(ac) - 1)
        ab = torch.lerp(ac[lo], ac[hi], tt - lo)
        a, s = ab.sqrt(), (1 - ab).clamp_min(0).sqrt()
        sd = self.prior_std
        var = a ** 2 * sd ** 2 + s ** 2
        out = {"a": a, "s": s, "c_skip": a * sd ** 2 / var, "c_out": sd * s / var.sqrt(), "c_in": var.rsqrt()}
        return {k: v.to(like.dtype).view(-1, 1, 1, 1) for k, v in out.items()}

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, alignment: Alignment,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        """x_t ``[B, 3, H, W]``; t ``[B]``; ``keep`` ``[B]`` 0/1 drops the appearance per sample (CFG).

        Returns the scheduler's target (``x0_base="none"``) or the clean-image estimate (``"warp"``)."""
        feats, tokens = alignment.features, alignment.tokens
        if keep is not None:
            k = keep.to(x_t.dtype)
            feats = [f * k.view(-1, 1, 1, 1) for f in feats]
            tokens = tokens * k.view(-1, 1, 1)
        residuals = tuple(proj(feats[s]) for proj, s in zip(self.residual_proj, self.residual_scales))
        enc = self.token_proj(tokens) + self.token_pos[:, : tokens.shape[1]]
        if keep is not None:
            enc = enc * k.view(-1, 1, 1)
        if self.x0_base == "none":
            inputs = [x_t, alignment.target_maps]
        elif self.x0_base == "residual":  # x_t is the noisy residual; the warp it is relative to is an input
            inputs = [x_t, alignment.target_maps, alignment.warped, alignment.mask]
        else:
            c = self.coefficients(t, x_t)
            if self.x0_base == "warp":
                mask = alignment.mask if keep is None else alignment.mask * k.view(-1, 1, 1, 1)
                base = mask * alignment.warped  # the prior mean: the visibility-gated warp (zero when dropped)
            else:
                mask, base = alignment.mask, alignment.warped  # the whole warped frame, kept in the null branch
            resid = x_t - c["a"] * base
            inputs = [c["c_in"] * resid, alignment.target_maps, base, mask]
        out = self.unet(torch.cat(inputs, 1), t, encoder_hidden_states=enc, down_block_additional_residuals=residuals,
                        mid_block_additional_residual=self.mid_proj(feats[-1])).sample
        return out if self.x0_base in ("none", "residual") else base + c["c_skip"] * resid + c["c_out"] * out
