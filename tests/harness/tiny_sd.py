"""Tiny random Stable-Diffusion-1.5-architecture files that ComfyUI's stock loaders accept.

No SD weights exist on the test machines, so the tests write a checkpoint (UNet + the real SD VAE
architecture + the SD1 CLIP-L text encoder, original LDM key layout) and an OpenPose-style ControlNet, all at
random weights, under the names users have for the real ones. The UNet is as small as ComfyUI's SD15
detection allows (320 channels, context 768, one level, one res block, one transformer block), so ComfyUI's
real KSampler runs on the CPU in well under a second per step at 64x64.

The files are built by ComfyUI's own modules in a subprocess (ComfyUI is not importable in the test process).

    python tests/harness/tiny_sd.py MODELS_DIR     # writes checkpoints/... and controlnet/...
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMFY = REPO / ".comfy" / "ComfyUI"
CHECKPOINT = "v1-5-pruned-emaonly.safetensors"
CONTROLNET = "control_v11p_sd15_openpose.safetensors"
CONTROLNET_PTH = "control_v11p_sd15_openpose.pth"      # lllyasviel's release name (a torch state dict)

UNET = dict(image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[1],
            channel_mult=[1], num_heads=8, transformer_depth=[1],
            transformer_depth_output=[1, 1], context_dim=768, use_linear_in_transformer=False,
            use_spatial_transformer=True, transformer_depth_middle=1)
VAE = dict(double_z=True, z_channels=4, resolution=256, in_channels=3, out_ch=3, ch=128, ch_mult=[1, 2, 4, 4],
           num_res_blocks=2, attn_resolutions=[], dropout=0.0)


def _randomise(module, seed: int) -> dict:
    """Seeded random weights with sane activations: norm layers at identity, weights ~ N(0, 1/fan_in), biases
    ~ N(0, 0.02). Norm layers are found by module type: ComfyUI names many of them by position (a ResBlock's
    ``in_layers.0``, the UNet's ``out.0``), and zeroing one of those silently turns the UNet's output into 0."""
    import torch

    norms = set()
    for prefix, sub in module.named_modules():
        if isinstance(sub, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
            norms.update(f"{prefix}.{p}" if prefix else p for p, _ in sub.named_parameters(recurse=False))
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in module.state_dict().items():
        if not t.is_floating_point() or "position_ids" in name:
            out[name] = t.clone()
            continue
        if name in norms:
            v = torch.ones(t.shape) if name.endswith("weight") else torch.zeros(t.shape)
        elif t.ndim <= 1:
            v = torch.randn(t.shape, generator=gen) * 0.02
        else:
            v = torch.randn(t.shape, generator=gen) / max(1, t[0].numel()) ** 0.5
        out[name] = v.to(torch.float16)
    return out


def build(models_dir: str) -> None:
    """Runs inside a process that can import ComfyUI (see :func:`write_tiny_sd`)."""
    import json

    import torch
    from safetensors.torch import save_file

    import comfy.options

    comfy.options.enable_args_parsing()
    sys.argv = [sys.argv[0], "--cpu"]   # ComfyUI's device pick at import time
    import comfy.ops
    from comfy.cldm.cldm import ControlNet
    from comfy.clip_model import CLIPTextModel
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    ops = comfy.ops.manual_cast
    root = Path(models_dir)
    sd = {}
    unet = UNetModel(**UNET, operations=ops)
    sd.update({f"model.diffusion_model.{k}": v for k, v in _randomise(unet, 1).items()})
    vae = AutoencoderKL(ddconfig=VAE, embed_dim=4)
    sd.update({f"first_stage_model.{k}": v for k, v in _randomise(vae, 2).items()})
    config = json.loads((Path(comfy.ops.__file__).parent / "sd1_clip_config.json").read_text())
    clip = CLIPTextModel(config, torch.float32, "cpu", ops)
    for k, v in _randomise(clip, 3).items():
        if k.startswith("text_model."):
            sd[f"cond_stage_model.transformer.{k}"] = v
    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_file(sd, str(root / "checkpoints" / CHECKPOINT))

    cn_args = {k: v for k, v in UNET.items() if k not in ("out_channels", "transformer_depth_output")}
    control = ControlNet(hint_channels=3, **cn_args, operations=ops)
    weights = {f"control_model.{k}": v for k, v in _randomise(control, 4).items()}
    (root / "controlnet").mkdir(parents=True, exist_ok=True)
    save_file(weights, str(root / "controlnet" / CONTROLNET))


def write_tiny_sd(models_dir: str | os.PathLike, python: str = sys.executable) -> dict[str, Path]:
    """Write the tiny checkpoint and ControlNet under ``models_dir`` (a ComfyUI ``models/`` folder), once."""
    root = Path(models_dir)
    files = {"checkpoint": root / "checkpoints" / CHECKPOINT, "controlnet": root / "controlnet" / CONTROLNET,
             "controlnet_pth": root / "controlnet" / CONTROLNET_PTH}
    if all(p.is_file() for p in files.values()):
        return files
    if not (files["checkpoint"].is_file() and files["controlnet"].is_file()):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(COMFY), str(REPO / "tests")]), "OMP_NUM_THREADS": "1"}
        done = subprocess.run([python, "-m", "harness.tiny_sd", str(root)], env=env, cwd=str(COMFY),
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"building the tiny SD files failed:\n{done.stderr[-3000:]}")
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(str(files["controlnet"])), files["controlnet_pth"])   # the same weights as a .pth
    return files


if __name__ == "__main__":
    build(sys.argv[1])
