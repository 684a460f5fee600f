"""BlazePose's pipeline geometry, as MediaPipe's pose graphs compute it, batched in torch.

    anchors = ssd_anchors()                                   # [2254, 2] anchor centres, 0..1 of the 224 input
    dets = decode_detections(scores, boxes, anchors)          # sigmoid scores, boxes + 4 keypoints, 0..1
    keep = weighted_nms(dets_of_one_image)                    # MediaPipe's WEIGHTED non-maximum suppression
    roi = detection_rois(keypoints, width, height)            # hip centre -> square, rotated region, in pixels
    crops = crop(images, roi, 256)                            # grid_sample: differentiable w.r.t. images
    xy = roi_to_image(points_in_crop_0_1, roi)                # back to image pixels

A region of interest (:class:`Roi`) is a square in image pixels: centre, side and rotation (radians, clockwise
in the y-down image, MediaPipe's convention). Crops sample like OpenCV's ``warpAffine`` in MediaPipe's
``ImageToTensorCalculator``: the rectangle's corners land on the centres of the corner pixels of the output,
bilinear, no antialiasing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
MIN_SCORE = 0.5            # TensorsToDetections min_score_thresh
NMS_IOU = 0.3              # NonMaxSuppression min_suppression_threshold
ROI_SCALE = 1.25           # RectTransformation scale_x / scale_y on the detection's alignment circle
HEATMAP_KERNEL = 7         # RefineLandmarksFromHeatmap kernel_size
HEATMAP_MIN_CONFIDENCE = 0.5


@dataclass
class Roi:
    """Square regions of interest, each field ``[N]``: centre (pixels), side (pixels), rotation (radians)."""

    cx: torch.Tensor
    cy: torch.Tensor
    size: torch.Tensor
    rotation: torch.Tensor

    def __len__(self) -> int:
        return int(self.cx.shape[0])

    def index(self, i: torch.Tensor) -> "Roi":
        return Roi(self.cx[i], self.cy[i], self.size[i], self.rotation[i])

    def detach(self) -> "Roi":
        return Roi(self.cx.detach(), self.cy.detach(), self.size.detach(), self.rotation.detach())

    def corners(self) -> torch.Tensor:
        """``[N, 4, 2]`` pixel corners (top-left, top-right, bottom-right, bottom-left of the upright crop)."""
        u = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]], dtype=self.cx.dtype,
                         device=self.cx.device)
        return roi_to_image(u[None] + 0.5, self)


def ssd_anchors(size: int = DETECTOR_SIZE, strides: tuple[int, ...] = (8, 16, 32, 32, 32)) -> torch.Tensor:
    """Anchor centres ``[A, 2]`` (x, y in 0..1) of MediaPipe's SsdAnchorsCalculator for the pose detector:
    fixed-size anchors, 2 per layer (aspect 1 + interpolated scale), layers of equal stride merged per cell."""
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        n = -(-size // strides[i])
        c = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        yy, xx = torch.meshgrid(c, c, indexing="ij")
        out.append(torch.stack([xx, yy], -1).reshape(-1, 1, 2).expand(-1, per_cell, 2).reshape(-1, 2))
        i = j
    return torch.cat(out)


def decode_detections(scores: torch.Tensor, boxes: torch.Tensor, anchors: torch.Tensor,
                      size: int = DETECTOR_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw detector outputs ``[B, A]``, ``[B, A, 12]`` -> (scores ``[B, A]`` 0..1, ``[B, A, 6, 2]``: box
    corners (x_min, y_min), (x_max, y_max) then the 4 keypoints, in 0..1 of the detector input)."""
    prob = torch.sigmoid(scores.clamp(-100.0, 100.0))
    reg = boxes.reshape(*boxes.shape[:-1], 6, 2) / size
    centre = reg[..., 0, :] + anchors
    half = reg[..., 1, :] / 2
    kps = reg[..., 2:, :] + anchors[:, None, :]
    return prob, torch.cat([(centre - half)[..., None, :], (centre + half)[..., None, :], kps], -2)


