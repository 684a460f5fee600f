"""Image grids and atomic PNG writes; Gaussian blur and box crops of image tensors."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
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


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image separable Gaussian blur, ``sigma [B]`` pixels (0 = none)."""
    b, c, h, w = x.shape
    r = 3
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-t[None] ** 2 / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
    k = k / k.sum(-1, keepdim=True)                                                # [B, 7]
    kx = k.repeat_interleave(c, 0).view(b * c, 1, 1, -1)
    y = F.conv2d(F.pad(x.reshape(1, b * c, h, w), (r, r, 0, 0), mode="replicate"), kx, groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), kx.transpose(-1, -2), groups=b * c)
    return y.view(b, c, h, w)


def crop_resize(image: torch.Tensor, box: tuple[float, float, float, float], height: int, width: int,
                padding_mode: str = "zeros", flip: bool = False) -> torch.Tensor:
    """``image [C, H, W]`` cropped to ``box`` (x0, y0, w, h in pixels, may leave the image) and resampled to
    ``height x width`` (bilinear); outside the image ``padding_mode`` (grid_sample's); ``flip`` mirrors it."""
    x0, y0, w, h = box
    ih, iw = image.shape[-2:]
    theta = torch.tensor([[w / iw, 0.0, (2 * x0 + w) / iw - 1], [0.0, h / ih, (2 * y0 + h) / ih - 1]])
    if flip:
        theta[0, 0] = -theta[0, 0]
    grid = F.affine_grid(theta[None], [1, image.shape[0], height, width], align_corners=False)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)[0]


def box_sum(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum of ``x [B, 1, H, W]`` over the (2r+1)^2 box around every pixel (zeros outside), by running sums: the
    cost does not grow with the radius (max_pool / avg_pool on a megapixel photo with r = 12 take seconds)."""
    k = 2 * radius + 1
    c = F.pad(x, (radius + 1, radius)).cumsum(-1)
    x = c[..., k:] - c[..., :-k]
    c = F.pad(x, (0, 0, radius + 1, radius)).cumsum(-2)
    return c[..., k:, :] - c[..., :-k, :]


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary ``[B, 1, H, W]`` grown by ``radius`` pixels (square structuring element)."""
    if radius <= 0:
        return mask
    return box_sum(mask.float(), radius) > 0.5
