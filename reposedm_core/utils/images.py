"""Image grids and atomic PNG writes."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_pil(image: torch.Tensor) -> Image.Image:
    """image: [3, H, W] float 0..1 -> PIL RGB."""
    array = (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(array)


def make_grid(images: torch.Tensor, ncol: int, pad: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """images: [N, 3, H, W] 0..1 -> one [3, H', W'] grid, row-major with ``ncol`` columns."""
    n, c, h, w = images.shape
    nrow = -(-n // ncol)
    grid = torch.full((c, nrow * (h + pad) + pad, ncol * (w + pad) + pad), pad_value, dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = images[i]
    return grid


def save_png(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a [3, H, W] 0..1 image as PNG atomically (write a temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    to_pil(image).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def save_grid(images: torch.Tensor, path: str | os.PathLike, ncol: int, pad: int = 2) -> Path:
    """Write [N, 3, H, W] 0..1 images as one PNG grid."""
    return save_png(make_grid(images.detach().cpu(), ncol, pad), path)
