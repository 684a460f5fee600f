"""Real photos of people for the tests, none of them committed: scikit-image's ``astronaut`` and ``camera``
(public domain), ``bus.jpg`` from the ultralytics wheel (AGPL) and frames of the sports2d demo video (BSD-3),
both extracted by ``scripts/setup_env.sh test`` into ``.cache/photos``.

Reserved for independent evaluation and never used here: the pose2sim demo videos, pocketpose's COCO files.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = Path(os.environ.get("REPOSE_PHOTOS", ROOT / ".cache" / "photos"))
SPORTS_FRAMES = (80, 120, 160, 200)     # frames with one person in full view
STRICT = os.environ.get("REPOSE_STRICT_TIERS") == "1"


def _missing(what: str) -> None:
    msg = f"{what} is missing: run `scripts/setup_env.sh test` (it takes the photos from registry packages)"
    if STRICT:
        pytest.fail(msg)
    pytest.skip(msg)


@lru_cache(maxsize=None)
def photos() -> dict[str, np.ndarray]:
    """name -> RGB uint8 ``[H, W, 3]``."""
    try:
        from skimage import data
    except ImportError:
        _missing("scikit-image")
    out = {"astronaut": data.astronaut(), "camera": np.repeat(data.camera()[..., None], 3, -1)}
    bus, video = PHOTOS / "bus.jpg", PHOTOS / "demo.mp4"
    if not bus.is_file() or not video.is_file():
        _missing(f"{bus} / {video}")
    from PIL import Image

    out["bus"] = np.asarray(Image.open(bus).convert("RGB"))
    import av

    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in SPORTS_FRAMES:
                out[f"sports{i}"] = frame.to_ndarray(format="rgb24")
            if i >= max(SPORTS_FRAMES):
                break
    return out


def as_tensor(image: np.ndarray):
    """RGB uint8 ``[H, W, 3]`` -> ``[1, 3, H, W]`` float 0..1."""
    import torch

    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
