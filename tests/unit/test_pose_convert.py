"""Converters between keypoint conventions, their inverses, DeepFashion strings, flips, validation."""
from __future__ import annotations

import json

import pytest
import torch

from reposedm_core.pose import (
    FLIP_PERMUTATION,
    JOINT_INDEX,
    NUM_JOINTS,
    body25_to_openpose18,
    check_keypoints,
    coco17_to_openpose18,
    flip_horizontal,
    format_deepfashion_keypoints,
    mediapipe33_to_openpose18,
    normalized_to_pixels,
    openpose18_to_body25,
    openpose18_to_coco17,
    openpose18_to_mediapipe33,
    parse_deepfashion_keypoints,
    pixels_to_normalized,
    render_skeleton,
)


def random_pose(*lead: int, seed: int = 0, missing: float = 0.2, w: int = 176, h: int = 256) -> torch.Tensor:
    """Random canonical poses ``[*lead, 18, 3]``: integer pixels, some joints missing (all zeros)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.stack([torch.randint(0, w, (*lead, NUM_JOINTS), generator=g),
                      torch.randint(0, h, (*lead, NUM_JOINTS), generator=g)], -1).float()
    conf = torch.rand(*lead, NUM_JOINTS, generator=g) * 0.9 + 0.1
    conf = conf * (torch.rand(*lead, NUM_JOINTS, generator=g) > missing)
    return torch.cat([xy * (conf > 0).unsqueeze(-1), conf.unsqueeze(-1)], -1)


# ------------------------------------------------------------------------------------ validation


def test_check_keypoints_accepts_lists_arrays_tensors():
    kp = random_pose(2)
    for value in (kp, kp.double().numpy(), kp.tolist(), kp.int()):
        out = check_keypoints(value)
        assert out.dtype == torch.float32 and out.shape == (2, 18, 3)


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(17, 3), r"shape \[\.\.\., 18, 3\].*\(17, 3\)"),
    (torch.zeros(18, 2), r"got shape \(18, 2\)"),
    (torch.zeros(18), r"got shape \(18,\)"),
    (torch.full((18, 3), float("nan")), "NaN or infinite"),
    (torch.tensor([[0.0, 0.0, -1.0]] * 18), "negative confidence"),
    ([["a", 1, 2]] * 18, "only numbers"),
    ([[1, 2, 3]] * 17 + [[1, 2]], "rectangular|only numbers"),
    (torch.zeros(18, 3, dtype=torch.bool), "real numeric"),
    (None, "tensor, array or nested list"),
    ("[[1,2,3]]", "tensor, array or nested list"),
])
def test_check_keypoints_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        check_keypoints(bad)


# -------------------------------------------------------------------------------------- COCO-17


def test_coco17_to_openpose18_mapping_and_neck():
    coco = torch.zeros(17, 3)
    coco[:, 0] = torch.arange(17) * 10.0 + 1
    coco[:, 1] = torch.arange(17) * 5.0 + 2
    coco[:, 2] = torch.linspace(0.5, 1.0, 17)
    op = coco17_to_openpose18(coco)
    assert op.shape == (18, 3)
    assert torch.equal(op[JOINT_INDEX["l_wrist"]], coco[9])
    assert torch.equal(op[JOINT_INDEX["r_ankle"]], coco[16])
    assert torch.equal(op[JOINT_INDEX["r_eye"]], coco[2])
    neck = op[JOINT_INDEX["neck"]]
    assert torch.allclose(neck[:2], (coco[5, :2] + coco[6, :2]) / 2)
    assert neck[2] == torch.minimum(coco[5, 2], coco[6, 2])
    coco[6] = 0  # right shoulder missing -> neck missing
    assert torch.equal(coco17_to_openpose18(coco)[JOINT_INDEX["neck"]], torch.zeros(3))


def test_coco17_round_trip_batched():
    op = random_pose(4, 3, seed=1)
    coco = openpose18_to_coco17(op)
    assert coco.shape == (4, 3, 17, 3)
    back = coco17_to_openpose18(coco)
    keep = [j for j in range(18) if j != JOINT_INDEX["neck"]]
    assert torch.equal(back[..., keep, :], op[..., keep, :])
    assert torch.equal(openpose18_to_coco17(back), coco)


# ------------------------------------------------------------------------------------- BODY_25


def test_body25_round_trip_and_midhip():
    op = random_pose(5, seed=2)
    b25 = openpose18_to_body25(op)
    assert b25.shape == (5, 25, 3)
    assert torch.count_nonzero(b25[:, 19:]) == 0  # feet missing
    both = (op[:, 8, 2] > 0) & (op[:, 11, 2] > 0)
    assert torch.allclose(b25[both, 8, :2], (op[both, 8, :2] + op[both, 11, :2]) / 2)
    assert torch.count_nonzero(b25[~both, 8]) == 0
    assert torch.equal(body25_to_openpose18(b25), op)


def test_body25_index_order():
    b25 = torch.zeros(25, 3)
    b25[:, 0] = torch.arange(25).float()
    b25[:, 2] = 1
    op = body25_to_openpose18(b25)
    assert op[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]


# ------------------------------------------------------------------------------------ MediaPipe


def test_mediapipe33_to_openpose18():
    g = torch.Generator().manual_seed(3)
    lm = torch.rand(33, 4, generator=g)  # x, y, z, visibility
    lm[:, 3] = 0.9
    lm[14, 3] = 0.2  # right elbow not visible
    op = mediapipe33_to_openpose18(lm, width=200, height=100)
    assert torch.allclose(op[JOINT_INDEX["l_shoulder"], :2], lm[11, :2] * torch.tensor([200.0, 100.0]))
    assert torch.allclose(op[JOINT_INDEX["r_ear"], :2], lm[8, :2] * torch.tensor([200.0, 100.0]))
    assert torch.equal(op[JOINT_INDEX["r_elbow"]], torch.zeros(3))
    assert torch.allclose(op[JOINT_INDEX["neck"], :2], (op[2, :2] + op[5, :2]) / 2)
    # the x, y, visibility layout gives the same result
    op3 = mediapipe33_to_openpose18(lm[:, [0, 1, 3]], 200, 100)
    assert torch.equal(op3, op)


def test_mediapipe_round_trip():
    op = random_pose(2, seed=4)
    lm = openpose18_to_mediapipe33(op, 176, 256)
    assert lm.shape == (2, 33, 3) and float(lm[..., :2].max()) <= 1
    back = mediapipe33_to_openpose18(lm, 176, 256, visibility_threshold=0.05)
    keep = [j for j in range(18) if j != JOINT_INDEX["neck"]]
    assert torch.allclose(back[..., keep, :], op[..., keep, :], atol=1e-4)


def test_mediapipe_bad_canvas():
    with pytest.raises(ValueError, match="canvas width"):
        mediapipe33_to_openpose18(torch.zeros(33, 3), 0, 10)
    with pytest.raises(ValueError, match=r"\[\.\.\., 33, 3 or 4\]"):
        mediapipe33_to_openpose18(torch.zeros(33, 5), 10, 10)


# ---------------------------------------------------------------------------- normalised pixels


def test_normalized_pixels_round_trip():
    op = random_pose(3, seed=5)
    n = pixels_to_normalized(op, 176, 256)
    assert float(n[..., :2].max()) <= 1
    assert torch.allclose(n[..., 0] * 176, op[..., 0], atol=1e-4)
    assert torch.allclose(normalized_to_pixels(n, 176, 256), op, atol=1e-4)


# --------------------------------------------------------------------------------- DeepFashion


def test_deepfashion_parse_format_round_trip():
    ys = "[32, 51, 49, 85, -1, 53, 87, 116, 123, 174, 222, 123, 177, 226, 28, 28, 32, 31]"
    xs = "[88, 87, 63, 56, -1, 110, 118, 121, 69, 69, 70, 100, 101, 104, 83, 93, 75, 101]"
    kp = parse_deepfashion_keypoints(ys, xs)
    assert kp.shape == (18, 3)
    assert kp[0].tolist() == [88.0, 32.0, 1.0]
    assert kp[4].tolist() == [0.0, 0.0, 0.0]
    assert format_deepfashion_keypoints(kp) == (ys, xs)
    assert torch.equal(parse_deepfashion_keypoints(*format_deepfashion_keypoints(kp)), kp)


def test_deepfashion_one_coordinate_missing_means_missing():
    ys = json.dumps([10] * 18)
    xs = json.dumps([-1] + [5] * 17)
    kp = parse_deepfashion_keypoints(ys, xs)
    assert kp[0].tolist() == [0, 0, 0] and kp[1, 2] == 1


@pytest.mark.parametrize("ys, match", [
    ("[1, 2, 3]", "must list 18 integers.*got 3 values"),
    ("__import__('os').system('echo hi')", "not a JSON list"),
    ("[" + ", ".join(["1"] * 17) + ", 1.5]", r"keypoints_y\[17\] = 1.5 is not an integer"),
    ("[" + ", ".join(["1"] * 17) + ", -3]", r"keypoints_y\[17\] = -3 is negative"),
    ("[" + ", ".join(["1"] * 17) + ', "7"]', r"keypoints_y\[17\] = '7'"),
    ('{"a": 1}', "must list 18 integers.*got dict"),
    ("[" + ", ".join(["1"] * 17) + ", NaN]", "not an integer"),
])
def test_deepfashion_rejects(ys, match):
    with pytest.raises(ValueError, match=match):
        parse_deepfashion_keypoints(ys, json.dumps([1] * 18))


def test_deepfashion_format_rejects_negative_coordinates():
    kp = torch.zeros(18, 3)
    kp[0] = torch.tensor([-5.0, 3.0, 1.0])
    with pytest.raises(ValueError, match="outside the canvas"):
        format_deepfashion_keypoints(kp)


# ------------------------------------------------------------------------------------------ flip


def test_flip_horizontal_permutes_and_mirrors():
    op = random_pose(2, seed=6)
    f = flip_horizontal(op, 176)
    perm = list(FLIP_PERMUTATION)
    present = op[:, perm, 2] > 0
    assert torch.equal(f[..., 2], op[:, perm, 2])
    assert torch.allclose(f[..., 0][present], (175 - op[:, perm, 0])[present])
    assert torch.count_nonzero(f[..., :2][~present]) == 0
    assert torch.allclose(flip_horizontal(f, 176), op)


def test_flip_matches_image_flip():
    op = random_pose(seed=7, missing=0.0, w=64, h=48)
    kw = dict(reference_size=None, stickwidth=2, radius=2)
    drawn = render_skeleton(op, 48, 64, **kw).sum(0) > 0
    drawn_flipped = render_skeleton(flip_horizontal(op, 64), 48, 64, **kw).sum(0) > 0
    # the drawn pixels mirror exactly (colours swap sides, as they should); allow boundary rounding
    assert drawn.float().mean() > 0.05
    assert (drawn_flipped != torch.flip(drawn, dims=[-1])).float().mean() < 0.005
    nose = torch.zeros(18, 3)
    nose[0] = torch.tensor([10.0, 20.0, 1.0])
    assert torch.equal(render_skeleton(flip_horizontal(nose, 64), 48, 64, **kw),
                       torch.flip(render_skeleton(nose, 48, 64, **kw), dims=[-1]))
