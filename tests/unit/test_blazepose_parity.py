"""The BlazePose port against MediaPipe itself, on real photos (none committed; see harness/photos.py).

- the converter reproduces the shipped files from the .tflite models inside the installed mediapipe wheel;
- the two networks match the TFLite interpreter (ai-edge-litert) on the same inputs;
- the whole pipeline matches MediaPipe's pose solution (static images, full model): same person, landmarks,
  visibility, segmentation.

MediaPipe, tflite and ai-edge-litert are test-tier references only (scripts/setup_env.sh test); the pack never
imports them. Under REPOSE_STRICT_TIERS=1 a missing reference fails instead of skipping.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.photos import as_tensor, photos
from reposedm_core.estimator import load_blazepose
from reposedm_core.estimator import blazepose as bp
from reposedm_core.estimator import blazepose_geometry as geo

STRICT = os.environ.get("REPOSE_STRICT_TIERS") == "1"
ROOT = Path(__file__).resolve().parents[2]


def _need(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        msg = f"{module} (the test-tier reference) is not installed: run scripts/setup_env.sh test ({e})"
        if STRICT:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def tflite_files() -> dict[str, Path]:
    mp = _need("mediapipe")
    base = Path(mp.__file__).parent / "modules"
    return {"detector": base / "pose_detection" / "pose_detection.tflite",
            "landmark": base / "pose_landmark" / "pose_landmark_full.tflite"}


@pytest.fixture(scope="module")
def est():
    return load_blazepose()


def test_converter_reproduces_the_shipped_weights(tflite_files, tmp_path):
    _need("tflite")
    sys.path.insert(0, str(ROOT / "scripts"))
    import convert_blazepose

    assert convert_blazepose.main(["--detector", str(tflite_files["detector"]), "--landmark",
                                   str(tflite_files["landmark"]), "--out-dir", str(tmp_path)]) == 0
    for name, kind in (("blazepose_detector.safetensors", bp.KIND_DETECTOR),
                       ("blazepose_landmark.safetensors", bp.KIND_LANDMARK)):
        new, new_meta = bp.read_weights(tmp_path / name, kind)
        shipped, meta = bp.read_weights(bp.WEIGHTS_DIR / name, kind)
        assert new_meta["source_sha256"] == meta["source_sha256"]
        assert set(new) == set(shipped) and all(torch.equal(new[k], shipped[k]) for k in new)


def _interpreter(path: Path):
    litert = _need("ai_edge_litert.interpreter")
    it = litert.Interpreter(model_path=str(path))
    it.allocate_tensors()
    return it


def _run(it, x: torch.Tensor) -> dict[str, np.ndarray]:
    it.set_tensor(it.get_input_details()[0]["index"], x.permute(0, 2, 3, 1).contiguous().numpy())
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}


@pytest.mark.parametrize("name", ["astronaut", "sports160"])
def test_networks_match_the_tflite_interpreter(est, tflite_files, name):
    img = as_tensor(photos()[name])
    h, w = img.shape[-2:]
    x = geo.crop(img, geo.full_image_rois(h, w, 1), 224, padding_mode="zeros") * 2 - 1
    ref = _run(_interpreter(tflite_files["detector"]), x)
    with torch.no_grad():
        scores, boxes = est.detector(x)
    assert np.abs(scores.numpy() - ref["Identity_1"][..., 0]).max() < 2e-3
    assert np.abs(boxes.numpy() - ref["Identity"]).max() < 1e-2           # pixels of the 224 input
    roi, index, _ = est.detect(img)
    crop = geo.crop(img, roi, 256, index)
    ref = _run(_interpreter(tflite_files["landmark"]), crop)
    with torch.no_grad():
        out = est.landmark(crop)
    assert np.abs(out["landmarks"].reshape(1, -1).numpy() - ref["Identity"]).max() < 1e-2   # crop pixels
    assert abs(float(out["flag"]) - ref["Identity_1"].item()) < 1e-3
    prob = torch.sigmoid(out["segmentation"]).permute(0, 2, 3, 1).numpy()
    assert np.abs(prob - torch.sigmoid(torch.from_numpy(ref["Identity_2"])).numpy()).max() < 5e-3   # mask 0..1
    assert np.abs(out["heatmaps"].permute(0, 2, 3, 1).numpy() - ref["Identity_3"]).max() < 2e-3
    assert np.abs(out["world"].reshape(1, -1).numpy() - ref["Identity_4"]).max() < 1e-4


@pytest.fixture(scope="module")
def mediapipe_results():
    mp = _need("mediapipe")
    out = {}
    for name, im in photos().items():
        with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True) as pose:
            r = pose.process(np.ascontiguousarray(im))
        h, w = im.shape[:2]
        if r.pose_landmarks is None:
            out[name] = None
            continue
        lm = np.array([[p.x * w, p.y * h, p.visibility] for p in r.pose_landmarks.landmark])
        out[name] = (lm, np.array(r.segmentation_mask))
    return out


def test_pipeline_matches_mediapipe_on_real_photos(est, mediapipe_results):
    """Goal of the issue: median landmark difference <= 1% of the person's height, the same people, mask
    IoU >= 0.95. Per photo the figures vary with how sensitive the network is to sub-pixel differences of its
    input (a 1/255 change of the crop moves weak hand and foot landmarks); the pooled figures carry the goal."""
    dists, inter, union, vis = [], 0.0, 0.0, []
    for name, im in photos().items():
        with torch.no_grad():
            people = est.people(as_tensor(im), 1)
        ref = mediapipe_results[name]
        assert (ref is None) == (len(people) == 0), name                   # same people found
        if ref is None:
            continue
        lm, mask_ref = ref
        ours = people.landmarks[0].numpy()
        height = lm[:, 1].max() - lm[:, 1].min()
        d = np.linalg.norm(ours[:, :2] - lm[:, :2], axis=1) / height
        assert np.linalg.norm(ours[:, :2].mean(0) - lm[:, :2].mean(0)) / height < 0.05, name   # the same person
        assert np.median(d) < 0.03, (name, np.median(d))
        dists.append(d)
        vis.append(np.abs(ours[:, 3] - lm[:, 2]))
        m, r = people.masks()[0].numpy() > 0.5, mask_ref > 0.5
        inter, union = inter + (m & r).sum(), union + (m | r).sum()
        assert (m & r).sum() / (m | r).sum() > 0.85, name
    assert len(dists) >= 5
    assert np.median(np.concatenate(dists)) <= 0.01
    assert np.median(np.concatenate(vis)) <= 0.02
    assert inter / union >= 0.95
