"""The benchmark datasets of the pose-transfer papers (PATN, PISE, NTED, PIDM...), in their standard layout.

DeepFashion In-shop (256x176 frame)::

    ROOT/fasion-resize-pairs-train.csv         from,to          (101,966 pairs)
    ROOT/fasion-resize-pairs-test.csv          from,to          (8,570 pairs)
    ROOT/fasion-resize-annotation-train.csv    name:keypoints_y:keypoints_x
    ROOT/fasion-resize-annotation-test.csv
    ROOT/train/<name>   ROOT/test/<name>       the images (256x176, or 512x352 for the high-resolution setting)

Market-1501 (128x64 frame)::

    ROOT/market-pairs-{train,test}.csv   ROOT/market-annotation-{train,test}.csv
    ROOT/bounding_box_train/<name>       ROOT/bounding_box_test/<name>

Keypoint lists hold the 18 OpenPose joints as integers in the annotation frame, -1 for a missing joint.
Images may be the annotation frame times an integer factor (512x352 DeepFashion): keypoints are scaled to
match. Every problem is reported with the file and its line number (line 1 is the header).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..models.frame import Letterbox
from ..pose.convert import parse_deepfashion_keypoints


@dataclass(frozen=True)
class Layout:
    name: str
    pairs: str          # format with split
    annotation: str
    images: str
    height: int         # annotation frame
    width: int


DEEPFASHION = Layout("deepfashion", "fasion-resize-pairs-{split}.csv", "fasion-resize-annotation-{split}.csv",
                     "{split}", 256, 176)
MARKET = Layout("market", "market-pairs-{split}.csv", "market-annotation-{split}.csv", "bounding_box_{split}", 128, 64)
LAYOUTS = {"deepfashion": DEEPFASHION, "market": MARKET, "market1501": MARKET}
SPLITS = ("train", "test")


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: expected {what}")
    return path


def _read_csv(path: Path, delimiter: str, header: list[str]) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` for every data row; checks the header and the field count."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if not rows:
        raise ValueError(f"{path.name} is empty; expected a header line {delimiter.join(header)!r} and rows")
    got = [h.strip() for h in rows[0]]
    if got != header:
        raise ValueError(f"{path.name} line 1: header is {delimiter.join(got)!r}, expected {delimiter.join(header)!r}")
    out = []
    for i, fields in enumerate(rows[1:], start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise ValueError(f"{path.name} line {i}: {len(fields)} field(s), expected {len(header)} "
                             f"({delimiter.join(header)}): {delimiter.join(fields)[:120]!r}")
        out.append((i, [f.strip() for f in fields]))
    return out


def read_annotation(path: Path, height: int, width: int) -> dict[str, torch.Tensor]:
    """``name -> [18, 3]`` pixels of the annotation frame, validated row by row."""
    poses = {}
    for line, (name, ys, xs) in _read_csv(path, ":", ["name", "keypoints_y", "keypoints_x"]):
        try:
            kp = parse_deepfashion_keypoints(ys, xs)
        except ValueError as e:
            raise ValueError(f"{path.name} line {line} ({name}): {e}") from None
        vis = kp[:, 2] > 0
        outside = vis & ((kp[:, 0] >= width) | (kp[:, 1] >= height))
        if outside.any():
            j = int(outside.nonzero()[0])
            raise ValueError(f"{path.name} line {line} ({name}): joint {j} at x={kp[j, 0]:.0f}, y={kp[j, 1]:.0f} "
                             f"is outside the {width}x{height} annotation frame")
        if name in poses:
            raise ValueError(f"{path.name} line {line}: {name!r} is annotated twice")
        poses[name] = kp
    return poses


def read_pairs(path: Path, poses: dict[str, torch.Tensor], annotation_name: str) -> list[tuple[str, str]]:
    pairs = []
    for line, (a, b) in _read_csv(path, ",", ["from", "to"]):
        for name in (a, b):
            if name not in poses:
                raise ValueError(f"{path.name} line {line}: {name!r} has no row in {annotation_name}")
        pairs.append((a, b))
    if not pairs:
        raise ValueError(f"{path.name} has no pairs")
    return pairs


def load_image(path: Path, height: int, width: int) -> tuple[torch.Tensor, int]:
    """``[3, H, W]`` float 0..1 and the integer factor of its size over the ``width x height`` frame."""
    if not path.is_file():
        raise FileNotFoundError(f"image {path} not found")
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    factor = h // height
    if factor < 1 or h != factor * height or w != factor * width:
        raise ValueError(f"image {path.name} is {w}x{h}, expected {width}x{height} (or an integer multiple, "
                         f"e.g. {2 * width}x{2 * height})")
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255).permute(2, 0, 1).contiguous(), factor


class AnchorPairs:
    """The pairs of one split, letterboxed into a ``height x width`` model frame.

    ``pairs(indices)`` -> dict(source_image, target_image ``[B, 3, H, W]`` 0..1, source_keypoints,
    target_keypoints ``[B, 18, 3]`` model-frame pixels, names) — the interface of the synthetic world.
    """

    def __init__(self, root: str | os.PathLike, layout: str | Layout, split: str, height: int | None = None,
                 width: int | None = None, image_dir: str | os.PathLike | None = None):
        self.layout = LAYOUTS[layout] if isinstance(layout, str) else layout
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.root = _require(Path(root), f"the {self.layout.name} dataset folder")
        lay = self.layout
        self.height, self.width = height or lay.height, width or lay.width
        self.split, self.prior = split, None
        ann = _require(self.root / lay.annotation.format(split=split),
                       "the annotation CSV (name:keypoints_y:keypoints_x)")
        self.poses = read_annotation(ann, lay.height, lay.width)
        pairs_file = _require(self.root / lay.pairs.format(split=split), "the pairs CSV (from,to)")
        self.pair_names = read_pairs(pairs_file, self.poses, ann.name)
        self.image_dir = Path(image_dir) if image_dir else self.root / lay.images.format(split=split)
        _require(self.image_dir, f"the {split} image folder")
        self.box = None

    def __len__(self) -> int:
        return len(self.pair_names)

    def names(self, index: int) -> tuple[str, str]:
        return self.pair_names[index]

    def image_frame(self) -> tuple[int, int]:
        """``(height, width)`` of the split's images, read from its first pair: the annotation frame or an integer
        multiple of it (512x352 DeepFashion). Generation at this frame gives images comparable to the ground truth."""
        image, _ = load_image(self.image_dir / self.pair_names[0][1], self.layout.height, self.layout.width)
        return image.shape[1], image.shape[2]

    def _one(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        image, factor = load_image(self.image_dir / name, self.layout.height, self.layout.width)
        kp = self.poses[name].clone()
        kp[:, :2] = (kp[:, :2] + 0.5) * factor - 0.5   # pixel centres at integers, at the image's resolution
        kp[:, :2] *= (kp[:, 2:] > 0)
        box = Letterbox(image.shape[1], image.shape[2], self.height, self.width)
        return box.image_in(image[None])[0], box.pose_in(kp)

    def pairs(self, indices: list[int]) -> dict:
        src_img, src_kp, tgt_img, tgt_kp = [], [], [], []
        for i in indices:
            a, b = self.pair_names[i]
            x, p = self._one(a)
            y, q = self._one(b)
            src_img.append(x), src_kp.append(p), tgt_img.append(y), tgt_kp.append(q)
        return {"source_image": torch.stack(src_img), "source_keypoints": torch.stack(src_kp),
                "target_image": torch.stack(tgt_img), "target_keypoints": torch.stack(tgt_kp),
                "names": [self.pair_names[i] for i in indices]}

    def images(self) -> list[str]:
        """The distinct image names of the split (e.g. the FID reference set of the training split)."""
        return sorted(self.poses)


def person_mask(keypoints: torch.Tensor, height: int, width: int, margin: float = 0.1) -> torch.Tensor:
    """``[B, 1, H, W]`` 0/1: the box around the visible joints, widened by ``margin`` of its size — the region the
    Market-1501 masked metrics compare (the background of a re-identification crop is not the person's)."""
    b = keypoints.shape[0]
    mask = torch.zeros(b, 1, height, width)
    for i in range(b):
        vis = keypoints[i, :, 2] > 0
        if vis.sum() < 2:
            mask[i] = 1
            continue
        x, y = keypoints[i, vis, 0], keypoints[i, vis, 1]
        mx, my = float(x.max() - x.min()) * margin + 2, float(y.max() - y.min()) * margin + 2
        x0, x1 = int(max(0, x.min() - mx)), int(min(width - 1, x.max() + mx))
        y0, y1 = int(max(0, y.min() - my)), int(min(height - 1, y.max() + my))
        mask[i, :, y0:y1 + 1, x0:x1 + 1] = 1
    return mask
