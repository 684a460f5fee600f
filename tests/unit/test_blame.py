"""The blame image: one absolute colour scale from the field's calibration, so a repaired pose looks repaired."""
from __future__ import annotations

import pytest
import torch

from reposedm_core.field import data as D
from reposedm_core.field import load_pose_field
from reposedm_core.field.blame import GREEN, RED, BlameScale, blame_colours, joint_blame, render_blame


@pytest.fixture(scope="module")
def field():
    return load_pose_field()


@pytest.fixture(scope="module")
def poses():
    gen = torch.Generator().manual_seed(7)
    bodies = D.sample_bodies(gen, 200)
    kp = D.project(bodies, gen=gen)
    keep = (kp[..., 2] > 0).sum(-1) >= 14
    bodies, kp = bodies[keep][:40], kp[keep][:40]
    broken = D.corrupt(bodies, kp, "detached_joint", "strong", torch.Generator().manual_seed(3))
    return kp, broken


def _joint_colours(field, kp):
    d, g = field.distance_and_gradient(kp)
    return d, blame_colours(joint_blame(d, g), BlameScale.from_calibration(field.calibration))


def test_valid_and_broken_poses_get_different_colours(field, poses):
    valid, broken = poses
    d_valid, c_valid = _joint_colours(field, valid)
    d_broken, c_broken = _joint_colours(field, broken)
    red, green = torch.tensor(RED), torch.tensor(GREEN)
    # The worst joint of a plausible pose stays green; that of a broken pose is red (per-pose normalisation
    # made both red before).
    worst_valid = c_valid[torch.arange(len(valid)), (c_valid - green).norm(dim=-1).argmax(-1)]
    worst_broken = c_broken[torch.arange(len(broken)), (c_broken - green).norm(dim=-1).argmax(-1)]
    plausible = d_valid < field.valid_threshold
    assert plausible.float().mean() > 0.8
    assert ((worst_valid[plausible] - green).norm(dim=-1) < 1e-6).all()
    very_broken = d_broken > BlameScale.from_calibration(field.calibration).broken
    assert very_broken.float().mean() > 0.5
    assert ((worst_broken[very_broken] - red).norm(dim=-1) < 1e-6).all()


def test_legend_scale_comes_from_the_calibration(field):
    cal = field.calibration
    scale = BlameScale.from_calibration(cal)
    assert scale.ok == pytest.approx(cal["valid_p95"]) and scale.broken == pytest.approx(2 * cal["valid_p99"])
    other = BlameScale.from_calibration({"valid_p95": 0.5, "valid_p99": 1.0})
    value = torch.tensor([0.3])
    assert torch.equal(blame_colours(value, other)[0], torch.tensor(GREEN))       # fine on a lenient scale
    assert not torch.equal(blame_colours(value, scale)[0], torch.tensor(GREEN))   # broken on the shipped one
    with pytest.raises(ValueError, match="valid_p99"):
        BlameScale.from_calibration({"valid_p95": 0.1})


def test_rendered_image_carries_the_legend_of_its_scale(poses):
    valid, _ = poses
    kp = valid[:1]
    blame = {0: torch.zeros(18)}
    a = render_blame(kp, blame, 256, 176, BlameScale(ok=0.05, broken=0.4))
    b = render_blame(kp, blame, 256, 176, BlameScale(ok=0.2, broken=0.9))
    bare = render_blame(kp, blame, 256, 176, BlameScale(ok=0.05, broken=0.4), legend=False)
    assert a.shape == bare.shape == (3, 256, 176)
    band = slice(200, 256)
    assert not torch.equal(a[:, band], bare[:, band])       # the legend is drawn at the bottom
    assert not torch.equal(a[:, band], b[:, band])          # and shows its scale's numbers
    assert torch.equal(a[:, :150], bare[:, :150])           # the body above it is untouched
