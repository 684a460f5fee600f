"""Pose-transfer nodes inside a real ComfyUI: model folder, align, sample, sequences, errors, progress, cancel."""
from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from harness.tiny_models import write_tiny_repose

TINY = "tests/tiny_repose.safetensors"


@pytest.fixture(scope="module")
def tiny_model(comfy):
    write_tiny_repose(comfy.home / "models" / "reposedm" / TINY)
    return TINY


def _graph(model_name, steps=3, seed=1, target_batch=1, target_pose_seed=9, iterations=2, cfg=2.0):
    return {
        "1": {"class_type": "RePoseSyntheticPerson",
              "inputs": {"seed": 4, "pose_seed": 2, "width": 88, "height": 128, "batch_size": 1}},
        "2": {"class_type": "RePoseSyntheticPerson",
              "inputs": {"seed": 4, "pose_seed": target_pose_seed, "width": 176, "height": 256,
                         "batch_size": target_batch}},
        "3": {"class_type": "LoadRePoseModel", "inputs": {"model_name": model_name}},
        "4": {"class_type": "RecurrentPoseAlign",
              "inputs": {"model": ["3", 0], "source_image": ["1", 0], "source_pose": ["1", 1],
                         "target_pose": ["2", 1], "iterations": iterations, "person_index": 0, "warm_start": True}},
        "5": {"class_type": "RePoseSampler",
              "inputs": {"model": ["3", 0], "alignment": ["4", 0], "seed": seed, "steps": steps, "cfg": cfg,
                         "scheduler": "dpmpp_2m", "shared_noise": False}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "transfer/out"}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["4", 1], "filename_prefix": "transfer/warp"}},
    }


def _pngs(comfy, result, node):
    return [np.asarray(Image.open(io.BytesIO(comfy.view(im))).convert("RGB")) for im in result.images(node)]


def test_model_folder_is_registered_and_lists_files(comfy, tiny_model):
    options = comfy.object_info("LoadRePoseModel")["LoadRePoseModel"]["input"]["required"]["model_name"][1]["options"]
    assert options[0] == "reposedm_demo (shipped)" and tiny_model in options


def test_pose_transfer_runs_with_progress_at_the_source_size(comfy, tiny_model):
    result = comfy.run(_graph(tiny_model, steps=4))
    assert result.status == "success", result.error()
    out, warp = _pngs(comfy, result, "6"), _pngs(comfy, result, "7")
    assert out[0].shape == warp[0].shape == (128, 88, 3)  # the source image's size, not the model frame
    progress = [d for kind, d in result.messages if kind == "progress" and d.get("node") == "5"]
    assert [d["value"] for d in progress] == [1, 2, 3, 4] and progress[-1]["max"] == 4


def test_same_seed_same_image_and_a_sequence_of_targets(comfy, tiny_model):
    a = _pngs(comfy, comfy.run(_graph(tiny_model, seed=11)), "6")[0]
    comfy.run(_graph(tiny_model, seed=12))  # something else in between, so nothing comes from the cache
    again = _pngs(comfy, comfy.run(_graph(tiny_model, seed=11)), "6")[0]
    assert np.array_equal(a, again)
    seq = comfy.run(_graph(tiny_model, target_batch=3))
    assert seq.status == "success", seq.error()
    assert len(seq.images("6")) == 3


def test_denoise_input_starts_from_the_warp_and_an_old_prompt_without_it_runs(comfy, tiny_model):
    """The appended ``denoise`` input: at a low value the result stays near the warped source (sampling starts
    from it), at 1 it does not; an API prompt saved before the input existed still runs."""
    def run(denoise):
        graph = _graph(tiny_model, seed=5, cfg=1.0)
        graph["5"]["inputs"]["denoise"] = denoise
        result = comfy.run(graph)
        assert result.status == "success", result.error()
        return _pngs(comfy, result, "6")[0].astype(float), _pngs(comfy, result, "7")[0].astype(float)

    low, warp = run(0.1)
    full, _ = run(1.0)
    assert np.abs(low - warp).mean() < 0.5 * np.abs(full - warp).mean()
    old = comfy.run(_graph(tiny_model, seed=5))
    assert old.status == "success", old.error()
    spec = comfy.object_info("RePoseSampler")["RePoseSampler"]["input"]
    assert list(spec["optional"])[-2:] == ["denoise", "temperature"]   # appended, in the order they came


