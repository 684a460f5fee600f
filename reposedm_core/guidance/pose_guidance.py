"""Gradient guidance from the pose interaction field (RePoseDM's second idea).

At every step inside a window of the schedule, the clean-image estimate x0 is read by a differentiable
keypoint estimator; the loss is the field's distance of that pose from the manifold of valid poses plus
lambda times its distance to the requested target pose; x0 moves against the loss gradient taken with respect
to x0 only (no backward pass through the denoiser), and the step completes from the corrected x0:

    x0' = x0 - s * STEP * sigma_t * g / rms(g),    g = d loss / d x0,   sigma_t = sqrt(1 - alpha_bar_t)

(normalised so that ``scale`` means the same on any model — at scale 1 and full noise the correction has an RMS
of STEP in [-1, 1] image (or latent) units —, fading with the noise level). The slower
reference mode ``"unet"`` takes the gradient with respect to x_t through the denoiser instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..pose.skeleton import BODY_PARTS
from ..pose.normalize import root_and_scale

MODES = ("x0", "unet")
STEP = 0.05  # RMS size of the x0 correction at scale 1 and full noise (x0 in [-1, 1])


def joint_weights(part_weights: dict[str, float] | None, device=None) -> torch.Tensor:
    """Per-joint weights ``[18]`` from per-body-part weights (BODY_PARTS names; others 1)."""
    w = torch.ones(18, device=device)
    for part, value in (part_weights or {}).items():
        if part not in BODY_PARTS:
            raise ValueError(f"unknown body part {part!r}; expected one of {sorted(BODY_PARTS)}")
        w[list(BODY_PARTS[part])] = float(value)
    return w


def pose_loss(estimated: torch.Tensor, target: torch.Tensor, field_model, target_weight: float,
              weights: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
    """Field distance of the estimated pose + target_weight * weighted mean squared joint error (torso units).

    estimated, target: ``[B, 18, 3]`` pixels of one frame. Returns ``[B]``. Joints missing in the target do
    not count; a pose with fewer than 2 estimated joints contributes no field term. ``positions`` ``[B, 18, 2+]``:
    where the joint error reads each joint (default: ``estimated``'s own positions).
    """
    present = estimated[..., 2] > 0
    enough = present.sum(-1) >= 2
    dist = torch.zeros(estimated.shape[0], device=estimated.device, dtype=estimated.dtype)
    if enough.any():
        dist = dist.masked_scatter(enough, field_model(estimated[enough]))
    _, scale, _ = root_and_scale(target)
    w = weights.to(target.device) * (target[..., 2] > 0)
    xy = (estimated if positions is None else positions)[..., :2]
    err = ((xy - target[..., :2]) ** 2).sum(-1) / scale[:, None] ** 2
    return dist + target_weight * (w * err).sum(-1) / w.sum(-1).clamp_min(1.0)


def guidance_loss(estimator, images: torch.Tensor, target: torch.Tensor, field_model, target_weight: float,
                  weights: torch.Tensor) -> torch.Tensor:
    """The loss guidance descends, ``[B]``, differentiable w.r.t. ``images`` (0..1).

    Like :func:`pose_loss`, except that the target term reads the estimator's soft-argmax coordinates of every
    joint the target shows, detected or not: a thresholded-away joint sits at (0, 0) with no gradient, so a
    limb the image has not drawn yet could never be pulled into place. The field term uses the thresholded
    pose (joints the estimator does not see are missing, as the field expects). Estimators without
    ``predict`` (any ``images -> [B, 18, 3]`` callable) fall back to :func:`pose_loss`; estimators with
    ``accepts_pose_roi`` (BlazePose) read the region of interest of the target pose.
    """
    predict = getattr(estimator, "predict", None)
    if predict is None:
        return pose_loss(estimator(images), target, field_model, target_weight, weights)
    # Readers that crop a region of interest (BlazePose) read it around the target pose: the crop is then a
    # constant of the step and the reading stays differentiable even where a noisy estimate hides the person.
    out = predict(images, poses=target) if getattr(estimator, "accepts_pose_roi", False) else predict(images)
    return pose_loss(out.keypoints, target, field_model, target_weight, weights, positions=out.xy)


@dataclass
class PoseFieldGuidance:
    """Guidance settings + the networks it uses; pass it as ``guidance=`` to ``RePoseModel.sample``.

    Args:
        field: a :class:`~reposedm_core.field.PoseField`.
        estimator: a differentiable keypoint estimator ``images [B, 3, H, W] 0..1 -> [B, 18, 3]``.
        scale: guidance strength (0 disables it).
        start, end: the window, as fractions of the denoising progress (0 = pure noise, 1 = clean).
        target_weight: lambda, the weight of the distance to the target pose.
        part_weights: per-body-part weights of that distance (``BODY_PARTS`` names).
        mode: ``"x0"`` (gradient w.r.t. x0 only, cheap) or ``"unet"`` (through the denoiser, reference).
    """

    field: object
    estimator: torch.nn.Module
    scale: float = 1.0
    start: float = 0.0
    end: float = 0.8
    target_weight: float = 1.0
    part_weights: dict[str, float] | None = None
    mode: str = "x0"
    stats: list = field(default_factory=list)  # per guided step: (i, mean loss) — for tests and reports

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= self.start <= self.end <= 1.0:
            raise ValueError(f"need 0 <= start <= end <= 1, got start={self.start}, end={self.end}")
        if self.scale < 0:
            raise ValueError(f"scale must be >= 0, got {self.scale}")
        self.weights = joint_weights(self.part_weights)

    def active(self, t: torch.Tensor, train_steps: int) -> bool:
        progress = 1.0 - float(t) / train_steps
        return self.scale > 0 and self.start <= progress <= self.end

    def gradient(self, images01: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss [B], d loss / d images) for images in 0..1; runs outside inference mode, on clones."""
        with torch.inference_mode(False), torch.enable_grad():
            x = images01.detach().clone().requires_grad_(True)
            loss = guidance_loss(self.estimator, x, target.detach().clone(), self.field.model, self.target_weight,
                                 self.weights)
            (g,) = torch.autograd.grad(loss.sum(), x)
        return loss.detach(), g

    def correct(self, x0: torch.Tensor, g: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x0 - s STEP sigma_t g / rms(g), per sample."""
        rms = g.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12).view(-1, *[1] * (g.dim() - 1))
        return x0 - self.scale * STEP * sigma * g / rms

    def x0_hook(self, model, alignment) -> Callable | None:
        """The per-step correction of x0 for ``RePoseModel.sample`` (x0 in [-1, 1], model frame)."""
        if self.mode != "x0":
            return None
        target = alignment.target_pose
        sched_steps = model.config.train_timesteps
        alphas = model.train_scheduler.alphas_cumprod

        def hook(x0: torch.Tensor, i: int, t: torch.Tensor) -> torch.Tensor:
            if not self.active(t, sched_steps):
                return x0
            loss, g = self.gradient((x0.clamp(-1, 1) + 1) / 2, target)
            self.stats.append((i, float(loss.mean())))
            sigma = (1 - alphas[int(t)]).sqrt().to(x0)
            return self.correct(x0, g / 2, sigma)  # d/dx0 of f((x0 + 1) / 2) = g / 2

        return hook

    def wrap_denoise(self, model, alignment, denoise: Callable, scheduler) -> Callable:
        """Reference mode: the gradient w.r.t. x_t through the denoiser (needs normal-tensor weights)."""
        from ..sampling.sampler import output_from_x0, x0_from_output

        target = alignment.target_pose
        sched_steps = model.config.train_timesteps
        off = model.offset(alignment.inner)  # residual models sample the image minus the warp

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if not self.active(t, sched_steps):
                return denoise(x, t)
            with torch.inference_mode(False), torch.enable_grad():
                xt = x.detach().clone().requires_grad_(True)
                out = denoise(xt, t.clone())
                x0 = x0_from_output(scheduler, out, xt, t.clone())
                loss = guidance_loss(self.estimator, ((x0 + off).clamp(-1, 1) + 1) / 2, target.clone(),
                                     self.field.model, self.target_weight, self.weights)
                (g,) = torch.autograd.grad(loss.sum(), xt)
            self.stats.append((-1, float(loss.mean())))
            sigma = (1 - scheduler.alphas_cumprod[int(t)]).sqrt().to(x)
            x0 = self.correct(x0.detach(), g, sigma)
            return output_from_x0(scheduler, x0, x, t)

        return guided
