"""Pose-field nodes: score poses (which limb is wrong?), repair them, and break them on purpose for tests."""
from __future__ import annotations

import logging
from functools import lru_cache

import torch
from comfy_api.latest import io, ui

from ..reposedm_core.pose import JOINT_INDEX, load_pose_keypoint, to_pose_keypoint
from ._common import CATEGORY, PoseKeypoint, image_from_core, schema

log = logging.getLogger("reposedm")
_HANDS = (("hands_left", JOINT_INDEX["l_wrist"]), ("hands_right", JOINT_INDEX["r_wrist"]))


@lru_cache(maxsize=2)
def _field(path: str | None = None):
    from ..reposedm_core.field import load_pose_field

    return load_pose_field(path)  # a 55 KB network: it lives on the CPU


def _people(frames):
    """(frame index, person index, keypoints [18, 3]) for every person the field can score (>= 2 joints)."""
    for f, frame in enumerate(frames):
        for p in range(frame.num_people):
            kp = frame.keypoints[p]
            if int((kp[:, 2] > 0).sum()) >= 2:
                yield f, p, kp


class PoseFieldScore(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePosePoseFieldScore",
            display_name="Pose Field Score (RePose)",
            category=f"{CATEGORY}/pose",
            description="Distance of each pose from the manifold of valid human poses (0 = plausible), shown on the "
                        "node, and an image with each joint coloured by its blame on one scale from the field's "
                        "calibration: green = as plausible as real poses, red = broken (legend on the image).",
            is_output_node=True,  # shows the scores on the node
            inputs=[PoseKeypoint.Input("pose_keypoint", tooltip="The poses to score; every person of every frame.")],
            outputs=[
                io.Float.Output(display_name="scores", is_output_list=True,
                                tooltip="One distance per person (frame by frame), in torso lengths."),
                io.Float.Output(display_name="worst", tooltip="The largest distance over all people."),
                io.Image.Output(display_name="blame_image",
                                tooltip="Joints coloured by their blame on the field's absolute scale (legend below)."),
            ],
        )

    @classmethod
    def execute(cls, pose_keypoint) -> io.NodeOutput:
        from ..reposedm_core.field.blame import BlameScale, joint_blame, render_blame

        frames = load_pose_keypoint(pose_keypoint, require_person=False)
        field = _field()
        scale = BlameScale.from_calibration(field.calibration)
        people = list(_people(frames))
        scores, per_frame = [], [dict() for _ in frames]
        if people:
            kp = torch.stack([k for _, _, k in people])
            dist, grad = field.distance_and_gradient(kp)
            for (f, p, _), d, b in zip(people, dist.tolist(), joint_blame(dist, grad)):
                scores.append(float(d))
                per_frame[f][p] = b
        images = [render_blame(frame.keypoints, blame, frame.height, frame.width, scale)
                  for frame, blame in zip(frames, per_frame)]
        if len({im.shape for im in images}) > 1:
            raise ValueError("the frames have different canvases; score them separately or render them at one size")
        lines = [f"frame {f} person {p}: {d:.3f} {scale.verdict(d)}" for (f, p, _), d in zip(people, scores)]
        lines = lines or ["no person with 2 or more joints"]
        lines.append(f"scale: plausible <= {scale.ok:.3f}, broken >= {scale.broken:.3f} (torso lengths)")
        return io.NodeOutput(scores or [0.0], max(scores, default=0.0), image_from_core(torch.stack(images)),
                             ui=ui.PreviewText("\n".join(lines)))


