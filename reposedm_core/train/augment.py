"""Appearance variety for training pairs, so that what is learned on synthetic people carries over to photos.

Every pair is one person seen twice in one place, as in a video: both images get the same real background
(a crop of a photograph, shifted a few pixels between the two shots), the same colour cast and exposure (plus
a small independent change, as a camera's auto exposure makes), and each image its own blur, sensor noise
and JPEG artefacts. The person keeps the renderer's soft mask.

The photographs are the ones scikit-image installs with its wheel (``skimage.data``: a cat, coffee, a rocket,
brick, grass, gravel, coins, ...; no people), read once per process. scikit-image is a training extra
(``pip install scikit-image``); nothing is downloaded.

Every draw depends on (seed, step, row of the global batch) only, so a resumed or multi-process run sees the
same images as a continuous one.
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import torch

from ..utils.images import crop_resize, gaussian_blur

# skimage.data images that ship inside the scikit-image wheel and show no person.
PHOTOS = ("chelsea", "coffee", "rocket", "brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry",
          "coins", "horse", "moon", "clock", "text", "page", "cell", "colorwheel", "retina")


@lru_cache(maxsize=1)
def background_photos() -> tuple[torch.Tensor, ...]:
    """The background photographs as ``[3, H, W]`` float tensors in 0..1 (grey ones repeated to RGB)."""
    try:
        import skimage.data
    except ImportError as e:
        raise ImportError("train.augment=true needs scikit-image for its bundled photographs "
                          "(pip install scikit-image)") from e
    out = []
    for name in PHOTOS:
        im = np.asarray(getattr(skimage.data, name)())
        if im.dtype == bool:
            im = im.astype(np.uint8) * 255
        im = im.astype(np.float32) / (255.0 if im.max() > 1.5 else 1.0)
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, -1)
        out.append(torch.from_numpy(np.ascontiguousarray(im[..., :3])).permute(2, 0, 1).clamp(0, 1))
    return tuple(out)


def _crop(photo: torch.Tensor, h: int, w: int, u: torch.Tensor, shift: tuple[float, float]) -> torch.Tensor:
    """A random ``h x w`` crop of ``photo`` (scale, position, flip from ``u``), shifted by ``shift`` pixels."""
    ph, pw = photo.shape[-2:]
    scale = float(0.25 + 0.75 * u[0])              # the crop covers 25..100 % of the photo's short side
    ch = scale * min(ph, pw * h / w)
    cw = ch * w / h
    y0 = float(u[1]) * (ph - ch) + shift[1] * ch / h
    x0 = float(u[2]) * (pw - cw) + shift[0] * cw / w
    return crop_resize(photo, (x0, y0, cw, ch), h, w, padding_mode="reflection", flip=bool(u[3] < 0.5))


def _jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    from PIL import Image

    arr = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    back = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(back).permute(2, 0, 1)


def _colour(image: torch.Tensor, gain: torch.Tensor, gamma: float, saturation: float) -> torch.Tensor:
    grey = image.mean(0, keepdim=True)
    image = grey + saturation * (image - grey)
    return (image.clamp(0, 1) * gain.view(3, 1, 1)).clamp(0, 1) ** gamma


def vary_pair(source: torch.Tensor, target: torch.Tensor, source_mask: torch.Tensor, target_mask: torch.Tensor,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One pair ``[3, H, W]`` in 0..1 (masks ``[1, H, W]``) -> the pair with a photo background and camera
    effects. See the module docstring."""
    u = torch.rand(32, generator=gen, dtype=torch.float64)
    h, w = source.shape[-2:]
    images = [source, target]
    if u[0] < 0.75:  # a real background, the same place in both shots
        photos = background_photos()
        photo = photos[int(u[1] * len(photos)) % len(photos)]
        shifts = [(0.0, 0.0), (float(u[6] - 0.5) * 8, float(u[7] - 0.5) * 4)]
        for i, (img, m) in enumerate(zip(images, (source_mask, target_mask))):
            bg = _crop(photo, h, w, u[2:6], shifts[i])
            images[i] = m * img + (1 - m) * bg
    # shared colour cast / exposure, plus a small per-shot change
    gain = 0.75 + 0.5 * u[8:11].float()
    gamma, sat = 0.7 + 0.6 * float(u[11]), 0.5 + 0.8 * float(u[12])
    for i in range(2):
        v = torch.rand(8, generator=gen, dtype=torch.float64)
        g = gain * (0.95 + 0.1 * v[0:3].float())
        img = _colour(images[i], g, gamma * (0.95 + 0.1 * float(v[3])), sat)
        if v[4] < 0.35:
            img = gaussian_blur(img[None], torch.tensor([0.3 + 0.9 * float(v[5])]))[0]
        if v[6] < 0.35:
            img = (img + torch.randn(img.shape, generator=gen) * 0.04 * float(v[7])).clamp(0, 1)
        if u[13 + i] < 0.35:
            img = _jpeg(img, int(30 + 60 * float(u[15 + i])))
        images[i] = img
    return images[0], images[1]


def vary_batch(pairs: dict, seed: int, step: int, rows: list[int], share: float = 1.0) -> dict:
    """Apply :func:`vary_pair` to a rendered batch (``world.pairs`` output, images 0..1), row by row; ``rows``
    are the items' positions in the global batch (the draws depend on them, not on the process). ``share``: the
    chance that a pair is varied at all (the others stay as rendered)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"train.augment_share must be in [0, 1], got {share}")
    if "source_mask" not in pairs or "target_mask" not in pairs:
        raise ValueError("train.augment=true needs person masks with the pairs (the synthetic world has them; "
                         "this dataset does not): set train.augment=false")
    src, tgt = pairs["source_image"].clone(), pairs["target_image"].clone()
    for k, row in enumerate(rows):
        gen = torch.Generator().manual_seed(seed * 1_000_033 + step * 4_099 + row + 17)
        if share < 1.0 and float(torch.rand(1, generator=torch.Generator().manual_seed(
                seed * 1_000_039 + step * 4_111 + row))) >= share:
            continue
        src[k], tgt[k] = vary_pair(src[k].float(), tgt[k].float(), pairs["source_mask"][k].float(),
                                   pairs["target_mask"][k].float(), gen)
    return {**pairs, "source_image": src, "target_image": tgt}