def _iou(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    lo = torch.maximum(box[0], others[:, 0])
    hi = torch.minimum(box[1], others[:, 1])
    inter = (hi - lo).clamp_min(0).prod(-1)
    area = lambda b: (b[..., 1, :] - b[..., 0, :]).clamp_min(0).prod(-1)  # noqa: E731
    union = area(box) + area(others) - inter
    return torch.where(union > 0, inter / union, torch.zeros_like(inter))


def weighted_nms(scores: torch.Tensor, dets: torch.Tensor, iou: float = NMS_IOU,
                 max_out: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MediaPipe's WEIGHTED suppression on one image's candidates (``scores [K]``, ``dets [K, 6, 2]``): the best
    remaining candidate absorbs every candidate overlapping it by IoU > ``iou``; its box and keypoints become
    the score-weighted mean of the absorbed ones, its score stays. Returns (scores ``[M]``, dets ``[M, 6, 2]``)
    best first."""
    order = torch.argsort(scores, descending=True)
    scores, dets = scores[order], dets[order]
    out_s, out_d = [], []
    alive = torch.ones(len(scores), dtype=torch.bool, device=scores.device)
    while bool(alive.any()) and (max_out is None or len(out_s) < max_out):
        top = int(torch.nonzero(alive)[0])
        group = alive & (_iou(dets[top], dets) > iou)
        group[top] = True
        w = scores[group]
        out_d.append((dets[group] * w[:, None, None]).sum(0) / w.sum())
        out_s.append(scores[top])
        alive &= ~group
    if not out_s:
        return scores.new_zeros(0), dets.new_zeros(0, 6, 2)
    return torch.stack(out_s), torch.stack(out_d)


def detection_rois(keypoints: torch.Tensor, scale: float = ROI_SCALE) -> Roi:
    """AlignmentPointsRects + RectTransformation: keypoints ``[N, 2, 2]`` (hip centre, full-body scale point) in
    image pixels -> the square ROI centred on the hips, side ``2 * scale * radius``, rotated so that the
    hip -> scale-point direction points up in the crop."""
    c, p = keypoints[:, 0], keypoints[:, 1]
    d = p - c
    radius = d.norm(dim=-1)
    rotation = normalize_radians(math.pi / 2 - torch.atan2(-d[:, 1], d[:, 0]))
    return Roi(c[:, 0], c[:, 1], 2 * scale * radius, rotation)


def normalize_radians(a: torch.Tensor) -> torch.Tensor:
    return a - 2 * math.pi * torch.floor((a + math.pi) / (2 * math.pi))


def roi_to_image(uv: torch.Tensor, roi: Roi) -> torch.Tensor:
    """Points ``[N, P, 2]`` in crop units (0..1 across the square) -> image pixels ``[N, P, 2]``."""
    d = (uv - 0.5) * roi.size[:, None, None]
    cos, sin = torch.cos(roi.rotation)[:, None], torch.sin(roi.rotation)[:, None]
    x = roi.cx[:, None] + cos * d[..., 0] - sin * d[..., 1]
    y = roi.cy[:, None] + sin * d[..., 0] + cos * d[..., 1]
    return torch.stack([x, y], -1)


def image_to_roi(xy: torch.Tensor, roi: Roi) -> torch.Tensor:
    """Inverse of :func:`roi_to_image`: image pixels ``[N, P, 2]`` -> crop units."""
    dx, dy = xy[..., 0] - roi.cx[:, None], xy[..., 1] - roi.cy[:, None]
    cos, sin = torch.cos(roi.rotation)[:, None], torch.sin(roi.rotation)[:, None]
    u = (cos * dx + sin * dy) / roi.size[:, None] + 0.5
    v = (-sin * dx + cos * dy) / roi.size[:, None] + 0.5
    return torch.stack([u, v], -1)


def crop(images: torch.Tensor, roi: Roi, size: int, batch_index: torch.Tensor | None = None,
         padding_mode: str = "border") -> torch.Tensor:
    """Sample the rotated squares of ``roi`` from ``images [B, C, H, W]`` into ``[N, C, size, size]`` (bilinear,
    differentiable w.r.t. the images and the ROI). ``batch_index [N]`` says which image each ROI reads (default:
    ROI i reads image i). Output pixel j sits at crop unit ``j / size`` (OpenCV's corner-on-centre mapping)."""
    n = len(roi)
    h, w = images.shape[-2:]
    t = torch.arange(size, device=images.device, dtype=roi.cx.dtype) / size
    vv, uu = torch.meshgrid(t, t, indexing="ij")
    uv = torch.stack([uu, vv], -1).reshape(1, -1, 2).expand(n, -1, -1)
    xy = roi_to_image(uv, roi)                                          # image pixels, centres at integers
    grid = torch.stack([(2 * xy[..., 0] + 1) / w - 1, (2 * xy[..., 1] + 1) / h - 1], -1)
    grid = grid.reshape(n, size, size, 2).to(images.dtype)
    if batch_index is None:
        return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    # the ROIs of one image are sampled as one tall grid from a view of it: no copy of (large) photos
    out = images.new_empty(n, images.shape[1], size, size)
    for b in torch.unique(batch_index).tolist():
        rows = torch.nonzero(batch_index == b)[:, 0]
        g = grid[rows].reshape(1, len(rows) * size, size, 2)
        got = F.grid_sample(images[b:b + 1], g, mode="bilinear", padding_mode=padding_mode, align_corners=False)
        out = out.index_copy(0, rows, got.view(images.shape[1], len(rows), size, size).transpose(0, 1))
    return out


def full_image_rois(height: int, width: int, n: int, device=None, dtype=torch.float32) -> Roi:
    """The letterbox of MediaPipe's detector input: the whole image centred in a square of its longer side.
    MediaPipe's normalised coordinate ``x / width`` is the pixel-centre coordinate ``x`` (OpenCV's mapping), so
    the centre is ``(width / 2, height / 2)``."""
    side = float(max(height, width))
    full = lambda v: torch.full((n,), v, device=device, dtype=dtype)  # noqa: E731
    return Roi(full(width / 2), full(height / 2), full(side), full(0.0))


def refine_from_heatmap(uv: torch.Tensor, heatmaps: torch.Tensor, kernel: int = HEATMAP_KERNEL,
                        min_confidence: float = HEATMAP_MIN_CONFIDENCE) -> torch.Tensor:
    """RefineLandmarksFromHeatmap: each landmark ``uv [N, L, 2]`` (crop units) becomes the sigmoid-weighted mean
    cell of its ``kernel x kernel`` window of ``heatmaps [N, L, h, w]`` (logits) when the window's peak reaches
    ``min_confidence``. Cells are weighted at their index (``col / w``), as MediaPipe does. Differentiable in the
    heatmaps; the window placement is piecewise constant."""
    n, nl, h, w = heatmaps.shape
    col = (uv[..., 0].detach() * w).trunc().long()
    row = (uv[..., 1].detach() * h).trunc().long()
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    off = (kernel - 1) // 2
    k = torch.arange(-off, off + 1, device=uv.device)
    cols, rows = col[..., None] + k, row[..., None] + k                  # [N, L, K]
    in_c, in_r = (cols >= 0) & (cols < w), (rows >= 0) & (rows < h)
    flat = heatmaps.flatten(2)                                            # [N, L, h*w]
    idx = (rows.clamp(0, h - 1)[..., :, None] * w + cols.clamp(0, w - 1)[..., None, :]).flatten(2)
    conf = torch.sigmoid(torch.gather(flat, 2, idx)).view(n, nl, kernel, kernel)
    conf = conf * (in_r[..., :, None] & in_c[..., None, :]).to(conf.dtype)
    total = conf.sum((-1, -2))
    peak = conf.flatten(2).amax(-1)
    mean_c = (conf.sum(-2) * cols.to(conf.dtype)).sum(-1) / total.clamp_min(1e-12)
    mean_r = (conf.sum(-1) * rows.to(conf.dtype)).sum(-1) / total.clamp_min(1e-12)
    refined = torch.stack([mean_c / w, mean_r / h], -1).to(uv.dtype)
    use = (inside & (peak >= min_confidence) & (total > 0))[..., None]
    return torch.where(use, refined, uv)


def paste_masks(masks: torch.Tensor, roi: Roi, height: int, width: int) -> torch.Tensor:
    """Crop-space masks ``[N, 1, s, s]`` (0..1) -> image-space ``[N, height, width]``, 0 outside the ROI."""
    n, _, s, _ = masks.shape
    ys = torch.arange(height, device=masks.device, dtype=roi.cx.dtype)
    xs = torch.arange(width, device=masks.device, dtype=roi.cx.dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    pix = torch.stack([xx, yy], -1).reshape(1, -1, 2).expand(n, -1, -1)
    uv = image_to_roi(pix, roi) * s                                       # crop pixels, centres at integers
    grid = torch.stack([(2 * uv[..., 0] + 1) / s - 1, (2 * uv[..., 1] + 1) / s - 1], -1)
    grid = grid.reshape(n, height, width, 2).to(masks.dtype)
    return F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
