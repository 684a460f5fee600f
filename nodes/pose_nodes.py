"""Pose nodes: load/save OpenPose JSON, render a POSE_KEYPOINT, and synthetic people for demos and tests.

Thin adapters over ``reposedm_core.pose`` and ``reposedm_core.data.synthetic``.
"""
from __future__ import annotations

import json
import os

import torch
from comfy_api.latest import io, ui

from ..reposedm_core.pose import frames_from_tensor, load_pose_keypoint, render_skeleton, to_pose_keypoint
from ._common import CATEGORY, PoseKeypoint, image_from_core, mask_from_core, schema

_TEXT_CHOICE = "(use json_text)"
_UNITS = ["auto", "pixels", "normalized"]


def _input_json_files() -> list[str]:
    import folder_paths

    root = folder_paths.get_input_directory()
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.lower().endswith(".json"):
                found.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return sorted(found)


def _resolve_input_file(name: str) -> str:
    import folder_paths

    root = os.path.realpath(folder_paths.get_input_directory())
    path = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root:
        raise ValueError(f"pose file {name!r} lies outside ComfyUI's input folder; pick a file inside it")
    if not os.path.isfile(path):
        raise ValueError(f"pose file {name!r} was not found in ComfyUI's input folder {root}")
    return path


class LoadPoseJSON(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePoseLoadPoseJSON",
            display_name="Load Pose JSON (RePose)",
            category=f"{CATEGORY}/pose",
            description="Reads OpenPose / POSE_KEYPOINT JSON (a file in ComfyUI's input folder, or pasted text).",
            inputs=[
                io.Combo.Input("json_file", options=[_TEXT_CHOICE] + _input_json_files(), default=_TEXT_CHOICE,
                               tooltip="A .json file in ComfyUI's input folder, or '(use json_text)' to read the text box."),
                io.String.Input("json_text", multiline=True, default="",
                                tooltip="POSE_KEYPOINT or OpenPose JSON text; used when json_file is '(use json_text)'."),
                io.Combo.Input("units", options=_UNITS, default="auto",
                               tooltip="Coordinate units in the JSON: 'auto' treats a frame whose coordinates all lie "
                                       "in 0..1 as normalised, otherwise pixels."),
                io.Int.Input("canvas_width", default=0, min=0, max=16384,
                             tooltip="Canvas width for JSON without 'canvas_width' (OpenPose binary output); 0 = "
                                     "the JSON must carry its canvas."),
                io.Int.Input("canvas_height", default=0, min=0, max=16384,
                             tooltip="Canvas height for JSON without 'canvas_height'; 0 = the JSON must carry it."),
            ],
            outputs=[PoseKeypoint.Output(display_name="pose_keypoint")],
        )

    @classmethod
    def fingerprint_inputs(cls, json_file, json_text, units, canvas_width, canvas_height):
        if json_file == _TEXT_CHOICE:
            return json_text
        try:
            return os.path.getmtime(_resolve_input_file(json_file))
        except ValueError:
            return float("nan")  # re-run and report the error

    @classmethod
    def execute(cls, json_file, json_text, units, canvas_width, canvas_height) -> io.NodeOutput:
        if json_file == _TEXT_CHOICE:
            if not json_text.strip():
                raise ValueError("json_text is empty; paste POSE_KEYPOINT/OpenPose JSON or pick a json_file")
            data = json_text
        else:
            with open(_resolve_input_file(json_file), "rb") as f:
                data = f.read()
        canvas = (canvas_width, canvas_height) if canvas_width > 0 and canvas_height > 0 else None
        frames = load_pose_keypoint(data, fmt=units, canvas=canvas, require_person=False)
        return io.NodeOutput(to_pose_keypoint(frames))


