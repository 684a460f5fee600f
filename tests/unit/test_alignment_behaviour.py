"""The alignment -> denoiser path does what it says, on tiny seeded models whose zero-initialised layers are woken
(``harness.tiny_models.wake_zero_layers``): on a fresh model those layers make the path contribute nothing, so
a broken warp, warm start or residual injection would change no image.

Inputs are written here (a hand-made pose, an analytic test pattern), not drawn from the synthetic world, so
that only the code under test can move a pinned value.
"""
from __future__ import annotations

import pytest
import torch

from reposedm_core.models import RePoseModel
from reposedm_core.models.alignment import RecurrentPoseAlignment
from reposedm_core.models.flow import limb_flow, resize_flow, warp

from harness.tiny_models import TINY, wake_zero_layers

H, W = TINY.height, TINY.width  # 32 x 24
# OpenPose-18 in pixels of the 32 x 24 frame: standing, arms down and out.
STAND = torch.tensor([[12, 4], [12, 8], [9, 8], [7, 12], [6, 16], [15, 8], [17, 12], [18, 16], [10, 17], [10, 23],
                      [10, 29], [14, 17], [14, 23], [14, 29], [11, 3], [13, 3], [10, 4], [14, 4]], dtype=torch.float32)


def _pose(xy: torch.Tensor) -> torch.Tensor:
    return torch.cat([xy, torch.ones(18, 1)], -1)[None]


SOURCE_POSE = _pose(STAND)
RAISED = STAND.clone()
RAISED[3], RAISED[4] = torch.tensor([6.0, 5.0]), torch.tensor([5.0, 1.0])    # right arm up
RAISED[6], RAISED[7] = torch.tensor([19.0, 10.0]), torch.tensor([22.0, 11.0])  # left arm out
TARGET_POSE = _pose(RAISED)


