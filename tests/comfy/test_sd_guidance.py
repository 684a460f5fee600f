"""PoseFieldGuidance patching a stock SD1.5 graph inside the real ComfyUI (issue: guidance on any model).

The graph is the bundled `sd_controlnet_pose_guidance` workflow's: CheckpointLoaderSimple, CLIPTextEncode,
ControlNetLoader + ControlNetApplyAdvanced with the rendered target pose, our guidance patch, KSampler,
VAEDecode. The checkpoint (tiny SD1.5-shaped UNet, the real SD VAE architecture, CLIP-L) and the ControlNet
are random weights written by the test under the names users have for the real files.
"""
from __future__ import annotations

import io
import re
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from harness.tiny_sd import CHECKPOINT, CONTROLNET, write_tiny_sd

SIZE = 64
STEPS = 5


@pytest.fixture(scope="module")
def tiny_sd(comfy):
    return write_tiny_sd(comfy.home / "models")


def _graph(scale: float, seed: int = 3, steps: int = STEPS, start: float = 0.0, end: float = 1.0,
           reader: str = "reposedm estimator (shipped)") -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a person dancing", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "RePoseSyntheticPerson",
              "inputs": {"seed": 5, "pose_seed": 19, "width": SIZE, "height": SIZE, "batch_size": 1}},
        "5": {"class_type": "RePoseRenderPose",
              "inputs": {"pose_keypoint": ["4", 1], "width": 0, "height": 0, "line_scale": 1.0}},
        "6": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": CONTROLNET}},
        "7": {"class_type": "ControlNetApplyAdvanced",
              "inputs": {"positive": ["2", 0], "negative": ["3", 0], "control_net": ["6", 0], "image": ["5", 0],
                         "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0, "vae": ["1", 2]}},
        "8": {"class_type": "PoseFieldGuidance",
              "inputs": {"estimator": reader, "scale": scale, "start": start, "end": end,
                         "target_weight": 1.0, "head_weight": 1.0, "arms_weight": 1.0, "legs_weight": 1.0,
                         "model": ["1", 0], "vae": ["1", 2], "target_pose": ["4", 1]}},
        "9": {"class_type": "EmptyLatentImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": 1}},
        "10": {"class_type": "KSampler",
               "inputs": {"model": ["8", 1], "seed": seed, "steps": steps, "cfg": 5.0, "sampler_name": "euler",
                          "scheduler": "normal", "positive": ["7", 0], "negative": ["7", 1],
                          "latent_image": ["9", 0], "denoise": 1.0}},
        "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["1", 2]}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "sdguide/out"}},
    }


def _image(comfy, result) -> torch.Tensor:
    png = comfy.view(result.images("12")[0])
    arr = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(arr).permute(2, 0, 1)[None]


def _hook_lines(comfy, before: int) -> list[tuple[float, float]]:
    text = comfy.log_text()[before:]
    return [(float(s), float(v)) for s, v in re.findall(r"RePoseDM pose guidance: sigma ([\d.]+) loss ([-\d.]+)", text)]


def _target() -> torch.Tensor:
    from reposedm_core.data.synthetic import render_people

    return render_people([5], [19], SIZE, SIZE)["keypoints"]   # the graph's target pose, ground truth


def _joint_error(image: torch.Tensor) -> float:
    """Median distance in pixels from the joints the shipped estimator reads in the image to the ground-truth target
    pose, over the target's joints. Not the loss the guidance descends (the field's distance plus a weighted mean
    of squared, scale-normalised errors): no field term, and a median of plain pixel distances.

    Why not BlazePose as the judge: the tiny random SD draws no person, and a second reader's view of such an
    image moves either way under the first reader's guidance (measured on seeds 3, 5, 7, 11: BlazePose's median
    error 9.7 -> 10.2, 8.2 -> 8.0, 9.2 -> 9.4, 5.7 -> 6.0 px). Judging by an independent reader needs a model that
    draws people, which the test tier does not have."""
    from reposedm_core.estimator import load_estimator

    target = _target()
    with torch.no_grad():
        xy = load_estimator().predict(image).xy[0]
    shown = target[0, :, 2] > 0
    return float((xy - target[0, :, :2]).norm(dim=-1)[shown].median())


