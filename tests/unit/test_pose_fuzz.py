"""Property-based fuzzing of ``load_pose_keypoint``: nothing but ValueError ever escapes.

Three generators: arbitrary JSON-like structures (recursive None/bool/int/float incl. NaN, inf and
huge values/str/list/dict), mutations of valid frames (one field replaced, truncated, extended or
deleted), and valid frames (which must parse). Derandomised, so the run is reproducible.
"""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reposedm_core.pose import FORMATS, PoseFrame, load_pose_keypoint

FIELDS = ["people", "canvas_width", "canvas_height", "pose_keypoints_2d", "face_keypoints_2d",
          "hand_left_keypoints_2d", "hand_right_keypoints_2d"]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

numbers = (st.integers(-2**70, 2**70) | st.sampled_from([0, 1, -1, 10**400, 512, 16385])
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.5, 1e308, -0.0, 1.0000001]))
leaves = st.none() | st.booleans() | numbers | st.text(max_size=6)
json_like = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=3), children, max_size=5),
    max_leaves=40,
)


def check_only_value_error(data, fmt="auto", canvas=None, require_person=True) -> list[PoseFrame] | None:
    try:
        frames = load_pose_keypoint(data, fmt, canvas=canvas, require_person=require_person)
    except ValueError as err:
        assert str(err)  # a message, always
        return None
    assert isinstance(frames, list) and frames
    for f in frames:
        assert isinstance(f, PoseFrame)
        assert f.keypoints.dtype == torch.float32 and f.keypoints.shape[1:] == (18, 3)
        assert bool(torch.isfinite(f.keypoints).all())
    return frames


@FUZZ
@given(data=json_like, as_text=st.booleans(), fmt=st.sampled_from(FORMATS),
       canvas=st.sampled_from([None, (64, 48)]))
def test_arbitrary_structures_raise_only_value_error(data, as_text, fmt, canvas):
    if as_text:
        data = json.dumps(data)
    check_only_value_error(data, fmt, canvas)


# ---------------------------------------------------------------------------- valid frames


@st.composite
def points(draw, n: int, normalized: bool) -> list[float]:
    """``n`` points ``[x, y, c]`` flat; the values come from a drawn seed (drawing each is slow)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    hi = np.array([1.0, 1.0]) if normalized else np.array([64.0, 48.0])
    pts = np.concatenate([rng.uniform(0, 1, (n, 2)) * hi, rng.uniform(0.01, 1.0, (n, 1))], 1)
    pts[rng.uniform(size=n) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = 0.0
    return [float(v) for v in pts.reshape(-1)]


@st.composite
def valid_pose_keypoint(draw) -> list[dict]:
    frames = []
    for _ in range(draw(st.integers(1, 3))):
        normalized = draw(st.booleans())
        people = []
        for _ in range(draw(st.integers(1, 2))):
            person = {"pose_keypoints_2d": draw(points(draw(st.sampled_from([18, 25])), normalized))}
            for key, sizes in (("face_keypoints_2d", [68, 70]), ("hand_left_keypoints_2d", [21]),
                               ("hand_right_keypoints_2d", [21])):
                kind = draw(st.sampled_from(["none", "empty", "absent", "points"]))
                if kind == "points":
                    person[key] = draw(points(draw(st.sampled_from(sizes)), normalized))
                elif kind != "absent":
                    person[key] = None if kind == "none" else []
            people.append(person)
        frames.append({"people": people, "canvas_width": 64, "canvas_height": 48})
    return frames


@FUZZ
@given(data=valid_pose_keypoint(), as_text=st.booleans())
def test_valid_inputs_parse(data, as_text):
    frames = check_only_value_error(json.dumps(data) if as_text else data)
    assert frames is not None, "a valid POSE_KEYPOINT was rejected"
    assert [f.num_people for f in frames] == [len(f["people"]) for f in data]
    for f in frames:
        assert bool((f.keypoints[..., 0] <= 64).all() & (f.keypoints[..., 1] <= 48).all())


# ------------------------------------------------------------------------------- mutations


@st.composite
def mutated_pose_keypoint(draw) -> list[dict]:
    data = copy.deepcopy(draw(valid_pose_keypoint()))
    for _ in range(draw(st.integers(1, 3))):
        # walk to a random container inside the structure
        node = data
        for _ in range(draw(st.integers(0, 4))):
            children = list(node.values()) if isinstance(node, dict) else node
            children = [c for c in children if isinstance(c, (list, dict))]
            if not children:
                break
            node = draw(st.sampled_from(children))
        action = draw(st.sampled_from(["replace", "delete", "append", "truncate"]))
        keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            continue
        key = draw(st.sampled_from(keys))
        if action == "replace":
            node[key] = draw(json_like)
        elif action == "delete":
            del node[key]
        elif action == "append" and isinstance(node, list):
            node.append(draw(json_like))
        elif action == "truncate" and isinstance(node, list):
            del node[draw(st.integers(0, len(node) - 1)):]
    return data


@FUZZ
@given(data=mutated_pose_keypoint(), fmt=st.sampled_from(FORMATS), require_person=st.booleans())
def test_mutated_frames_raise_only_value_error(data, fmt, require_person):
    check_only_value_error(data, fmt, None, require_person)


def test_huge_and_special_numbers_are_value_errors():
    base = {"canvas_width": 64, "canvas_height": 48}
    for bad in (math.nan, math.inf, -math.inf, 10**5000, 1e308):
        body = [1.0] * 54
        body[0] = bad
        assert check_only_value_error([{**base, "people": [{"pose_keypoints_2d": body}]}]) is None
    deep = "[" * 100_000 + "]" * 100_000
    assert check_only_value_error(deep) is None
