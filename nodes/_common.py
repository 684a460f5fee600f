"""Type adapters shared by the node families: ComfyUI IMAGE/MASK <-> core tensors, custom io types."""
from __future__ import annotations

import torch
from comfy_api.latest import io

# comfyui_controlnet_aux's pose type: a list, one dict per frame (see reposedm_core.pose.keypoint_io).
PoseKeypoint = io.Custom("POSE_KEYPOINT")

CATEGORY = "RePose"


def image_to_core(image: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE ``[B, H, W, C]`` float 0..1 -> core ``[B, 3, H, W]`` float 0..1 (alpha dropped)."""
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an IMAGE of shape [B, H, W, 3], got {tuple(image.shape)}")
    image = image[..., :3] if image.shape[-1] != 1 else image.expand(*image.shape[:-1], 3)
    return image.permute(0, 3, 1, 2).contiguous().float()


def image_from_core(image: torch.Tensor) -> torch.Tensor:
    """Core ``[B, 3, H, W]`` float 0..1 -> ComfyUI IMAGE ``[B, H, W, 3]`` float32 0..1 on the CPU."""
    return image.detach().clamp(0, 1).permute(0, 2, 3, 1).contiguous().float().cpu()


def mask_from_core(mask: torch.Tensor) -> torch.Tensor:
    """Core ``[B, 1, H, W]`` -> ComfyUI MASK ``[B, H, W]`` float32 on the CPU."""
    return mask.detach().float().reshape(mask.shape[0], *mask.shape[-2:]).cpu()