class PoseFieldRepair(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePosePoseFieldRepair",
            display_name="Pose Field Repair (RePose)",
            category=f"{CATEGORY}/pose",
            description="Moves broken poses onto the manifold of valid human poses: a learned guess of where the "
                        "broken joints belonged, then gradient steps on the pose field, moving confident joints "
                        "least. Hands and faces follow their wrists and nose.",
            inputs=[
                PoseKeypoint.Input("pose_keypoint", tooltip="The poses to repair."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the correction applied: 0 = unchanged, 1 = fully repaired."),
                io.Int.Input("steps", default=64, min=0, max=256,
                             tooltip="Maximum projection steps per pose (a pose stops early once it reaches the "
                                     "valid poses' median distance or stops improving); 0 disables repair."),
                io.Float.Input("confidence_weight", default=0.8, min=0.0, max=1.0, step=0.05,
                               tooltip="How much a joint's detection confidence holds the field's steps back (0 = "
                                       "all joints move alike); confident joints of a broken pose still move."),
                io.Boolean.Input("learned_proposal", default=True, optional=True,
                                 tooltip="Start each broken pose from the repair proposer's guess of the pose it "
                                         "came from (a small network shipped with the field). Off = the field's "
                                         "gradient steps alone, which stop where the field first sees no problem: "
                                         "on held-out broken poses that stays far from every real body."),
            ],
            outputs=[PoseKeypoint.Output(display_name="pose_keypoint")],
        )

    @classmethod
    def execute(cls, pose_keypoint, strength, steps, confidence_weight, learned_proposal=True) -> io.NodeOutput:
        frames = load_pose_keypoint(pose_keypoint, require_person=False)
        people = list(_people(frames))
        skipped = sum(f.num_people for f in frames) - len(people)
        if skipped:
            log.warning("Pose Field Repair: %d person(s) with fewer than 2 joints passed through unchanged", skipped)
        if people:
            kp = torch.stack([k for _, _, k in people])
            field = _field()
            fixed = field.repair(kp, steps=steps, strength=strength, confidence_weight=confidence_weight,
                                 propose=learned_proposal)
            report = field.repair_report(kp, fixed)
            log.info("Pose Field Repair: field distance %s -> %s, nearest valid pose %s -> %s (per person)",
                     *(", ".join(f"{v:.3f}" for v in report[k].tolist())
                       for k in ("field_before", "field_after", "nearest_before", "nearest_after")))
            for (f, p, old), new in zip(people, fixed):
                frame = frames[f]
                for attr, wrist in _HANDS:
                    hand = getattr(frame, attr)[p]
                    if hand is not None:
                        shift = (new[wrist, :2] - old[wrist, :2]) * (hand[:, 2:] > 0)
                        hand[:, :2] += shift
                face = frame.faces[p]
                if face is not None:
                    nose = JOINT_INDEX["nose"]
                    face[:, :2] += (new[nose, :2] - old[nose, :2]) * (face[:, 2:] > 0)
                frame.keypoints[p] = new
        return io.NodeOutput(to_pose_keypoint(frames))


class CorruptPose(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        from ..reposedm_core.field.corrupt import CORRUPTIONS_2D, STRENGTHS

        return schema(
            node_id="RePoseCorruptPose",
            display_name="Corrupt Pose (RePose)",
            category=f"{CATEGORY}/pose",
            description="Breaks poses on purpose (for testing repair and guidance): joint noise, a too-long bone, "
                        "swapped left/right joints, a detached joint, swapped hips or shoulders, the head pushed "
                        "into the chest, or a limb mirrored across the body.",
            inputs=[
                PoseKeypoint.Input("pose_keypoint", tooltip="The poses to break."),
                io.Combo.Input("kind", options=list(CORRUPTIONS_2D), default="detached_joint",
                               tooltip="What goes wrong with each pose."),
                io.Combo.Input("strength", options=list(STRENGTHS), default="medium", tooltip="How badly."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, tooltip="Which joints and directions."),
            ],
            outputs=[PoseKeypoint.Output(display_name="pose_keypoint")],
        )

    @classmethod
    def execute(cls, pose_keypoint, kind, strength, seed) -> io.NodeOutput:
        from ..reposedm_core.field.corrupt import CORRUPTIONS_2D
        from ..reposedm_core.field.model import TRAINING_SCALE, root_and_unit

        frames = load_pose_keypoint(pose_keypoint, require_person=False)
        gen = torch.Generator().manual_seed(seed)
        for frame in frames:
            for p in range(frame.num_people):
                kp = frame.keypoints[p:p + 1]
                present = kp[..., 2] > 0
                if int(present.sum()) < 2:
                    continue
                center, scale = root_and_unit(kp, TRAINING_SCALE)
                xy = (kp[..., :2] - center[:, None]) / scale[:, None, None]
                bad = CORRUPTIONS_2D[kind](xy, present, strength, gen) * scale[:, None, None] + center[:, None]
                frame.keypoints[p, :, :2] = torch.where(present[0, :, None], bad[0], kp[0, :, :2])
        return io.NodeOutput(to_pose_keypoint(frames))


NODES = [PoseFieldScore, PoseFieldRepair, CorruptPose]
