"""ComfyUI ``POSE_KEYPOINT`` and OpenPose JSON <-> :class:`PoseFrame` (canonical pixels).

``POSE_KEYPOINT`` (comfyui_controlnet_aux) is a list with one dict per frame::

    {"people": [{"pose_keypoints_2d": [x, y, c] * 18,
                 "face_keypoints_2d": [x, y, c] * 70 (or 68) or None,
                 "hand_left_keypoints_2d": [x, y, c] * 21 or None,
                 "hand_right_keypoints_2d": [x, y, c] * 21 or None}],
     "canvas_width": W, "canvas_height": H}

Undetected points are 0, 0, 0. Its OpenPose node writes coordinates normalised to 0..1, DWPose
writes pixels; both are accepted. A single OpenPose JSON frame is the same dict (not in a list);
files from the OpenPose binary carry no canvas (pass ``canvas=``), may use BODY_25 bodies (75
numbers, converted to OpenPose-18) and write ``[]`` for disabled hands/faces (read as ``None``). A body of
17 points (51 numbers) is COCO-17 order (MMPose, YOLO-pose, COCO annotations) and is converted to
OpenPose-18 (the neck is the midpoint of the shoulders).

Every malformed input raises ``ValueError`` (and nothing else) naming the frame, person and field
and what was expected. Frame and person numbers in messages are 0-based.
"""
from __future__ import annotations

import json
import math
import numbers
from typing import Any, Sequence

import numpy as np
import torch

from .convert import OPENPOSE18_FROM_BODY25, coco17_to_openpose18
from .pose_frame import (
    FACE_POINTS,
    HAND_POINTS,
    PoseFrame,
    _as_frames,
    check_canvas_value,
    frames_from_tensor,
    frames_to_tensor,
)

FORMATS = ("auto", "pixels", "normalized")
MAX_COORD = 1e6  # |x|, |y|, confidence bound (pixels); larger values are garbage, not poses
BODY_FIELD = "pose_keypoints_2d"
EXTRA_FIELDS = (
    ("hand_left_keypoints_2d", "hands_left", HAND_POINTS),
    ("hand_right_keypoints_2d", "hands_right", HAND_POINTS),
    ("face_keypoints_2d", "faces", FACE_POINTS),
)

__all__ = [
    "FORMATS", "PoseFrame", "load_pose_keypoint", "to_pose_keypoint", "frames_to_tensor",
    "frames_from_tensor", "load_openpose_json", "dump_openpose_json",
]


def _decode(data: Any) -> Any:
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"pose JSON bytes are not UTF-8: {err}") from err
    if isinstance(data, str):
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as err:
            raise ValueError(f"pose data is not valid JSON: {err}") from err
    return data


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (safe for huge ints and deep nesting)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # int too long to print, nesting too deep
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _points(value: Any, where: str, num_points: Sequence[int]) -> np.ndarray:
    """A flat ``[x, y, c] * N`` list -> float64 ``[N, 3]``, N in ``num_points``; checks every value."""
    expected = " or ".join(f"{3 * n} ({n} points x 3)" for n in num_points)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where} must be a flat list of numbers [x, y, c, ...] of length {expected}, "
                         f"got {type(value).__name__}")
    if len(value) not in [3 * n for n in num_points]:
        raise ValueError(f"{where} has {len(value)} numbers; expected {expected}")
    for i, v in enumerate(value):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise ValueError(f"{where}[{i}] is {type(v).__name__} {_short(v)}; expected a number")
        if not -MAX_COORD <= v <= MAX_COORD:
            problem = "NaN" if v != v else "infinite" if abs(v) == math.inf else "out of range"
            raise ValueError(f"{where}[{i}] = {_short(v)} is {problem}; expected a finite number "
                             f"with |value| <= {MAX_COORD:g}")
    pts = np.asarray(value, dtype=np.float64).reshape(-1, 3)
    neg = np.nonzero(pts[:, 2] < 0)[0]
    if neg.size:
        raise ValueError(f"{where}: point {neg[0]} has negative confidence {pts[neg[0], 2]:g}; "
                         "expected confidence >= 0 (0 = missing)")
    pts[pts[:, 2] == 0] = 0.0  # confidence 0 means missing: its coordinates carry nothing
    return pts


