"""MediaPipe BlazePose (Apache-2.0) as ordinary torch modules: the person detector and the full landmark network.

    det = BlazePoseDetector()          # [B, 3, 224, 224] in -1..1 -> box/keypoint regressors + scores, 2254 anchors
    lm = BlazePoseLandmarkNet()        # [B, 3, 256, 256] in 0..1 -> 39 landmarks, pose flag, mask, heatmaps, world

The layer graph is the one of ``pose_detection.tflite`` and ``pose_landmark_full.tflite`` from the
``mediapipe==0.10.21`` wheel (MobileNetV2-style inverted residual blocks, a U-Net decoder for the heatmaps and
the segmentation, a regression head). ``scripts/convert_blazepose.py`` writes their weights as safetensors under
these modules' parameter names; :func:`load_blazepose_networks` reads them (no TFLite, no MediaPipe at run time).

TFLite semantics kept exactly: ``SAME`` padding of a stride-2 convolution is asymmetric (the extra pixel goes
right/bottom, :class:`TFConv2d`); explicit ``PAD`` before a stride-2 layer is symmetric (``padding=k // 2``);
``RESIZE_BILINEAR`` with half-pixel centres is ``interpolate(align_corners=False)``; ``DEPTH_TO_SPACE`` is the
NHWC "DCR" order, not ``pixel_shuffle``'s (:func:`depth_to_space`). Tensors are NCHW throughout.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.checkpoint import CheckpointError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
DETECTOR_FILE = WEIGHTS_DIR / "blazepose_detector.safetensors"
LANDMARK_FILE = WEIGHTS_DIR / "blazepose_landmark.safetensors"
KIND_DETECTOR = "blazepose-detector"
KIND_LANDMARK = "blazepose-landmark-full"
NUM_LANDMARKS = 39          # 33 body landmarks + 6 auxiliary (ROI centre/scale points and 4 more)
NUM_ANCHORS = 2254


class TFConv2d(nn.Conv2d):
    """``nn.Conv2d`` + a fused activation (``relu6`` or none) with TFLite's ``SAME`` padding (asymmetric for stride
    2) or ``explicit`` symmetric padding ``k // 2`` (a ``PAD`` op before a ``VALID`` convolution) or ``valid``."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, depthwise: bool = False,
                 act: bool = True, pad: str = "same") -> None:
        if pad not in ("same", "explicit", "valid"):
            raise ValueError(f"pad must be 'same', 'explicit' or 'valid', got {pad!r}")
        symmetric = pad == "explicit" or (pad == "same" and stride == 1)
        super().__init__(cin, cout, k, stride, padding=k // 2 if symmetric else 0, groups=cin if depthwise else 1)
        self.act, self.same_asym = bool(act), pad == "same" and stride > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_asym:
            x = F.pad(x, _same_pad(x.shape[-1], self.kernel_size[1], self.stride[1])
                      + _same_pad(x.shape[-2], self.kernel_size[0], self.stride[0]))
        x = super().forward(x)
        return F.relu6(x) if self.act else x


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def depth_to_space(x: torch.Tensor, block: int) -> torch.Tensor:
    """TFLite ``DEPTH_TO_SPACE`` (NHWC, depth-column-row order) on an NCHW tensor ``[B, C*b*b, H, W]``."""
    b, c, h, w = x.shape
    out = c // (block * block)
    x = x.view(b, block, block, out, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, out, h * block, w * block)


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``RESIZE_BILINEAR`` with half-pixel centres."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6) -> k x k depthwise (ReLU6) -> 1x1 linear projection (+ input)."""

    def __init__(self, cin: int, cout: int, hidden: int | None, k: int = 3, stride: int = 1) -> None:
        super().__init__()
        width = hidden or cin
        self.expand = TFConv2d(cin, width, 1) if hidden else None
        self.dw = TFConv2d(width, width, k, stride, depthwise=True, pad="explicit" if stride > 1 else "same")
        self.project = TFConv2d(width, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.dw(self.expand(x) if self.expand is not None else x))
        return x + y if self.residual else y


class Side(nn.Module):
    """Skip branch to the decoder: 3x3 depthwise (ReLU6 or linear) -> 1x1 (ReLU6)."""

    def __init__(self, cin: int, cout: int, dw_act: bool = True) -> None:
        super().__init__()
        self.dw = TFConv2d(cin, cin, 3, depthwise=True, act=dw_act)
        self.pw = TFConv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class ResBlock(nn.Module):
    """BlazeBlock: 3x3 depthwise -> 1x1 linear, added to the input (max-pooled when stride 2), then ReLU6."""

    def __init__(self, c: int, stride: int = 1, dw_act: bool = True) -> None:
        super().__init__()
        self.dw = TFConv2d(c, c, 3, stride, depthwise=True, act=dw_act)
        self.pw = TFConv2d(c, c, 1, act=False)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        skip = F.max_pool2d(x, 2, 2) if self.stride > 1 else x
        return F.relu6(skip + y)


def _chain(*blocks: nn.Module) -> nn.Sequential:
    return nn.Sequential(*blocks)


class BlazePoseLandmarkNet(nn.Module):
    """``pose_landmark_full.tflite``: a 256 x 256 person crop in 0..1 -> landmarks and mask.

    ``forward(x [B, 3, 256, 256])`` returns a dict:
    ``landmarks [B, 39, 5]`` (x, y, z in crop pixels, visibility and presence logits),
    ``flag [B]`` (pose presence probability), ``segmentation [B, 1, 256, 256]`` (logits),
    ``heatmaps [B, 39, 64, 64]`` (logits), ``world [B, 39, 3]`` (metres, hip-centred).
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = TFConv2d(3, 24, 3, 2, pad="explicit")
        self.stage128 = InvertedResidual(24, 16, None)
        self.skip128 = Side(16, 8)
        self.stage64 = _chain(InvertedResidual(16, 24, 64, 3, 2), InvertedResidual(24, 24, 144))
        self.skip64 = Side(24, 48)
        self.stage32 = _chain(InvertedResidual(24, 32, 144, 5, 2), InvertedResidual(32, 32, 192, 5))
        self.skip32 = Side(32, 48)
        self.stage16 = _chain(InvertedResidual(32, 64, 192, 3, 2), InvertedResidual(64, 64, 384),
                              InvertedResidual(64, 64, 384), InvertedResidual(64, 88, 384, 5),
                              InvertedResidual(88, 88, 528, 5), InvertedResidual(88, 88, 528, 5))
        self.skip16 = Side(88, 48)
        self.stage8 = _chain(InvertedResidual(88, 144, 528, 5, 2), InvertedResidual(144, 144, 864, 5),
                             InvertedResidual(144, 144, 864, 5), InvertedResidual(144, 144, 864, 5),
                             TFConv2d(144, 864, 1), TFConv2d(864, 864, 3, depthwise=True))
        # U-Net decoder: heatmaps at 64 x 64, segmentation at 256 x 256
        self.dec8 = TFConv2d(864, 864, 3, depthwise=True)
        self.up8 = TFConv2d(864, 48, 1)
        self.heatmap = TFConv2d(48, NUM_LANDMARKS, 1, act=False)
        self.seg64 = Side(48, 8)
        self.seg128 = _chain(ResBlock(8), ResBlock(8))
        self.seg256 = _chain(ResBlock(8), ResBlock(8))
        self.seg_out = TFConv2d(8, 1, 3, act=False)
        # regression head: 8 -> 4 -> 2 -> 1
        self.head8 = Side(864, 288)
        self.head4 = _chain(ResBlock(288, 2), *(ResBlock(288) for _ in range(4)))
        self.head2 = _chain(ResBlock(288, 2), *(ResBlock(288) for _ in range(5)))
        self.out_landmarks = TFConv2d(288, NUM_LANDMARKS * 5, 2, act=False, pad="valid")
        self.out_world = TFConv2d(288, NUM_LANDMARKS * 3, 2, act=False, pad="valid")
        self.out_flag = TFConv2d(288, 1, 2, act=False, pad="valid")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f128 = self.stage128(self.stem(x))                 # skips computed where TFLite runs them
        s128 = self.skip128(f128)
        f64 = self.stage64(f128)
        s64 = self.skip64(f64)
        f32 = self.stage32(f64)
        s32 = self.skip32(f32)
        f16 = self.stage16(f32)
        s16 = self.skip16(f16)
        f8 = self.stage8(f16)
        d = upsample(self.up8(self.dec8(f8)), f16.shape[-2:]) + s16
        d = upsample(d, f32.shape[-2:]) + s32
        d64 = upsample(d, f64.shape[-2:]) + s64
        s = self.seg128(upsample(self.seg64(d64), f128.shape[-2:]) + s128)
        segmentation = self.seg_out(self.seg256(upsample(s, x.shape[-2:])))
        heatmaps = self.heatmap(d64)
        h = self.head2(self.head4(self.head8(f8)))
        b = x.shape[0]
        return {"landmarks": self.out_landmarks(h).reshape(b, NUM_LANDMARKS, 5),
                "world": self.out_world(h).reshape(b, NUM_LANDMARKS, 3),
                "flag": torch.sigmoid(self.out_flag(h)).reshape(b),
                "segmentation": segmentation, "heatmaps": heatmaps}


class DetectorHead(nn.Module):
    """SSD head of one feature scale: scores and 12 regressors (box + 4 keypoints) for ``anchors`` per cell."""

    def __init__(self, c: int, anchors: int) -> None:
        super().__init__()
        self.cls_dw = TFConv2d(c, c, 3, 2, depthwise=True, act=False, pad="explicit")
        self.cls = TFConv2d(c, anchors, 1, act=False)
        self.reg_dw = TFConv2d(c, c, 3, 2, depthwise=True, act=False, pad="explicit")
        self.reg = TFConv2d(c, anchors * 12, 1, act=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        scores = self.cls(self.cls_dw(x)).permute(0, 2, 3, 1).reshape(b, -1)
        boxes = self.reg(self.reg_dw(x)).permute(0, 2, 3, 1).reshape(b, -1, 12)
        return scores, boxes


class BlazePoseDetector(nn.Module):
    """``pose_detection.tflite``: a letterboxed 224 x 224 image in -1..1 -> ``(scores [B, 2254] logits,
    boxes [B, 2254, 12])``; the 12 regressors are (x, y, w, h) of the box and 4 keypoints (hip centre,
    full-body scale point, shoulder centre, upper-body scale point), in input pixels relative to the anchor."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = TFConv2d(3, 24, 3, 2, pad="explicit")
        self.stage112 = InvertedResidual(24, 16, None)
        self.stage56 = _chain(InvertedResidual(16, 24, 64, 3, 2), InvertedResidual(24, 24, 144))
        self.stage28 = _chain(InvertedResidual(24, 40, 144, 5, 2), InvertedResidual(40, 40, 240, 5))
        self.skip28 = Side(40, 96, dw_act=False)
        self.stage14 = _chain(InvertedResidual(40, 80, 240, 3, 2), InvertedResidual(80, 80, 480),
                              InvertedResidual(80, 80, 480), InvertedResidual(80, 112, 480, 5),
                              InvertedResidual(112, 112, 672, 5), InvertedResidual(112, 112, 672, 5))
        self.skip14 = Side(112, 192, dw_act=False)
        self.stage7 = _chain(InvertedResidual(112, 192, 672, 5, 2), InvertedResidual(192, 192, 1152, 5),
                             InvertedResidual(192, 192, 1152, 5), InvertedResidual(192, 192, 1152, 5),
                             TFConv2d(192, 1152, 1), TFConv2d(1152, 1152, 3, depthwise=True))
        self.up7 = TFConv2d(1152, 192, 1)
        self.fpn14 = _chain(ResBlock(192, dw_act=False), ResBlock(192, dw_act=False))
        self.up14 = TFConv2d(192, 96, 1)
        self.fpn28 = _chain(ResBlock(96, dw_act=False), ResBlock(96, dw_act=False))
        self.head28 = DetectorHead(24, 2)
        self.head14 = DetectorHead(48, 2)
        self.head7 = DetectorHead(288, 6)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f28 = self.stage28(self.stage56(self.stage112(self.stem(x))))
        s28 = self.skip28(f28)
        f14 = self.stage14(f28)
        s14 = self.skip14(f14)
        f7 = self.stage7(f14)
        p14 = self.fpn14(s14 + self.up7(upsample(f7, f14.shape[-2:])))
        p28 = self.fpn28(s28 + self.up14(upsample(p14, f28.shape[-2:])))
        s28, b28 = self.head28(depth_to_space(p28, 2))
        s14, b14 = self.head14(depth_to_space(p14, 2))
        s7, b7 = self.head7(depth_to_space(f7, 2))
        return torch.cat([s28, s14, s7], 1), torch.cat([b28, b14, b7], 1)


def conv_layers(model: nn.Module) -> list[tuple[str, TFConv2d]]:
    """Every convolution in the order ``forward`` runs them (the converter matches them to the TFLite ops)."""
    order: list[tuple[str, TFConv2d]] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = [m.register_forward_pre_hook(lambda mod, _a: order.append((names[mod], mod)))
             for m in model.modules() if isinstance(m, TFConv2d)]
    size = 224 if isinstance(model, BlazePoseDetector) else 256
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return order


def read_weights(path: str | os.PathLike, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a converted BlazePose file, checked to be of ``kind`` (clear errors naming it)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"BlazePose weights {path} not found: the pack ships them under reposedm_core/weights/; reinstall the "
            f"pack, or rebuild them with `python scripts/convert_blazepose.py` (needs mediapipe==0.10.21's wheel)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e}); rebuild it with "
                              f"`python scripts/convert_blazepose.py`") from e
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path} holds {meta.get('kind')!r}, expected BlazePose weights of kind {kind!r}")
    return tensors, meta