def test_temperature_input_reaches_the_ddpm_sampler(comfy, tiny_model):
    """The appended ``temperature`` input scales the ddpm steps' noise: the same seed at 0.2 and at 1 gives two
    different images, each the same again when re-run; the deterministic schedulers do not change with it."""
    def run(temperature, scheduler="ddpm", seed=6):
        graph = _graph(tiny_model, seed=seed, cfg=1.0)
        graph["5"]["inputs"].update(scheduler=scheduler, temperature=temperature)
        result = comfy.run(graph)
        assert result.status == "success", result.error()
        return _pngs(comfy, result, "6")[0]

    cool, hot = run(0.2), run(1.0)
    assert not np.array_equal(cool, hot)
    run(0.2, seed=7)                                  # something else in between, so nothing comes from the cache
    assert np.array_equal(cool, run(0.2))
    assert np.array_equal(run(0.2, "ddim"), run(1.0, "ddim"))


def test_recurrent_pose_align_defaults_to_the_analytic_warp_for_photos(comfy):
    """A new Recurrent Pose Align node starts at iterations 0 -- what measures better on real photos (see
    test_the_nodes_default_iterations_measure_better_on_real_photos_than_the_refinement) -- and its tooltip says
    why and when to set 3; the demo workflows, with synthetic people, keep 3."""
    import json
    from pathlib import Path

    kind, opts = comfy.object_info("RecurrentPoseAlign")["RecurrentPoseAlign"]["input"]["required"]["iterations"]
    assert kind == "INT" and opts["default"] == 0, opts
    assert "photos" in opts["tooltip"] and "set 3" in opts["tooltip"], opts["tooltip"]
    root = Path(__file__).resolve().parents[2] / "workflows"
    for name in ("Pose transfer with the demo model.json", "Pose transfer with pose field guidance.json"):
        nodes = [n for n in json.loads((root / name).read_text())["nodes"] if n["type"] == "RecurrentPoseAlign"]
        assert nodes and all(n["widgets_values"][0] == 3 for n in nodes), (name, nodes)


@pytest.mark.parametrize("change, message", [
    ({"2": {"class_type": "RePoseLoadPoseJSON", "inputs": {
        "json_file": "(use json_text)", "units": "pixels", "canvas_width": 0, "canvas_height": 0,
        "json_text": '[{"people": [], "canvas_width": 64, "canvas_height": 64}]'}}}, "target_pose frame 0 has no person"),
    ({"4": {"person_index": 3}}, "person_index=3"),
])
def test_alignment_errors_name_the_frame_and_the_reason(comfy, tiny_model, change, message):
    graph = _graph(tiny_model)
    for node, spec in change.items():
        if "class_type" in spec:
            graph[node] = spec
        else:
            graph[node]["inputs"].update(spec)
    if "class_type" in change.get("2", {}):
        graph["4"]["inputs"]["target_pose"] = ["2", 0]
    result = comfy.run(graph)
    assert result.status == "error"
    assert message in result.error()["exception_message"], result.error()["exception_message"]


def test_cancel_during_sampling_then_the_next_prompt_runs(comfy, tiny_model):
    interrupted = {}

    def on_message(kind, data):
        if kind == "progress" and data.get("value") == 2 and not interrupted:
            interrupted["at"] = time.monotonic()
            threading.Thread(target=comfy.interrupt).start()

    result = comfy.run(_graph(tiny_model, steps=200, seed=99), on_message=on_message)
    assert result.status == "interrupted" and interrupted
    after = comfy.run(_graph(tiny_model, steps=2, seed=5))
    assert after.status == "success", after.error()


def _guided(graph, scale):
    graph["8"] = {"class_type": "PoseFieldGuidance",
                  "inputs": {"estimator": "reposedm estimator (shipped)", "scale": scale, "start": 0.0, "end": 1.0,
                             "target_weight": 1.0, "head_weight": 1.0, "arms_weight": 1.0, "legs_weight": 1.0}}
    graph["5"]["inputs"]["guidance"] = ["8", 0]
    return graph


def test_guidance_input_changes_the_result_and_zero_scale_does_not(comfy, tiny_model):
    plain = _pngs(comfy, comfy.run(_graph(tiny_model, seed=21)), "6")[0]
    zero = comfy.run(_guided(_graph(tiny_model, seed=21), 0.0))
    assert zero.status == "success", zero.error()
    guided = comfy.run(_guided(_graph(tiny_model, seed=21), 3.0))
    assert guided.status == "success", guided.error()
    assert np.array_equal(plain, _pngs(comfy, zero, "6")[0])
    assert not np.array_equal(plain, _pngs(comfy, guided, "6")[0])


def test_cancel_during_guided_sampling_then_the_next_prompt_runs(comfy, tiny_model):
    interrupted = {}

    def on_message(kind, data):
        if kind == "progress" and data.get("node") == "5" and data.get("value") == 2 and not interrupted:
            interrupted["at"] = True
            threading.Thread(target=comfy.interrupt).start()

    result = comfy.run(_guided(_graph(tiny_model, steps=200, seed=98), 1.0), on_message=on_message)
    assert result.status == "interrupted" and interrupted
    after = comfy.run(_guided(_graph(tiny_model, steps=2, seed=6), 1.0))
    assert after.status == "success", after.error()