def _canvas(frame: dict, i: int, canvas: tuple[int, int] | None) -> tuple[int, int]:
    w, h = frame.get("canvas_width"), frame.get("canvas_height")
    if w is None and h is None:
        if canvas is None:
            raise ValueError(f"frame {i} has no canvas_width/canvas_height; pass canvas=(width, height) "
                             "(OpenPose JSON files do not store the image size)")
        return canvas
    if w is None or h is None:
        missing = "canvas_width" if w is None else "canvas_height"
        raise ValueError(f"frame {i} has no {missing}; expected both canvas_width and canvas_height")
    return check_canvas_value(w, f"frame {i} canvas_width"), check_canvas_value(h, f"frame {i} canvas_height")


def _parse_frame(frame: Any, i: int, fmt: str, canvas: tuple[int, int] | None,
                 require_person: bool, keep_extras: bool) -> PoseFrame:
    if not isinstance(frame, dict):
        raise ValueError(f"frame {i} is {type(frame).__name__}; expected a dict with 'people', "
                         "'canvas_width', 'canvas_height'")
    people = frame.get("people")
    if not isinstance(people, (list, tuple)):
        got = "missing" if people is None else type(people).__name__
        raise ValueError(f"frame {i}: 'people' must be a list of person dicts, got {got}")
    width, height = _canvas(frame, i, canvas)
    if not people and require_person:
        raise ValueError(f"frame {i} has no person; expected ≥ 1 (pass require_person=False to accept "
                         "empty frames)")
    bodies, extras = [], {attr: [] for _, attr, _ in EXTRA_FIELDS}
    for k, person in enumerate(people):
        where = f"frame {i} person {k}"
        if not isinstance(person, dict):
            raise ValueError(f"{where} is {type(person).__name__}; expected a dict with '{BODY_FIELD}'")
        if BODY_FIELD not in person:
            raise ValueError(f"{where} has no '{BODY_FIELD}'; expected a list of 54 (OpenPose-18), "
                             "75 (BODY_25) or 51 (COCO-17) numbers")
        body = _points(person[BODY_FIELD], f"{where} {BODY_FIELD}", (18, 25, 17))
        if len(body) == 25:
            body = body[list(OPENPOSE18_FROM_BODY25)]
        elif len(body) == 17:
            body = coco17_to_openpose18(torch.from_numpy(body)).numpy()
        bodies.append(body)
        for key, attr, sizes in EXTRA_FIELDS:
            value = person.get(key)
            empty = value is None or (isinstance(value, (list, tuple)) and len(value) == 0)
            extras[attr].append(None if empty else _points(value, f"{where} {key}", sizes))
    normalized = _is_normalized(bodies, extras, fmt, i)
    scale = np.array([width, height, 1.0]) if normalized else np.ones(3)

    def tensor(pts: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(pts * scale).to(torch.float32)

    keypoints = torch.stack([tensor(b) for b in bodies]) if bodies else torch.zeros(0, 18, 3)
    kw = {attr: [None if e is None or not keep_extras else tensor(e) for e in items]
          for attr, items in extras.items()}
    return PoseFrame(keypoints, width, height, **kw)


def _is_normalized(bodies: list[np.ndarray], extras: dict[str, list], fmt: str, i: int) -> bool:
    """Which convention frame ``i`` uses; checks that claimed-normalised coordinates are in [0, 1]."""
    if fmt == "pixels":
        return False
    arrays = bodies + [e for items in extras.values() for e in items if e is not None]
    confident = [a[a[:, 2] > 0, :2] for a in arrays]
    xy = np.concatenate(confident) if confident else np.zeros((0, 2))
    inside = bool(((xy >= 0) & (xy <= 1)).all())
    if fmt == "normalized" and not inside:
        bad = xy[(xy < 0) | (xy > 1)][0]
        raise ValueError(f"frame {i}: fmt='normalized' but a confident coordinate is {bad:g}; normalised "
                         "coordinates must lie in [0, 1] (use fmt='pixels' or 'auto' for pixels)")
    return inside


def load_pose_keypoint(
    data: Any,
    fmt: str = "auto",
    *,
    canvas: tuple[int, int] | None = None,
    require_person: bool = True,
    keep_extras: bool = True,
) -> list[PoseFrame]:
    """Parse ComfyUI ``POSE_KEYPOINT`` / OpenPose JSON into frames in canonical pixels.

    Args:
        data: the POSE_KEYPOINT list, a single frame dict, or JSON ``str``/``bytes`` of either.
        fmt: coordinate convention: ``"auto"`` (per frame: normalised if every confident
            coordinate lies in [0, 1], else pixels), ``"pixels"`` or ``"normalized"``.
        canvas: ``(width, height)`` for frames without ``canvas_width``/``canvas_height``.
        require_person: raise for a frame with no people (else it gets a ``[0, 18, 3]`` tensor).
        keep_extras: keep hands and faces (always validated); False sets them to ``None``.

    Returns:
        One :class:`PoseFrame` per frame, keypoints ``[P, 18, 3]`` in pixels (BODY_25 converted).

    Raises:
        ValueError: for anything malformed, naming the frame, person and field.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(repr(f) for f in FORMATS)}; got {_short(fmt)}")
    if canvas is not None:
        if not isinstance(canvas, (list, tuple)) or len(canvas) != 2:
            raise ValueError(f"canvas must be (width, height) in pixels, got {_short(canvas, 60)}")
        canvas = (check_canvas_value(canvas[0], "canvas width"),
                  check_canvas_value(canvas[1], "canvas height"))
    data = _decode(data)
    if isinstance(data, dict):
        frames = [data]
    elif isinstance(data, (list, tuple)):
        if not data:
            raise ValueError("pose data is an empty list; expected at least one frame dict")
        frames = list(data)
    else:
        raise ValueError(f"pose data must be a list of frame dicts (POSE_KEYPOINT), a frame dict or its "
                         f"JSON text; got {type(data).__name__}")
    return [_parse_frame(f, i, fmt, canvas, bool(require_person), bool(keep_extras))
            for i, f in enumerate(frames)]


def _flat(pts: torch.Tensor | None, width: int, height: int, normalized: bool) -> list[float] | None:
    if pts is None:
        return None
    a = pts.detach().cpu().to(torch.float64).numpy().copy()
    if normalized:
        a[:, 0] /= width
        a[:, 1] /= height
    a[a[:, 2] <= 0] = 0.0
    return [float(v) for v in a.reshape(-1)]


def to_pose_keypoint(frames: Any, *, normalized: bool = False, keep_extras: bool = True) -> list[dict]:
    """Frames -> the comfyui_controlnet_aux ``POSE_KEYPOINT`` list (plain, JSON-serialisable).

    Args:
        frames: a list of :class:`PoseFrame` (or one).
        normalized: write x / W and y / H (the controlnet_aux OpenPose node's convention) instead of
            pixels (DWPose's).
        keep_extras: write hands and faces; False (or absent) gives ``None``.

    Missing points are written 0, 0, 0.
    """
    out = []
    for f in _as_frames(frames):
        people = []
        for p in range(f.num_people):
            person = {"pose_keypoints_2d": _flat(f.keypoints[p], f.width, f.height, normalized)}
            for key, attr, _ in (EXTRA_FIELDS[2], EXTRA_FIELDS[0], EXTRA_FIELDS[1]):
                extra = getattr(f, attr)[p] if keep_extras else None
                person[key] = _flat(extra, f.width, f.height, normalized)
            people.append(person)
        out.append({"people": people, "canvas_width": int(f.width), "canvas_height": int(f.height)})
    return out


def load_openpose_json(data: Any, fmt: str = "auto", *, canvas: tuple[int, int] | None = None,
                       require_person: bool = True, keep_extras: bool = True) -> PoseFrame:
    """One OpenPose JSON frame (dict, or its JSON text) -> :class:`PoseFrame`."""
    decoded = _decode(data)
    if not isinstance(decoded, dict):
        raise ValueError(f"an OpenPose JSON frame must be a dict with 'people', got "
                         f"{type(decoded).__name__}; use load_pose_keypoint for a list of frames")
    return load_pose_keypoint(decoded, fmt, canvas=canvas, require_person=require_person,
                              keep_extras=keep_extras)[0]


def dump_openpose_json(frame: PoseFrame, *, normalized: bool = False, keep_extras: bool = True,
                       indent: int | None = None) -> str:
    """One :class:`PoseFrame` -> OpenPose JSON text (``version`` 1.3 plus the canvas size)."""
    if not isinstance(frame, PoseFrame):
        raise ValueError(f"frame must be a PoseFrame, got {type(frame).__name__}")
    body = to_pose_keypoint([frame], normalized=normalized, keep_extras=keep_extras)[0]
    return json.dumps({"version": 1.3, **body}, indent=indent)
