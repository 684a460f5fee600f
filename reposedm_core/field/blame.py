"""Which joints are to blame for a pose's distance from the manifold, on one absolute colour scale.

A joint's blame is the pose's distance shared out by the field's gradient: ``d * |g_j| / max_k |g_k|`` (torso
lengths), so the worst joint of a pose carries the whole distance and a plausible pose has no red joint,
whatever its own worst joint is. Colours come from the field's calibration (the distances of held-out real
poses), the same for every pose and every image, and the image carries a legend with those numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..pose.encode import render_skeleton

GREEN, YELLOW, RED = (0.1, 0.85, 0.2), (1.0, 0.85, 0.0), (1.0, 0.1, 0.1)


@dataclass(frozen=True)
class BlameScale:
    """Absolute colour scale in torso lengths: green up to ``ok``, through yellow, red from ``broken``."""

    ok: float       # 95th percentile of real poses' distances: as plausible as 95 % of real poses
    broken: float   # 2x the 99th percentile: twice as far as all but the rarest 1 % of real poses

    @classmethod
    def from_calibration(cls, calibration: dict) -> "BlameScale":
        """The scale of a field whose calibration holds ``valid_p95`` and ``valid_p99`` (from ``train.field``)."""
        missing = [k for k in ("valid_p95", "valid_p99") if k not in calibration]
        if missing:
            raise ValueError(f"the pose field's calibration lacks {missing}; retrain or re-calibrate the field "
                             f"(it has {sorted(calibration)})")
        ok, p99 = float(calibration["valid_p95"]), float(calibration["valid_p99"])
        return cls(ok=ok, broken=max(2.0 * p99, 2.0 * ok))

    def position(self, value: torch.Tensor) -> torch.Tensor:
        """Distance -> 0 (green, at or below ``ok``) .. 1 (red, at or above ``broken``)."""
        return ((value - self.ok) / (self.broken - self.ok)).clamp(0, 1)

    def verdict(self, distance: float) -> str:
        """'plausible', 'doubtful' or 'broken' for one pose's distance."""
        return "plausible" if distance <= self.ok else "broken" if distance >= self.broken else "doubtful"


def joint_blame(distance: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """distance ``[N]`` and d distance / d joint ``[N, 18, 2]`` -> per-joint blame ``[N, 18]`` (torso lengths)."""
    g = gradient.norm(dim=-1)
    return distance[:, None].clamp_min(0) * g / g.amax(-1, keepdim=True).clamp_min(1e-12)


def blame_colours(blame: torch.Tensor, scale: BlameScale) -> torch.Tensor:
    """Blame ``[...]`` -> RGB ``[..., 3]`` in 0..1: green -> yellow (halfway) -> red on the absolute scale."""
    t = scale.position(blame)[..., None]
    green, yellow, red = (torch.tensor(c, dtype=blame.dtype) for c in (GREEN, YELLOW, RED))
    lower = green + (yellow - green) * (2 * t).clamp(max=1)
    return torch.where(t <= 0.5, lower, yellow + (red - yellow) * (2 * t - 1))


def render_blame(keypoints: torch.Tensor, blame: dict[int, torch.Tensor], height: int, width: int,
                 scale: BlameScale, legend: bool = True) -> torch.Tensor:
    """People ``[P, 18, 3]`` (pixels) in grey, scored people's joints coloured by blame -> ``[3, H, W]`` 0..1.

    ``blame`` maps a person index to its ``[18]`` blame; a joint's disc grows with its blame (up to 2.5x).
    """
    canvas = torch.zeros(3, height, width)
    if len(keypoints):
        canvas = render_skeleton(keypoints[None], height, width)[0] * 0.35
    ys, xs = torch.arange(height).view(height, 1), torch.arange(width).view(1, width)
    radius = max(2.0, min(height, width) / 64)
    for p, b in blame.items():
        kp, colours, t = keypoints[p], blame_colours(b, scale), scale.position(b)
        for j in range(kp.shape[0]):
            if kp[j, 2] > 0:
                r = radius * (1 + 1.5 * float(t[j]))
                disc = ((xs - kp[j, 0]) ** 2 + (ys - kp[j, 1]) ** 2) <= r * r
                canvas[:, disc] = colours[j, :, None]
    return draw_legend(canvas, scale) if legend else canvas


def draw_legend(canvas: torch.Tensor, scale: BlameScale) -> torch.Tensor:
    """The colour bar of ``scale`` with its two calibrated ticks, drawn over the bottom of ``[3, H, W]``."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    _, h, w = canvas.shape
    size = max(8, min(14, w // 18))
    band = min(h, 3 * size + 6)
    if w < 48 or h < 2 * band:   # too small to carry a readable legend
        return canvas
    img = Image.fromarray((canvas.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy())
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, h - band, w, h], fill=(0, 0, 0))
    pad, bar_h = 4, max(4, size // 2)
    x0, x1 = pad, w - pad
    # The bar spans 0 .. 1.25x 'broken'; the ticks sit at 'ok' and 'broken'.
    top = 1.25 * scale.broken
    values = torch.linspace(0, top, x1 - x0)
    cols = (blame_colours(values, scale) * 255).round().byte().numpy()
    bar_y = h - band + pad
    bar = np.repeat(cols[None], bar_h, 0)
    img.paste(Image.fromarray(bar), (x0, bar_y))
    font = ImageFont.load_default(size=size)
    for value, label in ((scale.ok, f"{scale.ok:.2f} ok"), (scale.broken, f"{scale.broken:.2f} broken")):
        x = x0 + int((x1 - x0) * value / top)
        draw.line([x, bar_y - 1, x, bar_y + bar_h + 1], fill=(255, 255, 255))
        tw = draw.textlength(label, font=font)
        draw.text((min(max(x - tw / 2, 0), w - tw), bar_y + bar_h + 1), label, fill=(255, 255, 255), font=font)
    drawn = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
    out = canvas.clone()
    out[:, h - band:] = drawn[:, h - band:]   # the body above keeps its exact pixels
    return out
