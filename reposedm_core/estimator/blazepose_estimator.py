"""Backend (c): MediaPipe BlazePose, the reader for photographs, behind the keypoint-estimator interface.

    est = load_blazepose()                  # shipped weights, converted from mediapipe==0.10.21 (Apache-2.0)
    kp = est(images)                        # [B, 3, H, W] 0..1 -> OpenPose-18 [B, 18, 3], most confident person
    people = est.people(images, max_people=4)   # everyone: 33 landmarks, OpenPose-18, ROI, flag, masks
    masks = est.masks(images)               # [B, H, W] person segmentation 0..1

The pipeline is MediaPipe's: detector on the image letterboxed to 224 x 224 -> anchors, sigmoid scores >= 0.5,
weighted NMS -> a rotated square region of interest per person from the detector's hip-centre and scale
keypoints -> a 256 x 256 crop -> landmarks (refined on the heatmaps), visibility, pose flag and segmentation ->
back to image pixels. Given a region of interest (``predict(images, poses=...)`` builds one from a known pose and
skips the detector), the reading is differentiable with respect to the image end to end (``grid_sample`` crop).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from ..pose.convert import mediapipe33_to_openpose18
from ..pose.skeleton import JOINT_INDEX, NUM_JOINTS
from ..utils.images import dilate
from . import blazepose_geometry as geo
from .blazepose import BlazePoseDetector, BlazePoseLandmarkNet, load_blazepose_networks

NUM_BODY = 33


@dataclass
class BlazePosePeople:
    """People found in a batch, one row each. ``image_index [N]`` says whose image; ``landmarks [N, 33, 5]``:
    x, y (image pixels), z (pixels, hip-relative depth), visibility, presence (0..1); ``aux [N, 6, 5]`` the
    network's 6 auxiliary landmarks; ``keypoints [N, 18, 3]`` OpenPose-18 (x, y pixels, confidence =
    visibility; missing below the threshold); ``world [N, 33, 3]`` metres; ``flag [N]`` pose presence;
    ``score [N]`` detector score (1 for ROIs given by the caller); ``roi``; ``crop_masks [N, 1, 256, 256]``."""

    image_index: torch.Tensor
    landmarks: torch.Tensor
    aux: torch.Tensor
    keypoints: torch.Tensor
    world: torch.Tensor
    flag: torch.Tensor
    score: torch.Tensor
    roi: geo.Roi
    crop_masks: torch.Tensor
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return int(self.image_index.shape[0])

    def select(self, keep: torch.Tensor) -> "BlazePosePeople":
        return BlazePosePeople(self.image_index[keep], self.landmarks[keep], self.aux[keep], self.keypoints[keep],
                               self.world[keep], self.flag[keep], self.score[keep], self.roi.index(keep),
                               self.crop_masks[keep], self.image_size)

    def masks(self) -> torch.Tensor:
        """Per-person segmentation ``[N, H, W]`` (0..1) in image pixels."""
        return geo.paste_masks(self.crop_masks, self.roi, *self.image_size)

    def union_masks(self, num_images: int) -> torch.Tensor:
        """Segmentation of everyone per image, ``[num_images, H, W]`` (the max over each image's people)."""
        out = self.crop_masks.new_zeros(num_images, *self.image_size, dtype=torch.float32)
        if len(self):
            for i, m in zip(self.image_index.tolist(), self.masks()):
                out[i] = torch.maximum(out[i], m)
        return out


@dataclass
class BlazePoseOutput:
    """One person per image (``predict``): ``keypoints [B, 18, 3]`` (thresholded), ``xy [B, 18, 2]`` (before
    the threshold, what guidance pulls on), ``peak [B, 18]`` visibility, ``landmarks [B, 33, 5]``,
    ``found [B]`` bool, and the :class:`BlazePosePeople` rows they came from (``people.image_index``)."""

    keypoints: torch.Tensor
    xy: torch.Tensor
    peak: torch.Tensor
    landmarks: torch.Tensor
    found: torch.Tensor
    people: BlazePosePeople


class BlazePoseEstimator(nn.Module):
    """MediaPipe BlazePose (full) as a differentiable ``images [B, 3, H, W] 0..1 -> [B, 18, 3]`` estimator.

    Args:
        detector, landmark: the two networks (:func:`load_blazepose` loads the shipped weights).
        threshold: visibility (0..1) below which a joint is reported missing.
        min_score: detector score a person needs (MediaPipe: 0.5).
        min_flag: pose-presence probability a reading needs (MediaPipe: 0.5).
    """

    accepts_pose_roi = True          # guidance passes the target pose as the region of interest

    def __init__(self, detector: BlazePoseDetector, landmark: BlazePoseLandmarkNet, threshold: float = 0.5,
                 min_score: float = geo.MIN_SCORE, min_flag: float = 0.5) -> None:
        super().__init__()
        for name, v in (("threshold", threshold), ("min_score", min_score), ("min_flag", min_flag)):
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")
        self.detector, self.landmark = detector, landmark
        self.threshold, self.min_score, self.min_flag = float(threshold), float(min_score), float(min_flag)
        self.register_buffer("anchors", geo.ssd_anchors(), persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.detector.stem.weight.dtype

    @staticmethod
    def check_images(images: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` float 0..1 with C = 1 (grey), 3 (RGB) or 4 (RGBA, alpha dropped) -> RGB."""
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3, 4):
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a tensor [B, 3, H, W] (or 1 / 4 channels) with values 0..1, got {got}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point 0..1, got dtype {images.dtype}; divide uint8 by 255")
        if images.shape[-1] < 1 or images.shape[-2] < 1:
            raise ValueError(f"images must be at least 1 x 1 pixels, got {tuple(images.shape[-2:])}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return images[:, :3]

    # -- detector -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def detect(self, images: torch.Tensor, max_people: int = 1, min_score: float | None = None
               ) -> tuple[geo.Roi, torch.Tensor, torch.Tensor]:
        """Regions of interest of up to ``max_people`` people per image whose detector score reaches
        ``min_score`` (default: the estimator's), best first: ``(roi, image_index [N], score [N])``. Not
        differentiable (the ROI is a piecewise-constant choice)."""
        images = self.check_images(images)
        b, _, h, w = images.shape
        full = geo.full_image_rois(h, w, b, images.device)
        # crops are sampled in fp32 (grid_sample in fp16 loses sub-pixel precision), then cast to the networks'
        x = geo.crop(images.float(), full, geo.DETECTOR_SIZE, padding_mode="zeros") * 2 - 1
        scores, boxes = self.detector(x.to(self.dtype, memory_format=torch.channels_last))
        prob, dets = geo.decode_detections(scores.float(), boxes.float(), self.anchors)
        rois, index, found = [], [], []
        side = float(max(h, w))
        for i in range(b):
            keep = prob[i] >= (self.min_score if min_score is None else float(min_score))
            s, d = geo.weighted_nms(prob[i][keep], dets[i][keep], max_out=max_people)
            if len(s):
                pix = (d - 0.5) * side + torch.tensor([w / 2, h / 2], device=d.device)   # letterbox -> pixels
                rois.append(geo.detection_rois(pix[:, 2:4]))
                index.append(torch.full((len(s),), i, dtype=torch.long, device=images.device))
                found.append(s)
        if not rois:
            z = torch.zeros(0, device=images.device)
            return geo.Roi(z, z, z, z), torch.zeros(0, dtype=torch.long, device=images.device), z
        cat = lambda f: torch.cat([getattr(r, f) for r in rois])  # noqa: E731
        return geo.Roi(cat("cx"), cat("cy"), cat("size"), cat("rotation")), torch.cat(index), torch.cat(found)

    # -- landmarks ----------------------------------------------------------------------------------------------
    def read(self, images: torch.Tensor, roi: geo.Roi, image_index: torch.Tensor,
             score: torch.Tensor | None = None, threshold: float | None = None) -> BlazePosePeople:
        """Landmarks of the people in ``roi`` (one row per ROI, read from ``images[image_index]``); joints
        with visibility below ``threshold`` (default: the estimator's) are missing in ``keypoints``.
        Differentiable w.r.t. ``images``."""
        images = self.check_images(images)
        h, w = images.shape[-2:]
        roi = roi.detach()
        crops = geo.crop(images.float(), roi, geo.LANDMARK_SIZE, image_index)
        out = self.landmark(crops.to(self.dtype, memory_format=torch.channels_last))
        raw = out["landmarks"].float()
        uv = geo.refine_from_heatmap(raw[..., :2] / geo.LANDMARK_SIZE, out["heatmaps"].float())
        xy = geo.roi_to_image(uv, roi)
        z = raw[..., 2:3] / geo.LANDMARK_SIZE * roi.size[:, None, None]
        lm = torch.cat([xy, z, torch.sigmoid(raw[..., 3:5])], -1)
        body = lm[:, :NUM_BODY]
        norm = torch.cat([body[..., 0:1] / w, body[..., 1:2] / h, body[..., 3:4]], -1)
        thr = self.threshold if threshold is None else float(threshold)
        kp = mediapipe33_to_openpose18(norm, w, h, thr) if len(lm) else lm.new_zeros(0, NUM_JOINTS, 3)
        n = len(roi)
        return BlazePosePeople(image_index, body, lm[:, NUM_BODY:], kp, out["world"].float()[:, :NUM_BODY],
                               out["flag"].float(), score if score is not None else torch.ones(n, device=lm.device),
                               roi, torch.sigmoid(out["segmentation"].float()), (int(h), int(w)))

    def people(self, images: torch.Tensor, max_people: int = 1, min_score: float | None = None,
               threshold: float | None = None) -> BlazePosePeople:
        """Everyone found (up to ``max_people`` per image, detector score >= ``min_score``) whose pose flag
        passes; joints below ``threshold`` visibility are missing in ``keypoints``.

        BlazePose's detector reports the one dominant person of an image (as in MediaPipe), so people are found
        in rounds: each round reads the best remaining person, then covers them (their segmentation, dilated)
        with grey for the next round's detector. Landmarks are always read from the original image."""
        if max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {max_people}")
        images = self.check_images(images)
        work, todo, found = images, torch.arange(images.shape[0], device=images.device), []
        for _ in range(max_people):
            roi, index, score = self.detect(work if len(todo) == len(work) else work[todo], 1, min_score)
            if len(index) == 0:
                break
            index = todo[index]
            people = self.read(images, roi, index, score, threshold)
            found.append(people.select(people.flag >= self.min_flag))
            todo = index
            if len(found) < max_people:
                work = work.clone() if len(found) == 1 else work
                with torch.no_grad():
                    cover = _dilate(people.masks().detach(), images.shape[-2:])
                    work[index] = work[index] * (1 - cover[:, None]) + 0.5 * cover[:, None]
        if not found:
            return self.read(images, geo.Roi(*(images.new_zeros(0, dtype=torch.float32),) * 4),
                             torch.zeros(0, dtype=torch.long, device=images.device))
        return _concat(found)

    def predict(self, images: torch.Tensor, threshold: float | None = None,
                poses: torch.Tensor | None = None) -> BlazePoseOutput:
        """The most confident person per image. ``poses [B, 18, 3]`` (pixels of the images, e.g. the target pose
        of guidance) give each image's region of interest instead of the detector (images whose pose has fewer
        than 2 joints use the detector)."""
        images = self.check_images(images)
        b = images.shape[0]
        roi, index, score = self.detect(images, 1) if poses is None else self._pose_or_detect(images, poses)
        people = self.read(images, roi, index, score)
        ok = people.flag >= self.min_flag
        thr = self.threshold if threshold is None else float(threshold)
        vis = people.landmarks[..., 3]
        norm = torch.cat([people.landmarks[..., 0:1], people.landmarks[..., 1:2], vis[..., None]], -1)
        raw = mediapipe33_to_openpose18(norm, 1, 1, 0.0) if len(people) else people.keypoints
        kp = people.keypoints if threshold is None or not len(people) else mediapipe33_to_openpose18(norm, 1, 1, thr)
        kp = kp * ok[:, None, None]
        out_kp = images.new_zeros(b, NUM_JOINTS, 3, dtype=torch.float32)
        out_xy = images.new_zeros(b, NUM_JOINTS, 2, dtype=torch.float32)
        out_lm = images.new_zeros(b, NUM_BODY, 5, dtype=torch.float32)
        out_kp = out_kp.index_copy(0, people.image_index, kp)
        out_xy = out_xy.index_copy(0, people.image_index, raw[..., :2])
        out_lm = out_lm.index_copy(0, people.image_index, people.landmarks)
        found = torch.zeros(b, dtype=torch.bool, device=images.device)
        found[people.image_index] = ok
        return BlazePoseOutput(out_kp, out_xy, out_kp[..., 2], out_lm, found, people)

    def _pose_or_detect(self, images: torch.Tensor, poses: torch.Tensor):
        if poses.shape != (images.shape[0], NUM_JOINTS, 3):
            raise ValueError(f"poses must be [B, {NUM_JOINTS}, 3] for {images.shape[0]} images, "
                             f"got {tuple(poses.shape)}")
        roi = pose_rois(poses.float())
        have = (poses[..., 2] > 0).sum(-1) >= 2
        index = torch.arange(images.shape[0], device=images.device)
        if bool(have.all()):
            return roi, index, torch.ones(len(index), device=images.device)
        d_roi, d_index, d_score = self.detect(images[~have], 1)
        d_index = torch.nonzero(~have)[:, 0][d_index]
        keep = torch.nonzero(have)[:, 0]
        cat = lambda a, b: torch.cat([a, b])  # noqa: E731
        return (geo.Roi(cat(roi.cx[keep], d_roi.cx), cat(roi.cy[keep], d_roi.cy), cat(roi.size[keep], d_roi.size),
                        cat(roi.rotation[keep], d_roi.rotation)),
                cat(keep, d_index), cat(torch.ones(len(keep), device=images.device), d_score))

    def forward(self, images: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
        """``images [B, 3, H, W]`` 0..1, any size -> OpenPose-18 ``[B, 18, 3]`` in input pixels (the most
        confident person; all zeros where nobody is found)."""
        return self.predict(images, threshold).keypoints

    @torch.no_grad()
    def masks(self, images: torch.Tensor, max_people: int = 1) -> torch.Tensor:
        """Person segmentation ``[B, H, W]`` 0..1: the union (max) of up to ``max_people`` people per image."""
        images = self.check_images(images)
        return self.people(images, max_people).union_masks(images.shape[0])


def _dilate(masks: torch.Tensor, size) -> torch.Tensor:
    """Person masks ``[N, H, W]`` -> a 0/1 cover, grown by 3% of the image's longer side (hair, loose clothes)."""
    k = max(3, int(0.03 * max(size)) | 1)
    return dilate((masks > 0.3)[:, None], k // 2).float()[:, 0]  # running sums: megapixel masks, 53 px boxes


def _concat(parts: list[BlazePosePeople]) -> BlazePosePeople:
    """Rows of several rounds, ordered by image, then by round (best first within an image)."""
    cat = lambda f: torch.cat([getattr(p, f) for p in parts])  # noqa: E731
    roi = geo.Roi(*(torch.cat([getattr(p.roi, f) for p in parts]) for f in ("cx", "cy", "size", "rotation")))
    merged = BlazePosePeople(cat("image_index"), cat("landmarks"), cat("aux"), cat("keypoints"), cat("world"),
                             cat("flag"), cat("score"), roi, cat("crop_masks"), parts[0].image_size)
    order = torch.argsort(merged.image_index, stable=True)
    return merged.select(order)


def pose_rois(poses: torch.Tensor, margin: float = 1.1) -> geo.Roi:
    """A BlazePose region of interest per OpenPose-18 pose ``[N, 18, 3]`` (pixels): centred on the hips (or the
    joints' box), the hips -> neck direction up, side ``2 * 1.25 * margin * `` the farthest joint's distance
    (joints sit inside the body's outline: ``margin`` covers the head top and the soles)."""
    present = poses[..., 2] > 0
    xy = poses[..., :2]
    big = torch.finfo(xy.dtype).max
    lo = torch.where(present[..., None], xy, torch.full_like(xy, big)).amin(1)
    hi = torch.where(present[..., None], xy, torch.full_like(xy, -big)).amax(1)
    box_c = (lo + hi) / 2
    rh, lh, neck = JOINT_INDEX["r_hip"], JOINT_INDEX["l_hip"], JOINT_INDEX["neck"]
    hips = present[:, rh] & present[:, lh]
    hip_c = (xy[:, rh] + xy[:, lh]) / 2
    centre = torch.where(hips[:, None], hip_c, box_c)
    up = xy[:, neck] - centre
    has_up = hips & present[:, neck] & (up.norm(dim=-1) > 1e-3)
    up = torch.where(has_up[:, None], up, torch.tensor([0.0, -1.0], device=xy.device, dtype=xy.dtype).expand_as(up))
    radius = ((xy - centre[:, None]).norm(dim=-1) * present).amax(1).clamp_min(1.0) * margin
    scale_point = centre + up / up.norm(dim=-1, keepdim=True) * radius[:, None]
    return geo.detection_rois(torch.stack([centre, scale_point], 1))


def load_blazepose(device: str | torch.device | None = None, dtype: torch.dtype = torch.float32,
                   threshold: float = 0.5, detector: str | os.PathLike | None = None,
                   landmark: str | os.PathLike | None = None) -> BlazePoseEstimator:
    """The BlazePose estimator with the pack's converted weights (or the given files), eval mode, frozen."""
    det, lm, meta = load_blazepose_networks(device, dtype, detector, landmark)
    est = BlazePoseEstimator(det, lm, threshold=threshold).to(device)
    est.meta = meta
    return est.eval().requires_grad_(False)
