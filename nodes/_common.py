"""Type adapters shared by the node families: ComfyUI IMAGE/MASK <-> core tensors, custom io types."""
from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path

import torch
from comfy_api.latest import io

# comfyui_controlnet_aux's pose type: a list, one dict per frame (see reposedm_core.pose.keypoint_io).
PoseKeypoint = io.Custom("POSE_KEYPOINT")

CATEGORY = "RePose"
# Every node's display name ends with this (ids never change; names may).
NAME_SUFFIX = " (RePose)"
_ALIASES = Path(__file__).resolve().parents[1] / "web" / "search_aliases.json"


@lru_cache(maxsize=1)
def search_aliases() -> dict[str, list[str]]:
    """Node id -> extra search words, from ``web/search_aliases.json`` (shared with the front-end script)."""
    return {k: v for k, v in json.loads(_ALIASES.read_text(encoding="utf-8")).items() if not k.startswith("_")}


def schema(**kwargs) -> io.Schema:
    """``io.Schema`` with the node's search aliases attached (display names end with NAME_SUFFIX, see tests).

    ComfyUI versions whose Schema has ``search_aliases`` get them natively; older ones (0.3.75) get them
    through ``web/reposedm.js``, which reads the same file.
    """
    aliases = search_aliases().get(kwargs["node_id"])
    if aliases and "search_aliases" in {f.name for f in dataclasses.fields(io.Schema)}:
        kwargs.setdefault("search_aliases", list(aliases))
    return io.Schema(**kwargs)


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
