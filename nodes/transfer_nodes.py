"""Pose-transfer nodes: load a RePoseDM model, align a source person to target poses, sample the result."""
from __future__ import annotations

import logging
import os

import torch
from comfy_api.latest import io

from ..reposedm_core.models import PHOTO_ITERATIONS
from ..reposedm_core.models.frame import Letterbox
from ..reposedm_core.pose import load_pose_keypoint, render_skeleton
from ..reposedm_core.sampling import (DEFAULT_CFG, DEFAULT_DENOISE, DEFAULT_SCHEDULER, DEFAULT_STEPS,
                                      DEFAULT_TEMPERATURE, DEFAULT_TEMPERATURE_STOP_T, SCHEDULERS)
from ._common import CATEGORY, PoseKeypoint, image_from_core, image_to_core, schema

log = logging.getLogger("reposedm")
ReposeModel = io.Custom("REPOSE_MODEL")
ReposeAlignment = io.Custom("REPOSE_ALIGNMENT")
ReposeGuidance = io.Custom("REPOSE_GUIDANCE")
FOLDER = "reposedm"
DEMO = "reposedm_demo (shipped)"


def _register_folder() -> None:
    """models/reposedm (plus any 'reposedm:' entries of extra_model_paths.yaml), .safetensors files only."""
    import folder_paths

    folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))
    paths, _ = folder_paths.folder_names_and_paths[FOLDER]
    folder_paths.folder_names_and_paths[FOLDER] = (paths, {".safetensors"})


_register_folder()


def _device_and_dtype() -> tuple[torch.device, torch.dtype]:
    import comfy.model_management as mm

    device = mm.get_torch_device()
    dtype = torch.float16 if device.type == "cuda" and mm.should_use_fp16(device) else torch.float32
    return device, dtype


class LoadRePoseModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        import folder_paths

        return schema(
            node_id="LoadRePoseModel",
            display_name="Load Model (RePose)",
            category=f"{CATEGORY}/transfer",
            description="Loads a RePoseDM pose-transfer model (.safetensors) from models/reposedm, or the small "
                        "demo model shipped with the pack (trained on synthetic people).",
            inputs=[io.Combo.Input("model_name", options=[DEMO] + folder_paths.get_filename_list(FOLDER),
                                   default=DEMO, tooltip="A file in models/reposedm (or a 'reposedm' path of "
                                                         "extra_model_paths.yaml), or the shipped demo model.")],
            outputs=[ReposeModel.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model_name) -> io.NodeOutput:
        import folder_paths

        from ..reposedm_core.models import load_model

        path = None
        if model_name != DEMO:
            path = folder_paths.get_full_path(FOLDER, model_name)
            if path is None:
                raise ValueError(f"model {model_name!r} was not found in {folder_paths.get_folder_paths(FOLDER)}")
        device, dtype = _device_and_dtype()
        return io.NodeOutput(load_model(path, device=device, dtype=dtype))


def _frame_poses(pose_keypoint, name: str, person_index: int, height: int, width: int) -> torch.Tensor:
    """One person per frame ``[F, 18, 3]``, mapped from each frame's canvas into an ``height x width`` image."""
    from ..reposedm_core.models.repose import MIN_JOINTS

    frames = load_pose_keypoint(pose_keypoint, require_person=False)
    out = []
    for i, frame in enumerate(frames):
        if frame.num_people == 0:
            raise ValueError(f"{name} frame {i} has no person; every frame needs one to align")
        if person_index >= frame.num_people:
            raise ValueError(f"{name} frame {i} has {frame.num_people} person(s); person_index={person_index} "
                             f"needs at least {person_index + 1}")
        kp = Letterbox(frame.height, frame.width, height, width).pose_in(frame.keypoints[person_index])
        joints = int((kp[:, 2] > 0).sum())
        if joints < MIN_JOINTS:
            raise ValueError(f"{name} frame {i} person {person_index} has {joints} confident joint(s); alignment "
                             f"needs at least {MIN_JOINTS}")
        out.append(kp)
    return torch.stack(out)


def _broadcast(name_counts: dict[str, int]) -> int:
    n = max(name_counts.values())
    bad = {k: v for k, v in name_counts.items() if v not in (1, n)}
    if bad:
        raise ValueError(f"batch sizes do not match: {name_counts}; give each input 1 item or {n} items")
    return n


class RecurrentPoseAlign(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RecurrentPoseAlign",
            display_name="Recurrent Pose Align (RePose)",
            category=f"{CATEGORY}/transfer",
            description="Moves the source person's texture into the target pose (analytic limb warp refined by a "
                        "recurrent network). Any image size: it is letterboxed into the model frame and back.",
            inputs=[
                ReposeModel.Input("model", tooltip="From Load Model (RePose)."),
                io.Image.Input("source_image", tooltip="The person to re-render (1 image, or one per target pose)."),
                PoseKeypoint.Input("source_pose", tooltip="The source person's pose (POSE_KEYPOINT, e.g. from "
                                                           "DWPose/OpenPose on the source image)."),
                PoseKeypoint.Input("target_pose", tooltip="The pose(s) to render; a batch of frames renders a "
                                                           "sequence. Canvases of another size are letterboxed."),
                io.Int.Input("iterations", default=PHOTO_ITERATIONS, min=0, max=16,
                             tooltip="Recurrent refinement steps per scale; 0 (the default) = the analytic limb "
                                     "warp alone. On real photos the demo model's refinement measured worse than "
                                     "the analytic warp (masked SSIM 0.827 vs 0.861 on video pairs, `eval "
                                     "align`), and so did the sampled result from it (0.865 vs 0.879), hence the "
                                     "default. For synthetic people (the demo workflows) set 3, the refinement "
                                     "the demo model was trained with: its sampler needs it there (result SSIM "
                                     "0.795 vs 0.670). For photos, also see the Person Layer Warp + SD workflow."),
                io.Int.Input("person_index", default=0, min=0, max=63,
                             tooltip="Which person of each frame to use when a frame holds several."),
                io.Boolean.Input("warm_start", default=True,
                                 tooltip="For a batch of target poses (a sequence): start each frame's alignment "
                                         "from the previous frame's, for steadier video. Off = frames independent."),
            ],
            outputs=[ReposeAlignment.Output(display_name="alignment"),
                     io.Image.Output(display_name="warped_source", tooltip="Preview: the source warped to the target."),
                     io.Image.Output(display_name="target_pose_image", tooltip="The target pose rendered.")],
        )

    @classmethod
    def execute(cls, model, source_image, source_pose, target_pose, iterations, person_index,
                warm_start=True) -> io.NodeOutput:
        image = image_to_core(source_image)
        h, w = image.shape[-2:]
        sp = _frame_poses(source_pose, "source_pose", person_index, h, w)
        tp = _frame_poses(target_pose, "target_pose", person_index, h, w)
        n = _broadcast({"source_image": len(image), "source_pose": len(sp), "target_pose": len(tp)})
        expand = lambda t: t.expand(n, *t.shape[1:]) if len(t) == 1 else t  # noqa: E731
        alignment = model.align(expand(image), expand(sp), expand(tp), iterations=iterations, warm_start=warm_start)
        alignment.extras["model_id"] = id(model)
        return io.NodeOutput(alignment, image_from_core(alignment.warped), image_from_core(render_skeleton(expand(tp), h, w)))


class RePoseSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="RePoseSampler",
            display_name="Pose Transfer Sampler (RePose)",
            category=f"{CATEGORY}/transfer",
            description="Renders the aligned person in the target pose with the diffusion model.",
            inputs=[
                ReposeModel.Input("model", tooltip="The same model the alignment was made with."),
                ReposeAlignment.Input("alignment", tooltip="From Recurrent Pose Align."),
                io.Int.Input("seed", default=0, min=0, max=2**63 - 1, control_after_generate=True,
                             tooltip="Noise seed; the same seed and inputs give the same image."),
                io.Int.Input("steps", default=DEFAULT_STEPS, min=1, max=200, tooltip="Sampling steps."),
                io.Float.Input("cfg", default=DEFAULT_CFG, min=0.0, max=10.0, step=0.1,
                               tooltip="Classifier-free guidance on the source appearance; 1 disables it."),
                io.Combo.Input("scheduler", options=sorted(SCHEDULERS), default=DEFAULT_SCHEDULER,
                               tooltip="diffusers scheduler used for sampling. The default (with cfg 1) measured "
                                       "best for the shipped demo model on held-out validation people."),
                ReposeGuidance.Input("guidance", optional=True,
                                     tooltip="Optional pose-field guidance (Pose Field Guidance node)."),
                io.Boolean.Input("shared_noise", default=False,
                                 tooltip="Use the same starting noise for every image of the batch (steadier pose "
                                         "sequences); off = each image its own noise."),
                io.Float.Input("denoise", default=DEFAULT_DENOISE, min=0.05, max=1.0, step=0.05, optional=True,
                               tooltip="Share of the noise schedule to run, as KSampler's denoise: below 1 sampling "
                                       "starts from the warped source noised to that level, keeping more of the "
                                       "source's look; 1 = from pure noise. On held-out validation people the demo "
                                       "model at 0.5 matched the truth's pixels slightly better (SSIM 0.791 vs "
                                       "0.789) but the target pose less often (keypoints within 0.1 torso: 37 % vs "
                                       "45 %), hence the default 1."),
                io.Float.Input("temperature", default=DEFAULT_TEMPERATURE, min=0.0, max=2.0, step=0.05,
                               optional=True,
                               tooltip="Noise scale of the ddpm scheduler's early steps, where the image's "
                                       f"structure is made (above t = {DEFAULT_TEMPERATURE_STOP_T} of 1000; the last "
                                       "steps keep the scheduler's own noise, and the other schedulers add none and "
                                       "ignore it). 1 = the scheduler's own. Lower gives a cleaner, blurrier image: "
                                       "on held-out validation people 1 / 0.7 / 0.5 matched the truth with SSIM "
                                       "0.782 / 0.798 / 0.801 and found the target pose at least as often "
                                       "(keypoints within 0.1 torso: 40 / 43 / 44 %), with less fine detail."),
            ],
            outputs=[io.Image.Output(display_name="image")],
        )

    @classmethod
    def execute(cls, model, alignment, seed, steps, cfg, scheduler, guidance=None, shared_noise=False,
                denoise=DEFAULT_DENOISE, temperature=DEFAULT_TEMPERATURE) -> io.NodeOutput:
        import comfy.model_management as mm
        import comfy.utils

        if alignment.extras.get("model_id") not in (None, id(model)):
            raise ValueError("this alignment was made with another model; connect the same model to both nodes")
        pbar = comfy.utils.ProgressBar(steps)

        def callback(info: dict) -> None:
            from PIL import Image

            x0 = ((info["denoised"][0].clamp(-1, 1) + 1) * 127.5).byte().permute(1, 2, 0).cpu().numpy()
            preview = Image.fromarray(x0)
            # max_size = the preview's own size: ComfyUI's server enlarges a smaller preview to max_size
            # (ImageOps.contain) before encoding it, which at 512 cost more per step than the step itself.
            pbar.update_absolute(info["i"] + 1, steps, ("JPEG", preview, max(preview.size)))

        images = model.sample(alignment, steps=steps, cfg=cfg, seed=seed, scheduler=scheduler, callback=callback,
                              interrupt=mm.throw_exception_if_processing_interrupted, guidance=guidance,
                              shared_noise=shared_noise, denoise=denoise, temperature=temperature)
        return io.NodeOutput(image_from_core(images))


NODES = [LoadRePoseModel, RecurrentPoseAlign, RePoseSampler]
