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


def random_openpose_body(path: Path, seed: int = 0) -> torch.nn.Module:
    """A random OpenPose body network (controlnet_aux's architecture) saved like the original
    ``body_pose_model.pth`` (a torch state dict, keys without the block prefix, fp16 to halve the file); returns
    the network in fp32. 52 M weights cut from one seeded random vector: fast to build, and enough for tests."""
    from reposedm_core.estimator import openpose as op

    noise = torch.randn(1 << 20, generator=torch.Generator().manual_seed(seed))
    body = op.build_bodypose_model("meta")
    state = {}
    for key, p in body.state_dict().items():
        fan_in = p[0].numel() if p.dim() > 1 else 1
        std = (2 / fan_in) ** 0.5 if p.dim() > 1 else 0.01
        flat = noise.repeat(-(-p.numel() // noise.numel()))[:p.numel()].roll(len(state) * 7919)
        state[key] = (flat.view(p.shape) * std).to(torch.float16)
    body.load_state_dict(state, assign=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({k.split(".", 1)[1]: v for k, v in state.items()}, path)
    return body.float()