class SavePoseJSON(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePoseSavePoseJSON",
            display_name="Save Pose JSON (RePose)",
            category=f"{CATEGORY}/pose",
            description="Writes a POSE_KEYPOINT as JSON into ComfyUI's output folder (controlnet_aux layout).",
            is_output_node=True,
            inputs=[
                PoseKeypoint.Input("pose_keypoint", tooltip="The poses to save (all frames go into one file)."),
                io.String.Input("filename_prefix", default="reposedm/pose",
                                tooltip="File name prefix inside the output folder; a counter is appended."),
                io.Boolean.Input("normalized", default=False,
                                 tooltip="Write coordinates normalised to 0..1 (like the OpenPose preprocessor) "
                                         "instead of pixels (like DWPose)."),
            ],
            outputs=[io.String.Output(display_name="json_text")],
        )

    @classmethod
    def execute(cls, pose_keypoint, filename_prefix, normalized) -> io.NodeOutput:
        import folder_paths

        frames = load_pose_keypoint(pose_keypoint, require_person=False)
        text = json.dumps(to_pose_keypoint(frames, normalized=normalized))
        out_dir = folder_paths.get_output_directory()
        full_dir, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, out_dir)
        filename = f"{name}_{counter:05}_.json"
        path = os.path.join(full_dir, filename)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:  # write-then-rename: never a half-written file
            f.write(text)
        os.replace(tmp, path)
        return io.NodeOutput(text, ui={"text": [os.path.join(subfolder, filename)]})


class RenderPose(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePoseRenderPose",
            display_name="Render Pose (RePose)",
            category=f"{CATEGORY}/pose",
            description="Draws POSE_KEYPOINT bodies in the standard OpenPose colours (a ControlNet-OpenPose image).",
            inputs=[
                PoseKeypoint.Input("pose_keypoint", tooltip="The poses to draw; one image per frame."),
                io.Int.Input("width", default=0, min=0, max=8192, step=8,
                             tooltip="Output width; 0 = the frame's canvas width. Poses are scaled to fit."),
                io.Int.Input("height", default=0, min=0, max=8192, step=8,
                             tooltip="Output height; 0 = the frame's canvas height."),
                io.Float.Input("line_scale", default=1.0, min=0.1, max=8.0, step=0.1,
                               tooltip="Multiplies the stick width and joint radius (1 = OpenPose's look)."),
            ],
            outputs=[io.Image.Output(display_name="image")],
        )

    @classmethod
    def execute(cls, pose_keypoint, width, height, line_scale) -> io.NodeOutput:
        frames = load_pose_keypoint(pose_keypoint, require_person=False)
        sizes = {(f.width, f.height) for f in frames}
        if (width == 0 or height == 0) and len(sizes) > 1:
            raise ValueError(f"the frames have different canvases {sorted(sizes)}; set width and height to "
                             "render them all at one size")
        images = []
        for frame in frames:
            out_w, out_h = width or frame.width, height or frame.height
            kp = frame.keypoints.clone()
            kp[..., 0] *= out_w / frame.width
            kp[..., 1] *= out_h / frame.height
            if frame.num_people == 0:
                images.append(torch.zeros(1, 3, out_h, out_w))
                continue
            images.append(render_skeleton(kp[None], out_h, out_w, stickwidth=4 * line_scale, radius=4 * line_scale))
        return io.NodeOutput(image_from_core(torch.cat(images)))


class SyntheticPerson(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePoseSyntheticPerson",
            display_name="Synthetic Person (RePose)",
            category=f"{CATEGORY}/data",
            description="A procedurally rendered person with exact pose ground truth (offline, deterministic).",
            inputs=[
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=True,
                             tooltip="Identity: clothes, skin, hair and background. Same seed = same person."),
                io.Int.Input("pose_seed", default=0, min=0, max=2**31 - 1,
                             tooltip="Pose and camera. Same pose_seed = same pose (for any identity)."),
                io.Int.Input("width", default=176, min=32, max=1024, step=8, tooltip="Image width in pixels."),
                io.Int.Input("height", default=256, min=32, max=1024, step=8, tooltip="Image height in pixels."),
                io.Int.Input("batch_size", default=1, min=1, max=64,
                             tooltip="Number of images: the same person in poses pose_seed, pose_seed+1, ..."),
            ],
            outputs=[
                io.Image.Output(display_name="image"),
                PoseKeypoint.Output(display_name="pose_keypoint"),
                io.Mask.Output(display_name="mask"),
            ],
        )

    @classmethod
    def execute(cls, seed, pose_seed, width, height, batch_size) -> io.NodeOutput:
        from ..reposedm_core.data.synthetic import render_people

        out = render_people([seed] * batch_size, list(range(pose_seed, pose_seed + batch_size)),
                            height=height, width=width)
        frames = frames_from_tensor(out["keypoints"], width, height)
        return io.NodeOutput(image_from_core(out["image"]), to_pose_keypoint(frames), mask_from_core(out["mask"]),
                             ui=ui.PreviewImage(image_from_core(out["image"]), cls=cls))


NODES = [LoadPoseJSON, SavePoseJSON, RenderPose, SyntheticPerson]
