"""Person Layer Warp and the photo_pose_transfer_sd15 workflow inside the real ComfyUI (issue 14).

The workflow is the bundled one's API prompt (scripts/build_workflows.py), run on a real photo (scikit-image's
astronaut) with the tiny random SD1.5-architecture checkpoint and OpenPose-style ControlNet of tests/harness/tiny_sd.py
under the names users have, at 64 px and 3 steps (each guided step decodes with the full-size SD VAE architecture).
"""
from __future__ import annotations

import importlib.util
import io
import json
import re
import threading

import numpy as np
import pytest
import torch
from harness.comfy_server import REPO
from harness.photos import photos
from harness.tiny_sd import write_tiny_sd
from PIL import Image

SIZE = 64
STEPS = 3
NAME = "photo_pose_transfer_sd15"


@pytest.fixture(scope="module")
def setup(comfy):
    write_tiny_sd(comfy.home / "models")
    d = comfy.home / "input"
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photos()["astronaut"]).resize((SIZE, SIZE), Image.LANCZOS).save(d / "astronaut_small.png")
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(d / "grey_small.png")
    return d


def _workflow_prompt(steps: int = STEPS, image: str = "astronaut_small.png") -> dict:
    spec = importlib.util.spec_from_file_location("build_workflows", REPO / "scripts" / "build_workflows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    prompt = json.loads(json.dumps(module.WORKFLOWS[NAME][1]))
    prompt["1"]["inputs"]["image"] = image
    prompt["2"]["inputs"].update(width=SIZE, height=SIZE, upscale_method="nearest-exact", crop="disabled")
    prompt["6"]["inputs"].update(feather=2, grow=1)          # the 512 px seam of 6 px, scaled to 64 px
    prompt["14"]["inputs"]["steps"] = steps
    prompt["90"] = {"class_type": "MaskToImage", "inputs": {"mask": ["6", 1]}}
    prompt["91"] = {"class_type": "SaveImage", "inputs": {"images": ["90", 0], "filename_prefix": "photo/mask"}}
    prompt["92"] = {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "photo/composite"}}
    prompt["93"] = {"class_type": "RePoseSavePoseJSON",
                    "inputs": {"pose_keypoint": ["5", 0], "filename_prefix": "photo/target", "normalized": False}}
    prompt["94"] = {"class_type": "RePoseSavePoseJSON",
                    "inputs": {"pose_keypoint": ["3", 0], "filename_prefix": "photo/source", "normalized": False}}
    return prompt


def _png(comfy, result, node) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(comfy.view(result.images(node)[0]))).convert("RGB"), dtype=np.float32) / 255


def _pose(comfy, result, node) -> torch.Tensor:
    frames = json.loads((comfy.home / "output" / result.outputs[node]["text"][0]).read_text())
    return torch.tensor(frames[0]["people"][0]["pose_keypoints_2d"]).view(1, 18, 3)


def test_person_layer_warp_is_listed_with_tooltips(comfy):
    spec = comfy.object_info("RePosePersonLayerWarp")["RePosePersonLayerWarp"]
    assert spec["category"] == "RePose" and spec["display_name"] == "Person Layer Warp (RePose)"
    assert spec["output"] == ["IMAGE", "MASK", "IMAGE"]
    inputs = {**spec["input"]["required"], **spec["input"].get("optional", {})}
    assert set(inputs) >= {"image", "source_pose", "target_pose", "mask"}
    for name, (_kind, opts) in inputs.items():
        assert opts.get("tooltip"), name


