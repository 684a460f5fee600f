"""Person Layer Warp: the photo path's first step. The person of a real photo is moved into the target pose over the
background (person removed), with the mask of what the user's SD must inpaint and the target pose render for
ControlNet-OpenPose. A thin adapter over ``reposedm_core.photo.person_layer_warp``."""
from __future__ import annotations

import logging

import torch
from comfy_api.latest import io, ui

from ..reposedm_core.pose import render_skeleton
from ._common import CATEGORY, PoseKeypoint, image_from_core, image_to_core, mask_from_core
from .detect_nodes import blazepose_on
from .transfer_nodes import _broadcast, _frame_poses

log = logging.getLogger("reposedm")


def _mask_to_core(mask: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """ComfyUI MASK ``[B, H, W]`` (or ``[H, W]``) -> ``[n, 1, H, W]``, checked against the image."""
    m = mask[None] if mask.dim() == 2 else mask
    if m.dim() != 3 or m.shape[-2:] != (h, w) or m.shape[0] not in (1, n):
        raise ValueError(f"mask must be [1 or {n}, {h}, {w}] (one person mask per image, the image's size), "
                         f"got {tuple(mask.shape)}; resize it to the image or leave it unconnected to segment "
                         "the person with BlazePose")
    return m.float().expand(n, h, w)[:, None]


class PersonLayerWarp(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="RePosePersonLayerWarp",
            display_name="Person Layer Warp (RePose)",
            category=CATEGORY,
            description="Pose transfer on your own photos, step 1: only the person is moved into the target pose "
                        "(per-limb transforms; the background stays where it is), over the photo with the person "
                        "removed. Gives the composite, the mask of every pixel your SD must invent (the place the "
                        "person left, body parts the photo never showed, a seam around the moved person) for VAE "
                        "Encode (for Inpainting), and the target pose render for ControlNet-OpenPose. Pixels "
                        "outside the two person regions are the photo's, exactly.",
            inputs=[
                io.Image.Input("image", tooltip="The photo(s) of the person."),
                PoseKeypoint.Input("source_pose", tooltip="The person's pose in the photo (Detect Pose)."),
                PoseKeypoint.Input("target_pose",
                                   tooltip="The pose to move the person into, in the photo's canvas (Pose Retarget "
                                           "fits a driving pose to the person; Load Pose JSON reads your own). One "
                                           "frame, or one per image."),
                io.Int.Input("person_index", default=0, min=0, max=63,
                             tooltip="Which person of each pose frame to move when a frame holds several."),
                io.Int.Input("feather", default=6, min=0, max=64,
                             tooltip="Seam width in pixels around the moved person that SD repaints to blend it "
                                     "in, and the soft outer edge of the inpaint mask. 0 = hard edges, no seam."),
                io.Int.Input("grow", default=4, min=0, max=64,
                             tooltip="Pixels the person mask is grown by before the person is removed (hair, "
                                     "soft mask edges). 0 = the mask as it is."),
                io.Mask.Input("mask", optional=True,
                              tooltip="The person in the photo (1 = person), the image's size. Leave unconnected "
                                      "to segment the person with BlazePose (shipped, offline)."),
            ],
            outputs=[
                io.Image.Output(display_name="composite",
                                tooltip="The moved person over the background with the person removed."),
                io.Mask.Output(display_name="inpaint_mask",
                               tooltip="1 where SD must invent pixels (feed VAE Encode (for Inpainting))."),
                io.Image.Output(display_name="target_pose_image",
                                tooltip="The target pose rendered in OpenPose colours, for ControlNet-OpenPose."),
            ],
        )

    @classmethod
    def execute(cls, image, source_pose, target_pose, person_index, feather, grow, mask=None) -> io.NodeOutput:
        import comfy.model_management as mm

        from ..reposedm_core.photo import person_layer_warp, select_person_masks

        images = image_to_core(image)
        h, w = images.shape[-2:]
        sp = _frame_poses(source_pose, "source_pose", person_index, h, w)
        tp = _frame_poses(target_pose, "target_pose", person_index, h, w)
        counts = {"image": len(images), "source_pose": len(sp), "target_pose": len(tp)}
        if mask is not None:
            counts["mask"] = 1 if mask.dim() == 2 else mask.shape[0]
        n = _broadcast(counts)
        expand = lambda t: t.expand(n, *t.shape[1:]) if len(t) == 1 else t
        images, sp, tp = expand(images), expand(sp), expand(tp)
        device = mm.get_torch_device()
        with torch.inference_mode(False), torch.no_grad():
            if mask is None:
                people = blazepose_on(device).people(images.to(device), max_people=person_index + 2)
                person = select_person_masks(people, sp.to(device))
            else:
                person = _mask_to_core(mask, n, h, w).to(device)
            out = person_layer_warp(images.to(device), sp.to(device), tp.to(device), person, feather=feather,
                                    grow=grow)
        log.info("RePoseDM person layer: %d image(s), %.1f%% of the pixels to inpaint", n,
                 100 * float(out.inpaint.gt(0.5).float().mean()))
        composite = image_from_core(out.composite)
        return io.NodeOutput(composite, mask_from_core(out.inpaint),
                             image_from_core(render_skeleton(tp, h, w)), ui=ui.PreviewImage(composite, cls=cls))


NODES = [PersonLayerWarp]
