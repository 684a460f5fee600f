"""Pinned slices (the diffusers habit): a seeded tiny component, fixed inputs, a small slice of its output against
values written down here. A change of behaviour — ours or upstream's (torch, diffusers: CI pins versions that
users do not) — fails one of these and is re-pinned on purpose, with the reason in the commit.

Inputs are analytic (``test_alignment_behaviour``'s hand-made poses and test pattern; scikit-image's astronaut
for BlazePose), so only the component under test can move a value. Tolerances allow for the last bits of
float32 arithmetic on other CPUs and BLAS builds, far below any change of behaviour.

To re-pin: run the test, read the actual values from the failure, check that the change is the intended one.
The denoiser is pinned in both parametrisations (v prediction, and the warp-centred clean image).
"""
from __future__ import annotations

import pytest
import torch

from reposedm_core.models.alignment import RecurrentPoseAlignment
from reposedm_core.models.flow import limb_flow

from harness.tiny_models import TINY, wake_zero_layers
from test_alignment_behaviour import RAISED, SOURCE_POSE, STAND, TARGET_POSE, _pattern, _pose

ATOL = 1e-4


def _close(actual: torch.Tensor, pinned: list, atol: float = ATOL, rtol: float = 1e-4) -> None:
    expected = torch.tensor(pinned, dtype=actual.dtype)
    assert torch.allclose(actual, expected, atol=atol, rtol=rtol), f"actual {actual.tolist()}"


def test_limb_flow_slice():
    flow = limb_flow(SOURCE_POSE, TARGET_POSE, 32, 24)
    _close(flow[0, :, 10, 14:24:2], [[-0.00770, -0.23431, -1.73520, -2.25491, -2.72629],    # row 10: left arm
                                     [-0.00690, 0.03321, 1.21862, 2.93199, 4.98216]])
    _close(flow[0, :, 4, 2:12:2], [[3.22274, 3.37051, 0.37571, -1.15662, -0.00003],          # row 4: right arm
                                   [4.35906, 8.10944, 8.68940, 2.79154, 0.00002]])


def test_recurrent_alignment_slice():
    torch.manual_seed(0)
    rpa = RecurrentPoseAlignment(TINY.texture_channels, TINY.pose_channels, TINY.hidden, TINY.iterations).eval()
    wake_zero_layers(rpa, std=0.2)
    with torch.no_grad():
        a = rpa(_pattern(), SOURCE_POSE, TARGET_POSE, 2)
    _close(a.flow[0, :, 10, 14:24:2], [[5.77932, 5.76089, 4.63628, 3.79449, 3.23247],
                                       [-1.79084, -1.74977, -0.66308, 1.37451, 3.45814]], atol=1e-3)
    _close(a.flow[0, :, 4, 2:12:2], [[8.15068, 8.00985, 5.00833, 3.48563, 3.08566],
                                     [6.05469, 9.23305, 9.23658, 2.98263, 0.49597]], atol=1e-3)
    _close(a.mask[0, 0, 12, ::4], [0.51873, 0.51973, 0.52304, 0.52289, 0.52293, 0.52048])
    _close(a.features[3][0, :4, 1, 1], [0.20230, 0.01671, -0.00165, 0.39709])


def _field_poses() -> torch.Tensor:
    broken = STAND.clone()
    broken[4], broken[10] = torch.tensor([20.0, 2.0]), torch.tensor([2.0, 10.0])  # wrist and ankle thrown out
    return torch.cat([_pose(STAND), _pose(RAISED), _pose(broken)])


def test_pose_field_slice():
    from reposedm_core.field import FieldConfig, PoseInteractionField, load_pose_field

    torch.manual_seed(0)
    field = PoseInteractionField(FieldConfig()).eval()
    with torch.no_grad():
        _close(field(_field_poses()), [0.58693, 0.60385, 0.61792])
    _close(load_pose_field().distance(_field_poses()), [0.00067, 0.00195, 0.80307], atol=2e-4)  # shipped weights


def test_small_estimator_slice():
    from reposedm_core.estimator.small import SmallEstimatorConfig, SmallKeypointNet

    torch.manual_seed(0)
    net = SmallKeypointNet(SmallEstimatorConfig(work_height=32, work_width=24, channels=(8, 8, 8, 8),
                                                blocks=(1, 1, 1))).eval()
    with torch.no_grad():
        kp = net((_pattern(64, 48) + 1) / 2, threshold=0.0)   # every joint reported, x/y in pixels of 48 x 64
    _close(kp[0, :6], [[35.67392, 11.49890, 0.01746], [15.45371, 35.46183, 0.01930], [11.32965, 35.51399, 0.01974],
                       [15.39088, 15.44661, 0.02131], [31.53479, 47.22226, 0.02086], [15.47777, 27.58607, 0.01947]],
           atol=1e-3)


