"""The RePoseDM model bundle: recurrent pose alignment + conditional denoiser + noise schedule, and its API.

    model = load_model()                                   # the shipped demo model
    alignment = model.align(source_image, source_pose, target_pose, iterations=3)
    images = model.sample(alignment, seed=0)          # the default sampler: sampling.DEFAULT_*

Images are ``[B, 3, H, W]`` float in 0..1 of any size (letterboxed into the model frame and back); poses are
``[B, 18, 3]`` pixels (x, y, confidence) in the source image's frame.
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Sequence, Callable

import torch
from torch import nn

from ..pose.validate import check_keypoints
from ..sampling.sampler import (DEFAULT_CFG, DEFAULT_DENOISE, DEFAULT_SCHEDULER, DEFAULT_STEPS, DEFAULT_TEMPERATURE,
                                DEFAULT_TEMPERATURE_STOP_T, make_scheduler, sample)
from .alignment import Alignment, RecurrentPoseAlignment
from .denoiser import WARP_CENTRED, RePoseDenoiser
from .frame import Letterbox

MIN_JOINTS = 4  # a pose with fewer confident joints cannot drive the alignment
# The refinement iterations Recurrent Pose Align uses unless told otherwise: 0, the analytic limb warp alone. Real
# users bring photos, and on real photos the demo model's learned refinement measures worse than the analytic
# warp it starts from (`python -m reposedm_core.eval align --model shipped=shipped --results`, 56 same-person
# sports2d pairs, masked SSIM: warp 0.827 refined vs 0.861 analytic; the sampled result from each 0.865 vs 0.879),
# so the node defaults to what measures better there (issue 13). The model's own ``config.iterations`` (3 for the
# demo model) stays the library's default: on synthetic people its sampler needs the refinement (test result SSIM
# 0.795 vs 0.670), and the demo workflows set 3.
PHOTO_ITERATIONS = 0


@dataclass
class RePoseConfig:
    height: int = 96
    width: int = 64
    block_channels: tuple[int, ...] = (32, 64, 128, 128)
    texture_channels: tuple[int, ...] = (32, 64, 128, 128)
    layers_per_block: int = 1
    cross_attention_dim: int = 64
    attention_head_dim: int = 32
    pose_channels: int = 64
    hidden: int = 64
    iterations: int = 3
    use_alignment: bool = True          # False: the "no alignment" ablation (pose concat + cross-attention)
    prediction_type: str = "v_prediction"
    x0_base: str = "none"               # "warp"/"warp_full": the clean-image estimate is built around the
                                        # visibility-gated / whole aligned warp (models/denoiser.py);
                                        # "residual": diffusion of the image minus the warp
    prior_std: float = 0.5              # x0_base="warp": spread of the clean image around the warp ([-1, 1] units)
    beta_schedule: str = "squaredcos_cap_v2"
    train_timesteps: int = 1000

    def __post_init__(self):
        if self.x0_base in WARP_CENTRED and self.prediction_type != "sample":
            raise ValueError(f"x0_base={self.x0_base!r} makes the denoiser predict the clean image: set prediction_type="
                             f"'sample' (got {self.prediction_type!r})")
        if self.prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise ValueError(f"prediction_type must be 'epsilon', 'v_prediction' or 'sample', got "
                             f"{self.prediction_type!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RePoseConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown RePoseDM config keys {unknown}; known keys: {sorted(known)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)

    def scheduler_config(self) -> dict:
        return {"num_train_timesteps": self.train_timesteps, "beta_schedule": self.beta_schedule,
                "prediction_type": self.prediction_type, "clip_sample": False}


@dataclass
class PoseAlignment:
    """``RePoseModel.align``'s result: the model-frame conditioning plus the way back to the input frame."""

    inner: Alignment
    frame: Letterbox
    source_pose: torch.Tensor   # [B, 18, 3] model frame
    target_pose: torch.Tensor   # [B, 18, 3] model frame
    iterations: int
    extras: dict = field(default_factory=dict)

    @property
    def warped(self) -> torch.Tensor:
        """The warped source image ``[B, 3, H, W]`` in 0..1 at the input size."""
        return self.frame.image_out((self.inner.warped.clamp(-1, 1) + 1) / 2)

    @property
    def mask(self) -> torch.Tensor:
        """The visibility mask ``[B, 1, H, W]`` in 0..1 at the input size."""
        return self.frame.image_out(self.inner.mask)

    def __len__(self) -> int:
        return self.source_pose.shape[0]


