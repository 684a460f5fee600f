"""Pose retargeting and sequence clean-up on synthetic motions where the truth is known (two identities, one
motion, one camera; reposedm_core.eval.retarget)."""
from __future__ import annotations

import pytest
import torch

from reposedm_core.eval.retarget import baseline, clean_error, clean_protocol, metrics, motions
from reposedm_core.pose import JOINT_INDEX as J
from reposedm_core.pose.normalize import root_and_scale
from reposedm_core.pose.retarget import BONES, full_lengths, reference_lengths, retarget
from reposedm_core.pose.sequence import clean_sequence


@pytest.fixture(scope="module")
def data():
    return motions(12, 16, seed=2024)


def test_retarget_gives_the_reference_proportions_and_the_driving_directions(data):
    outs = torch.stack([retarget(data["driving"][i], data["reference"][i]) for i in range(12)])
    lengths = torch.stack([reference_lengths(data["reference"][i]) for i in range(12)])[:, None]
    m = metrics(outs, data["driving"], data["truth"], lengths)
    assert m["length_err"] < 0.02 and m["angle"] < 3.0
    base = torch.stack([baseline(data["driving"][i], data["reference"][i]) for i in range(12)])
    mb = metrics(base, data["driving"], data["truth"], lengths)
    assert m["mpjpe_aligned"] < mb["mpjpe_aligned"]                 # closer to the true motion of the reference
    assert m["slide"] < 1.5 * mb["slide"] + 0.05


def test_retarget_single_frame_anchors_and_scale_options(data):
    drv, ref = data["driving"][0, 0], data["reference"][0]
    out = retarget(drv, ref)
    assert out.shape == (1, 18, 3) and torch.equal(out[0, :, 2] > 0, drv[:, 2] > 0)
    feet = out[0, [J["r_ankle"], J["l_ankle"]], 1].max()
    assert abs(float(feet - ref[[J["r_ankle"], J["l_ankle"]], 1].max())) < 1e-3   # first frame: on the reference's ground
    for anchor in ("hips", "neck"):
        assert torch.isfinite(retarget(data["driving"][0], ref, anchor=anchor)).all()
    small = retarget(data["driving"][0], ref * torch.tensor([0.5, 0.5, 1.0]), scale="driving")
    big = retarget(data["driving"][0], ref * torch.tensor([0.5, 0.5, 1.0]))
    span = lambda kp: float(kp[..., 1].amax() - kp[..., 1][kp[..., 2] > 0].amin())  # noqa: E731
    assert span(small) > 1.5 * span(big)                            # the driving's size vs the (halved) reference


def test_retarget_fills_bones_the_reference_does_not_show(data):
    ref = data["reference"][1].clone()
    ref[[J["r_knee"], J["r_ankle"], J["l_knee"], J["l_ankle"]]] = 0     # a half-body photo
    out = retarget(data["driving"][1], ref)
    assert (out[:, J["r_ankle"], 2] > 0).all()
    legs = full_lengths(out)[[k for k, (a, b, _) in enumerate(BONES) if b in (J["r_knee"], J["r_ankle"])]]
    _, torso, _ = root_and_scale(ref[None])
    assert ((legs / torso) > 0.4).all() and ((legs / torso) < 1.2).all()


def test_retarget_bad_input():
    drv = torch.zeros(3, 18, 3)
    ref = torch.zeros(18, 3)
    ref[:3] = torch.tensor([[10.0, 10, 1], [10, 20, 1], [5, 20, 1]])
    with pytest.raises(ValueError, match="at least 4"):
        retarget(drv, ref)
    with pytest.raises(ValueError, match="anchor must be one of"):
        retarget(drv, torch.rand(18, 3) + 0.1, anchor="knees")
    bad = torch.rand(18, 3)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError):
        retarget(drv, bad)
    assert torch.equal(retarget(drv, torch.rand(18, 3) * 100 + 1), drv)   # empty driving frames stay empty


def test_clean_beats_savitzky_golay_fills_gaps_and_unswaps():
    p = clean_protocol(8, seed=11)                                    # jitter, drops, a swapped and an empty frame
    ours, truth = p["ours"], p["truth"]
    err = {k: clean_error(p[k], truth, p["torso"]) for k in ("noisy", "sg", "ours")}
    assert (ours[..., 2] > 0).all()                                   # every dropped joint and the empty frame filled
    assert err["ours"] < 0.75 * err["sg"] and err["ours"] < 0.5 * err["noisy"]
    assert (ours[:, 24, J["r_wrist"], 0] - truth[:, 24, J["r_wrist"], 0]).abs().mean() < \
        (ours[:, 24, J["r_wrist"], 0] - truth[:, 24, J["l_wrist"], 0]).abs().mean()   # the swapped frame


def test_clean_has_no_lag_on_a_step_and_keeps_what_it_cannot_fill():
    base = motions(1, 1)["driving"][0, 0]
    seq = base.repeat(40, 1, 1)
    seq[20:, :, 0] += 40 * (seq[20:, :, 2] > 0)
    out = clean_sequence(seq, outlier=0)
    x = out[:, J["neck"], 0] - base[J["neck"], 0]
    assert abs(int(torch.nonzero(x > 20)[0]) - 20) <= 1
    gap = seq.clone()
    gap[5:20] = 0                                                      # 15 frames > max_gap: left empty
    assert (clean_sequence(gap, max_gap=5)[5:20, :, 2] == 0).all()
    assert (clean_sequence(gap, max_gap=15)[5:20, J["neck"], 2] > 0).all()
    with pytest.raises(ValueError, match=r"\[T, 18, 3\]"):
        clean_sequence(torch.rand(18, 3))
    assert torch.equal(clean_sequence(torch.zeros(4, 18, 3)), torch.zeros(4, 18, 3))
