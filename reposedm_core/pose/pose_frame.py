"""``PoseFrame``: the people of one frame in canonical pixels, plus optional hands and faces."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .validate import check_keypoints, check_points

MAX_CANVAS = 16384
HAND_POINTS = (21,)
FACE_POINTS = (70, 68)


def check_canvas_value(value: Any, where: str) -> int:
    """A canvas side in pixels: an int (or integral float such as 512.0) in 1..16384, never a bool."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where} must be an integer number of pixels, got {type(value).__name__}")
    if not (-math.inf < value < math.inf) or value != int(value):
        raise ValueError(f"{where} must be an integer number of pixels, got {float(value)!r}")
    if not 1 <= value <= MAX_CANVAS:
        shown = repr(value) if abs(value) < 1e12 else "a value beyond 1e12"
        raise ValueError(f"{where} must be between 1 and {MAX_CANVAS} pixels, got {shown}")
    return int(value)


@dataclass
class PoseFrame:
    """The people of one frame, in pixels of a ``width x height`` canvas.

    ``hands_left``, ``hands_right`` and ``faces`` hold one entry per person: ``None`` or a tensor
    ``[21, 3]`` (hands) / ``[70, 3]`` or ``[68, 3]`` (faces) in pixels. Left empty, they default to
    ``[None] * num_people``.
    """

    keypoints: torch.Tensor  # [P, 18, 3] pixels (x, y, confidence; 0 = missing)
    width: int
    height: int
    hands_left: list[torch.Tensor | None] = field(default_factory=list)
    hands_right: list[torch.Tensor | None] = field(default_factory=list)
    faces: list[torch.Tensor | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keypoints = check_keypoints(self.keypoints, "PoseFrame.keypoints")
        if self.keypoints.dim() != 3:
            raise ValueError(f"PoseFrame.keypoints must be [P, 18, 3], "
                             f"got {tuple(self.keypoints.shape)}")
        self.width = check_canvas_value(self.width, "PoseFrame.width")
        self.height = check_canvas_value(self.height, "PoseFrame.height")
        extras = (("hands_left", HAND_POINTS), ("hands_right", HAND_POINTS), ("faces", FACE_POINTS))
        for name, sizes in extras:
            items = list(getattr(self, name))
            if not items:
                items = [None] * self.num_people
            if len(items) != self.num_people:
                raise ValueError(f"PoseFrame.{name} has {len(items)} entries; expected one per person "
                                 f"({self.num_people})")
            checked = []
            for k, item in enumerate(items):
                if item is not None:
                    n = int(np.shape(item)[0]) if np.ndim(item) >= 1 else -1
                    if n not in sizes:
                        allowed = " or ".join(map(str, sizes))
                        raise ValueError(f"PoseFrame.{name}[{k}] must be [{allowed}, 3], "
                                         f"got shape {tuple(np.shape(item))}")
                    item = check_points(item, n, f"PoseFrame.{name}[{k}]")
                checked.append(item)
            setattr(self, name, checked)

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])


def frames_to_tensor(frames: Sequence[PoseFrame], person_index: int = 0) -> torch.Tensor:
    """Stack one person of every frame: ``[F, 18, 3]`` pixels.

    Raises ValueError when a frame has too few people, or the frames' canvases differ (the pixel
    coordinates would then not be comparable).
    """
    frames = _as_frames(frames)
    if isinstance(person_index, bool) or not isinstance(person_index, int) or person_index < 0:
        raise ValueError(f"person_index must be an int >= 0, got {person_index!r}")
    sizes = {(f.width, f.height) for f in frames}
    if len(sizes) > 1:
        raise ValueError(f"frames have different canvases {sorted(sizes)}; convert them to one canvas first")
    out = []
    for i, f in enumerate(frames):
        if f.num_people <= person_index:
            raise ValueError(f"frame {i} has {f.num_people} person(s); person_index={person_index} "
                             f"needs at least {person_index + 1}")
        out.append(f.keypoints[person_index])
    return torch.stack(out)


def frames_from_tensor(kp: Any, width: int, height: int) -> list[PoseFrame]:
    """Frames from ``[F, 18, 3]`` (one person each) or ``[F, P, 18, 3]`` pixels, no hands or faces."""
    t = check_keypoints(kp)
    if t.dim() == 3:
        t = t[:, None]
    if t.dim() != 4:
        raise ValueError(f"keypoints must be [F, 18, 3] or [F, P, 18, 3], got {tuple(t.shape)}")
    return [PoseFrame(t[i], width, height) for i in range(t.shape[0])]


def _as_frames(frames: Any) -> list[PoseFrame]:
    if isinstance(frames, PoseFrame):
        return [frames]
    if not isinstance(frames, (list, tuple)) or not frames:
        raise ValueError(f"expected a non-empty list of PoseFrame, got {type(frames).__name__}"
                         + (" (empty)" if isinstance(frames, (list, tuple)) else ""))
    for i, f in enumerate(frames):
        if not isinstance(f, PoseFrame):
            raise ValueError(f"frames[{i}] is {type(f).__name__}; expected a PoseFrame "
                             "(use load_pose_keypoint to parse POSE_KEYPOINT data)")
    return list(frames)