def _pattern(h: int = H, w: int = W, batch: int = 1, phase: float = 0.0) -> torch.Tensor:
    """A smooth, everywhere-different RGB test image ``[B, 3, h, w]`` in [-1, 1]."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    img = torch.stack([torch.sin(xs / 3 + phase), torch.cos(ys / 4 - phase), torch.sin((xs + ys) / 5 + 2 * phase)])
    return img[None].expand(batch, -1, -1, -1).clone()


@pytest.fixture(scope="module")
def rpa() -> RecurrentPoseAlignment:
    torch.manual_seed(0)
    module = RecurrentPoseAlignment(TINY.texture_channels, TINY.pose_channels, TINY.hidden, TINY.iterations).eval()
    assert wake_zero_layers(module, std=0.2) == ["update.8.flow_head.2", "update.4.flow_head.2"]
    return module


# --- the analytic parts -------------------------------------------------------------------------------------
def test_a_known_flow_moves_a_dot_to_the_expected_pixel():
    """Backward flow: target (x, y) takes source (x + dx, y + dy); a flow frame half the image's size samples the
    same relative positions (its vectors are in its own pixels)."""
    img = torch.zeros(1, 1, 16, 12)
    img[0, 0, 8, 5] = 1.0
    flow = torch.tensor([2.0, -3.0]).view(1, 2, 1, 1).expand(1, 2, 16, 12)
    out = warp(img, flow)
    assert out[0, 0, 11, 3] == pytest.approx(1.0, abs=1e-5) and out.sum() == pytest.approx(1.0, abs=1e-5)
    big = torch.zeros(1, 1, 32, 24)
    big[0, 0, 16:18, 10:12] = 1.0                                  # flow-frame pixel (5, 8) of a 16 x 12 frame
    out = warp(big, flow)
    assert out.shape == (1, 1, 16, 12)
    assert out[0, 0, 11, 3] == pytest.approx(1.0, abs=1e-5) and out.sum() == pytest.approx(1.0, abs=1e-5)


def test_the_limb_flow_maps_each_moved_joint_back_to_its_source():
    """At a moved target joint the backward flow points to the same joint in the source (to within the soft
    assignment's blend); at an unmoved joint far from the moved limbs it is zero."""
    flow = limb_flow(SOURCE_POSE, TARGET_POSE, H, W)
    for j in (4, 7):  # the wrists, whose bones rotated and stretched
        x, y = RAISED[j].long().tolist()
        assert flow[0, :, y, x].tolist() == pytest.approx((STAND[j] - RAISED[j]).tolist(), abs=0.5), j
    x, y = STAND[13].long().tolist()  # left ankle
    assert flow[0, :, y, x].abs().max() < 1e-3


def test_with_no_iterations_the_alignment_warps_the_source_by_the_pose_shift():
    """The whole analytic path (frame change, limb flow at 1/2, resize, warp): a target pose shifted by (+3, +2)
    shows, on the body, the source image shifted by (+3, +2)."""
    torch.manual_seed(0)
    module = RecurrentPoseAlignment(TINY.texture_channels, TINY.pose_channels, TINY.hidden, 0).eval()
    source = _pattern()
    shifted = SOURCE_POSE.clone()
    shifted[..., :2] += torch.tensor([3.0, 2.0])
    with torch.no_grad():
        a = module(source, SOURCE_POSE, shifted, iterations=0)
    xs, ys = shifted[0, :, 0].long(), shifted[0, :, 1].long()
    on_body = a.warped[0][:, ys, xs]                               # at the target joints
    expected = source[0][:, ys - 2, xs - 3]
    assert (on_body - expected).abs().mean() < 0.05, (on_body - expected).abs().mean()
    assert a.flow[0, :, ys, xs].mean(1).tolist() == pytest.approx([-3.0, -2.0], abs=0.2)


# --- the recurrent refinement -------------------------------------------------------------------------------
def _align(rpa, iterations, init=None, source=None):
    with torch.no_grad():
        return rpa(_pattern() if source is None else source, SOURCE_POSE, TARGET_POSE, iterations, init)


def test_more_iterations_change_the_flow_and_the_last_iterate_is_the_flow(rpa):
    flows = [_align(rpa, k).flow for k in range(4)]
    analytic = resize_flow(limb_flow(SOURCE_POSE * torch.tensor([0.5, 0.5, 1]) - torch.tensor([0.25, 0.25, 0]),
                                     TARGET_POSE * torch.tensor([0.5, 0.5, 1]) - torch.tensor([0.25, 0.25, 0]),
                                     H // 2, W // 2), H, W)
    assert torch.allclose(flows[0], analytic, atol=1e-4)          # 0 iterations: the analytic warp alone
    for k in range(1, 4):
        step = (flows[k] - flows[k - 1]).abs().mean()
        assert step > 0.05, (k, step)                              # every iteration moves the flow
    a = _align(rpa, 3)
    assert len(a.iterates) == 2 * 3                                # (1/8 then 1/4) x iterations
    assert torch.allclose(a.iterates[-1][0], a.flow, atol=1e-5)   # RAFT: the returned flow is the last iterate
    assert not torch.allclose(a.iterates[0][0], a.iterates[-1][0], atol=1e-2)


def test_the_warm_start_begins_from_the_previous_residuals(rpa):
    previous = _align(rpa, 2, source=_pattern(phase=1.0))
    cold, warm = _align(rpa, 2), _align(rpa, 2, init=previous.residuals)
    assert (warm.iterates[0][0] - cold.iterates[0][0]).abs().mean() > 0.05
    zeros = tuple(torch.zeros_like(r) for r in previous.residuals)
    assert torch.allclose(_align(rpa, 2, init=zeros).flow, cold.flow, atol=1e-6)  # a zero start is a cold start
    # With no iterations the warm flow is the analytic flow plus exactly the given residuals.
    r8, r4 = previous.residuals
    expected = _align(rpa, 0).flow + resize_flow(resize_flow(r8, H // 2, W // 2) + resize_flow(r4, H // 2, W // 2), H, W)
    assert torch.allclose(_align(rpa, 0, init=previous.residuals).flow, expected, atol=1e-4)


def test_the_aligned_features_and_the_preview_are_warped_by_the_final_flow(rpa):
    a = _align(rpa, 2)
    with torch.no_grad():
        full = rpa.texture(_pattern())[0]
    assert torch.allclose(a.features[0], warp(full, a.flow) * a.mask, atol=1e-5)  # full scale, masked
    assert torch.allclose(a.warped, warp(_pattern(), a.flow), atol=1e-5)


def test_sequence_alignment_warm_starts_each_frame_from_the_one_before():
    """``RePoseModel.align(warm_start=True)``: the first frame is the cold alignment, the next ones are not."""
    torch.manual_seed(0)
    model = RePoseModel(TINY).eval()
    wake_zero_layers(model.alignment, std=0.2)
    images = (torch.cat([_pattern(), _pattern(phase=1.0)]) + 1) / 2
    sp, tp = SOURCE_POSE.expand(2, -1, -1), TARGET_POSE.expand(2, -1, -1)
    cold = model.align(images, sp, tp, iterations=2)
    warm = model.align(images, sp, tp, iterations=2, warm_start=True)
    assert torch.allclose(warm.inner.flow[0], cold.inner.flow[0], atol=1e-5)
    assert (warm.inner.flow[1] - cold.inner.flow[1]).abs().mean() > 0.05
