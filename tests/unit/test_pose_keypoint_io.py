"""ComfyUI POSE_KEYPOINT / OpenPose JSON: both units, people, frames, extras, BODY_25, malformed input."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from reposedm_core.pose import (
    PoseFrame,
    dump_openpose_json,
    frames_from_tensor,
    frames_to_tensor,
    load_openpose_json,
    load_pose_keypoint,
    openpose18_to_body25,
    to_pose_keypoint,
)

W, H = 512, 768


def person_px(seed: int, missing: tuple[int, ...] = (4, 17)) -> torch.Tensor:
    """One pose ``[18, 3]`` in pixels of the W x H canvas with a few joints missing."""
    g = torch.Generator().manual_seed(seed)
    kp = torch.cat([torch.rand(18, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0]),
                    torch.rand(18, 1, generator=g) * 0.5 + 0.5], -1)
    kp[list(missing)] = 0
    return kp


def flat(kp: torch.Tensor, normalized: bool = False) -> list[float]:
    kp = kp.clone().double()
    if normalized:
        kp[:, 0] /= W
        kp[:, 1] /= H
    return [float(v) for v in kp.reshape(-1)]


def hand(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 + seed)
    return torch.cat([torch.rand(21, 2, generator=g) * 200 + 50, torch.ones(21, 1)], -1)


def face(seed: int, n: int = 70) -> torch.Tensor:
    g = torch.Generator().manual_seed(200 + seed)
    return torch.cat([torch.rand(n, 2, generator=g) * 100 + 100, torch.ones(n, 1)], -1)


def controlnet_aux_openpose() -> list[dict]:
    """What the controlnet_aux OpenPose node emits: normalised, 2 frames, 2 and 1 people, no extras."""
    frames = []
    for f, n_people in enumerate((2, 1)):
        people = [{"pose_keypoints_2d": flat(person_px(10 * f + p), normalized=True),
                   "face_keypoints_2d": None, "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": None}
                  for p in range(n_people)]
        frames.append({"people": people, "canvas_width": W, "canvas_height": H})
    return frames


def dwpose() -> list[dict]:
    """What DWPose emits: pixels, with hands and a 68-point face."""
    people = [{"pose_keypoints_2d": flat(person_px(p)), "face_keypoints_2d": flat(face(p, 68)),
               "hand_left_keypoints_2d": flat(hand(p)), "hand_right_keypoints_2d": flat(hand(p + 7))}
              for p in range(2)]
    return [{"people": people, "canvas_width": W, "canvas_height": H}]


def test_normalized_frames_become_pixels():
    frames = load_pose_keypoint(controlnet_aux_openpose())
    assert [f.num_people for f in frames] == [2, 1]
    assert all((f.width, f.height) == (W, H) for f in frames)
    assert torch.allclose(frames[0].keypoints[1], person_px(1), atol=1e-3)
    assert torch.allclose(frames[1].keypoints[0], person_px(10), atol=1e-3)
    assert frames[0].hands_left == [None, None] and frames[0].faces == [None, None]


def test_pixel_frames_with_extras_kept_and_dropped():
    (frame,) = load_pose_keypoint(dwpose())
    assert torch.allclose(frame.keypoints[0], person_px(0))
    assert frame.faces[1].shape == (68, 3) and torch.allclose(frame.faces[1], face(1, 68))
    assert torch.allclose(frame.hands_right[0], hand(7))
    (dropped,) = load_pose_keypoint(dwpose(), keep_extras=False)
    assert dropped.hands_left == [None, None] and dropped.faces == [None, None]
    assert to_pose_keypoint([dropped])[0]["people"][0]["face_keypoints_2d"] is None


def test_normalized_extras_scale_with_the_frame():
    data = dwpose()
    person = data[0]["people"][0]
    for key in list(person):
        values = person[key]
        person[key] = [v / (W if i % 3 == 0 else H if i % 3 == 1 else 1) for i, v in enumerate(values)]
    data[0]["people"] = [person]
    (frame,) = load_pose_keypoint(data)
    assert torch.allclose(frame.hands_left[0], hand(0), atol=1e-3)
    assert torch.allclose(frame.faces[0], face(0, 68), atol=1e-3)


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("source", [controlnet_aux_openpose, dwpose])
def test_round_trip_both_units(source, normalized):
    frames = load_pose_keypoint(source())
    data = to_pose_keypoint(frames, normalized=normalized)
    assert json.loads(json.dumps(data)) == data  # plain JSON types
    assert set(data[0]) == {"people", "canvas_width", "canvas_height"}
    assert set(data[0]["people"][0]) == {"pose_keypoints_2d", "face_keypoints_2d",
                                         "hand_left_keypoints_2d", "hand_right_keypoints_2d"}
    again = load_pose_keypoint(data, "normalized" if normalized else "pixels")
    for a, b in zip(frames, again):
        assert torch.allclose(a.keypoints, b.keypoints, atol=1e-3)
        for x, y in zip(a.faces + a.hands_left, b.faces + b.hands_left):
            assert (x is None and y is None) or torch.allclose(x, y, atol=1e-3)
    if normalized:
        assert max(max(p["pose_keypoints_2d"]) for f in data for p in f["people"]) <= 1


def test_missing_points_written_as_zeros_and_confidence_zero_clears_xy():
    data = dwpose()
    data[0]["people"][0]["pose_keypoints_2d"][12:15] = [33.0, 44.0, 0.0]  # joint 4: conf 0 but x, y set
    (frame,) = load_pose_keypoint(data)
    assert frame.keypoints[0, 4].tolist() == [0.0, 0.0, 0.0]
    out = to_pose_keypoint(frame)[0]["people"][0]["pose_keypoints_2d"]
    assert out[12:15] == [0.0, 0.0, 0.0] and out[51:54] == [0.0, 0.0, 0.0]


def test_json_text_bytes_and_single_frame():
    data = controlnet_aux_openpose()
    a = load_pose_keypoint(json.dumps(data))
    b = load_pose_keypoint(json.dumps(data).encode())
    c = load_pose_keypoint(data[0])  # a single frame dict
    assert len(a) == len(b) == 2 and len(c) == 1
    assert torch.equal(a[0].keypoints, b[0].keypoints) and torch.equal(a[0].keypoints, c[0].keypoints)


def test_auto_is_decided_per_frame():
    data = controlnet_aux_openpose()[:1] + dwpose()
    frames = load_pose_keypoint(data)
    assert torch.allclose(frames[0].keypoints[0], person_px(0), atol=1e-3)
    assert torch.allclose(frames[1].keypoints[0], person_px(0))
    pixels = load_pose_keypoint(data, "pixels")
    assert float(pixels[0].keypoints[..., :2].max()) <= 1


def test_openpose_binary_body25_without_canvas():
    body25 = openpose18_to_body25(person_px(3))
    text = json.dumps({"version": 1.3, "people": [{
        "person_id": [-1], "pose_keypoints_2d": [float(v) for v in body25.reshape(-1)],
        "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
        "pose_keypoints_3d": []}]})
    with pytest.raises(ValueError, match=r"no canvas_width/canvas_height; pass canvas=\(width, height\)"):
        load_openpose_json(text)
    frame = load_openpose_json(text, canvas=(W, H))
    assert (frame.width, frame.height) == (W, H)
    assert torch.allclose(frame.keypoints[0], person_px(3))
    assert frame.faces == [None]


def test_coco17_bodies_are_converted():
    """A person with 17 points (51 numbers) is COCO order (MMPose, YOLO-pose), as BODY_25 is converted."""
    from reposedm_core.pose import openpose18_to_coco17

    want = person_px(5, missing=(4,))
    coco = openpose18_to_coco17(want)
    data = [{"people": [{"pose_keypoints_2d": [float(v) for v in coco.reshape(-1)]}],
             "canvas_width": W, "canvas_height": H}]
    got = load_pose_keypoint(data, "pixels")[0].keypoints[0]
    neck = (want[2] + want[5]) / 2                 # COCO has no neck: the shoulders' midpoint
    neck[2] = min(want[2, 2], want[5, 2])
    want = want.clone()
    want[1] = neck
    assert torch.allclose(got, want, atol=1e-4)


def test_require_person():
    data = controlnet_aux_openpose() + [{"people": [], "canvas_width": W, "canvas_height": H}]
    with pytest.raises(ValueError, match="frame 2 has no person; expected ≥ 1"):
        load_pose_keypoint(data)
    frames = load_pose_keypoint(data, require_person=False)
    assert frames[2].keypoints.shape == (0, 18, 3)
    assert to_pose_keypoint(frames)[2]["people"] == []


def test_frames_to_tensor_and_back():
    frames = load_pose_keypoint(controlnet_aux_openpose())
    t = frames_to_tensor(frames)
    assert t.shape == (2, 18, 3)
    assert torch.allclose(t[1], person_px(10), atol=1e-3)
    with pytest.raises(ValueError, match=r"frame 1 has 1 person\(s\); person_index=1 needs at least 2"):
        frames_to_tensor(frames, person_index=1)
    again = frames_from_tensor(t, W, H)
    assert torch.equal(frames_to_tensor(again), t)
    other = PoseFrame(t[:1], 256, 256)
    with pytest.raises(ValueError, match="different canvases"):
        frames_to_tensor([frames[0], other])


def test_openpose_json_dump_load():
    (frame,) = load_pose_keypoint(dwpose())
    text = dump_openpose_json(frame)
    assert json.loads(text)["version"] == 1.3
    again = load_openpose_json(text)
    assert torch.allclose(again.keypoints, frame.keypoints)
    assert torch.allclose(again.hands_left[1], frame.hands_left[1])


def test_pose_frame_checks_its_fields():
    with pytest.raises(ValueError, match="one per person"):
        PoseFrame(torch.zeros(2, 18, 3), 64, 64, hands_left=[None])
    with pytest.raises(ValueError, match=r"faces\[0\] must be \[70 or 68, 3\]"):
        PoseFrame(torch.zeros(1, 18, 3), 64, 64, faces=[torch.zeros(21, 3)])
    with pytest.raises(ValueError, match="between 1 and 16384"):
        PoseFrame(torch.zeros(1, 18, 3), 0, 64)


# ------------------------------------------------------------------------------ malformed input


def _valid() -> list[dict]:
    return copy.deepcopy(dwpose())


def _with(path: tuple, value) -> list[dict]:
    data = _valid()
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


P0 = (0, "people", 0)
BODY = P0 + ("pose_keypoints_2d",)
FACE = P0 + ("face_keypoints_2d",)
LEFT = P0 + ("hand_left_keypoints_2d",)
RIGHT = P0 + ("hand_right_keypoints_2d",)
MALFORMED = [
    (None, "got NoneType"),
    ([], "empty list"),
    (42, "got int"),
    ("{not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    ([[]], "frame 0 is list; expected a dict"),
    ([{"canvas_width": W, "canvas_height": H}], "frame 0: 'people' must be a list.*missing"),
    (_with((0, "people"), {"a": 1}), "frame 0: 'people' must be a list.*got dict"),
    (_with(P0, [1, 2, 3]), "frame 0 person 0 is list; expected a dict with 'pose_keypoints_2d'"),
    (_with(BODY, KeyError), "frame 0 person 0 has no 'pose_keypoints_2d'"),
    (_with(BODY, None), "frame 0 person 0 pose_keypoints_2d must be a flat list.*got NoneType"),
    (_with(BODY, [0.0] * 53), r"pose_keypoints_2d has 53 numbers; expected 54 .* or 75 .* or 51 \(17 points"),
    (_with(BODY, [[0.0, 0.0, 0.0]] * 18), r"has 18 numbers; expected 54"),
    (_with(BODY + (7,), "12"), r"pose_keypoints_2d\[7\] is str '12'; expected a number"),
    (_with(BODY + (7,), True), r"pose_keypoints_2d\[7\] is bool"),
    (_with(BODY + (7,), None), r"pose_keypoints_2d\[7\] is NoneType"),
    (_with(BODY + (3,), float("nan")), r"pose_keypoints_2d\[3\] = nan is NaN"),
    (_with(BODY + (3,), float("inf")), r"pose_keypoints_2d\[3\] = inf is infinite"),
    (_with(BODY + (3,), 10**400), r"out of range"),
    (_with(BODY + (5,), -0.5), r"point 1 has negative confidence -0.5"),
    (_with((0, "canvas_width"), KeyError), "frame 0 has no canvas_width; expected both"),
    (_with((0, "canvas_width"), 0), r"frame 0 canvas_width must be between 1 and 16384"),
    (_with((0, "canvas_width"), 20000), r"between 1 and 16384.*20000"),
    (_with((0, "canvas_width"), 512.5), r"canvas_width must be an integer"),
    (_with((0, "canvas_height"), True), r"canvas_height must be an integer number of pixels, got bool"),
    (_with((0, "canvas_height"), "768"), r"canvas_height must be an integer.*got str"),
    (_with(FACE, [0.0] * 30), r"face_keypoints_2d has 30 numbers; expected 210 .* or 204"),
    (_with(LEFT, [0.0] * 64), r"hand_left_keypoints_2d has 64 numbers; expected 63"),
    (_with(RIGHT, {"x": 1}), r"hand_right_keypoints_2d must be a flat list"),
]


@pytest.mark.parametrize("data, match", MALFORMED)
def test_malformed_inputs_raise_value_error_naming_the_problem(data, match):
    with pytest.raises(ValueError, match=match):
        load_pose_keypoint(data)


def test_bad_options():
    with pytest.raises(ValueError, match=r"fmt must be one of 'auto', 'pixels', 'normalized'; got 'px'"):
        load_pose_keypoint(_valid(), "px")
    with pytest.raises(ValueError, match=r"canvas must be \(width, height\)"):
        load_pose_keypoint(_valid(), canvas=512)
    with pytest.raises(ValueError, match="canvas width must be between"):
        load_pose_keypoint(_valid(), canvas=(-1, 5))
    with pytest.raises(ValueError, match=r"fmt='normalized' but a confident coordinate is .*\[0, 1\]"):
        load_pose_keypoint(_valid(), "normalized")
    with pytest.raises(ValueError, match="expected a non-empty list of PoseFrame"):
        to_pose_keypoint([])
    with pytest.raises(ValueError, match=r"frames\[0\] is dict; expected a PoseFrame"):
        to_pose_keypoint(_valid())