def test_blazepose_networks_slice():
    """The ported networks (shipped weights) on fixed inputs: detector logits and landmark-net outputs."""
    from reposedm_core.estimator.blazepose import load_blazepose_networks

    det, lm, _ = load_blazepose_networks()
    with torch.no_grad():
        scores, boxes = det(_pattern(224, 224))
        out = lm((_pattern(256, 256) + 1) / 2)
    assert scores.shape == (1, 2254) and boxes.shape == (1, 2254, 12)
    _close(scores[0, :4], [-68.44759, -5.36601, -87.73493, -6.20423], atol=1e-2)
    _close(boxes[0, 0, :4], [-3.53094, -7.17607, 1.47737, -7.34444], atol=1e-2)
    _close(out["landmarks"][0, :3, :3], [[126.40843, 63.08180, -150.81137], [132.93735, 58.65759, -140.39101],
                                         [134.60043, 58.41239, -137.98473]], atol=1e-2)
    _close(out["segmentation"][0, 0, 128, 120:136:4], [0.14330, -0.45845, -0.56616, 0.23261], atol=1e-3)
    _close(out["heatmaps"][0, 0, 32, 28:36:2], [-4.10795, -3.59193, -2.46767, -1.85981], atol=1e-3)


def test_blazepose_pipeline_slice_on_a_photo():
    """The whole reading (detector, region of interest, crop, landmarks, OpenPose-18) of scikit-image's astronaut:
    nose, neck, right shoulder/elbow, left shoulder in pixels; the wrists and the left elbow are out of view."""
    from skimage import data

    from reposedm_core.estimator import load_blazepose

    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        kp = load_blazepose()(image)[0]
    _close(kp[:8], [[221.59306, 128.21301, 0.99928], [209.85030, 248.00101, 0.99755],
                    [113.18301, 238.66592, 0.99831], [64.61407, 397.18417, 0.75083], [0.0, 0.0, 0.0],
                    [306.51758, 257.33609, 0.99755], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], atol=0.05)


@pytest.mark.parametrize("x0_base", ["none", "warp", "warp_full", "residual"])
def test_denoiser_slice(x0_base):
    """The whole RePoseDM model's denoiser (zero layers woken) on the alignment of the test pattern: v prediction
    of the image, the warp-centred clean-image estimates (``x0_base="warp"``, ``"warp_full"``), and v prediction of
    the residual image minus the warp (``"residual"``, the shipped demo's)."""
    import dataclasses

    from reposedm_core.models import RePoseModel

    config = (TINY if x0_base == "none" else dataclasses.replace(TINY, x0_base=x0_base) if x0_base == "residual"
              else dataclasses.replace(TINY, prediction_type="sample", x0_base=x0_base))
    torch.manual_seed(0)
    model = RePoseModel(config).eval()
    wake_zero_layers(model, std=0.05)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, TINY.height, TINY.width, generator=gen)
    with torch.no_grad():
        a = model.condition(_pattern() * 2 - 1, SOURCE_POSE, TARGET_POSE, 2)
        out = model.denoiser(x, torch.tensor([500]), a)
    _close(out[0, :, 12, 8:16:2].flatten(), PINNED_DENOISER[x0_base], atol=1e-3, rtol=1e-3)


PINNED_DENOISER = {
    "none": [0.25247, 0.06540, 0.36593, -0.16810, 0.47812, 0.39164, -0.10056, -0.29495, -0.03180, 0.23317,
             -0.11305, 0.00451],
    "warp": [0.07471, -0.47475, -0.94240, -1.35560, -1.05370, -1.00647, -1.21562, -1.20423, -0.83669, -1.17010,
             -1.90472, -0.52468],
    "warp_full": [-0.20814, -1.19356, -2.06403, -2.44324, -2.16920, -2.12402, -2.27222, -2.37482, -1.88472, -2.36956,
                  -3.12458, -1.53250],
    "residual": [0.06359, 0.04715, 0.04089, -0.12275, -0.12048, -0.09250, -0.04824, -0.51289, -0.07620, 0.03219,
                 -0.09305, -0.25629]}
