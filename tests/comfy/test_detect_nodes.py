"""Detect Pose (BlazePose) inside the real ComfyUI: real photos in, POSE_KEYPOINT / MASK / preview out, the same
reading as the core library; an image with nobody in it gives an empty frame, not an error."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from harness.photos import as_tensor, photos


@pytest.fixture(scope="module")
def inputs(comfy):
    d = comfy.home / "input"
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photos()["astronaut"]).save(d / "astronaut.png")
    Image.fromarray(photos()["bus"]).save(d / "bus.png")
    Image.fromarray(np.full((96, 128, 3), 128, np.uint8)).save(d / "grey.png")
    return d


def _prompt(image: str, max_people: int = 1) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "RePoseDetectPose",
              "inputs": {"image": ["1", 0], "max_people": max_people, "min_confidence": 0.5, "joint_threshold": 0.5}},
        "3": {"class_type": "RePoseSavePoseJSON",
              "inputs": {"pose_keypoint": ["2", 0], "filename_prefix": "detect/pose", "normalized": False}},
        "4": {"class_type": "MaskToImage", "inputs": {"mask": ["2", 1]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "detect/mask"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["2", 2], "filename_prefix": "detect/preview"}},
    }


def _png(comfy, result, node):
    return np.asarray(Image.open(io.BytesIO(comfy.view(result.images(node)[0]))).convert("RGB"))


def test_detect_pose_is_listed_with_tooltips(comfy):
    spec = comfy.object_info("RePoseDetectPose")["RePoseDetectPose"]
    assert spec["category"] == "RePose/pose"
    assert spec["output"] == ["POSE_KEYPOINT", "MASK", "IMAGE"]
    for name, (_kind, opts) in spec["input"]["required"].items():
        assert opts.get("tooltip"), name


@pytest.mark.parametrize("name", ["astronaut", "bus"])
def test_detect_pose_on_a_photo_matches_the_core_reading(comfy, inputs, name):
    result = comfy.run(_prompt(f"{name}.png"))
    assert result.status == "success", result.error()
    frames = json.loads((comfy.home / "output" / result.outputs["3"]["text"][0]).read_text())
    h, w = photos()[name].shape[:2]
    assert len(frames) == 1 and (frames[0]["canvas_width"], frames[0]["canvas_height"]) == (w, h)
    assert len(frames[0]["people"]) == 1
    got = torch.tensor(frames[0]["people"][0]["pose_keypoints_2d"]).view(18, 3)
    from reposedm_core.estimator import load_blazepose

    with torch.no_grad():
        want = load_blazepose()(as_tensor(photos()[name]))[0]
    assert torch.equal(got[:, 2] > 0, want[:, 2] > 0)
    assert (got[:, :2] - want[:, :2]).abs().max() < 0.5          # PNG round trip of the photo: same reading
    mask = _png(comfy, result, "5")[..., 0] / 255.0
    neck = want[1, :2].round().long()
    assert mask.shape == (h, w) and mask[neck[1], neck[0]] > 0.5 and 0.02 < (mask > 0.5).mean() < 0.6
    preview = _png(comfy, result, "6").astype(np.float32)
    assert preview.shape == (h, w, 3) and np.abs(preview - photos()[name]).mean() > 0.5   # skeleton drawn on it


def test_no_person_gives_an_empty_frame(comfy, inputs):
    result = comfy.run(_prompt("grey.png", max_people=3))
    assert result.status == "success", result.error()
    frames = json.loads((comfy.home / "output" / result.outputs["3"]["text"][0]).read_text())
    assert frames == [{"people": [], "canvas_width": 128, "canvas_height": 96}]
    assert _png(comfy, result, "5").max() == 0
