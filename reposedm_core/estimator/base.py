"""The keypoint estimator contract: images of any size in, differentiable OpenPose-18 keypoints out.

    kp = estimator(images)            # images [B, 3, H, W] 0..1 -> [B, 18, 3] (x, y pixels of H x W, confidence)
    out = estimator.predict(images)   # + heatmaps, raw coordinates, peaks and the letterbox geometry

Every backend works at a fixed *working size*: the input is resized (bilinear, antialiased when shrinking) keeping
its aspect ratio and padded to the working size (``letterbox``), the backend returns one score map per joint at
``1 / stride`` of the working size, a *local soft-argmax* (a softmax restricted to a window around the arg-max
cell) turns each map into sub-cell coordinates, and the coordinates are mapped back to the input frame. Every
step is differentiable with respect to the images (the window choice is piecewise constant).

Pixel convention (as in ``reposedm_core.pose``): pixel (row i, column j) has its centre at x = j, y = i; heatmap
cell (r, c) covers working pixels ``[c * stride, (c + 1) * stride)``, so its centre is at
``x = (c + 0.5) * stride - 0.5``.

Confidence is the peak of the joint's probability map (0..1). Joints whose peak is below ``threshold`` are
reported missing: confidence 0 and x = y = 0 (the canonical format). The zeroing is a multiplication by a 0/1
mask, so present joints keep their gradients and missing ones contribute none.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..pose.skeleton import NUM_JOINTS


@dataclass(frozen=True)
class Letterbox:
    """How an ``in_height x in_width`` frame sits in the working frame: ``x_work = (x + 0.5) * scale_x - 0.5 +
    pad_x`` (likewise y). ``scale_*`` are the exact per-axis resize factors (the resized size is rounded)."""

    in_height: int
    in_width: int
    resized_height: int
    resized_width: int
    pad_top: int
    pad_left: int

    @property
    def scale_x(self) -> float:
        return self.resized_width / self.in_width

    @property
    def scale_y(self) -> float:
        return self.resized_height / self.in_height

    def to_work(self, xy: torch.Tensor) -> torch.Tensor:
        """``[..., 2]`` input-frame pixels -> working-frame pixels."""
        sx, sy = self.scale_x, self.scale_y
        return torch.stack([(xy[..., 0] + 0.5) * sx - 0.5 + self.pad_left,
                            (xy[..., 1] + 0.5) * sy - 0.5 + self.pad_top], -1)

    def to_input(self, xy: torch.Tensor) -> torch.Tensor:
        """``[..., 2]`` working-frame pixels -> input-frame pixels (inverse of :meth:`to_work`)."""
        return torch.stack([(xy[..., 0] - self.pad_left + 0.5) / self.scale_x - 0.5,
                            (xy[..., 1] - self.pad_top + 0.5) / self.scale_y - 0.5], -1)


def letterbox_geometry(height: int, width: int, work_height: int, work_width: int) -> Letterbox:
    """Fit ``height x width`` into the working size keeping the aspect ratio, centred (extra pad pixel right/bottom)."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be at least 1 x 1 pixels, got {height} x {width}")
    s = min(work_height / height, work_width / width)
    rh = min(work_height, max(1, round(height * s)))
    rw = min(work_width, max(1, round(width * s)))
    return Letterbox(height, width, rh, rw, (work_height - rh) // 2, (work_width - rw) // 2)


def letterbox(images: torch.Tensor, work_height: int, work_width: int,
              pad_value: float = 0.5) -> tuple[torch.Tensor, Letterbox]:
    """Resize ``[B, C, H, W]`` into ``[B, C, work_height, work_width]`` keeping the aspect ratio (bilinear,
    antialiased when shrinking), padding with ``pad_value``; differentiable. Returns (images, geometry)."""
    b, c, h, w = images.shape
    geo = letterbox_geometry(h, w, work_height, work_width)
    x = images
    if (geo.resized_height, geo.resized_width) != (h, w):
        shrink = geo.resized_height < h or geo.resized_width < w
        x = F.interpolate(x, size=(geo.resized_height, geo.resized_width), mode="bilinear", align_corners=False,
                          antialias=shrink)
    pads = (geo.pad_left, work_width - geo.resized_width - geo.pad_left,
            geo.pad_top, work_height - geo.resized_height - geo.pad_top)
    if any(pads):
        x = F.pad(x, pads, value=pad_value)
    return x, geo


def local_soft_argmax(scores: torch.Tensor, radius: int) -> torch.Tensor:
    """Soft-argmax of ``scores [B, J, h, w]`` (softmax weights) restricted to the ``(2 radius + 1)^2`` window
    around each map's arg-max cell. Returns ``[B, J, 2]`` (x, y) in heatmap cells, differentiable w.r.t. scores.

    The window keeps a second mode (the other wrist, a background blob) from pulling the estimate between
    the two, which a global soft-argmax would do."""
    b, j, h, w = scores.shape
    idx = scores.detach().flatten(2).argmax(-1)
    py, px = torch.div(idx, w, rounding_mode="floor"), idx % w
    ys = torch.arange(h, device=scores.device, dtype=scores.dtype)
    xs = torch.arange(w, device=scores.device, dtype=scores.dtype)
    in_y = (ys - py[..., None]).abs() <= radius                       # [B, J, h]
    in_x = (xs - px[..., None]).abs() <= radius                       # [B, J, w]
    window = in_y[..., :, None] & in_x[..., None, :]
    z = scores.masked_fill(~window, float("-inf")).flatten(2)
    p = torch.softmax(z, -1).view(b, j, h, w)
    x = (p.sum(-2) * xs).sum(-1)
    y = (p.sum(-1) * ys).sum(-1)
    return torch.stack([x, y], -1)


@dataclass
class EstimatorOutput:
    """Everything :meth:`KeypointEstimator.predict` computes.

    keypoints ``[B, 18, 3]`` input pixels + confidence (0 and x = y = 0 below the threshold);
    xy ``[B, 18, 2]`` input pixels before thresholding; peak ``[B, 18]`` 0..1;
    heatmaps ``[B, 18, h, w]`` 0..1 in the working frame at ``1 / stride``; letterbox: the geometry used."""

    keypoints: torch.Tensor
    xy: torch.Tensor
    peak: torch.Tensor
    heatmaps: torch.Tensor
    letterbox: Letterbox


class KeypointEstimator(nn.Module):
    """Base class of the differentiable keypoint estimators (subclasses implement :meth:`score_maps`).

    Args:
        work_size: (height, width) of the working frame in pixels, multiples of ``stride``.
        stride: working pixels per heatmap cell.
        threshold: minimum peak probability (0..1) for a joint to be reported present.
        window: soft-argmax radius in heatmap cells.
        pad_value: value (0..1 image units) of the letterbox padding.
    """

    def __init__(self, work_size: tuple[int, int], stride: int, threshold: float, window: int,
                 pad_value: float = 0.5) -> None:
        super().__init__()
        wh, ww = int(work_size[0]), int(work_size[1])
        if wh % stride or ww % stride or wh <= 0 or ww <= 0:
            raise ValueError(f"working size must be positive multiples of the stride {stride}, got {wh} x {ww}")
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}")
        self.work_height, self.work_width, self.stride = wh, ww, int(stride)
        self.threshold, self.window, self.pad_value = float(threshold), int(window), float(pad_value)

    # -- what a backend provides -----------------------------------------------------------------------------
    def score_maps(self, work_images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, work_height, work_width]`` 0..1 -> raw per-joint scores ``[B, 18, h, w]`` (h = work_height /
        stride)."""
        raise NotImplementedError

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Scores -> heatmaps 0..1 (the confidence is their peak). Default: sigmoid of logits."""
        return torch.sigmoid(scores)

    def argmax_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """Scores -> the log-weights of the soft-argmax (temperature applied). Default: the scores."""
        return scores

    # -- shared pipeline ---------------------------------------------------------------------------------------
    @staticmethod
    def check_images(images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a tensor [B, 3, H, W] with values 0..1, got {got}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point 0..1, got dtype {images.dtype}; divide uint8 by 255")
        return images

    def cells_to_work(self, xy_cells: torch.Tensor) -> torch.Tensor:
        """Heatmap cells -> working-frame pixels (cell centres at ``(c + 0.5) * stride - 0.5``)."""
        return (xy_cells + 0.5) * self.stride - 0.5

    def work_to_cells(self, xy_work: torch.Tensor) -> torch.Tensor:
        return (xy_work + 0.5) / self.stride - 0.5

    def predict(self, images: torch.Tensor, threshold: float | None = None) -> EstimatorOutput:
        """Run the whole pipeline; see :class:`EstimatorOutput`. ``threshold`` overrides the default."""
        images = self.check_images(images)
        param = next(self.parameters(), None)
        if param is not None and images.dtype != param.dtype:
            images = images.to(param.dtype)
        work, geo = letterbox(images, self.work_height, self.work_width, self.pad_value)
        scores = self.score_maps(work)
        h, w = self.work_height // self.stride, self.work_width // self.stride
        if scores.shape[1:] != (NUM_JOINTS, h, w):
            raise RuntimeError(f"{type(self).__name__}.score_maps returned {tuple(scores.shape)}, "
                               f"expected [B, {NUM_JOINTS}, {h}, {w}]")
        heat = self.probabilities(scores)
        peak = heat.flatten(2).amax(-1)
        xy = geo.to_input(self.cells_to_work(local_soft_argmax(self.argmax_scores(scores), self.window)))
        thr = self.threshold if threshold is None else float(threshold)
        present = (peak >= thr).to(xy.dtype)
        keypoints = torch.cat([xy * present[..., None], (peak * present)[..., None]], -1)
        return EstimatorOutput(keypoints, xy, peak, heat, geo)

    def forward(self, images: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
        """``images [B, 3, H, W]`` 0..1, any H, W -> keypoints ``[B, 18, 3]`` (x, y pixels of H x W, confidence
        0..1; 0 with x = y = 0 for joints whose peak is below the threshold). Differentiable w.r.t. images."""
        return self.predict(images, threshold).keypoints

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Per-joint probability maps ``[B, 18, work_height / stride, work_width / stride]`` 0..1, in the
        working (letterboxed) frame; ``predict(images).letterbox`` maps their coordinates back."""
        return self.predict(images).heatmaps