def test_bundled_file_is_built_from_the_same_prompt():
    spec = importlib.util.spec_from_file_location("build_workflows", REPO / "scripts" / "build_workflows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    graph = json.loads((REPO / "workflows" / f"{module.title(NAME)}.json").read_text())
    types = sorted(n["type"] for n in graph["nodes"] if n["type"] != "Note")
    assert types == sorted(n["class_type"] for n in module.WORKFLOWS[NAME][1].values())
    note = next(n for n in graph["nodes"] if n["type"] == "Note")["widgets_values"][0]
    assert "v1-5-pruned-emaonly" in note and "control_v11p_sd15_openpose" in note


def test_the_photo_workflow_runs_and_sd_only_touches_the_inpaint_mask(comfy, setup):
    before = len(comfy.log_text())
    result = comfy.run(_workflow_prompt())
    assert result.status == "success", result.error()
    hooks = [float(s) for s in re.findall(r"RePoseDM pose guidance: sigma ([\d.]+) loss", comfy.log_text()[before:])]
    assert 0 < len(hooks) < STEPS and hooks == sorted(hooks, reverse=True), hooks   # once per step, window 0-0.6
    assert "RePoseDM pose guidance reader: BlazePose (photos)" in comfy.log_text()[before:]
    final, composite = _png(comfy, result, "17"), _png(comfy, result, "92")
    mask = _png(comfy, result, "91")[..., 0]
    assert final.shape == composite.shape == (SIZE, SIZE, 3)
    shots = REPO / "outputs" / "comfy"
    shots.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.concatenate([composite, np.repeat(mask[..., None], 3, -1), final], 1) * 255).astype(np.uint8)
                    ).save(shots / f"{NAME}.png")                                   # composite | mask | result
    keep = mask == 0
    assert keep.mean() > 0.1 and np.array_equal(final[keep], composite[keep])
    assert np.abs(final - composite)[mask > 0.5].mean() > 0.01                      # SD painted the masked area

    # every pixel the warp vacated or could not fill from the photo is under the mask (the same warp, in the core)
    from reposedm_core.estimator import load_blazepose
    from reposedm_core.photo import person_layer_warp, select_person_masks

    image = torch.from_numpy(np.array(Image.open(setup / "astronaut_small.png").convert("RGB"))).permute(2, 0, 1)
    image = image[None].float() / 255
    source, target = _pose(comfy, result, "94"), _pose(comfy, result, "93")
    with torch.no_grad():
        person = select_person_masks(load_blazepose().people(image, 2), source)
        out = person_layer_warp(image, source, target, person, feather=2, grow=1)
    invent = (out.vacated | out.disoccluded)[0, 0].numpy()
    assert invent.any() and (mask[invent] >= 0.5).mean() > 0.995


def _warp_prompt(image: str = "astronaut_small.png", target: str | None = None, batch: int = 1,
                 mask_size: int | None = None) -> dict:
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": batch}},
        "3": {"class_type": "RePoseDetectPose",
              "inputs": {"image": ["1", 0], "max_people": 1, "min_confidence": 0.5, "joint_threshold": 0.5}},
        "6": {"class_type": "RePosePersonLayerWarp",
              "inputs": {"image": ["2", 0], "source_pose": ["3", 0], "target_pose": ["3", 0], "person_index": 0,
                         "feather": 6, "grow": 4}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
    }
    if target is not None:
        prompt["4"] = {"class_type": "RePoseLoadPoseJSON",
                       "inputs": {"json_file": "(use json_text)", "json_text": target, "units": "pixels",
                                  "canvas_width": SIZE, "canvas_height": SIZE}}
        prompt["6"]["inputs"]["target_pose"] = ["4", 0]
    if mask_size is not None:
        prompt["5"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": mask_size, "height": mask_size}}
        prompt["6"]["inputs"]["mask"] = ["5", 0]
    return prompt


def _frames(*poses: list[float]) -> str:
    return json.dumps([{"people": [{"pose_keypoints_2d": p}], "canvas_width": SIZE, "canvas_height": SIZE}
                       for p in poses])


TWO_JOINTS = [64, 30, 1, 64, 50, 1] + [0, 0, 0] * 16


@pytest.mark.parametrize("case, kwargs, message", [
    ("no person", {"image": "grey_small.png"}, "source_pose frame 0 has no person"),
    ("too few joints", {"target": _frames(TWO_JOINTS)}, "target_pose frame 0 person 0 has 2 confident joint"),
    ("batch mismatch", {"batch": 2, "target": _frames(*[[64, 30, 1, 64, 50, 1] * 9] * 3)}, "batch sizes do not match"),
    ("mask size", {"mask_size": 32}, "mask must be"),
])
def test_bad_input_fails_on_the_warp_node_with_a_clear_message(comfy, setup, case, kwargs, message):
    result = comfy.run(_warp_prompt(**kwargs))
    assert result.status == "error", case
    err = result.error()
    assert err["node_id"] == "6" and message in err["exception_message"], (case, err["exception_message"])


def test_interrupting_the_photo_workflow_leaves_the_server_serving(comfy, setup):
    seen = {}

    def on_message(kind, data):
        if kind == "progress" and data.get("node") == "14" and data.get("value") == 1 and not seen:
            seen["at"] = True
            threading.Thread(target=comfy.interrupt).start()

    result = comfy.run(_workflow_prompt(steps=100), on_message=on_message)
    assert result.status == "interrupted" and seen
    after = comfy.run(_warp_prompt())
    assert after.status == "success", after.error()
