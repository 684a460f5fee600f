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
