"""Pose Retarget and Pose Sequence Clean inside the real ComfyUI: a synthetic driving sequence retargeted onto a
second synthetic person, cleaned, saved; the preview has one image per frame."""
from __future__ import annotations

import json


def _prompt(reference_seed: int = 9) -> dict:
    return {
        "1": {"class_type": "RePoseSyntheticPerson",
              "inputs": {"seed": 2, "pose_seed": 40, "width": 176, "height": 256, "batch_size": 6}},
        "2": {"class_type": "RePoseSyntheticPerson",
              "inputs": {"seed": reference_seed, "pose_seed": 7, "width": 200, "height": 300, "batch_size": 1}},
        "3": {"class_type": "RePosePoseRetarget",
              "inputs": {"driving_pose": ["1", 1], "reference_pose": ["2", 1], "person_index": 0, "anchor": "feet",
                         "scale": "reference", "project_to_manifold": True}},
        "4": {"class_type": "RePosePoseSequenceClean",
              "inputs": {"pose_keypoint": ["3", 0], "person_index": 0, "max_gap": 5, "smoothing": 1.0,
                         "responsiveness": 0.3, "fps": 30.0, "repair": True}},
        "5": {"class_type": "RePoseSavePoseJSON",
              "inputs": {"pose_keypoint": ["4", 0], "filename_prefix": "retarget/pose", "normalized": False}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["3", 1], "filename_prefix": "retarget/preview"}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["4", 1], "filename_prefix": "retarget/clean"}},
    }


def test_nodes_are_listed_with_tooltips(comfy):
    info = comfy.object_info()
    for node in ("RePosePoseRetarget", "RePosePoseSequenceClean"):
        spec = info[node]
        assert spec["category"] == "RePose/pose" and spec["output"] == ["POSE_KEYPOINT", "IMAGE"]
        for name, (_kind, *opts) in spec["input"]["required"].items():
            assert opts and opts[0].get("tooltip"), f"{node}.{name}"


def test_retarget_then_clean_a_sequence(comfy):
    result = comfy.run(_prompt())
    assert result.status == "success", result.error()
    frames = json.loads((comfy.home / "output" / result.outputs["5"]["text"][0]).read_text())
    assert len(frames) == 6 and all((f["canvas_width"], f["canvas_height"]) == (200, 300) for f in frames)
    assert all(len(f["people"]) == 1 for f in frames)
    assert len(result.images("6")) == 6 and len(result.images("7")) == 6


def test_reference_without_that_person_is_a_clear_error(comfy):
    prompt = _prompt()
    prompt["3"]["inputs"]["person_index"] = 3
    result = comfy.run(prompt)
    assert result.status == "error"
    assert "reference_pose has 1 people; person_index 3" in result.error()["exception_message"]
