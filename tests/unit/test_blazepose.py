"""The BlazePose port without MediaPipe: TFLite layer semantics, the pipeline geometry, the shipped weights on real
photos, gradients through the whole reading, and bad input. (Parity with MediaPipe: test_blazepose_parity.py.)"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.photos import as_tensor, photos
from reposedm_core.estimator import BlazePoseEstimator, load_blazepose, pose_rois
from reposedm_core.estimator import blazepose as bp
from reposedm_core.estimator import blazepose_geometry as geo
from reposedm_core.pose import JOINT_INDEX
from reposedm_core.utils.checkpoint import CheckpointError

J = JOINT_INDEX


@pytest.fixture(scope="module")
def est() -> BlazePoseEstimator:
    return load_blazepose()


# -- TFLite layer semantics --------------------------------------------------------------------------------------
def test_same_padding_of_stride_2_puts_the_extra_pixel_right_and_bottom():
    conv = bp.TFConv2d(1, 1, 3, 2, act=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0          # output (i, j) reads input (2i + 0 - pad_top, 2j - pad_left)
        conv.bias.zero_()
    x = torch.arange(64.0).view(1, 1, 8, 8)
    y = conv(x)
    assert y.shape == (1, 1, 4, 4)
    assert torch.equal(y[0, 0], x[0, 0, ::2, ::2])   # TF SAME: pad (0, 1), so the top-left tap is input (0, 0)
    assert bp._same_pad(8, 3, 2) == (0, 1) and bp._same_pad(7, 3, 2) == (1, 1) and bp._same_pad(5, 1, 1) == (0, 0)


def test_depth_to_space_is_tflite_dcr_order():
    b, c, h, w, k = 1, 2, 3, 3, 2
    x = torch.arange(b * c * k * k * h * w, dtype=torch.float32).view(b, c * k * k, h, w)
    y = bp.depth_to_space(x, k)
    nhwc = x.permute(0, 2, 3, 1)                     # TFLite: out[h*k+i, w*k+j, ch] = in[h, w, (i*k + j)*C + ch]
    for i in range(k):
        for j in range(k):
            for ch in range(c):
                assert torch.equal(y[0, ch, i::k, j::k], nhwc[0, :, :, (i * k + j) * c + ch])


def test_every_layer_is_reached_once_in_graph_order():
    # the TFLite graphs: detector 45 CONV_2D + 28 DEPTHWISE_CONV_2D, landmarks 58 + 38
    for net, count in ((bp.BlazePoseDetector(), 73), (bp.BlazePoseLandmarkNet(), 96)):
        layers = bp.conv_layers(net)
        assert len(layers) == count == sum(isinstance(m, bp.TFConv2d) for m in net.modules())
        assert len({n for n, _ in layers}) == count


def test_densify_decodes_csr_over_the_last_dimension():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from convert_blazepose import densify_tensor

    dense = np.array([[0, 1.5, 0, 0], [0, 0, 0, 0], [2, 0, 0, -3]], dtype=np.float32)
    rows, cols = np.nonzero(dense)
    segments = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=3))])
    out = densify_tensor(dense[rows, cols], [3, 4], [0, 1], [("dense", 3), ("csr", segments, cols)], "t")
    assert np.array_equal(out, dense)
    # transposed traversal: columns outer, rows inner
    cr, rr = np.nonzero(dense.T)
    seg_t = np.concatenate([[0], np.cumsum(np.bincount(cr, minlength=4))])
    out_t = densify_tensor(dense.T[cr, rr], [3, 4], [1, 0], [("dense", 4), ("csr", seg_t, rr)], "t")
    assert np.array_equal(out_t, dense)
    with pytest.raises(ValueError, match="lists 3 values, the buffer holds 2"):
        densify_tensor(dense[rows, cols][:2], [3, 4], [0, 1], [("dense", 3), ("csr", segments, cols)], "t")


# -- geometry ----------------------------------------------------------------------------------------------------
def test_anchors_match_the_detector_grid():
    a = geo.ssd_anchors()
    assert a.shape == (bp.NUM_ANCHORS, 2)
    assert torch.allclose(a[0], torch.tensor([0.5 / 28, 0.5 / 28])) and torch.equal(a[0], a[1])   # 2 per cell
    assert torch.allclose(a[1568], torch.tensor([0.5 / 14, 0.5 / 14]))
    assert torch.allclose(a[-1], torch.tensor([6.5 / 7, 6.5 / 7])) and torch.equal(a[-6], a[-1])  # 6 per cell


def test_weighted_nms_merges_overlaps_by_score_and_keeps_the_rest():
    def det(x0, y0, x1, y1, kx):
        return torch.tensor([[x0, y0], [x1, y1]] + [[kx, 0.5]] * 4)

    dets = torch.stack([det(0.1, 0.1, 0.5, 0.5, 0.2), det(0.12, 0.1, 0.52, 0.5, 0.4), det(0.6, 0.6, 0.9, 0.9, 0.7)])
    scores = torch.tensor([0.9, 0.6, 0.8])
    s, d = geo.weighted_nms(scores, dets)
    assert torch.allclose(s, torch.tensor([0.9, 0.8]))
    assert math.isclose(float(d[0, 2, 0]), (0.9 * 0.2 + 0.6 * 0.4) / 1.5, rel_tol=1e-6)
    assert torch.allclose(d[1], dets[2])
    assert len(geo.weighted_nms(scores, dets, max_out=1)[0]) == 1
    assert geo.weighted_nms(scores[:0], dets[:0])[1].shape == (0, 6, 2)


def test_detection_roi_size_centre_and_rotation():
    up = geo.detection_rois(torch.tensor([[[100.0, 200.0], [100.0, 100.0]]]))      # scale point straight above
    assert (float(up.cx), float(up.cy), float(up.size)) == (100.0, 200.0, 250.0) and abs(float(up.rotation)) < 1e-6
    right = geo.detection_rois(torch.tensor([[[100.0, 200.0], [150.0, 200.0]]]))   # body lying, head right
    assert math.isclose(float(right.rotation), math.pi / 2, rel_tol=1e-6)
    # the crop's "up" maps onto the hip -> scale-point direction
    top = geo.roi_to_image(torch.tensor([[[0.5, 0.0]]]), right)[0, 0]
    assert torch.allclose(top, torch.tensor([100.0 + 62.5, 200.0]), atol=1e-4)   # side 2.5 x 50


def test_roi_maps_are_inverse_and_the_crop_samples_the_roi():
    roi = geo.Roi(torch.tensor([40.0]), torch.tensor([30.0]), torch.tensor([32.0]), torch.tensor([0.7]))
    uv = torch.rand(1, 10, 2)
    assert torch.allclose(geo.image_to_roi(geo.roi_to_image(uv, roi), roi), uv, atol=1e-5)
    img = torch.rand(1, 3, 64, 80)
    upright = geo.Roi(torch.tensor([40.0]), torch.tensor([30.0]), torch.tensor([16.0]), torch.tensor([0.0]))
    c = geo.crop(img, upright, 16)                   # side 16 into 16 pixels: a plain window, top-left at (32, 22)
    assert torch.allclose(c, img[..., 22:38, 32:48], atol=1e-5)
    quarter = geo.Roi(upright.cx, upright.cy, upright.size, torch.tensor([math.pi / 2]))
    r = geo.crop(img, quarter, 16)                   # a quarter turn clockwise: out[r, c] = img[22 + c, 48 - r]
    assert torch.allclose(r, torch.rot90(img[..., 22:38, 33:49], 1, (-2, -1)), atol=1e-4)


def test_heatmap_refinement_takes_the_weighted_cell_index():
    hm = torch.full((1, 1, 64, 64), -20.0)
    hm[0, 0, 10, 20] = 5.0
    hm[0, 0, 10, 21] = 5.0
    out = geo.refine_from_heatmap(torch.tensor([[[21.3 / 64, 10.2 / 64]]]), hm)
    assert torch.allclose(out, torch.tensor([[[20.5 / 64, 10 / 64]]]), atol=1e-4)
    weak = geo.refine_from_heatmap(torch.tensor([[[0.3, 0.3]]]), torch.full((1, 1, 64, 64), -5.0))
    assert torch.allclose(weak, torch.tensor([[[0.3, 0.3]]]))         # peak below 0.5: left alone


# -- the shipped weights -----------------------------------------------------------------------------------------
def test_shipped_files_record_their_source_and_licence():
    for path, kind in ((bp.DETECTOR_FILE, bp.KIND_DETECTOR), (bp.LANDMARK_FILE, bp.KIND_LANDMARK)):
        _, meta = bp.read_weights(path, kind)
        assert meta["license"].startswith("Apache-2.0") and len(meta["source_sha256"]) == 64
        assert meta["source"].endswith(".tflite")
        assert path.stat().st_size < 8 * 2 ** 20


def test_finds_the_people_in_real_photos(est):
    for name, joints in (("astronaut", 8), ("bus", 14), ("sports120", 14)):   # the astronaut is seen to the waist
        img = as_tensor(photos()[name])
        with torch.no_grad():
            kp = est(img)[0]
        h = img.shape[-2]
        present = kp[:, 2] > 0
        assert present.sum() >= joints, name
        for upper, lower in (("nose", "neck"), ("neck", "r_hip"), ("neck", "l_hip")):
            if present[J[upper]] and present[J[lower]]:
                assert kp[J[upper], 1] < kp[J[lower], 1], (name, upper, lower)
        assert ((kp[present, :2] >= -0.05 * h) & (kp[present, :2] <= 1.05 * max(img.shape[-2:]))).all(), name


def two_people() -> torch.Tensor:
    """The bus passenger and a sports2d runner side by side on one canvas (BlazePose's detector, like
    MediaPipe's, picks one dominant person in bus.jpg)."""
    a, b = as_tensor(photos()["bus"]), as_tensor(photos()["sports120"])[..., 150:, 500:1300]
    b = F.interpolate(b, size=(a.shape[-2], int(b.shape[-1] * a.shape[-2] / b.shape[-2])), mode="bilinear")
    return torch.cat([a, b], -1)


def test_people_masks_and_multi_person_output(est):
    img = two_people()
    with torch.no_grad():
        people = est.people(img, max_people=6)
        masks = people.masks()
        assert len(est.people(img, max_people=1)) == 1
    assert len(people) >= 2
    assert people.keypoints.shape == (len(people), 18, 3) and people.landmarks.shape == (len(people), 33, 5)
    assert (people.score[:-1] >= people.score[1:]).all()
    assert masks.shape == (len(people), *img.shape[-2:]) and 0 <= float(masks.min()) <= float(masks.max()) <= 1
    kp = people.keypoints[0]
    neck = kp[J["neck"], :2].round().long()
    assert masks[0, neck[1], neck[0]] > 0.5          # the neck lies inside its person's mask
    assert float((masks[0] > 0.5).float().mean()) < 0.5


def test_reading_is_differentiable_and_gradient_steps_move_a_keypoint(est):
    img = as_tensor(photos()["astronaut"])
    with torch.no_grad():
        start = est(img)
    roi_pose = start.clone()
    target = start[0, J["r_wrist"], :2] + torch.tensor([15.0, 15.0])
    x = img.clone().requires_grad_(True)
    first = None
    for _ in range(6):
        out = est.predict(x, poses=roi_pose)
        loss = (out.xy[0, J["r_wrist"]] - target).pow(2).sum()
        (g,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
        first = float(loss.detach()) if first is None else first
        with torch.no_grad():
            x -= 0.02 * g / g.abs().max()
            x.clamp_(0, 1)
    assert float(loss.detach()) < 0.7 * first


def test_fp16_gradients_are_finite():
    est16 = load_blazepose(dtype=torch.float16)
    img = as_tensor(photos()["astronaut"])[..., ::2, ::2].contiguous()
    with torch.no_grad():
        ref = load_blazepose()(img)
        ref32 = load_blazepose().predict(img, poses=ref).keypoints
    x = img.clone().requires_grad_(True)
    out = est16.predict(x, poses=ref)                  # both read the same region of interest
    out.xy[0, :, 0].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    present = (ref32[0, :, 2] > 0) & (out.keypoints[0, :, 2] > 0)
    assert present.sum() >= 8
    err = (out.keypoints[0, present, :2] - ref32[0, present, :2]).norm(dim=-1)
    assert float(err.detach().median()) < 0.01 * img.shape[-2]


def test_pose_roi_follows_the_body():
    pose = torch.zeros(1, 18, 3)
    for name, (x, y) in {"neck": (50, 20), "r_hip": (45, 60), "l_hip": (55, 60), "r_ankle": (45, 100),
                         "nose": (50, 10)}.items():
        pose[0, J[name]] = torch.tensor([x, y, 1.0])
    roi = pose_rois(pose)
    assert (float(roi.cx), float(roi.cy)) == (50.0, 60.0) and abs(float(roi.rotation)) < 1e-6
    assert float(roi.size) > 100                      # covers nose to ankle with margin
    lying = pose.clone()
    lying[..., 0], lying[..., 1] = pose[..., 1], 100 - pose[..., 0]   # rotated: head to the left
    assert math.isclose(abs(float(pose_rois(lying).rotation)), math.pi / 2, rel_tol=1e-5)


# -- bad input ---------------------------------------------------------------------------------------------------
def test_no_person_gives_empty_results_not_errors(est):
    blank = torch.full((2, 3, 120, 90), 0.5)
    with torch.no_grad():
        assert len(est.people(blank, 3)) == 0
        out = est.predict(blank)
        assert torch.equal(out.keypoints, torch.zeros(2, 18, 3)) and not out.found.any()
        assert torch.equal(est.masks(blank), torch.zeros(2, 120, 90))


def test_odd_images(est):
    astro = as_tensor(photos()["astronaut"])
    with torch.no_grad():
        assert torch.equal(est(torch.rand(1, 3, 1, 1)), torch.zeros(1, 18, 3))
        grey = est(astro.mean(1, keepdim=True))
        rgba = est(torch.cat([astro, torch.ones_like(astro[:, :1])], 1))
        assert torch.allclose(rgba, est(astro))
        assert (grey[0, :, 2] > 0).sum() >= 8
        mixed = est(torch.cat([astro, torch.zeros_like(astro)]))          # a batch of mixed content
        assert (mixed[0, :, 2] > 0).sum() >= 8 and torch.equal(mixed[1], torch.zeros(18, 3))
        huge = F.interpolate(astro, scale_factor=6, mode="bilinear")      # 3072 x 3072
        kp_huge = est(huge)[0]
        kp = est(astro)[0]
        both = (kp[:, 2] > 0) & (kp_huge[:, 2] > 0)
        assert float((kp_huge[both, :2] / 6 - kp[both, :2]).norm(dim=-1).median()) < 3.0
    for bad, match in ((torch.rand(1, 2, 8, 8), r"\[B, 3, H, W\]"), (torch.zeros(1, 3, 8, 8, dtype=torch.uint8),
                                                                      "floating point"),
                       (torch.rand(3, 8, 8), r"\[B, 3, H, W\]")):
        with pytest.raises(ValueError, match=match):
            est(bad)


def test_missing_corrupt_and_wrong_weight_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_blazepose(detector=tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_blazepose(landmark=junk)
    with pytest.raises(CheckpointError, match="blazepose-detector"):
        load_blazepose(detector=bp.LANDMARK_FILE)
