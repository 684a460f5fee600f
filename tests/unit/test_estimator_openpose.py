"""The OpenPose body backend with random weights: key transfer, shapes, gradients, weights_only loading, errors."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from reposedm_core.estimator import load_openpose_estimator
from reposedm_core.estimator import openpose as op
from reposedm_core.utils.checkpoint import CheckpointError

from harness.tiny_models import random_openpose_body

# find_spec, not importorskip: importing the controlnet_aux package takes seconds (the backend never does)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("controlnet_aux") is None,
                                reason="the OpenPose backend's architecture comes from controlnet_aux")

_CALLED = []


def _side_effect() -> list:
    _CALLED.append(True)
    return []


class Payload:
    """Unpickling this runs ``_side_effect`` — exactly what weights_only loading must refuse."""

    def __reduce__(self):
        return (_side_effect, ())


@pytest.fixture(scope="module")
def cmu_file(tmp_path_factory):
    """A random body network saved like the original body_pose_model.pth (keys without the block prefix)."""
    path = tmp_path_factory.mktemp("openpose") / "body_pose_model.pth"
    return random_openpose_body(path), path


@pytest.fixture(scope="module")
def estimator(cmu_file, monkeypatch_module):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch_module.setattr(op.torch, "load", spy)
    est = load_openpose_estimator(cmu_file[1], work_size=(64, 48))
    monkeypatch_module.undo()
    return est, calls


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_loads_cmu_keys_with_weights_only(cmu_file, estimator):
    body, _ = cmu_file
    est, calls = estimator
    assert calls == [{"map_location": "cpu", "weights_only": True}]
    for key, value in body.state_dict().items():
        assert torch.equal(est.body.state_dict()[key], value)
    assert not any(p.requires_grad for p in est.parameters())
    same = op.transfer_keys(body, body.state_dict(), "full keys")          # controlnet_aux-style full keys too
    assert set(same) == set(body.state_dict())


def test_shapes_and_gradient_on_an_odd_size(estimator):
    est, _ = estimator
    x = torch.rand(2, 3, 77, 41, requires_grad=True)
    out = est.predict(x, threshold=0.0)
    assert out.keypoints.shape == (2, 18, 3) and out.heatmaps.shape == (2, 18, 8, 6)
    assert torch.isfinite(out.keypoints).all()
    (g,) = torch.autograd.grad(out.keypoints[..., :2].sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_code_in_a_pickle_is_never_run(tmp_path):
    path = tmp_path / "body_pose_model.pth"
    torch.save({"conv1_1.weight": Payload()}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_openpose_estimator(path)
    assert not _CALLED


def test_wrong_or_missing_files(cmu_file, tmp_path):
    body, path = cmu_file
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_openpose_estimator(tmp_path / "body_pose_model.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="could not be read"):
        load_openpose_estimator(truncated)
    with pytest.raises(CheckpointError, match="not an OpenPose body model checkpoint"):
        op.transfer_keys(body, {"conv1.weight": torch.zeros(1)}, "hand_pose_model.pth")
    wrong_shape = {k: v for k, v in body.state_dict().items()}
    key = next(iter(wrong_shape))
    wrong_shape[key] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="has shape"):
        op.transfer_keys(body, wrong_shape, "x.pth")


def test_clear_error_without_controlnet_aux(monkeypatch):
    monkeypatch.delitem(op.sys.modules, "controlnet_aux.open_pose.model", raising=False)
    monkeypatch.setattr(op.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install controlnet-aux"):
        op.build_bodypose_model()