def load_into(model: nn.Module, path: str | os.PathLike, kind: str) -> dict[str, str]:
    tensors, meta = read_weights(path, kind)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    bad = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or extra or bad:
        raise CheckpointError(f"{path} does not match the {type(model).__name__} architecture: missing "
                              f"{missing[:3]}, unexpected {extra[:3]}, wrong shapes {bad[:3]}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return meta


def load_blazepose_networks(device: str | torch.device | None = None, dtype: torch.dtype = torch.float32,
                            detector: str | os.PathLike | None = None,
                            landmark: str | os.PathLike | None = None
                            ) -> tuple[BlazePoseDetector, BlazePoseLandmarkNet, dict]:
    """Both networks in eval mode with frozen parameters, from the shipped files unless paths are given."""
    det, lm = BlazePoseDetector(), BlazePoseLandmarkNet()
    meta = {"detector": load_into(det, detector or DETECTOR_FILE, KIND_DETECTOR),
            "landmark": load_into(lm, landmark or LANDMARK_FILE, KIND_LANDMARK)}
    for net in (det, lm):   # channels-last: the depthwise convolutions run 1.4-1.8x faster on the CPU
        net.to(device=device, dtype=dtype, memory_format=torch.channels_last).eval().requires_grad_(False)
    return det, lm, meta
