"""Encoders: heatmap peaks, limb maps, the OpenPose colour render, bone vectors."""
from __future__ import annotations

import pytest
import torch

from reposedm_core.pose import (
    COLORS,
    LIMBS,
    bone_vectors,
    heatmaps,
    limb_maps,
    normalize_pose,
    render_skeleton,
)
from reposedm_core.pose import JOINT_INDEX as J


def standing(seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    """A standing pose ``[18, 3]`` on a 100 x 100 canvas (times ``scale``), seeded jitter."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.tensor([
        [50, 15], [50, 25], [38, 26], [32, 40], [30, 52], [62, 26], [70, 38], [78, 30], [43, 55],
        [42, 72], [41, 90], [57, 55], [60, 72], [62, 90], [47, 13], [53, 13], [44, 14], [56, 14],
    ], dtype=torch.float32) + torch.randn(18, 2, generator=g) * 0.3
    return torch.cat([xy * scale, torch.ones(18, 1)], -1)


def color(i: int) -> torch.Tensor:
    return torch.tensor(COLORS[i], dtype=torch.float32) / 255


# ------------------------------------------------------------------------------------ heatmaps


def test_heatmap_peaks_at_the_joints():
    kp = torch.stack([standing(0), standing(1)]).round()
    kp[1, J["l_wrist"]] = 0
    hm = heatmaps(kp, 100, 100, sigma=2.0)
    assert hm.shape == (2, 18, 100, 100)
    flat = hm.flatten(-2).argmax(-1)
    ys, xs = flat // 100, flat % 100
    present = kp[..., 2] > 0
    assert torch.equal(xs[present], kp[..., 0][present].long())
    assert torch.equal(ys[present], kp[..., 1][present].long())
    assert torch.allclose(hm.amax((-2, -1))[present], torch.ones(int(present.sum())))
    assert float(hm[1, J["l_wrist"]].abs().max()) == 0
    # value one sigma away from the joint
    x, y = int(kp[0, 0, 0]), int(kp[0, 0, 1])
    assert torch.allclose(hm[0, 0, y, x + 2], torch.exp(torch.tensor(-0.5)))


def test_heatmap_canvas_rescale_and_gradient():
    kp = standing().requires_grad_(True)
    hm = heatmaps(kp, 25, 25, canvas=(100, 100))  # a stride-4 map of a 100 x 100 canvas
    assert hm.shape == (18, 25, 25)
    j = J["r_knee"]
    idx = int(hm[j].flatten().argmax())
    expected = (kp[j, :2].detach() + 0.5) / 4 - 0.5
    assert abs(idx % 25 - float(expected[0])) <= 0.5 and abs(idx // 25 - float(expected[1])) <= 0.5
    hm[j, 10, 10].backward()
    assert float(kp.grad[j, :2].abs().sum()) > 0 and bool(torch.isfinite(kp.grad).all())


# ---------------------------------------------------------------------------------- limb maps


def test_limb_maps():
    kp = standing().round()
    kp[J["r_wrist"]] = 0
    lm = limb_maps(kp[None], 100, 100, width_px=2.0)
    assert lm.shape == (1, 19, 100, 100)
    for i, (a, b) in enumerate(LIMBS):
        if i == LIMBS.index((3, 4)):
            assert float(lm[0, i].max()) == 0  # elbow-wrist: the wrist is missing
            continue
        mid = (kp[a, :2] + kp[b, :2]) / 2
        on = lm[0, i, int(kp[a, 1]), int(kp[a, 0])]  # the end point lies on the segment
        assert torch.allclose(on, torch.tensor(1.0)), i
        assert float(lm[0, i, int(mid[1]), int(mid[0])]) > 0.6
    # 4 pixels straight off a vertical limb: exp(-16 / 8)
    spine = torch.zeros(18, 3)
    spine[[J["neck"], J["r_hip"]]] = torch.tensor([[20.0, 10.0, 1.0], [20.0, 40.0, 1.0]])
    neck_hip = LIMBS.index((1, 8))
    assert torch.allclose(limb_maps(spine, 50, 50, 2.0)[neck_hip, 25, 24], torch.exp(torch.tensor(-16 / 8)))


# ------------------------------------------------------------------------------------- render


def test_render_colours_like_openpose():
    kp = standing(scale=5.0)  # 500 x 500 canvas
    img = render_skeleton(kp, 500, 500, reference_size=500)
    assert img.shape == (3, 500, 500) and float(img.min()) >= 0 and float(img.max()) <= 1
    # limb 0 is neck -> right shoulder, blended at 0.6 over black
    a, b = LIMBS[0]
    x, y = ((kp[a, :2] + kp[b, :2]) / 2).round().long().tolist()
    assert torch.allclose(img[:, y, x], 0.6 * color(0), atol=1e-5)
    # joint j is a full-colour disc
    for j in (J["nose"], J["l_knee"], J["r_ankle"]):
        x, y = kp[j, :2].round().long().tolist()
        assert torch.allclose(img[:, y, x], color(j), atol=1e-5), j
    # far from the body: background
    assert float(img[:, 495, 5].abs().sum()) == 0
    # the two ear-shoulder limbs (17, 18) are never drawn: the midpoint of shoulder-ear stays black
    x, y = ((kp[2, :2] + kp[16, :2]) / 2).round().long().tolist()
    assert float(img[:, y, x].abs().sum()) == 0


def test_render_missing_joints_background_and_people():
    kp = standing(scale=5.0)
    kp[J["r_shoulder"]] = 0
    a, b = LIMBS[0]
    x, y = ((standing(scale=5.0)[a, :2] + standing(scale=5.0)[b, :2]) / 2).round().long().tolist()
    white = torch.ones(3, 500, 500)
    img = render_skeleton(kp, 500, 500, background=white)
    assert torch.allclose(img[:, y, x], torch.ones(3))  # limb 0 not drawn
    x, y = ((kp[1, :2] + kp[8, :2]) / 2).round().long().tolist()  # limb 6 neck -> r_hip over white
    assert torch.allclose(img[:, y, x], 0.4 + 0.6 * color(6), atol=1e-5)
    two = torch.stack([standing(scale=2.5), standing(scale=2.5) + torch.tensor([250.0, 250.0, 0.0])])
    batch = render_skeleton(torch.stack([two, two]), 500, 500)
    assert batch.shape == (2, 3, 500, 500)
    for person in two:
        x, y = person[J["neck"], :2].round().long().tolist()
        assert torch.allclose(batch[1, :, y, x], color(J["neck"]), atol=1e-5)
    with pytest.raises(ValueError, match="background must be"):
        render_skeleton(kp, 500, 500, background=torch.ones(3, 10, 10))


def test_render_stick_scales_with_canvas():
    def width_across_spine(size: int) -> int:
        kp = standing(scale=size / 100)
        img = render_skeleton(kp, size, size)
        y = int((kp[1, 1] + kp[8, 1]) / 2)  # a row crossing the neck -> r_hip limb
        return int((img[:, y].sum(0) > 0).sum())
    small, large = width_across_spine(512), width_across_spine(1024)
    assert 1.6 < large / small < 2.4
    thin = render_skeleton(standing(), 100, 100, reference_size=None, stickwidth=1, radius=1)
    thick = render_skeleton(standing(), 100, 100, reference_size=None)
    assert float((thin.sum(0) > 0).float().mean()) < float((thick.sum(0) > 0).float().mean())


def test_render_antialias_is_differentiable():
    kp = standing().requires_grad_(True)
    img = render_skeleton(kp, 100, 100, antialias=True, reference_size=None)
    hard = render_skeleton(kp.detach(), 100, 100, reference_size=None)
    assert float((img.detach() - hard).abs().mean()) < 0.02
    img.sum().backward()
    assert bool(torch.isfinite(kp.grad).all()) and float(kp.grad.abs().sum()) > 0


# -------------------------------------------------------------------------------- bone vectors


def test_bone_vectors():
    kp = torch.stack([standing(0), standing(1), torch.zeros(18, 3)])
    kp[1, J["l_ankle"]] = 0
    vec, length, mask = bone_vectors(kp)
    assert vec.shape == (3, 19, 2) and length.shape == mask.shape == (3, 19) and mask.dtype == torch.bool
    normed, _, _ = normalize_pose(kp[0])
    a, b = LIMBS[7]
    assert torch.allclose(vec[0, 7], normed[b, :2] - normed[a, :2], atol=1e-5)
    assert torch.allclose(length, torch.linalg.norm(vec, dim=-1), atol=1e-5)
    ankle = LIMBS.index((12, 13))
    assert not mask[1, ankle] and torch.count_nonzero(vec[1, ankle]) == 0
    assert not mask[2].any() and torch.count_nonzero(vec[2]) == 0  # empty pose: no bones, no error
    moved = kp.clone()
    moved[..., :2] = (kp[..., :2] * 3 + 17) * (kp[..., 2:] > 0)
    assert torch.allclose(bone_vectors(moved)[0], vec, atol=1e-4)
    kp.requires_grad_(True)
    bone_vectors(kp)[1].sum().backward()
    assert bool(torch.isfinite(kp.grad).all())
