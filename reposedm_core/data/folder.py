"""Your own photos: a folder of images with OpenPose JSON files beside them.

    ROOT/<person>/<image>.png|.jpg   +   ROOT/<person>/<image>.json  (or <image>_keypoints.json, OpenPose's name)

The JSON is an OpenPose / POSE_KEYPOINT file (pixels or 0..1, parsed by the pose layer, first person used).
Pairs are every ordered pair of two different images in the same sub-folder (one person per sub-folder), or
the rows of ``ROOT/pairs.csv`` (``from,to``, paths relative to ROOT) when that file exists.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..models.frame import Letterbox
from ..pose import load_pose_keypoint
from .anchors import _read_csv

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _pose_file(image: Path) -> Path | None:
    for candidate in (image.with_suffix(".json"), image.with_name(image.stem + "_keypoints.json")):
        if candidate.is_file():
            return candidate
    return None


class FolderPairs:
    """Pairs from a folder of images + OpenPose JSON, letterboxed into ``height x width`` (same interface as
    the synthetic world and :class:`~reposedm_core.data.anchors.AnchorPairs`)."""

    def __init__(self, root: str | os.PathLike, height: int, width: int):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root} not found: expected a folder of <person>/<image> + <image>.json")
        self.height, self.width, self.prior = height, width, None
        images = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ValueError(f"{self.root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        missing = [str(p.relative_to(self.root)) for p in images if _pose_file(p) is None]
        if missing:
            raise ValueError(f"{len(missing)} image(s) have no pose file beside them (<image>.json or "
                             f"<image>_keypoints.json), e.g. {missing[:3]}")
        self.files = {str(p.relative_to(self.root)): p for p in images}
        pairs_csv = self.root / "pairs.csv"
        if pairs_csv.is_file():
            self.pair_names = []
            for line, (a, b) in _read_csv(pairs_csv, ",", ["from", "to"]):
                for name in (a, b):
                    if name not in self.files:
                        raise ValueError(f"pairs.csv line {line}: {name!r} is not an image under {self.root}")
                self.pair_names.append((a, b))
        else:
            groups: dict[str, list[str]] = {}
            for name in self.files:
                groups.setdefault(str(Path(name).parent), []).append(name)
            self.pair_names = [p for g in groups.values() for p in itertools.permutations(g, 2)]
        if not self.pair_names:
            raise ValueError(f"{self.root}: no pairs; put two or more images of one person in a sub-folder, or "
                             "list pairs in pairs.csv (from,to)")

    def __len__(self) -> int:
        return len(self.pair_names)

    def _one(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.files[name]
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        w, h = rgb.size
        pose_path = _pose_file(path)
        try:
            frames = load_pose_keypoint(pose_path.read_text(encoding="utf-8"), canvas=(w, h), keep_extras=False)
        except ValueError as e:
            raise ValueError(f"{pose_path.relative_to(self.root)}: {e}") from None
        frame = frames[0]
        if (frame.width, frame.height) != (w, h):
            scale = torch.tensor([w / frame.width, h / frame.height, 1.0])
            kp = frame.keypoints[0] * scale
        else:
            kp = frame.keypoints[0]
        image = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255).permute(2, 0, 1)
        box = Letterbox(h, w, self.height, self.width)
        return box.image_in(image[None])[0], box.pose_in(kp)

    def pairs(self, indices: list[int]) -> dict:
        parts = [[self._one(a), self._one(b)] for a, b in (self.pair_names[i] for i in indices)]
        return {"source_image": torch.stack([p[0][0] for p in parts]),
                "source_keypoints": torch.stack([p[0][1] for p in parts]),
                "target_image": torch.stack([p[1][0] for p in parts]),
                "target_keypoints": torch.stack([p[1][1] for p in parts]),
                "names": [self.pair_names[i] for i in indices]}
