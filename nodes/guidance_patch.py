"""Pose-field guidance as a patch on any ComfyUI MODEL (a post-CFG hook on the denoised latent).

At each step inside the window: decode the denoised latent with the graph's VAE, read its pose with the
estimator, take the gradient of the pose loss back to the latent, move the denoised latent against it. ComfyUI
runs prompts under ``torch.inference_mode()`` and loads weights as inference tensors, so the hook leaves
inference mode locally and decodes with a normal-tensor copy of the VAE (made once, kept with the patch).
"""
from __future__ import annotations

import copy
import logging
import math

import torch

from ..reposedm_core.guidance import guidance_loss
from ..reposedm_core.models.frame import Letterbox
from ..reposedm_core.pose import load_pose_keypoint

log = logging.getLogger("reposedm")


class _GradDecoder:
    """Differentiable decoding with a normal-tensor copy of a ComfyUI VAE's first_stage_model."""

    def __init__(self, vae):
        self.vae = vae
        self.module = None

    def _build(self) -> None:
        import comfy.model_management as mm

        mm.load_models_gpu([self.vae.patcher])
        with torch.inference_mode(False):
            module = copy.deepcopy(self.vae.first_stage_model)
            for p in module.parameters():
                p.data = p.data.clone()       # clone outside inference mode -> a normal tensor
                p.requires_grad_(False)
            for name, b in list(module.named_buffers()):
                owner = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
                setattr(owner, name.rpartition(".")[2], b.clone())
        self.module = module.eval()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """VAE latent ``[B, C, h, w]`` -> image ``[B, 3, H, W]`` in 0..1, differentiable w.r.t. the latent."""
        if self.module is None:
            self._build()
        dtype = next(self.module.parameters()).dtype
        image = self.module.decode(latent.to(self.vae.device, dtype)).float()
        return self.vae.process_output(image)


def _target_frames(target_pose, height: int, width: int) -> torch.Tensor:
    """First person of every frame ``[F, 18, 3]``, letterboxed from its canvas into height x width."""
    frames = load_pose_keypoint(target_pose, require_person=True)
    return torch.stack([Letterbox(f.height, f.width, height, width).pose_in(f.keypoints[0]) for f in frames])


def patch_model(model, vae, target_pose, guidance):
    """A clone of ``model`` whose sampling adds the pose-field gradient on each step of the window."""
    load_pose_keypoint(target_pose, require_person=True)  # fail now, with the parser's message, not mid-sampling
    decoder = _GradDecoder(vae)
    m = model.clone()
    sampling = m.get_model_object("model_sampling")
    sigma_hi = float(sampling.percent_to_sigma(guidance.start))
    sigma_lo = float(sampling.percent_to_sigma(guidance.end))
    import comfy.model_sampling

    flow = isinstance(sampling, comfy.model_sampling.CONST)  # rectified flow: x = (1 - s) x0 + s noise

    def post_cfg(args: dict) -> torch.Tensor:
        denoised, sigma = args["denoised"], args["sigma"]
        s = float(sigma.flatten()[0])
        if guidance.scale <= 0 or not sigma_lo <= s <= sigma_hi:
            return denoised
        base = args["model"]
        with torch.inference_mode(False), torch.enable_grad():
            z = denoised.detach().clone().float().requires_grad_(True)
            image = decoder.decode(base.process_latent_out(z))
            target = _target_frames(target_pose, image.shape[-2], image.shape[-1]).to(image.device)
            if target.shape[0] not in (1, image.shape[0]):
                raise ValueError(f"target_pose has {target.shape[0]} frames for a batch of {image.shape[0]} latents; "
                                 "give 1 frame or one per latent")
            target = target.expand(image.shape[0], -1, -1)
            estimator = guidance.estimator.to(image.device)
            guidance.field.to(image.device)
            loss = guidance_loss(estimator, image, target, guidance.field.model, guidance.target_weight,
                                 guidance.weights)
            (g,) = torch.autograd.grad(loss.sum(), z)
        noise_level = s if flow else s / math.sqrt(1 + s * s)   # eps models: sqrt(1 - alpha_bar)
        step = (z.detach() - guidance.correct(z.detach(), g, torch.tensor(noise_level))).to(denoised)
        log.info("RePoseDM pose guidance: sigma %.4f loss %.4f", s, float(loss.mean()))
        guidance.stats.append((s, float(loss.mean())))
        return denoised - step.to(denoised.device)

    m.set_model_sampler_post_cfg_function(post_cfg)
    return m
