"""Tiny random-weight RePoseDM models for tests (real architecture and loading code, seconds to build)."""
from __future__ import annotations

from pathlib import Path

import torch

from reposedm_core.models import RePoseConfig, RePoseModel, save_model

TINY = RePoseConfig(height=32, width=24, block_channels=(8, 16, 16, 16), texture_channels=(8, 16, 16, 16),
                    cross_attention_dim=16, attention_head_dim=8, pose_channels=16, hidden=16, iterations=2)


def write_tiny_repose(path: Path, seed: int = 0) -> Path:
    """A seeded random tiny model saved as a RePoseDM .safetensors file."""
    torch.manual_seed(seed)
    return save_model(RePoseModel(TINY), path, extra={"tiny": True}, dtype=torch.float32)


def wake_zero_layers(module: torch.nn.Module, std: float = 0.05, seed: int = 0) -> list[str]:
    """Give every zero-initialised layer of ``module`` (all-zero weight) seeded random weight and bias
    ``N(0, std^2)``; returns the layers' names.

    Zero-initialised layers (the GRU flow heads, the denoiser's residual projections) make a fresh model's
    alignment -> denoiser path contribute exactly nothing, so a test of that path on a random model must wake
    them first, or a bug there would change no output.
    """
    gen = torch.Generator().manual_seed(seed)
    woken = []
    with torch.no_grad():
        for name, layer in module.named_modules():
            weight = getattr(layer, "weight", None)
            if isinstance(weight, torch.nn.Parameter) and weight.numel() and not weight.any():
                for p in (weight, getattr(layer, "bias", None)):
                    if isinstance(p, torch.nn.Parameter):
                        p.copy_(torch.randn(p.shape, generator=gen) * std)
                woken.append(name)
    return woken
