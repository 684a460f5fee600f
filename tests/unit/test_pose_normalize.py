"""Root-centred, torso-scaled normalisation: invariances, fallbacks, inverse, gradients, errors."""
from __future__ import annotations

import pytest
import torch

from reposedm_core.pose import JOINT_INDEX as J
from reposedm_core.pose import denormalize_pose, normalize_pose


def standing(seed: int = 0) -> torch.Tensor:
    """A plausible standing pose ``[18, 3]`` (pixels) with a little seeded jitter."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.tensor([
        [50, 15], [50, 25], [38, 26], [32, 40], [30, 52], [62, 26], [70, 38], [78, 30], [43, 55],
        [42, 72], [41, 90], [57, 55], [60, 72], [62, 90], [47, 13], [53, 13], [44, 14], [56, 14],
    ], dtype=torch.float32) + torch.randn(18, 2, generator=g)
    return torch.cat([xy, torch.ones(18, 1)], -1)


def test_root_is_mid_hip_and_unit_is_torso():
    kp = standing()
    normed, center, scale = normalize_pose(kp)
    midhip = (kp[J["r_hip"], :2] + kp[J["l_hip"], :2]) / 2
    assert torch.allclose(center, midhip)
    assert torch.allclose(scale, torch.linalg.norm(kp[J["neck"], :2] - midhip))
    assert torch.allclose(torch.linalg.norm(normed[J["neck"], :2]), torch.tensor(1.0))
    assert torch.equal(normed[..., 2], kp[..., 2])


def test_translation_and_scale_invariance_batched():
    g = torch.Generator().manual_seed(1)
    kp = torch.stack([standing(s) for s in range(4)])
    kp[1, J["l_hip"]] = 0  # root falls back to the neck, scale to the shoulders
    kp[2, [J["neck"], J["r_shoulder"]]] = 0  # scale falls back to the bbox height
    s = torch.rand(4, 1, 1, generator=g) * 3 + 0.2
    t = torch.randn(4, 1, 2, generator=g) * 100
    moved = kp.clone()
    moved[..., :2] = (kp[..., :2] * s + t) * (kp[..., 2:] > 0)
    a, _, scale_a = normalize_pose(kp)
    b, _, scale_b = normalize_pose(moved)
    assert torch.allclose(a, b, atol=1e-4)
    assert torch.allclose(scale_b, scale_a * s.view(4), rtol=1e-4)
    assert torch.count_nonzero(a[1, J["l_hip"]]) == 0  # missing stays missing


def test_fallbacks():
    kp = standing()
    kp[J["l_hip"]] = 0
    _, center, scale = normalize_pose(kp)
    assert torch.allclose(center, kp[J["neck"], :2])
    sw = torch.linalg.norm(kp[J["r_shoulder"], :2] - kp[J["l_shoulder"], :2])
    assert torch.allclose(scale, sw * 2.2)
    legs = torch.zeros(18, 3)
    legs[[J["r_knee"], J["r_ankle"]]] = torch.tensor([[10.0, 20.0, 1.0], [12.0, 55.0, 1.0]])
    _, center, scale = normalize_pose(legs)
    assert torch.allclose(center, torch.tensor([11.0, 37.5]))
    assert torch.allclose(scale, torch.tensor(35 / 3.5))
    flat = torch.zeros(18, 3)
    flat[[0, 1]] = torch.tensor([[10.0, 20.0, 1.0], [45.0, 20.0, 1.0]])  # zero height: bbox width
    assert torch.allclose(normalize_pose(flat)[2], torch.tensor(35 / 3.5))


def test_denormalize_inverts():
    kp = torch.stack([standing(s) for s in range(3)])
    kp[0, 4] = 0
    assert torch.allclose(denormalize_pose(*normalize_pose(kp)), kp, atol=1e-4)


def test_differentiable_in_xy():
    kp = standing().requires_grad_(True)
    normed, _, _ = normalize_pose(kp)
    (normed[..., :2] ** 2).sum().backward()
    assert kp.grad is not None and bool(torch.isfinite(kp.grad).all())
    assert float(kp.grad[..., :2].abs().sum()) > 0


@pytest.mark.parametrize("k", [0, 1])
def test_too_few_joints(k):
    kp = torch.zeros(2, 18, 3)
    kp[0] = standing()
    kp[1, :k] = torch.tensor([5.0, 5.0, 1.0])
    expected = rf"cannot normalise a pose with {k} confident joints; need ≥ 2.*\(1,\)"
    with pytest.raises(ValueError, match=expected):
        normalize_pose(kp)


def test_degenerate_and_invalid():
    same = torch.zeros(18, 3)
    same[[0, 1]] = torch.tensor([5.0, 5.0, 1.0])
    with pytest.raises(ValueError, match="all lie at one point"):
        normalize_pose(same)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        denormalize_pose(standing(), torch.zeros(2), torch.tensor(0.0))
