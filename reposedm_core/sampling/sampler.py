"""Sampling with diffusers schedulers, in the k-diffusion style: one loop, a per-step ``callback`` dict
(``x``, ``i``, ``t``, ``denoised``), an ``interrupt`` check, and guidance as a hook on the clean-image estimate.

All schedulers here work on the variance-preserving x_t of the training scheduler (no input scaling), so the
clean-image estimate x0 and the model output convert into each other in closed form (below), whatever the
scheduler does with the output afterwards.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

# name -> (diffusers class name, extra config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
}

# The default sampler of the demo model (RePoseSampler, model.sample, make demo, the evaluations): the best
# scheduler and cfg of a grid on the synthetic *validation* split (`eval transfer --split val --pairs 48 --grid
# ddpm,dpmpp_2m,unipc,ddim:1,1.5`, SSIM of the model 6,700 steps before the one shipped in stops 26-28: ddpm 0.775 at cfg 1 and
# 1.5, ddim 0.753 / 0.754, dpmpp_2m 0.743 / 0.744, unipc 0.740 / 0.741; cfg 1 costs one forward pass per step
# instead of two). Re-checked on that model (`--grid ddpm,dpmpp_2m,unipc,ddim:1`): ddpm 0.789, ddim
# 0.770, dpmpp_2m 0.760, unipc 0.757 (its warp 0.766). With the staged temperature below (128 validation pairs,
# `--grid ddpm:1.5,2`): cfg 1 / 1.5 / 2 give 0.801 / 0.801 / 0.799. The test split is only used to report.
DEFAULT_SCHEDULER = "ddpm"
DEFAULT_CFG = 1.0
DEFAULT_STEPS = 20
# The default share of the noise schedule (ComfyUI's ``denoise``; below 1 sampling starts from the aligned warp
# noised to that level). Chosen on the validation split (`eval transfer --split val --pairs 48 --denoise D`):
# denoise 1 / 0.5 give SSIM 0.789 / 0.791 but BlazePose PCK@0.1 0.445 / 0.365 -- starting from the warp keeps some
# of the warp's pose errors (the warp's own PCK: 0.238) -- so 1, from pure noise (the two models shipped before it:
# 0.784 / 0.786, PCK 0.393 / 0.350; 0.778 / 0.783, PCK 0.426 / 0.318).
DEFAULT_DENOISE = 1.0
# The default noise scale of the ddpm scheduler's steps above t = DEFAULT_TEMPERATURE_STOP_T (see make_scheduler).
# Chosen on the validation split (`eval transfer --split val --pairs 128 --no-fid --temperature T
# --temperature-stop-t S`, the model shipped in stops 26-28; warp SSIM 0.762; the model shipped in stop 29 was chosen
# at this default: 0.806). SSIM, HF ratio, BlazePose PCK@0.1, missed joints:
#   T = 1 (the scheduler's own noise)          0.782  0.56  0.399  0.199
#   S = 0 (every step)  T = 0.85               0.794  0.41  0.399  0.168
#                       T = 0.7                0.797  0.35  0.401  0.213
#                       T = 0.6                0.798  0.32  0.381  0.230
#                       T = 0.5                0.799  0.31  0.388  0.254
#   S = 300             T = 0.7                0.798  0.38  0.434  0.163
#                       T = 0.5                0.801  0.34  0.436  0.180
#                       T = 0.3                0.801  0.34  0.431  0.181
#   S = 500             T = 0.5                0.797  0.39  0.423  0.198
#   S = 100             T = 0.7                0.800  0.35  0.409  0.212
#   0.7 on the steps at t <= 300 only          0.785  0.49  0.385  0.208
# The cooled noise pays where the structure is made (t > 300, the range training weights); the last steps' own
# noise keeps some detail and the pose readings. Rule: the best SSIM whose PCK and missed joints are no worse than
# at T = 1 (the pose is the point of the product), a tie within 0.001 going to the warmer: 0.5 above t = 300.
# (The mean keypoint error, which a few misread limbs sway, is 0.218 there against 0.196 at T = 1.)
DEFAULT_TEMPERATURE = 0.5
DEFAULT_TEMPERATURE_STOP_T = 300


def add_sampler_arguments(parser) -> None:
    """``--steps --cfg --scheduler --denoise --temperature --temperature-stop-t`` with the defaults above (the
    command-line tools that sample)."""
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--cfg", type=float, default=DEFAULT_CFG)
    parser.add_argument("--scheduler", default=DEFAULT_SCHEDULER, choices=sorted(SCHEDULERS))
    parser.add_argument("--denoise", type=float, default=DEFAULT_DENOISE,
                        help="share of the noise schedule to run, starting from the warp noised to it "
                             "(ComfyUI's denoise; 1 = from pure noise)")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                        help="noise scale of the ddpm scheduler's steps above --temperature-stop-t (1 = its own; "
                             "lower = less speckle, less fine detail; the deterministic schedulers add no noise)")
    parser.add_argument("--temperature-stop-t", type=int, default=DEFAULT_TEMPERATURE_STOP_T,
                        help="the steps at or below this timestep (of the training schedule's 1000) add the "
                             "scheduler's own noise (0 = the temperature on every step)")


def sampler_options(args) -> dict[str, Any]:
    """The keyword arguments of ``RePoseModel.sample`` that ``add_sampler_arguments`` declared, read from ``args``."""
    return {"steps": args.steps, "cfg": args.cfg, "scheduler": args.scheduler, "denoise": args.denoise,
            "temperature": args.temperature, "temperature_stop_t": args.temperature_stop_t}


Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
X0Hook = Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]


def make_scheduler(name: str, train_config: dict[str, Any], temperature: float = DEFAULT_TEMPERATURE,
                   temperature_stop_t: int = DEFAULT_TEMPERATURE_STOP_T):
    """A fresh diffusers scheduler ``name`` built from the training scheduler's config.

    ``temperature`` scales the noise the stochastic ``ddpm`` scheduler adds at each step whose timestep is above
    ``temperature_stop_t`` (its standard deviation; 1 = the DDPM posterior's); the later steps add the scheduler's
    own. Below 1 the sample moves toward the denoiser's mean: less speckle, less fine detail. The deterministic
    schedulers add no noise, so it does not change them (a default below 1 then works with every scheduler:
    ComfyUI users switch the scheduler, not the temperature)."""
    import diffusers

    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {sorted(SCHEDULERS)}")
    if not 0.0 <= temperature <= 2.0:
        raise ValueError(f"temperature must be in [0, 2] (1 = the scheduler's own noise), got {temperature}")
    cls_name, extra = SCHEDULERS[name]
    cls = getattr(diffusers, cls_name)
    config = {**train_config, **extra}
    steps = int(config.get("num_train_timesteps", 1000))
    if not 0 <= temperature_stop_t <= steps:
        raise ValueError(f"temperature_stop_t must be a timestep in [0, {steps}] (0 = the temperature on every "
                         f"step), got {temperature_stop_t}")
    if temperature == 1.0 or temperature_stop_t == steps or name != "ddpm":   # nothing to scale
        return cls.from_config(config)
    if config.get("variance_type", "fixed_small") not in ("fixed_small", "fixed_large"):
        raise ValueError(f"temperature needs a ddpm variance_type of fixed_small or fixed_large, got "
                         f"{config['variance_type']!r}")

    def variance(self, t, *args, **kwargs):
        scale = temperature ** 2 if int(t) > temperature_stop_t else 1.0
        return cls._get_variance(self, t, *args, **kwargs) * scale

    return type("TemperedDDPMScheduler", (cls,), {"_get_variance": variance}).from_config(config)


def _alpha(scheduler, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ab = scheduler.alphas_cumprod.to(like.device)[t.long().to(like.device)].to(like.dtype)
    return ab.sqrt().view(-1, 1, 1, 1), (1 - ab).sqrt().view(-1, 1, 1, 1)


def x0_from_output(scheduler, output: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Clean-image estimate from the model output (eq. of the scheduler's ``prediction_type``)."""
    a, s = _alpha(scheduler, t.expand(x.shape[0]), x)
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return (x - s * output) / a          # x = a x0 + s eps
    if kind == "v_prediction":
        return a * x - s * output            # v = a eps - s x0  (Salimans & Ho 2022)
    if kind == "sample":
        return output
    raise ValueError(f"unsupported prediction_type {kind!r}")


def output_from_x0(scheduler, x0: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The model output that corresponds to a (corrected) clean-image estimate x0 at the same x_t."""
    a, s = _alpha(scheduler, t.expand(x.shape[0]), x)
    eps = (x - a * x0) / s
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return eps
    if kind == "v_prediction":
        return a * eps - s * x0
    return x0


def sample(denoise: Denoise, noise: torch.Tensor, scheduler, steps: int, *,
           generator: torch.Generator | list[torch.Generator] | None = None,
           callback: Callable[[dict], None] | None = None, interrupt: Callable[[], None] | None = None,
           x0_hook: X0Hook | None = None, strength: float = 1.0, init: torch.Tensor | None = None) -> torch.Tensor:
    """Run ``steps`` scheduler steps from ``noise`` and return the final sample.

    Args:
        denoise: ``(x_t, t) -> model output`` (CFG already applied).
        noise: ``[B, C, H, W]`` initial x_T (unit Gaussian).
        generator: the per-step noise of stochastic schedulers (ddpm): one generator, or one per item.
        callback: called every step with ``{"x", "i", "t", "denoised"}`` (denoised = x0 after any hook).
        interrupt: called before every step; raise from it to cancel.
        x0_hook: ``(x0, i, t) -> x0`` correction of the clean-image estimate (guidance); the step then
            completes from the corrected x0.
        strength: the share of the noise schedule to run (ComfyUI's KSampler ``denoise``): below 1 the
            schedule is laid out for ``round(steps / strength)`` steps and only its last ``steps`` run, starting
            from ``init`` noised to the first of them (``init`` 0 when not given). 1 = from pure noise.
        init: ``[B, C, H, W]`` clean start for ``strength < 1`` (in the sampled variable).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"denoise strength must be in (0, 1] (the share of the noise schedule to run), got {strength}")
    total = steps if strength >= 1.0 else max(steps, round(steps / strength))
    scheduler.set_timesteps(total, device=noise.device)
    timesteps = scheduler.timesteps[total - steps:]
    if total == steps:
        x = noise * scheduler.init_noise_sigma
    else:  # as diffusers' img2img pipelines: the full schedule stays, the solver starts at the first step run
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(total - steps)
        x = scheduler.add_noise(torch.zeros_like(noise) if init is None else init.to(noise), noise,
                                timesteps[:1].expand(noise.shape[0]))
    step_kwargs = {"generator": generator} if generator is not None else {}  # stochastic schedulers only
    for i, t in enumerate(timesteps):
        if interrupt is not None:
            interrupt()
        out = denoise(x, t)
        x0 = x0_from_output(scheduler, out, x, t)
        if x0_hook is not None:
            corrected = x0_hook(x0, i, t)
            if corrected is not x0:  # an untouched step stays bit-identical to unguided sampling
                x0, out = corrected, output_from_x0(scheduler, corrected, x, t)
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "denoised": x0})
        x = scheduler.step(out, t, x, **step_kwargs).prev_sample
    return x
