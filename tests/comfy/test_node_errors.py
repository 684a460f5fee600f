"""Every node error a user can reach through a graph, inside the real ComfyUI: each fails the prompt with our
ValueError and its message (what was wrong, what to do), and the server keeps serving.

The input-folder guard of Load Pose JSON is reached the way a user would reach it: a file listed in the input
folder that is a link to a file outside it (a dangling link for the not-found message)."""
from __future__ import annotations

import json
import os

import pytest

from harness.tiny_models import write_tiny_repose
from test_pose_nodes import PERSON

MODEL_A, MODEL_B = "tests/errors_a.safetensors", "tests/errors_b.safetensors"


@pytest.fixture(scope="module")
def setup(comfy, tmp_path_factory):
    write_tiny_repose(comfy.home / "models" / "reposedm" / MODEL_A, seed=0)
    write_tiny_repose(comfy.home / "models" / "reposedm" / MODEL_B, seed=1)
    outside = tmp_path_factory.mktemp("outside") / "secret.json"
    outside.write_text(json.dumps([_frame(176, 256)]))
    links = comfy.home / "input" / "errors"
    links.mkdir(parents=True, exist_ok=True)
    for name, target in (("escape.json", outside), ("gone.json", links / "deleted.json")):
        if not (links / name).is_symlink():
            os.symlink(target, links / name)
    return comfy


def _frame(width: int, height: int, person=PERSON) -> dict:
    return {"people": [{"pose_keypoints_2d": person}], "canvas_width": width,
            "canvas_height": height}


TWO_CANVASES = json.dumps([_frame(176, 256), _frame(64, 64)])
TWO_JOINTS = json.dumps([_frame(176, 256, PERSON[:6] + [0] * 48)])


def _load(text: str = "", file: str = "(use json_text)") -> dict:
    return {"class_type": "RePoseLoadPoseJSON", "inputs": {"json_file": file, "json_text": text, "units": "auto",
                                                           "canvas_width": 0, "canvas_height": 0}}


def _person(batch: int = 1) -> dict:
    return {"class_type": "RePoseSyntheticPerson",
            "inputs": {"seed": 4, "pose_seed": 2, "width": 88, "height": 128, "batch_size": batch}}


def _transfer(target=("2", 1), model_for_sampler="3", source_batch=1, target_batch=1, guidance=None) -> dict:
    graph = {
        "1": _person(source_batch),
        "2": {**_person(target_batch), "inputs": {**_person(target_batch)["inputs"], "pose_seed": 9}},
        "3": {"class_type": "LoadRePoseModel", "inputs": {"model_name": MODEL_A}},
        "8": {"class_type": "LoadRePoseModel", "inputs": {"model_name": MODEL_B}},
        "4": {"class_type": "RecurrentPoseAlign",
              "inputs": {"model": ["3", 0], "source_image": ["1", 0], "source_pose": ["1", 1],
                         "target_pose": list(target), "iterations": 1, "person_index": 0, "warm_start": False}},
        "5": {"class_type": "RePoseSampler",
              "inputs": {"model": [model_for_sampler, 0], "alignment": ["4", 0], "seed": 1, "steps": 1, "cfg": 1.0,
                         "scheduler": "ddim", "shared_noise": False}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
    }
    if guidance:
        graph["7"] = {"class_type": "PoseFieldGuidance",
                      "inputs": {"estimator": "reposedm estimator (shipped)", "scale": 1.0, "target_weight": 1.0,
                                 "head_weight": 1.0, "arms_weight": 1.0, "legs_weight": 1.0, **guidance}}
        graph["5"]["inputs"]["guidance"] = ["7", 0]
    return graph


CASES = {
    "outside the input folder": (
        {"1": _load(file="errors/escape.json"), "2": {"class_type": "RePoseSavePoseJSON", "inputs": {
            "pose_keypoint": ["1", 0], "filename_prefix": "errors/p", "normalized": False}}},
        "pose file 'errors/escape.json' lies outside ComfyUI's input folder; pick a file inside it"),
    "missing pose file": (
        {"1": _load(file="errors/gone.json"), "2": {"class_type": "RePoseSavePoseJSON", "inputs": {
            "pose_keypoint": ["1", 0], "filename_prefix": "errors/p", "normalized": False}}},
        "pose file 'errors/gone.json' was not found in ComfyUI's input folder"),
    "empty json_text": (
        {"1": _load("  "), "2": {"class_type": "RePoseSavePoseJSON", "inputs": {
            "pose_keypoint": ["1", 0], "filename_prefix": "errors/p", "normalized": False}}},
        "json_text is empty; paste POSE_KEYPOINT/OpenPose JSON or pick a json_file"),
    "render at two canvases": (
        {"1": _load(TWO_CANVASES), "2": {"class_type": "RePoseRenderPose", "inputs": {
            "pose_keypoint": ["1", 0], "width": 0, "height": 0, "line_scale": 1.0}},
         "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}},
        "the frames have different canvases [(64, 64), (176, 256)]; set width and height"),
    "score at two canvases": (
        {"1": _load(TWO_CANVASES), "2": {"class_type": "RePosePoseFieldScore", "inputs": {"pose_keypoint": ["1", 0]}}},
        "the frames have different canvases; score them separately or render them at one size"),
    "retarget a track at two canvases": (
        {"1": _load(TWO_CANVASES), "2": _load(json.dumps([_frame(176, 256)])),
         "3": {"class_type": "RePosePoseRetarget", "inputs": {
             "driving_pose": ["1", 0], "reference_pose": ["2", 0], "person_index": 0, "anchor": "feet",
             "scale": "reference", "project_to_manifold": False}},
         "4": {"class_type": "RePoseSavePoseJSON", "inputs": {
             "pose_keypoint": ["3", 0], "filename_prefix": "errors/p", "normalized": False}}},
        "a pose track needs one canvas"),
    "guidance window reversed": (
        _transfer(guidance={"start": 0.5, "end": 0.2}), "end (0.2) must not be before start (0.5)"),
    "batch sizes": (_transfer(source_batch=2, target_batch=3), "batch sizes do not match"),
    "too few joints": (
        {**_transfer(target=("9", 0)), "9": _load(TWO_JOINTS)},
        "target_pose frame 0 person 0 has 2 confident joint(s); alignment needs at least 4"),
    "alignment of another model": (
        _transfer(model_for_sampler="8"),
        "this alignment was made with another model; connect the same model to both nodes"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_node_error_names_the_problem(setup, case):
    comfy = setup
    graph, message = CASES[case]
    result = comfy.run(graph)
    assert result.status == "error", (case, result.status, result.outputs)
    err = result.error()
    assert err["exception_type"].endswith("ValueError"), err
    assert message in err["exception_message"], err["exception_message"]


def test_the_server_keeps_serving_after_the_errors(setup):
    result = setup.run({"1": _person(), "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}})
    assert result.status == "success", result.error()