def test_guided_sd_graph_runs_the_hook_on_every_step_and_moves_the_joints_to_the_target(comfy, tiny_sd):
    for seed in (3, 5):
        plain = comfy.run(_graph(0.0, seed=seed))
        assert plain.status == "success", plain.error()
        before = len(comfy.log_text())
        guided = comfy.run(_graph(3.0, seed=seed))
        assert guided.status == "success", guided.error()
        calls = _hook_lines(comfy, before)
        assert len(calls) == STEPS, calls          # euler: one model call per step, every step inside [0, 1]
        sigmas = [s for s, _ in calls]
        assert sigmas == sorted(sigmas, reverse=True)
        a, b = _image(comfy, plain), _image(comfy, guided)
        assert not torch.equal(a, b)
        assert _joint_error(b) < _joint_error(a), (seed, _joint_error(b), _joint_error(a))


def test_guidance_on_a_rectified_flow_model(comfy, tiny_sd):
    """ModelSamplingSD3 turns the model into a rectified-flow one (x = (1 - s) x0 + s noise, ComfyUI's CONST):
    the patch takes its flow branch (noise level = sigma), guides every step with sigmas in (0, 1] and changes
    the image."""
    graph = _graph(0.0, seed=3)
    graph["13"] = {"class_type": "ModelSamplingSD3", "inputs": {"model": ["1", 0], "shift": 3.0}}
    graph["8"]["inputs"]["model"] = ["13", 0]
    plain = comfy.run(graph)
    assert plain.status == "success", plain.error()
    graph["8"]["inputs"]["scale"] = 3.0
    before = len(comfy.log_text())
    guided = comfy.run(graph)
    assert guided.status == "success", guided.error()
    calls = _hook_lines(comfy, before)
    assert len(calls) == STEPS and all(0 < s <= 1 for s, _ in calls), calls
    assert not torch.equal(_image(comfy, plain), _image(comfy, guided))


def test_the_window_limits_the_guided_steps(comfy, tiny_sd):
    before = len(comfy.log_text())
    result = comfy.run(_graph(10.0, seed=4, start=0.5, end=1.0))
    assert result.status == "success", result.error()
    assert 0 < len(_hook_lines(comfy, before)) < STEPS


def test_interrupt_during_guided_sd_sampling_then_the_next_prompt_runs(comfy, tiny_sd):
    interrupted = {}

    def on_message(kind, data):
        if kind == "progress" and data.get("node") == "10" and data.get("value") == 2 and not interrupted:
            interrupted["at"] = True
            threading.Thread(target=comfy.interrupt).start()

    result = comfy.run(_graph(5.0, seed=8, steps=200), on_message=on_message)
    assert result.status == "interrupted" and interrupted
    after = comfy.run(_graph(5.0, seed=9))
    assert after.status == "success", after.error()


def test_auto_reader_on_a_model_is_blazepose_and_guides_every_step(comfy, tiny_sd):
    """The default reader when the patch is on a MODEL: BlazePose, reading the target pose's region of interest
    (the tiny random SD draws no person, so this checks the mechanics: the reader runs on every step, its loss
    is finite and its gradient changes the image)."""
    plain = comfy.run(_graph(0.0, seed=6, reader="auto"))
    assert plain.status == "success", plain.error()
    before = len(comfy.log_text())
    guided = comfy.run(_graph(3.0, seed=6, reader="auto"))
    assert guided.status == "success", guided.error()
    assert "RePoseDM pose guidance reader: BlazePose (photos)" in comfy.log_text()[before:]
    calls = _hook_lines(comfy, before)
    assert len(calls) == STEPS and all(np.isfinite(v) for _, v in calls), calls
    assert not torch.equal(_image(comfy, plain), _image(comfy, guided))


def test_an_openpose_body_network_the_user_has_is_offered_and_guides_every_step(comfy, tiny_sd):
    """A ``body_pose_model.pth`` in models/reposedm (random weights under the real file's name and key layout)
    appears in the estimator list and guides the stock graph: the OpenPose backend loaded inside ComfyUI with
    weights_only, differentiated on every step, its gradient changing the image."""
    from harness.tiny_models import random_openpose_body

    random_openpose_body(comfy.home / "models" / "reposedm" / "body_pose_model.pth")
    options = comfy.object_info("PoseFieldGuidance")["PoseFieldGuidance"]["input"]["required"]["estimator"]
    reader = "openpose: body_pose_model.pth"
    assert reader in str(options), options
    plain = comfy.run(_graph(0.0, seed=6, reader=reader))
    assert plain.status == "success", plain.error()
    before = len(comfy.log_text())
    guided = comfy.run(_graph(3.0, seed=6, reader=reader))
    assert guided.status == "success", guided.error()
    assert f"RePoseDM pose guidance reader: {reader}" in comfy.log_text()[before:]
    calls = _hook_lines(comfy, before)
    assert len(calls) == STEPS and all(np.isfinite(v) for _, v in calls), calls
    assert not torch.equal(_image(comfy, plain), _image(comfy, guided))
