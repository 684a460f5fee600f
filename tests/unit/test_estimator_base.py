"""The estimator interface: letterbox geometry, coordinate mapping through resize/pad/soft-argmax, thresholds,
gradients and input errors (with stub backends whose heatmaps are known)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reposedm_core.estimator import KeypointEstimator, letterbox, letterbox_geometry, local_soft_argmax


class BlobEstimator(KeypointEstimator):
    """Heatmap = the image's red channel, average-pooled by the stride (a blob's heatmap peaks at the blob)."""

    def __init__(self, work=(64, 48), stride=4, threshold=0.0, window=3):
        super().__init__(work, stride, threshold, window, pad_value=0.0)  # black bars: no blob there
        self.gain = torch.nn.Parameter(torch.ones(()))  # so that predict() sees a parameter dtype

    def score_maps(self, work):
        pooled = F.avg_pool2d(work[:, :1], self.stride) * self.gain
        return torch.log(pooled.clamp_min(1e-12)).expand(-1, 18, -1, -1)

    def probabilities(self, scores):
        return scores.exp()


def blob_image(h: int, w: int, x0: float, y0: float, sigma: float) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    g = torch.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * sigma ** 2))
    return torch.stack([g, torch.zeros_like(g), torch.zeros_like(g)])[None]


@pytest.mark.parametrize("h, w", [(37, 23), (101, 67), (15, 40), (64, 48), (257, 175)])
def test_letterbox_geometry_keeps_aspect_and_round_trips(h, w):
    geo = letterbox_geometry(h, w, 64, 48)
    assert geo.resized_height <= 64 and geo.resized_width <= 48
    assert geo.resized_height == 64 or geo.resized_width == 48          # one side fills the frame
    assert abs(geo.scale_x - geo.scale_y) < 1.0 / min(geo.resized_height, geo.resized_width) + 1e-6
    xy = torch.tensor([[0.0, 0.0], [w - 1.0, h - 1.0], [w / 3, h / 2]])
    assert torch.allclose(geo.to_input(geo.to_work(xy)), xy, atol=1e-4)
    image, geo2 = letterbox(torch.rand(2, 3, h, w), 64, 48)
    assert image.shape == (2, 3, 64, 48) and geo2 == geo


@pytest.mark.parametrize("h, w, x0, y0", [(37, 23, 11.3, 17.8), (101, 67, 40.6, 29.2), (15, 40, 25.5, 6.4),
                                          (257, 175, 88.2, 150.7), (64, 48, 20.0, 33.0)])
def test_blob_comes_back_at_its_pixel_through_resize_pad_soft_argmax(h, w, x0, y0):
    """A heatmap peak made from a blob at a known input pixel maps back to that pixel on odd sizes."""
    geo = letterbox_geometry(h, w, 64, 48)
    sigma = 2.5 / geo.scale_x                                  # ~2.5 working pixels whatever the input size
    est = BlobEstimator()
    out = est.predict(blob_image(h, w, x0, y0, sigma))
    err = (out.xy[0, 0] - torch.tensor([x0, y0])).abs()
    assert float(err.detach().max()) < 0.3 / geo.scale_x + 0.05, (out.xy[0, 0], (x0, y0))
    assert out.keypoints.shape == (1, 18, 3) and out.heatmaps.shape == (1, 18, 16, 12)


def test_delta_peak_is_exact_at_stride_one():
    class Delta(KeypointEstimator):
        def __init__(self):
            super().__init__((20, 14), 1, 0.5, 1)

        def score_maps(self, work):
            return (work[:, :1] * 60).expand(-1, 18, -1, -1)

    img = torch.zeros(1, 3, 20, 14)
    img[0, 0, 13, 5] = 1.0
    kp = Delta()(img)
    assert torch.allclose(kp[0, :, :2], torch.tensor([5.0, 13.0]).expand(18, 2), atol=1e-4)
    assert torch.allclose(kp[0, :, 2], torch.ones(18))


def test_local_soft_argmax_ignores_a_second_mode():
    scores = torch.full((1, 1, 10, 10), -20.0)
    scores[0, 0, 2, 3] = 5.0
    scores[0, 0, 8, 8] = 4.9                               # a rival peak far away
    xy = local_soft_argmax(scores, radius=2)
    assert torch.allclose(xy[0, 0], torch.tensor([3.0, 2.0]), atol=1e-3)


def test_threshold_zeroes_missing_joints_and_keeps_gradients_of_present_ones():
    est = BlobEstimator(threshold=0.5)
    img = blob_image(40, 30, 12.0, 20.0, 3.0) * 0.3                 # peak ~0.3 < 0.5: reported missing
    out = est.predict(img)
    assert torch.all(out.keypoints == 0)
    out = est.predict(img, threshold=0.1)
    assert torch.all(out.keypoints[..., 2] > 0)
    x = (blob_image(40, 30, 12.0, 20.0, 3.0) * 0.8).requires_grad_(True)
    kp = est(x)
    (g,) = torch.autograd.grad(kp[..., 0].sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_images_are_validated():
    est = BlobEstimator()
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        est(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="floating point"):
        est(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="multiples of the stride"):
        BlobEstimator(work=(30, 48))
