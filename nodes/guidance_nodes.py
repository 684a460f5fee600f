"""Pose Field Guidance: pose-manifold gradients for RePoseSampler, and as a patch on any ComfyUI MODEL."""
from __future__ import annotations

import logging
import os

import torch
from comfy_api.latest import io

from ._common import CATEGORY, PoseKeypoint, schema
from .transfer_nodes import ReposeGuidance

log = logging.getLogger("reposedm")
SHIPPED = "reposedm estimator (shipped)"
BLAZEPOSE = "BlazePose (photos)"
AUTO = "auto"
OPENPOSE_PREFIX = "openpose: "
_CONTROLNET_AUX_CKPT = os.path.join("comfyui_controlnet_aux", "ckpts", "lllyasviel", "Annotators")


def _openpose_files() -> dict[str, str]:
    """OpenPose body networks the user already has: ``body_pose_model*.pth`` in models/reposedm and in
    comfyui_controlnet_aux's checkpoint folder (never downloaded)."""
    import folder_paths

    roots = list(folder_paths.get_folder_paths("reposedm"))
    roots += [os.path.join(p, _CONTROLNET_AUX_CKPT) for p in folder_paths.get_folder_paths("custom_nodes")]
    found = {}
    for root in roots:
        if os.path.isdir(root):
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    if name.startswith("body_pose_model") and name.endswith(".pth"):
                        found[OPENPOSE_PREFIX + name] = os.path.join(dirpath, name)
    return found


def reader_for(estimator_name: str, patches_model: bool) -> str:
    """``auto`` -> BlazePose when the guidance patches a MODEL (its images are photo-like), else the shipped
    small network (the demo model's synthetic people); any other choice as given."""
    if estimator_name == AUTO:
        return BLAZEPOSE if patches_model else SHIPPED
    return estimator_name


def load_guidance_networks(estimator_name: str, device: torch.device):
    """(field, estimator) as normal tensors (they are differentiated during sampling) on ``device``."""
    from ..reposedm_core.estimator import load_blazepose, load_estimator, load_openpose_estimator
    from ..reposedm_core.field import load_pose_field

    with torch.inference_mode(False):
        field = load_pose_field(device=device)
        if estimator_name == SHIPPED:
            estimator = load_estimator(device=device)
        elif estimator_name == BLAZEPOSE:
            estimator = load_blazepose(device=device)
        else:
            path = _openpose_files().get(estimator_name)
            if path is None:
                raise ValueError(f"estimator {estimator_name!r} was not found; put body_pose_model.pth in "
                                 "models/reposedm (or install comfyui_controlnet_aux's weights)")
            estimator = load_openpose_estimator(path, device=device)
    return field, estimator.eval().requires_grad_(False)


class PoseFieldGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="PoseFieldGuidance",
            display_name="Pose Field Guidance (RePose)",
            category=f"{CATEGORY}/guidance",
            description="Steers sampling toward a plausible human pose that matches the target: at every step the "
                        "pose of the clean-image estimate is read by a keypoint estimator and nudged down the "
                        "gradient of the pose field (distance from valid poses) plus the distance to the target. "
                        "Feed 'guidance' to Pose Transfer Sampler (RePose), or connect a MODEL, its VAE and a "
                        "target pose to get a patched MODEL for KSampler / SamplerCustom on any model (e.g. SD + "
                        "ControlNet-OpenPose).",
            inputs=[
                io.Combo.Input("estimator", options=[AUTO, BLAZEPOSE, SHIPPED] + sorted(_openpose_files()),
                               default=AUTO,
                               tooltip="Differentiable keypoint reader of the clean-image estimate. auto: BlazePose "
                                       "when this node patches a MODEL (SD images are photos: BlazePose reads "
                                       "real photos at PCK@0.1 0.95 against MediaPipe, the small network at "
                                       "0.00), the pack's small network for Pose Transfer Sampler with the demo model "
                                       "(synthetic people: PCK@0.1 0.73 vs 0.56 for BlazePose at 96x64). Or an "
                                       "OpenPose body network you already have (body_pose_model.pth)."),
                io.Float.Input("scale", default=1.0, min=0.0, max=10.0, step=0.05,
                               tooltip="Guidance strength; 0 disables guidance. 1 = an RMS move of 0.05 (image or latent units) at full "
                                       "noise, fading with the noise level. On SD the move is in latent space."),
                io.Float.Input("start", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Start of the guided window, as a fraction of sampling (0 = first step). SD sets the pose in the "
                                       "early steps: start at 0."),
                io.Float.Input("end", default=0.8, min=0.0, max=1.0, step=0.01,
                               tooltip="End of the guided window (1 = last step). On SD about 0.6: later steps only draw detail, and "
                                       "each guided step costs a VAE decode and its backward pass."),
                io.Float.Input("target_weight", default=1.0, min=0.0, max=20.0, step=0.1,
                               tooltip="Weight of the distance to the target pose next to the pose-field distance "
                                       "(0 = only plausibility)."),
                io.Float.Input("head_weight", default=1.0, min=0.0, max=10.0, step=0.1,
                               tooltip="Weight of the head joints in the target distance."),
                io.Float.Input("arms_weight", default=1.0, min=0.0, max=10.0, step=0.1,
                               tooltip="Weight of the arm joints in the target distance (raise it when the arms stay where the source "
                                       "had them)."),
                io.Float.Input("legs_weight", default=1.0, min=0.0, max=10.0, step=0.1,
                               tooltip="Weight of the leg joints in the target distance."),
                io.Model.Input("model", optional=True,
                               tooltip="Any diffusion MODEL to patch (needs vae and target_pose too)."),
                io.Vae.Input("vae", optional=True, tooltip="The VAE that decodes that model's latents."),
                PoseKeypoint.Input("target_pose", optional=True,
                                   tooltip="The pose the image should show (one frame, or one per latent)."),
            ],
            outputs=[ReposeGuidance.Output(display_name="guidance"),
                     io.Model.Output(display_name="model", tooltip="The patched model (when a model is connected).")],
        )

    @classmethod
    def execute(cls, estimator, scale, start, end, target_weight, head_weight, arms_weight, legs_weight,
                model=None, vae=None, target_pose=None) -> io.NodeOutput:
        import comfy.model_management as mm

        from ..reposedm_core.guidance import PoseFieldGuidance as Guidance

        if end < start:
            raise ValueError(f"end ({end}) must not be before start ({start})")
        reader = reader_for(estimator, model is not None)
        field, net = load_guidance_networks(reader, mm.get_torch_device())
        log.info("RePoseDM pose guidance reader: %s", reader)
        parts = {"head": head_weight, "left_arm": arms_weight, "right_arm": arms_weight,
                 "left_leg": legs_weight, "right_leg": legs_weight}
        guidance = Guidance(field, net, scale=scale, start=start, end=end, target_weight=target_weight,
                            part_weights=parts)
        patched = None
        if model is not None:
            if vae is None or target_pose is None:
                raise ValueError("to patch a MODEL, connect its VAE and a target_pose too")
            from .guidance_patch import patch_model

            patched = patch_model(model, vae, target_pose, guidance)
        return io.NodeOutput(guidance, patched)


NODES = [PoseFieldGuidance]
