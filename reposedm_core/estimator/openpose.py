"""Backend (b): the OpenPose body network (CMU, as packaged by ``controlnet_aux``) behind the estimator interface.

    est = load_openpose_estimator("models/annotators/body_pose_model.pth")   # a file the user already has

The architecture is ``controlnet_aux.open_pose.model.bodypose_model`` (VGG-19 front end, six two-branch stages);
the weights are the user's local ``body_pose_model.pth``, read with ``torch.load(weights_only=True)`` — nothing
is downloaded and nothing is unpickled. Only the 18 part heatmaps of the last stage are used (single person;
the part-affinity fields and the 19th, background, channel are ignored); a local soft-argmax at a fixed
temperature reads them. Input conventions of the original: BGR, ``pixel / 256 - 0.5``, grey (128) padding,
stride 8. ``controlnet_aux`` runs the network at a height of 184 px (368 x scale 0.5); the default working size
here is 368 x 256 (height x width, the 256 x 176 aspect ratio), slower but more precise.

Only ``controlnet_aux/open_pose/model.py`` is loaded (it imports nothing but torch): importing the
``controlnet_aux`` package itself takes seconds and pulls every detector's dependencies.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from ..pose.skeleton import NUM_JOINTS
from ..utils.checkpoint import CheckpointError
from .base import KeypointEstimator

STRIDE = 8
INSTALL_HINT = "pip install controlnet-aux==0.0.10"


def _bodypose_module() -> ModuleType:
    """``controlnet_aux.open_pose.model`` without executing ``controlnet_aux/__init__.py`` when avoidable."""
    loaded = sys.modules.get("controlnet_aux.open_pose.model")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("controlnet_aux")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the OpenPose backend needs the controlnet_aux package for the body network "
                          f"architecture, which is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "open_pose" / "model.py"
    if not path.is_file():
        raise ImportError(f"controlnet_aux is installed but has no open_pose/model.py ({path}); "
                          f"expected the layout of {INSTALL_HINT}")
    mod_spec = importlib.util.spec_from_file_location("_reposedm_controlnet_aux_bodypose", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    if not hasattr(module, "bodypose_model"):
        raise ImportError(f"{path} defines no bodypose_model; expected the layout of {INSTALL_HINT}")
    return module


def build_bodypose_model(device: str | torch.device | None = None) -> nn.Module:
    """A ``controlnet_aux`` ``bodypose_model`` (raises ImportError with an install hint): randomly initialised,
    or with uninitialised parameters on ``device="meta"`` (no memory, no init time; load weights with
    ``load_state_dict(..., assign=True)``)."""
    module = _bodypose_module()
    if device is None:
        return module.bodypose_model()
    with torch.device(device):
        return module.bodypose_model()


def transfer_keys(model: nn.Module, weights: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """Match a checkpoint to ``model``'s keys: either the same keys, or the original CMU/ControlNet file whose
    keys lack the block prefix (``conv1_1.weight`` for ``model0.conv1_1.weight``; ``controlnet_aux`` ``transfer``)."""
    expected = model.state_dict()
    if set(weights) == set(expected):
        mapped = dict(weights)
    else:
        mapped, missing = {}, []
        for key in expected:
            short = key.split(".", 1)[1]
            source = key if key in weights else short
            if source in weights:
                mapped[key] = weights[source]
            else:
                missing.append(short)
        if missing:
            raise CheckpointError(f"{name} is not an OpenPose body model checkpoint: {len(missing)} of "
                                  f"{len(expected)} weights missing (e.g. {missing[:3]}); expected "
                                  "body_pose_model.pth from lllyasviel/Annotators")
    for key, value in mapped.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{name}: weight {key} has shape {tuple(value.shape)}, the body network "
                                  f"expects {tuple(expected[key].shape)}")
    return {k: v.to(torch.float32).contiguous() for k, v in mapped.items()}


class OpenPoseBodyEstimator(KeypointEstimator):
    """OpenPose body network as a :class:`KeypointEstimator` (``forward(images) -> [B, 18, 3]``).

    Args:
        body: a ``bodypose_model`` with weights loaded.
        work_size: (height, width) working frame, multiples of 8.
        threshold: minimum heatmap peak (the network's heatmaps are ~0..1); 0.1 as in ``controlnet_aux``.
        window: soft-argmax radius in heatmap cells (8 working px each).
        beta: soft-argmax temperature: weights ``softmax(beta * heatmap)`` in the window.
    """

    def __init__(self, body: nn.Module, work_size: tuple[int, int] = (368, 256), threshold: float = 0.1,
                 window: int = 2, beta: float = 20.0) -> None:
        super().__init__(work_size, STRIDE, threshold, window, pad_value=128 / 255)
        self.body = body
        self.beta = float(beta)

    def score_maps(self, work_images: torch.Tensor) -> torch.Tensor:
        bgr = work_images.flip(1) * (255 / 256) - 0.5
        _pafs, heat = self.body(bgr)             # [B, 38, h, w], [B, 19, h, w]
        return heat[:, :NUM_JOINTS]

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.clamp(0, 1)

    def argmax_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return scores * self.beta


@torch.inference_mode(False)  # normal tensors even when called under inference mode (ComfyUI): they are differentiated
def load_openpose_estimator(path: str | os.PathLike, device: str | torch.device | None = None,
                            work_size: tuple[int, int] = (368, 256), threshold: float = 0.1
                            ) -> OpenPoseBodyEstimator:
    """Build the OpenPose body estimator from a local ``body_pose_model.pth`` (eval mode, parameters frozen).

    The file is read with ``torch.load(map_location="cpu", weights_only=True)``: a plain state dict of tensors;
    anything that needs unpickling of code is refused by torch.

    Raises:
        FileNotFoundError: no file at ``path`` (it is never downloaded).
        ImportError: controlnet_aux (the architecture) is not installed.
        CheckpointError: the file is not a tensor state dict of the OpenPose body network.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OpenPose body weights {path} not found; this backend never downloads them. "
                                "Point it at body_pose_model.pth (ComfyUI's controlnet_aux preprocessors keep it "
                                "under custom_nodes/comfyui_controlnet_aux/ckpts/lllyasviel/Annotators/)")
    try:
        weights = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for foreign or broken files
        raise CheckpointError(f"{path.name} could not be read as a tensor state dict with weights_only=True "
                              f"(a truncated file, or a pickle with code, which is never loaded): {e}") from e
    if isinstance(weights, dict) and isinstance(weights.get("state_dict"), dict):
        weights = weights["state_dict"]
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"{path.name} holds a {type(weights).__name__}, expected a state dict of tensors")
    body = build_bodypose_model("meta")          # no random init of 52 M parameters that are overwritten anyway
    body.load_state_dict(transfer_keys(body, weights, path.name), strict=True, assign=True)
    model = OpenPoseBodyEstimator(body, work_size, threshold).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if device is not None:
        model.to(device)
    return model
