"""Pose retargeting and sequence clean-up nodes: thin adapters over ``reposedm_core.pose.retarget`` and
``reposedm_core.pose.sequence``."""
from __future__ import annotations

import logging

import torch
from comfy_api.latest import io, ui

from ..reposedm_core.pose import PoseFrame, load_pose_keypoint, render_skeleton, to_pose_keypoint
from ._common import CATEGORY, PoseKeypoint, image_from_core, schema

log = logging.getLogger("reposedm")


def _track(frames, person: int) -> torch.Tensor:
    """One person's ``[T, 18, 3]`` track (an all-zero frame where that person is absent)."""
    sizes = {(f.width, f.height) for f in frames}
    if len(sizes) > 1:
        raise ValueError(f"the frames have different canvases {sorted(sizes)}; a pose track needs one canvas")
    return torch.stack([f.keypoints[person] if person < f.num_people else torch.zeros(18, 3) for f in frames])


def _frames(track: torch.Tensor, width: int, height: int) -> list[PoseFrame]:
    return [PoseFrame(kp[None] if (kp[:, 2] > 0).any() else torch.zeros(0, 18, 3), width, height) for kp in track]


def _preview(before: torch.Tensor, after: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The result in OpenPose colours over the input drawn dimmed, one image per frame."""
    back = render_skeleton(before[:, None], height, width) * 0.35
    return image_from_core(render_skeleton(after[:, None], height, width, background=back))


class PoseRetarget(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePosePoseRetarget",
            display_name="Pose Retarget (RePose)",
            category=f"{CATEGORY}/pose",
            description="Redraws a driving pose or pose sequence with the proportions of the person in the "
                        "reference pose: every bone takes the reference's length and the driving's direction "
                        "(and foreshortening), placed in the reference canvas with one scale for the whole "
                        "sequence. Fixes a tall driver on a short person, long forearms, wide shoulders.",
            inputs=[
                PoseKeypoint.Input("driving_pose", tooltip="The motion: one frame or a sequence (one canvas)."),
                PoseKeypoint.Input("reference_pose",
                                   tooltip="The person to fit (e.g. Detect Pose on the source photo); its first "
                                           "frame is used."),
                io.Int.Input("person_index", default=0, min=0, max=63,
                             tooltip="Which person of the driving frames and of the reference frame."),
                io.Combo.Input("anchor", options=["feet", "hips", "neck"], default="feet",
                               tooltip="What follows the driving pose's position: the feet (they stay on the "
                                       "driving's ground line), the hips or the neck."),
                io.Combo.Input("scale", options=["reference", "driving"], default="reference",
                               tooltip="Size of the figure: the reference person's, or the driving pose's."),
                io.Boolean.Input("project_to_manifold", default=True,
                                 tooltip="Frames the pose field calls implausible are repaired (bone lengths "
                                         "kept). Off: plain retargeting."),
            ],
            outputs=[PoseKeypoint.Output(display_name="pose_keypoint", tooltip="In the reference canvas."),
                     io.Image.Output(display_name="preview",
                                     tooltip="The result over the reference pose (dimmed), per frame.")],
        )

    @classmethod
    def execute(cls, driving_pose, reference_pose, person_index, anchor, scale, project_to_manifold) -> io.NodeOutput:
        from ..reposedm_core.pose.retarget import retarget
        from .field_nodes import _field

        driving = load_pose_keypoint(driving_pose, require_person=False)
        reference = load_pose_keypoint(reference_pose, require_person=True)[0]
        if person_index >= reference.num_people:
            raise ValueError(f"reference_pose has {reference.num_people} people; person_index {person_index} "
                             "does not exist")
        out = retarget(_track(driving, person_index), reference.keypoints[person_index], anchor=anchor,
                       scale=scale, field=_field() if project_to_manifold else None)
        w, h = reference.width, reference.height
        ref = reference.keypoints[person_index].expand(len(out), 18, 3)
        preview = _preview(ref, out, w, h)
        return io.NodeOutput(to_pose_keypoint(_frames(out, w, h)), preview, ui=ui.PreviewImage(preview, cls=cls))


class PoseSequenceClean(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePosePoseSequenceClean",
            display_name="Pose Sequence Clean (RePose)",
            category=f"{CATEGORY}/pose",
            description="Cleans a detected pose sequence: undoes frames with left and right swapped, drops "
                        "outlier joints, fills dropped joints and empty frames across short gaps, and removes "
                        "jitter with a lag-free (forward-backward) One-Euro filter.",
            inputs=[
                PoseKeypoint.Input("pose_keypoint", tooltip="The frames of one video (one canvas)."),
                io.Int.Input("person_index", default=0, min=0, max=63, tooltip="Which person to clean."),
                io.Int.Input("max_gap", default=5, min=0, max=120,
                             tooltip="Longest run of missing frames filled per joint; 0 fills nothing."),
                io.Float.Input("smoothing", default=0.5, min=0.0, max=20.0, step=0.1,
                               tooltip="One-Euro minimum cutoff in Hz: lower = smoother; 0 disables smoothing."),
                io.Float.Input("responsiveness", default=0.6, min=0.0, max=10.0, step=0.05,
                               tooltip="One-Euro beta: how quickly fast motion opens the filter (less smoothing "
                                       "when moving fast)."),
                io.Float.Input("fps", default=30.0, min=1.0, max=240.0, step=1.0, tooltip="Frame rate of the video."),
                io.Boolean.Input("repair", default=True,
                                 tooltip="Repair frames the pose field calls implausible."),
            ],
            outputs=[PoseKeypoint.Output(display_name="pose_keypoint"),
                     io.Image.Output(display_name="preview", tooltip="Cleaned (colour) over the input (dimmed).")],
        )

    @classmethod
    def execute(cls, pose_keypoint, person_index, max_gap, smoothing, responsiveness, fps, repair) -> io.NodeOutput:
        from ..reposedm_core.pose.sequence import clean_sequence
        from .field_nodes import _field

        frames = load_pose_keypoint(pose_keypoint, require_person=False)
        track = _track(frames, person_index)
        out = clean_sequence(track, max_gap=max_gap, min_cutoff=smoothing, beta=responsiveness, fps=fps,
                             field=_field() if repair else None)
        w, h = frames[0].width, frames[0].height
        filled = int(((out[..., 2] > 0) & ~(track[..., 2] > 0)).sum())
        log.info("RePoseDM Pose Sequence Clean: %d frames, %d joints filled", len(out), filled)
        preview = _preview(track, out, w, h)
        return io.NodeOutput(to_pose_keypoint(_frames(out, w, h)), preview, ui=ui.PreviewImage(preview, cls=cls))


NODES = [PoseRetarget, PoseSequenceClean]
