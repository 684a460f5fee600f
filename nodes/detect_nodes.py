"""Detect Pose: people's poses and masks from photographs with the pack's BlazePose port (no download, no
MediaPipe). A thin adapter over ``reposedm_core.estimator.load_blazepose``."""
from __future__ import annotations

import logging

import torch
from comfy_api.latest import io, ui

from ..reposedm_core.pose import PoseFrame, render_skeleton, to_pose_keypoint
from ._common import CATEGORY, PoseKeypoint, image_from_core, image_to_core, schema

log = logging.getLogger("reposedm")
_CACHE: dict[str, object] = {}
_CHUNK = 8          # images per forward pass: bounds memory on large batches of large photos


def blazepose_on(device: torch.device):
    """The BlazePose estimator on ``device``, loaded once per device (6 M parameters, 12 MB)."""
    from ..reposedm_core.estimator import load_blazepose

    key = str(device)
    if key not in _CACHE:
        with torch.inference_mode(False):
            _CACHE[key] = load_blazepose(device=device)
    return _CACHE[key]


class DetectPose(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePoseDetectPose",
            display_name="Detect Pose with BlazePose (RePose)",
            category=f"{CATEGORY}/pose",
            description="Finds people in photos and reads their OpenPose-18 body pose and a person mask with "
                        "MediaPipe BlazePose (Apache-2.0), converted to PyTorch and shipped with the pack: works "
                        "offline, downloads nothing. Made for photographs and photo-like renders.",
            inputs=[
                io.Image.Input("image", tooltip="Photos (a batch is fine; each image is one POSE_KEYPOINT frame)."),
                io.Int.Input("max_people", default=1, min=1, max=16,
                             tooltip="Most people to read per image, most confident first."),
                io.Float.Input("min_confidence", default=0.5, min=0.05, max=0.99, step=0.01,
                               tooltip="Detector score a person needs (MediaPipe's default 0.5). Lower it to "
                                       "find small or partly hidden people, raise it to drop false finds."),
                io.Float.Input("joint_threshold", default=0.5, min=0.0, max=0.99, step=0.01,
                               tooltip="Visibility a joint needs to be reported; joints below it are written as "
                                       "missing (0, 0, 0). 0 keeps every joint."),
            ],
            outputs=[
                PoseKeypoint.Output(display_name="pose_keypoint",
                                    tooltip="All people per image, controlnet_aux layout, pixels of the image."),
                io.Mask.Output(display_name="mask", tooltip="Person segmentation (all people found), 0..1."),
                io.Image.Output(display_name="preview", tooltip="The skeletons drawn over the image."),
            ],
        )

    @classmethod
    def execute(cls, image, max_people, min_confidence, joint_threshold) -> io.NodeOutput:
        import comfy.model_management as mm

        images = image_to_core(image)
        b, _, h, w = images.shape
        device = mm.get_torch_device()
        est = blazepose_on(device)
        frames, masks, previews = [], [], []
        pbar = _progress(b)
        with torch.inference_mode(False), torch.no_grad():
            for start in range(0, b, _CHUNK):
                chunk = images[start:start + _CHUNK].to(device)
                people = est.people(chunk, max_people, min_confidence, joint_threshold)
                masks.append(people.union_masks(chunk.shape[0]))
                for i in range(chunk.shape[0]):
                    rows = people.image_index == i
                    kp = people.keypoints[rows].float().cpu()
                    frames.append(PoseFrame(kp, w, h))
                    bg = images[start + i]
                    previews.append(render_skeleton(kp[None], h, w, background=bg)[0] if len(kp) else bg)
                    if pbar is not None:
                        pbar.update(1)
        found = sum(f.num_people for f in frames)
        log.info("RePoseDM Detect Pose: %d people in %d images", found, b)
        preview = image_from_core(torch.stack(previews))
        return io.NodeOutput(to_pose_keypoint(frames), torch.cat(masks).cpu(), preview,
                             ui=ui.PreviewImage(preview, cls=cls))


def _progress(total: int):
    try:
        import comfy.utils

        return comfy.utils.ProgressBar(total)
    except Exception:  # noqa: BLE001 - a progress bar is optional (e.g. outside a prompt)
        return None


NODES = [DetectPose]
