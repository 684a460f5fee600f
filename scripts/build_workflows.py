"""Build the bundled UI-format workflows in workflows/ and their template thumbnails, from real runs.

The UI format (LiteGraph) is produced by the real ComfyUI front end: a ComfyUI server with this pack is
started, each API prompt below is loaded in headless Chromium with ``app.loadApiJson``, a note is added and
the graph is **run in the page** (stand-in SD weights and a real photo, see tests/harness/page_runs.py).
Then it is laid out with the sizes its nodes have once their previews have arrived (so a finished run has no
node covering another), opened at 100 % zoom, and written to ``workflows/<name>.json``; the run's images make
``workflows/<name>.jpg``, the thumbnail ComfyUI's template browser asks for next to each custom-node template.

    .venv/bin/python scripts/build_workflows.py                 # every workflow defined below
    .venv/bin/python scripts/build_workflows.py pose_basics     # one
    .venv/bin/python scripts/build_workflows.py --from-files    # every workflows/*.json as it is (also ones not
                                                                # defined here): run, re-lay out, thumbnail
    .venv/bin/python scripts/build_workflows.py --from-files photo_pose_transfer_sd15
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from harness.comfy_server import ComfyServer  # noqa: E402
from harness.page_runs import (CHROMIUM, CHROMIUM_ARGS, JS_LAYOUT, open_page, prepare_home, reload_page,  # noqa: E402
                               run_in_page)
from reposedm_core.sampling import DEFAULT_CFG, DEFAULT_DENOISE, DEFAULT_SCHEDULER, DEFAULT_TEMPERATURE  # noqa: E402

log = logging.getLogger("build_workflows")

# name -> (note text, API prompt). Seeds are fixed ("control_after_generate" is set to fixed below).
WORKFLOWS: dict[str, tuple[str, dict]] = {
    "pose_basics": (
        "RePoseDM pose basics: a synthetic person and its exact pose (POSE_KEYPOINT), the pose rendered as an "
        "OpenPose control image, saved as JSON, loaded back and rendered again. Swap Synthetic Person for a "
        "DWPose/OpenPose preprocessor to work on photos.",
        {
            "1": {"class_type": "RePoseSyntheticPerson",
                  "inputs": {"seed": 3, "pose_seed": 12, "width": 176, "height": 256, "batch_size": 4}},
            "2": {"class_type": "RePoseRenderPose",
                  "inputs": {"pose_keypoint": ["1", 1], "width": 0, "height": 0, "line_scale": 1.0}},
            "3": {"class_type": "RePoseSavePoseJSON",
                  "inputs": {"pose_keypoint": ["1", 1], "filename_prefix": "reposedm/pose", "normalized": False}},
            "4": {"class_type": "RePoseLoadPoseJSON",
                  "inputs": {"json_file": "(use json_text)", "json_text": ["3", 0], "units": "auto",
                             "canvas_width": 0, "canvas_height": 0}},
            "5": {"class_type": "RePoseRenderPose",
                  "inputs": {"pose_keypoint": ["4", 0], "width": 352, "height": 512, "line_scale": 1.0}},
            "6": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
            "7": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "reposedm/skeleton"}},
            "8": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
        },
    ),
    "pose_repair": (
        "Pose repair with the pose interaction field: synthetic poses are broken on purpose (Corrupt Pose), "
        "scored (the blame image colours the culprit joints red), repaired onto the manifold of valid human "
        "poses and scored again. Feed detected or hand-edited poses instead of the synthetic ones.",
        {
            "1": {"class_type": "RePoseSyntheticPerson",
                  "inputs": {"seed": 5, "pose_seed": 40, "width": 176, "height": 256, "batch_size": 4}},
            "2": {"class_type": "RePoseCorruptPose",
                  "inputs": {"pose_keypoint": ["1", 1], "kind": "detached_joint", "strength": "strong", "seed": 1}},
            "3": {"class_type": "RePosePoseFieldScore", "inputs": {"pose_keypoint": ["2", 0]}},
            "4": {"class_type": "RePosePoseFieldRepair",
                  "inputs": {"pose_keypoint": ["2", 0], "strength": 1.0, "steps": 64, "confidence_weight": 0.8,
                             "learned_proposal": True}},
            "5": {"class_type": "RePosePoseFieldScore", "inputs": {"pose_keypoint": ["4", 0]}},
            "6": {"class_type": "RePoseRenderPose",
                  "inputs": {"pose_keypoint": ["2", 0], "width": 0, "height": 0, "line_scale": 1.0}},
            "7": {"class_type": "RePoseRenderPose",
                  "inputs": {"pose_keypoint": ["4", 0], "width": 0, "height": 0, "line_scale": 1.0}},
            "8": {"class_type": "PreviewImage", "inputs": {"images": ["3", 2]}},
            "9": {"class_type": "PreviewImage", "inputs": {"images": ["5", 2]}},
            "10": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "reposedm/broken"}},
            "11": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "reposedm/repaired"}},
        },
    ),
    "pose_from_photo": (
        "Pose from a photo: Detect Pose (BlazePose, shipped with the pack, offline) finds the person, reads the "
        "OpenPose-18 pose and a person mask; the pose field scores the reading and repairs implausible joints; the "
        "repaired pose is rendered as an OpenPose control image and saved as JSON. Load your own photo in Load "
        "Image; raise max_people for group photos.",
        {
            "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
            "2": {"class_type": "RePoseDetectPose",
                  "inputs": {"image": ["1", 0], "max_people": 1, "min_confidence": 0.5, "joint_threshold": 0.5}},
            "3": {"class_type": "RePosePoseFieldScore", "inputs": {"pose_keypoint": ["2", 0]}},
            "4": {"class_type": "RePosePoseFieldRepair",
                  "inputs": {"pose_keypoint": ["2", 0], "strength": 1.0, "steps": 64, "confidence_weight": 0.8,
                             "learned_proposal": True}},
            "5": {"class_type": "RePoseRenderPose",
                  "inputs": {"pose_keypoint": ["4", 0], "width": 0, "height": 0, "line_scale": 1.0}},
            "6": {"class_type": "MaskToImage", "inputs": {"mask": ["2", 1]}},
            "7": {"class_type": "PreviewImage", "inputs": {"images": ["2", 2]}},
            "8": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "reposedm/photo_pose"}},
            "10": {"class_type": "RePoseSavePoseJSON",
                   "inputs": {"pose_keypoint": ["4", 0], "filename_prefix": "reposedm/photo_pose", "normalized": False}},
        },
    ),
    "pose_retarget": (
        "Pose retargeting: the person in a photo (Detect Pose) is given a driving motion (here a synthetic "
        "person's pose sequence; use DWPose/OpenPose frames of a video). Pose Retarget redraws every driving frame "
        "with the photo person's proportions, Pose Sequence Clean removes jitter, swaps and gaps, and the result "
        "is rendered and fed to RecurrentPoseAlign as a batch of target poses for the demo model (iterations 0: "
        "on photos the analytic limb warp, and the result sampled from it, measure better than the refinement).",
        {
            "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
            "2": {"class_type": "RePoseDetectPose",
                  "inputs": {"image": ["1", 0], "max_people": 1, "min_confidence": 0.5, "joint_threshold": 0.5}},
            "3": {"class_type": "RePoseSyntheticPerson",
                  "inputs": {"seed": 2, "pose_seed": 40, "width": 176, "height": 256, "batch_size": 4}},
            "4": {"class_type": "RePosePoseRetarget",
                  "inputs": {"driving_pose": ["3", 1], "reference_pose": ["2", 0], "person_index": 0,
                             "anchor": "feet", "scale": "reference", "project_to_manifold": True}},
            "5": {"class_type": "RePosePoseSequenceClean",
                  "inputs": {"pose_keypoint": ["4", 0], "person_index": 0, "max_gap": 5, "smoothing": 0.5,
                             "responsiveness": 0.6, "fps": 30.0, "repair": True}},
            "6": {"class_type": "RePoseRenderPose",
                  "inputs": {"pose_keypoint": ["5", 0], "width": 0, "height": 0, "line_scale": 1.0}},
            "7": {"class_type": "LoadRePoseModel", "inputs": {"model_name": "reposedm_demo (shipped)"}},
            "8": {"class_type": "RecurrentPoseAlign",
                  "inputs": {"model": ["7", 0], "source_image": ["1", 0], "source_pose": ["2", 0],
                             "target_pose": ["5", 0], "iterations": 0, "person_index": 0, "warm_start": True}},
            "9": {"class_type": "RePoseSampler",
                  "inputs": {"model": ["7", 0], "alignment": ["8", 0], "seed": 0, "steps": 10, "cfg": DEFAULT_CFG,
                             "scheduler": DEFAULT_SCHEDULER, "shared_noise": True,
                             "denoise": DEFAULT_DENOISE, "temperature": DEFAULT_TEMPERATURE}},
            "10": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "reposedm/retargeted"}},
            "11": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "reposedm/retarget_result"}},
            "12": {"class_type": "PreviewImage", "inputs": {"images": ["4", 1]}},
        },
    ),
    "pose_transfer_demo": (
        "RePoseDM pose transfer with the shipped demo model: the source person is re-rendered in the target pose. "
        "Recurrent Pose Align warps the source texture onto the target skeleton (preview), then the RePoseDM "
        "sampler renders the result. The demo model was trained on the synthetic world at 96x64; any image size "
        "works (letterboxed to the model frame and back). Give a batch of target poses to render a sequence.",
        {
            "1": {"class_type": "RePoseSyntheticPerson",
                  "inputs": {"seed": 7, "pose_seed": 101, "width": 176, "height": 256, "batch_size": 1}},
            "2": {"class_type": "RePoseSyntheticPerson",
                  "inputs": {"seed": 7, "pose_seed": 202, "width": 176, "height": 256, "batch_size": 1}},
            "3": {"class_type": "LoadRePoseModel", "inputs": {"model_name": "reposedm_demo (shipped)"}},
            "4": {"class_type": "RecurrentPoseAlign",
                  "inputs": {"model": ["3", 0], "source_image": ["1", 0], "source_pose": ["1", 1],
                             "target_pose": ["2", 1], "iterations": 3, "person_index": 0, "warm_start": True}},
            "5": {"class_type": "RePoseSampler",
                  "inputs": {"model": ["3", 0], "alignment": ["4", 0], "seed": 0, "steps": 20, "cfg": DEFAULT_CFG,
                             "scheduler": DEFAULT_SCHEDULER, "shared_noise": False,
                             "denoise": DEFAULT_DENOISE, "temperature": DEFAULT_TEMPERATURE}},
            "6": {"class_type": "PreviewImage", "inputs": {"images": ["4", 1]}},
            "7": {"class_type": "PreviewImage", "inputs": {"images": ["4", 2]}},
            "8": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "reposedm/transfer"}},
            "9": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
        },
    ),
    "pose_transfer_guided": (
        "Pose transfer with pose-field guidance: at every step of the window the pose of the clean-image estimate "
        "is read by the keypoint estimator and pulled toward the target pose and the manifold of valid human poses. "
        "Compare the guided and the unguided result (same seed); raise 'scale' for a stronger pull.",
        {
            "1": {"class_type": "RePoseSyntheticPerson",
                  "inputs": {"seed": 7, "pose_seed": 101, "width": 176, "height": 256, "batch_size": 1}},
            "2": {"class_type": "RePoseSyntheticPerson",
                  "inputs": {"seed": 7, "pose_seed": 202, "width": 176, "height": 256, "batch_size": 1}},
            "3": {"class_type": "LoadRePoseModel", "inputs": {"model_name": "reposedm_demo (shipped)"}},
            "4": {"class_type": "RecurrentPoseAlign",
                  "inputs": {"model": ["3", 0], "source_image": ["1", 0], "source_pose": ["1", 1],
                             "target_pose": ["2", 1], "iterations": 3, "person_index": 0, "warm_start": True}},
            "5": {"class_type": "PoseFieldGuidance",
                  "inputs": {"estimator": "auto", "scale": 1.0, "start": 0.0, "end": 0.8,
                             "target_weight": 1.0, "head_weight": 1.0, "arms_weight": 1.0, "legs_weight": 1.0}},
            "6": {"class_type": "RePoseSampler",
                  "inputs": {"model": ["3", 0], "alignment": ["4", 0], "seed": 0, "steps": 20, "cfg": DEFAULT_CFG,
                             "scheduler": DEFAULT_SCHEDULER, "guidance": ["5", 0], "shared_noise": False,
                             "denoise": DEFAULT_DENOISE, "temperature": DEFAULT_TEMPERATURE}},
            "7": {"class_type": "RePoseSampler",
                  "inputs": {"model": ["3", 0], "alignment": ["4", 0], "seed": 0, "steps": 20, "cfg": DEFAULT_CFG,
                             "scheduler": DEFAULT_SCHEDULER, "shared_noise": False,
                             "denoise": DEFAULT_DENOISE, "temperature": DEFAULT_TEMPERATURE}},
            "8": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "reposedm/guided"}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "reposedm/unguided"}},
            "10": {"class_type": "PreviewImage", "inputs": {"images": ["4", 2]}},
        },
    ),
    "sd_controlnet_pose_guidance": (
        "Pose-field guidance on Stable Diffusion 1.5 with ControlNet-OpenPose. Pose Field Guidance patches the MODEL: "
        "on every step of its window the denoised latent is decoded with this VAE, its pose is read by the keypoint "
        "reader (auto: BlazePose, made for photos) and the latent is pulled toward the target pose and the manifold of valid human poses; KSampler "
        "then samples as usual. Needs your own SD1.5 checkpoint (v1-5-pruned-emaonly.safetensors in "
        "models/checkpoints) and control_v11p_sd15_openpose.safetensors in models/controlnet. Replace Synthetic "
        "Person by Load Pose JSON or a DWPose/OpenPose preprocessor for your own target pose.",
        {
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
            "2": {"class_type": "CLIPTextEncode",
                  "inputs": {"text": "a full-body photo of a person dancing in a bright studio, detailed clothes",
                             "clip": ["1", 1]}},
            "3": {"class_type": "CLIPTextEncode",
                  "inputs": {"text": "blurry, deformed, extra limbs, cropped", "clip": ["1", 1]}},
            "4": {"class_type": "RePoseSyntheticPerson",
                  "inputs": {"seed": 11, "pose_seed": 303, "width": 512, "height": 512, "batch_size": 1}},
            "5": {"class_type": "RePoseRenderPose",
                  "inputs": {"pose_keypoint": ["4", 1], "width": 0, "height": 0, "line_scale": 1.0}},
            "6": {"class_type": "ControlNetLoader",
                  "inputs": {"control_net_name": "control_v11p_sd15_openpose.safetensors"}},
            "7": {"class_type": "ControlNetApplyAdvanced",
                  "inputs": {"positive": ["2", 0], "negative": ["3", 0], "control_net": ["6", 0], "image": ["5", 0],
                             "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0, "vae": ["1", 2]}},
            "8": {"class_type": "PoseFieldGuidance",
                  "inputs": {"estimator": "auto", "scale": 1.0, "start": 0.0, "end": 0.8,
                             "target_weight": 1.0, "head_weight": 1.0, "arms_weight": 1.0, "legs_weight": 1.0,
                             "model": ["1", 0], "vae": ["1", 2], "target_pose": ["4", 1]}},
            "9": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
            "10": {"class_type": "KSampler",
                   "inputs": {"model": ["8", 1], "seed": 0, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
                              "scheduler": "normal", "positive": ["7", 0], "negative": ["7", 1],
                              "latent_image": ["9", 0], "denoise": 1.0}},
            "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["1", 2]}},
            "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "reposedm/sd_guided"}},
            "13": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
        },
    ),
}

def _photo_pose_transfer_sd15() -> tuple[str, dict]:
    """Pose transfer on the user's own photo through their SD1.5 + ControlNet-OpenPose (issue 14)."""
    arms_out = [0.50, 0.15, 1, 0.50, 0.25, 1, 0.42, 0.25, 1, 0.32, 0.25, 1, 0.22, 0.25, 1, 0.58, 0.25, 1,
                0.68, 0.25, 1, 0.78, 0.25, 1, 0.45, 0.50, 1, 0.45, 0.68, 1, 0.45, 0.86, 1, 0.55, 0.50, 1,
                0.55, 0.68, 1, 0.55, 0.86, 1, 0.48, 0.13, 1, 0.52, 0.13, 1, 0.46, 0.14, 1, 0.54, 0.14, 1]
    driving = json.dumps([{"people": [{"pose_keypoints_2d": arms_out}], "canvas_width": 512, "canvas_height": 512}])
    note = (
        "Pose transfer on your own photo with your SD1.5 model. The person's own pixels are moved into the target "
        "pose (Person Layer Warp: per-limb transforms, the background stays), and SD inpaints only what the photo "
        "never showed (the place the person left, hidden body parts, a 6 px seam) under ControlNet-OpenPose on the "
        "target pose, with Pose Field Guidance (BlazePose reader) pulling the pose onto the target. Needs "
        "v1-5-pruned-emaonly.safetensors in models/checkpoints and control_v11p_sd15_openpose.pth in "
        "models/controlnet (SD1.5 inpainting checkpoints work too). Widgets for SD1.5 at 512 px: Upscale Image "
        "512x512 center crop (use your photo's aspect, multiples of 8, e.g. 512x768 for a portrait); KSampler 25 "
        "steps dpmpp_2m karras, cfg 7, denoise 1 (VAE Encode for Inpainting greys the masked area); ControlNet "
        "strength 1; guidance scale 1 over the first 60% of the steps (the pose is set early; later steps only "
        "draw detail), target_weight 1, part weights 1 (raise arms_weight if the arms stay behind). The target "
        "pose: edit Load Pose JSON (0..1 units) or connect your own; Pose Retarget gives it the person's "
        "proportions with the neck where the person's is (anchor feet for full-body photos). Verified here with "
        "tiny random stand-in models only, not with real SD weights.")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "ImageScale",
              "inputs": {"image": ["1", 0], "upscale_method": "lanczos", "width": 512, "height": 512,
                         "crop": "center"}},
        "3": {"class_type": "RePoseDetectPose",
              "inputs": {"image": ["2", 0], "max_people": 1, "min_confidence": 0.5, "joint_threshold": 0.5}},
        "4": {"class_type": "RePoseLoadPoseJSON",
              "inputs": {"json_file": "(use json_text)", "json_text": driving, "units": "normalized",
                         "canvas_width": 0, "canvas_height": 0}},
        "5": {"class_type": "RePosePoseRetarget",
              "inputs": {"driving_pose": ["4", 0], "reference_pose": ["3", 0], "person_index": 0,
                         "anchor": "neck", "scale": "reference", "project_to_manifold": True}},
        "6": {"class_type": "RePosePersonLayerWarp",
              "inputs": {"image": ["2", 0], "source_pose": ["3", 0], "target_pose": ["5", 0], "person_index": 0,
                         "feather": 6, "grow": 4}},
        "7": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "8": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "a photo of a person, natural light, detailed clothes, sharp focus",
                         "clip": ["7", 1]}},
        "9": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "blurry, deformed, extra limbs, extra arms, duplicate person, watermark",
                         "clip": ["7", 1]}},
        "10": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "control_v11p_sd15_openpose.pth"}},
        "11": {"class_type": "ControlNetApplyAdvanced",
               "inputs": {"positive": ["8", 0], "negative": ["9", 0], "control_net": ["10", 0], "image": ["6", 2],
                          "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0, "vae": ["7", 2]}},
        "12": {"class_type": "PoseFieldGuidance",
               "inputs": {"estimator": "auto", "scale": 1.0, "start": 0.0, "end": 0.6,
                          "target_weight": 1.0, "head_weight": 1.0, "arms_weight": 1.0, "legs_weight": 1.0,
                          "model": ["7", 0], "vae": ["7", 2], "target_pose": ["5", 0]}},
        "13": {"class_type": "VAEEncodeForInpaint",
               "inputs": {"pixels": ["6", 0], "vae": ["7", 2], "mask": ["6", 1], "grow_mask_by": 6}},
        "14": {"class_type": "KSampler",
               "inputs": {"model": ["12", 1], "seed": 0, "steps": 25, "cfg": 7.0, "sampler_name": "dpmpp_2m",
                          "scheduler": "karras", "positive": ["11", 0], "negative": ["11", 1],
                          "latent_image": ["13", 0], "denoise": 1.0}},
        "15": {"class_type": "VAEDecode", "inputs": {"samples": ["14", 0], "vae": ["7", 2]}},
        "16": {"class_type": "ImageCompositeMasked",
               "inputs": {"destination": ["6", 0], "source": ["15", 0], "x": 0, "y": 0, "resize_source": False,
                          "mask": ["6", 1]}},
        "17": {"class_type": "SaveImage", "inputs": {"images": ["16", 0], "filename_prefix": "reposedm/photo_transfer"}},
        "18": {"class_type": "PreviewImage", "inputs": {"images": ["6", 2]}},
    }
    return note, prompt


WORKFLOWS["photo_pose_transfer_sd15"] = _photo_pose_transfer_sd15()

# Template titles: ComfyUI's template browser (front end 1.32) shows a custom-node template's file name as its
# title and description, so each workflow is written to workflows/<title>.json (+ <title>.jpg). A workflow
# without an entry here gets its name in words ("photo_pose_transfer" -> "Photo pose transfer").
TITLES = {
    "pose_basics": "Pose basics (render, save, load OpenPose JSON)",
    "pose_repair": "Pose repair with the pose field",
    "pose_from_photo": "Pose from a photo (BlazePose)",
    "pose_retarget": "Pose retargeting onto a photo person",
    "pose_transfer_demo": "Pose transfer with the demo model",
    "pose_transfer_guided": "Pose transfer with pose field guidance",
    "sd_controlnet_pose_guidance": "SD1.5 ControlNet OpenPose with pose field guidance",
    "photo_pose_transfer_sd15": "Photo pose transfer with SD1.5",
}
_NOT_IN_FILE_NAMES = set('<>:"/\\|?*')


def title(name: str) -> str:
    """The file stem (= the template browser's title) of workflow ``name``."""
    text = TITLES.get(name) or name.replace("_", " ").strip().capitalize()
    bad = sorted(set(text) & _NOT_IN_FILE_NAMES)
    if bad:
        raise ValueError(f"title {text!r} of {name} has characters {bad} that file names cannot carry everywhere")
    return text


_JS_LOAD_API = """async ([prompt, name]) => {
  app.graph.clear();
  await app.loadApiJson(prompt, name);
  for (const n of app.graph._nodes)
    for (const w of (n.widgets || []))
      if (w.name === 'control_after_generate') w.value = 'fixed';
}"""

_JS_LOAD_UI = """async (graph) => { app.graph.clear(); await app.loadGraphData(graph); }"""

# The note (the workflow's explanation) across the top; the graph below it, laid out by JS_LAYOUT.
_JS_NOTE = """(note) => {
  let noteNode = app.graph._nodes.find(n => n.type === 'Note');
  if (!noteNode) { noteNode = LiteGraph.createNode('Note'); app.graph.add(noteNode); }
  if (note !== null) noteNode.widgets[0].value = note;
  noteNode.pos = [40, 40];
  return noteNode.id;
}"""

_JS_FINISH = """([noteId, width]) => {
  const noteNode = app.graph.getNodeById(noteId);
  noteNode.size = [Math.max(520, Math.min(width - 100, 1400)), 150];
  app.canvas.ds.offset = [20, 90];  // below the page's floating tool bars
  app.canvas.ds.scale = 1;   // opened at 100 %: every title and widget readable
  app.canvas.setDirty(true, true);
  return JSON.stringify(app.graph.serialize());  // undefined fields stay absent (not null)
}"""

NOTE_HEIGHT = 150 + 40 + 40


def lay_out(page, note: str | None) -> str:
    """Note on top, nodes in columns with their current sizes; the serialized graph (JSON text)."""
    note_id = page.evaluate(_JS_NOTE, note)
    width, _ = page.evaluate(JS_LAYOUT, NOTE_HEIGHT)
    return page.evaluate(_JS_FINISH, [note_id, width])


def thumbnail(comfy, page, entry: dict, path: Path, cells: int = 6) -> Path:
    """A grid of the run's images (the first of each output node, left to right as in the graph) as a small JPEG."""
    import io

    from PIL import Image, ImageOps

    x_of = {str(i): x for i, _t, x, *_ in page.evaluate("() => app.graph._nodes.map(n => [n.id, n.type, n.pos[0]])")}
    outputs = sorted(((x_of.get(k, 0), int(k), out) for k, out in entry["outputs"].items() if out.get("images")),
                     key=lambda t: t[:2])
    images = [Image.open(io.BytesIO(comfy.view(out["images"][0]))).convert("RGB") for *_, out in outputs][:cells]
    if not images:
        raise RuntimeError(f"the run gave no image to make {path.name} from")
    cols = min(3, len(images))
    rows = -(-len(images) // cols)
    cell_w, cell_h = 176, 224
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (24, 24, 28))
    for i, im in enumerate(images):
        im = ImageOps.contain(im, (cell_w - 8, cell_h - 8), Image.LANCZOS)   # small runs' images are enlarged
        x, y = (i % cols) * cell_w, (i // cols) * cell_h
        sheet.paste(im, (x + (cell_w - im.width) // 2, y + (cell_h - im.height) // 2))
    sheet.save(path, "JPEG", quality=78, optimize=True)
    return path


def build(names: list[str], from_files: bool = False) -> None:
    """Load each workflow (from the definitions above, or from its file), run it, lay it out, write JSON + JPEG."""
    from playwright.sync_api import sync_playwright

    out_dir = REPO / "workflows"
    shots = REPO / "outputs" / "workflows"
    shots.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="reposedm-build-"))
    prepare_home(home)  # combos only list files that exist: stand-ins with the real names, and the photo
    with ComfyServer(home=home) as comfy, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = open_page(browser.new_context(viewport={"width": 1600, "height": 1000}), comfy.base)
        for name in names:
            reload_page(page)
            if from_files:
                stem = name
                page.evaluate(_JS_LOAD_UI, json.loads((out_dir / f"{stem}.json").read_text()))
                note = None
            else:
                stem = title(name)
                note, prompt = WORKFLOWS[name]
                page.evaluate(_JS_LOAD_API, [prompt, stem])
            lay_out(page, note)
            entry = run_in_page(page, comfy, stem)
            if entry["status"].get("status_str") != "success":
                raise RuntimeError(f"{name} failed in the page: {json.dumps(entry['status'])[:2000]}")
            graph = json.loads(lay_out(page, note))   # again, with the sizes the previews gave the nodes
            (out_dir / f"{stem}.json").write_text(json.dumps(graph, indent=2) + "\n")
            for old in (out_dir / f"{name}.json", out_dir / f"{name}.jpg"):   # the file's name before its title
                if stem != name and old.exists():
                    old.unlink()
            thumb = thumbnail(comfy, page, entry, out_dir / f"{stem}.jpg")
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / f"{stem}.png"))
            log.info("wrote workflows/%s.json (%d nodes) and %s (%.0f KB)", stem, len(graph["nodes"]), thumb.name,
                     thumb.stat().st_size / 1024)
        browser.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"workflows to build (default: all of {sorted(WORKFLOWS)})")
    parser.add_argument("--from-files", action="store_true",
                        help="start from workflows/<name>.json instead of the definitions here (default: every file)")
    args = parser.parse_args()
    known = sorted(p.stem for p in (REPO / "workflows").glob("*.json")) if args.from_files else sorted(WORKFLOWS)
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        parser.error(f"unknown workflow(s) {unknown}; choose from {known}")
    build(args.names or known, from_files=args.from_files)


if __name__ == "__main__":
    main()
