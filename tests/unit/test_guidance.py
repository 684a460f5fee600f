"""Pose-field gradient guidance: the loss, the x0 correction, the window, the reference mode, inference mode."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from reposedm_core.data.synthetic import SyntheticWorld
from reposedm_core.estimator import load_estimator
from reposedm_core.field import load_pose_field
from reposedm_core.guidance import PoseFieldGuidance, joint_weights, pose_loss
from reposedm_core.models import RePoseModel

from harness.tiny_models import TINY


@pytest.fixture(scope="module")
def nets():
    return load_pose_field(), load_estimator()


@pytest.fixture(scope="module")
def pair():
    return SyntheticWorld("val", height=96, width=64, prior="natural").pairs([0, 1, 2, 3])


def test_pose_loss_is_small_on_target_and_grows_with_error(nets, pair):
    field, _ = nets
    target = pair["target_keypoints"]
    w = joint_weights(None)
    exact = pose_loss(target, target, field.model, 1.0, w)
    moved = target.clone()
    moved[..., :2] += 6 * (target[..., 2:] > 0)
    assert (pose_loss(moved, target, field.model, 1.0, w) > exact + 0.01).all()
    assert torch.allclose(pose_loss(moved, target, field.model, 0.0, w),
                          field.model(moved), atol=1e-6)  # lambda = 0 leaves the field term only


def test_part_weights_validate_names():
    assert joint_weights({"left_arm": 2.0})[7] == 2.0
    with pytest.raises(ValueError, match="unknown body part"):
        joint_weights({"tail": 1.0})


def test_one_x0_correction_lowers_the_pose_loss(nets, pair):
    """A small step of x0 against the gradient lowers the loss it measures (first order)."""
    field, estimator = nets
    g = PoseFieldGuidance(field, estimator, scale=0.1)
    x0 = pair["source_image"] * 2 - 1                     # a person in another pose than the target
    target = pair["target_keypoints"]
    before, grad = g.gradient((x0 + 1) / 2, target)
    after, _ = g.gradient((g.correct(x0, grad / 2, torch.tensor(1.0)) + 1) / 2, target)
    assert after.mean() < before.mean(), (before, after)
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()


@pytest.mark.parametrize("x0_base", ["none", "residual"])
def test_guided_sampling_runs_in_the_window_only_and_under_inference_mode(nets, pair, x0_base):
    field, estimator = nets
    torch.manual_seed(0)
    model = RePoseModel(dataclasses.replace(TINY, x0_base=x0_base)).eval()
    a = model.align(pair["source_image"][:2], pair["source_keypoints"][:2], pair["target_keypoints"][:2])
    g = PoseFieldGuidance(field, estimator, scale=1.0, start=0.0, end=0.5)
    with torch.inference_mode():  # as ComfyUI runs prompts
        guided = model.sample(a, steps=6, cfg=1.5, seed=3, scheduler="ddim", guidance=g)
    plain = model.sample(a, steps=6, cfg=1.5, seed=3, scheduler="ddim")
    assert 0 < len(g.stats) < 6  # only the steps whose progress lies in [0, 0.5]
    assert torch.isfinite(guided).all() and not torch.equal(guided, plain)
    zero = PoseFieldGuidance(field, estimator, scale=0.0)
    assert torch.equal(model.sample(a, steps=6, cfg=1.5, seed=3, scheduler="ddim", guidance=zero), plain)


def test_reference_mode_differentiates_through_the_denoiser(nets, pair):
    field, estimator = nets
    torch.manual_seed(0)
    model = RePoseModel(TINY).eval().requires_grad_(False)
    a = model.align(pair["source_image"][:1], pair["source_keypoints"][:1], pair["target_keypoints"][:1])
    g = PoseFieldGuidance(field, estimator, scale=1.0, mode="unet")
    out = model.sample(a, steps=3, cfg=1.0, seed=0, scheduler="ddim", guidance=g)
    assert torch.isfinite(out).all() and len(g.stats) >= 1


def test_settings_are_checked(nets):
    field, estimator = nets
    with pytest.raises(ValueError, match="mode"):
        PoseFieldGuidance(field, estimator, mode="magic")
    with pytest.raises(ValueError, match="start"):
        PoseFieldGuidance(field, estimator, start=0.8, end=0.2)


def test_guidance_loss_pulls_on_joints_the_estimator_does_not_detect(nets, pair):
    from reposedm_core.guidance import guidance_loss

    field, estimator = nets
    noise = torch.rand(1, 3, 96, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    target = pair["target_keypoints"][:1]
    detected = estimator(noise.detach())[..., 2] > 0
    assert (~detected & (target[..., 2] > 0)).any()     # noise: target joints the estimator does not see
    g_plain = torch.autograd.grad(pose_loss(estimator(noise), target, field.model, 1.0, joint_weights(None)).sum(),
                                  noise, allow_unused=True)[0]
    loss = guidance_loss(estimator, noise, target, field.model, 1.0, joint_weights(None))
    (g,) = torch.autograd.grad(loss.sum(), noise)
    assert torch.isfinite(loss).all() and g.abs().sum() > 0
    plain_norm = 0.0 if g_plain is None else float(g_plain.abs().sum())
    assert float(g.abs().sum()) > plain_norm   # the undetected joints add a pull the thresholded loss lacks