class RePoseModel(nn.Module):
    def __init__(self, config: RePoseConfig | None = None):
        super().__init__()
        self.config = c = config or RePoseConfig()
        self.alignment = RecurrentPoseAlignment(c.texture_channels, c.pose_channels, c.hidden, c.iterations)
        tokens = (c.height // 8) * (c.width // 8)
        self.denoiser = RePoseDenoiser(c.height, c.width, c.block_channels, c.texture_channels, c.layers_per_block,
                                       c.cross_attention_dim, c.attention_head_dim, tokens, c.x0_base, c.prior_std)
        from diffusers import DDPMScheduler

        self.train_scheduler = DDPMScheduler(**c.scheduler_config())
        self.denoiser.set_schedule(self.train_scheduler.alphas_cumprod)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # --- conditioning -----------------------------------------------------------------------------------
    def condition(self, source: torch.Tensor, source_pose: torch.Tensor, target_pose: torch.Tensor,
                  iterations: int | None = None, init=None) -> Alignment:
        """Model-frame conditioning: source ``[B, 3, H, W]`` in [-1, 1], poses in model-frame pixels."""
        alignment = self.alignment(source, source_pose, target_pose, iterations, init)
        if not self.config.use_alignment:  # ablation: keep the tokens, drop the aligned residuals (and the warp)
            alignment.features = [torch.zeros_like(f) for f in alignment.features]
            if self.config.x0_base != "none":  # no warp to build on (or to add back) either
                alignment.mask = torch.zeros_like(alignment.mask)
                alignment.warped = torch.zeros_like(alignment.warped)
        return alignment

    def align(self, source_image: torch.Tensor, source_pose, target_pose, iterations: int | None = None,
              warm_start: bool = False) -> PoseAlignment:
        """Align the source texture to the target pose (see the module docstring for shapes).

        ``warm_start``: treat the batch as a sequence (a dance): align frame by frame, each refinement starting
        from the previous frame's flow residuals, for temporally steadier results.
        """
        image = _check_images(source_image)
        sp = check_keypoints(source_pose, "source_pose").to(torch.float32)
        tp = check_keypoints(target_pose, "target_pose").to(torch.float32)
        sp = sp[None] if sp.dim() == 2 else sp
        tp = tp[None] if tp.dim() == 2 else tp
        b = image.shape[0]
        for name, pose in (("source_pose", sp), ("target_pose", tp)):
            if pose.shape[0] != b:
                raise ValueError(f"{name} has {pose.shape[0]} poses for {b} images; expected one pose per image")
            count = (pose[..., 2] > 0).sum(-1)
            if (count < MIN_JOINTS).any():
                i = int(torch.nonzero(count < MIN_JOINTS)[0])
                raise ValueError(f"{name} {i} has {int(count[i])} confident joints; alignment needs at least "
                                 f"{MIN_JOINTS} (a visible torso and a limb or two)")
        frame = Letterbox(image.shape[-2], image.shape[-1], self.config.height, self.config.width)
        dev, dt = self.device, self.dtype
        src = frame.image_in(image.to(dev, dt)) * 2 - 1
        sp_m, tp_m = frame.pose_in(sp.to(dev, dt)), frame.pose_in(tp.to(dev, dt))
        k = self.config.iterations if iterations is None else int(iterations)
        with torch.inference_mode():
            if warm_start and b > 1:
                parts, prev = [], None
                for i in range(b):
                    parts.append(self.condition(src[i:i + 1], sp_m[i:i + 1], tp_m[i:i + 1], k, prev))
                    prev = parts[-1].residuals
                inner = _cat_alignments(parts)
            else:
                inner = self.condition(src, sp_m, tp_m, k)
        return PoseAlignment(inner, frame, sp_m, tp_m, k)

    def offset(self, alignment: Alignment) -> torch.Tensor | float:
        """What the sampled variable is relative to: the warped source for ``x0_base="residual"`` (the model
        diffuses the image minus the warp; detached: the warp is trained by the alignment losses only), else 0."""
        return alignment.warped.detach() if self.config.x0_base == "residual" else 0.0

    # --- sampling ---------------------------------------------------------------------------------------
    def denoise_fn(self, alignment: Alignment, cfg: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``(x_t, t) -> v`` with classifier-free guidance; both branches in one batched forward pass."""
        b = alignment.mask.shape[0]
        if cfg == 1.0:
            return lambda x, t: self.denoiser(x, t.expand(b).to(x.device), alignment)
        doubled = _repeat_alignment(alignment)
        keep = torch.cat([torch.ones(b), torch.zeros(b)]).to(alignment.mask.device)

        def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            out = self.denoiser(torch.cat([x, x]), t.expand(2 * b).to(x.device), doubled, keep)
            cond, uncond = out.chunk(2)
            return uncond + cfg * (cond - uncond)

        return denoise

    @torch.inference_mode()
    def sample(self, alignment: PoseAlignment, steps: int = DEFAULT_STEPS, cfg: float = DEFAULT_CFG,
               seed: int | Sequence[int] = 0, scheduler: str = DEFAULT_SCHEDULER,
               callback: Callable[[dict], None] | None = None,
               interrupt: Callable[[], None] | None = None, guidance=None, shared_noise: bool = False,
               denoise: float = DEFAULT_DENOISE, temperature: float = DEFAULT_TEMPERATURE,
               temperature_stop_t: int = DEFAULT_TEMPERATURE_STOP_T) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in 0..1 at the input size. Same seed, same inputs -> identical images.

        ``guidance`` (optional) is an object with ``x0_hook(alignment) -> (x0, i, t) -> x0`` (issue: pose
        field guidance); ``callback`` gets ``{"x", "i", "t", "denoised"}`` in the model frame, [-1, 1].
        ``shared_noise``: one initial noise for the whole batch (steadier pose sequences).
        ``seed`` may be one int per item: each image's noise then depends on its own seed only, not on the batch
        it is in (sharded evaluation). The stochastic ``ddpm`` scheduler's per-step noise follows the same rules:
        each item's own seed, or one noise for the whole batch with ``shared_noise``.
        ``denoise`` < 1 starts from the warped source noised to that share of the schedule (ComfyUI's KSampler
        ``denoise``; the structure then comes from the alignment), 1 from pure noise.
        ``temperature`` scales the per-step noise of the ``ddpm`` scheduler on the steps above timestep
        ``temperature_stop_t`` (see ``make_scheduler``).
        """
        if cfg < 0:
            raise ValueError(f"cfg must be >= 0, got {cfg}")
        sched = make_scheduler(scheduler, dict(self.train_scheduler.config), temperature, temperature_stop_t)
        b = len(alignment)
        frame = (3, self.config.height, self.config.width)
        if isinstance(seed, (list, tuple)):
            if len(seed) != b or shared_noise:
                raise ValueError(f"seed list of {len(seed)} for a batch of {b}" +
                                 (" with shared_noise" if shared_noise else "") + "; give one seed per item")
            gens = [torch.Generator().manual_seed(int(s)) for s in seed]
            noise = torch.cat([torch.randn((1, *frame), generator=g) for g in gens]).to(self.device, self.dtype)
            step_gen: torch.Generator | list[torch.Generator] = gens
        else:
            gen = torch.Generator().manual_seed(int(seed))
            noise = torch.randn((1 if shared_noise else b, *frame), generator=gen).expand(b, -1, -1, -1)
            noise = noise.to(self.device, self.dtype)
            step_gen = gen
            if shared_noise:  # b generators in one state draw the same per-step noise for every item
                step_gen = [torch.Generator().set_state(gen.get_state()) for _ in range(b)]
        denoise_out = self.denoise_fn(alignment.inner, cfg)
        off = self.offset(alignment.inner)
        hook = None
        if guidance is not None:
            hook = guidance.x0_hook(self, alignment)
            if hook is None:  # the reference mode differentiates through the denoiser instead
                denoise_out = guidance.wrap_denoise(self, alignment, denoise_out, sched)
            elif self.config.x0_base == "residual":  # guidance reads images: the residual plus the warp
                hook = _relative_hook(hook, off)
        if callback is not None and self.config.x0_base == "residual":
            user_callback = callback
            callback = lambda d: user_callback({**d, "x": d["x"] + off, "denoised": d["denoised"] + off})  # noqa: E731
        if "generator" not in inspect.signature(sched.step).parameters:
            step_gen = None
        x = sample(denoise_out, noise, sched, steps, generator=step_gen, callback=callback, interrupt=interrupt,
                   x0_hook=hook, strength=denoise, init=alignment.inner.warped.detach() - off) + off
        return alignment.frame.image_out((x.clamp(-1, 1) + 1) / 2).float()


def _relative_hook(image_hook: Callable, off: torch.Tensor) -> Callable:
    """An x0 hook on images for a model that samples ``x0 - off``; a step the image hook leaves alone (it returns
    its input) returns the residual itself, so it stays bit-identical to unguided sampling."""
    def hook(x0: torch.Tensor, i: int, t: torch.Tensor) -> torch.Tensor:
        image = x0 + off
        corrected = image_hook(image, i, t)
        return x0 if corrected is image else corrected - off

    return hook


def _cat_alignments(parts: list[Alignment]) -> Alignment:
    """One batch from several alignments (iterates are training-only and dropped)."""
    cat = lambda get: torch.cat([get(p) for p in parts])  # noqa: E731
    return Alignment(features=[cat(lambda p, i=i: p.features[i]) for i in range(len(parts[0].features))],
                     tokens=cat(lambda p: p.tokens), mask=cat(lambda p: p.mask), flow=cat(lambda p: p.flow),
                     warped=cat(lambda p: p.warped), target_maps=cat(lambda p: p.target_maps),
                     residuals=tuple(cat(lambda p, i=i: p.residuals[i]) for i in range(len(parts[0].residuals))))


def _repeat_alignment(a: Alignment) -> Alignment:
    return _cat_alignments([a, a])


def _check_images(image) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"source_image must be a tensor [B, 3, H, W] in 0..1, got {type(image).__name__}")
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"source_image must be [B, 3, H, W] (RGB, channels first) in 0..1, got {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise ValueError("source_image contains NaN or infinite values")
    return image.float()
