"""Save and load RePoseDM models: one safetensors file, the config in its metadata, nothing pickled."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..utils.checkpoint import load_state_strict, read_checkpoint, save_checkpoint
from .repose import RePoseConfig, RePoseModel

KIND = "reposedm-transfer"
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = WEIGHTS / "reposedm_demo.safetensors"


def save_model(model: RePoseModel, path: str | os.PathLike, extra: dict | None = None,
               dtype: torch.dtype = torch.float16) -> Path:
    """Write the model (weights cast to ``dtype``, fp16 by default to halve the file)."""
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    return save_checkpoint(path, KIND, model.config.to_dict(), tensors, extra)


def load_model(path: str | os.PathLike | None = None, device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> RePoseModel:
    """Load a RePoseDM model; ``path=None`` loads the shipped demo model. Returns it in eval mode."""
    path = Path(path) if path is not None else SHIPPED
    if path == SHIPPED and not SHIPPED.is_file():
        raise FileNotFoundError(f"the shipped demo model {SHIPPED} is missing; reinstall the pack or train one with "
                                "`python -m reposedm_core.train transfer --config ...`")
    # Normal tensors even under torch.inference_mode() (ComfyUI): guidance differentiates through them.
    with torch.inference_mode(False):
        config, tensors, extra = read_checkpoint(path, KIND)
        try:
            cfg = RePoseConfig.from_dict(config)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path.name}: its config does not describe a RePoseDM model: {e}") from e
        model = RePoseModel(cfg)
        load_state_strict(model, {k: v.to(torch.float32) if v.is_floating_point() else v
                                  for k, v in tensors.items()}, path.name)
        model.info = extra  # training figures stored with the weights
        model.to(device=device or "cpu", dtype=dtype)
    return model.eval().requires_grad_(False)


def init_from(model: RePoseModel, path: str | os.PathLike) -> dict[str, int]:
    """Initialise ``model`` from another RePoseDM model file (fine-tuning a new parametrisation from a trained
    one): every tensor whose name and shape match is copied; a convolution whose input channels grew (new input
    channels appended) gets the old channels copied and the new ones zero, so it starts as the old layer.
    Returns counts ``{"copied", "widened", "kept"}`` (kept = left at their initial values)."""
    path = Path(path)
    _, tensors, _ = read_checkpoint(path, KIND)
    state = model.state_dict()
    counts = {"copied": 0, "widened": 0, "kept": 0}
    with torch.no_grad():
        for k, v in state.items():
            src = tensors.get(k)
            if src is not None and tuple(src.shape) == tuple(v.shape):
                v.copy_(src.to(v.dtype))
                counts["copied"] += 1
            elif (src is not None and src.dim() == 4 and v.dim() == 4 and src.shape[0] == v.shape[0]
                  and src.shape[2:] == v.shape[2:] and src.shape[1] < v.shape[1]):
                v.zero_()
                v[:, : src.shape[1]] = src.to(v.dtype)
                counts["widened"] += 1
            else:
                counts["kept"] += 1
    return counts
