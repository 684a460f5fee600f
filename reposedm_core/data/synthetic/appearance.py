"""Appearance of an identity: skin, hair, garments with patterns, shoes, background.

An identity is a deterministic function of its seed. Garments are a table ``[n, NUM_GARMENTS, K]`` of
pattern parameters; the renderer evaluates a pattern at body-surface coordinates (u along a part's axis,
v around it, both in metres), so a garment looks the same in any pose or view.

Per-pixel functions (:func:`garment_colour`, :func:`background`) use only + - * / sqrt floor abs clamp where,
which are exact in torch's vectorised and scalar CPU paths, so an image does not depend on the batch size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

NUM_APPEARANCE_UNIFORMS = 192
SKIN, HAIR, TOP, BOTTOM, SHOES = range(5)
NUM_GARMENTS = 5
TOP_TYPES = ("tshirt", "long_sleeve", "tank", "dress", "coat")
BOTTOM_TYPES = ("trousers", "shorts", "skirt")
HAIR_STYLES = ("short", "long", "medium", "bun", "bald")
PATTERNS = ("solid", "stripes", "checks", "dots", "print")
# Garment table columns.
(P_TYPE, C0, C1, C2, P_PERIOD, P_DUTY, P_COS, P_SIN, P_PHASE_U, P_PHASE_V, P_WAVES, P_T1, P_T2) = (
    0, 1, 4, 7, 10, 11, 12, 13, 14, 15, 16, 22, 23)
GARMENT_K = 24

SKIN_TONES = ((0.97, 0.84, 0.74), (0.92, 0.75, 0.63), (0.83, 0.64, 0.50), (0.71, 0.51, 0.37),
              (0.56, 0.38, 0.26), (0.41, 0.27, 0.18), (0.29, 0.19, 0.13))
HAIR_COLOURS = ((0.06, 0.05, 0.05), (0.17, 0.11, 0.07), (0.33, 0.21, 0.12), (0.50, 0.36, 0.22),
                (0.80, 0.66, 0.42), (0.52, 0.22, 0.11), (0.62, 0.61, 0.60), (0.86, 0.85, 0.82))
HAIR_WEIGHTS = (0.30, 0.22, 0.15, 0.1, 0.1, 0.05, 0.05, 0.03)
NEUTRALS = ((0.95, 0.95, 0.93), (0.08, 0.08, 0.09), (0.5, 0.5, 0.5), (0.12, 0.15, 0.3), (0.8, 0.72, 0.58),
            (0.25, 0.35, 0.55), (0.3, 0.3, 0.32))


@dataclass
class Appearance:
    """A batch of ``n`` identities (float64 / long per-sample parameters)."""

    garments: torch.Tensor  # [n, NUM_GARMENTS, GARMENT_K] pattern table
    top: torch.Tensor  # [n] long, index into TOP_TYPES
    bottom: torch.Tensor  # [n] long, index into BOTTOM_TYPES (ignored under a dress)
    hair_style: torch.Tensor  # [n] long, index into HAIR_STYLES
    hair_length: torch.Tensor  # [n] metres of hanging hair below the head (0 = none)
    sleeve: torch.Tensor  # [n] sleeve end as a fraction of the arm (upper arm + forearm): 0 none .. 2 wrist
    leg_cover: torch.Tensor  # [n] bottom-garment end as a fraction of the leg (thigh + shin): 0 .. 2 ankle
    skirt: torch.Tensor  # [n] skirt/coat-tail length as a fraction of the thigh (0 = none)
    waistline: torch.Tensor  # [n] 0..1 along the abdomen where the top starts
    neckline: torch.Tensor  # [n] neckline depth in metres
    boots: torch.Tensor  # [n] bool
    background: torch.Tensor  # [n, 16] wall top, wall bottom, floor rgb, floor?, texture amp, waves (4), vignette


def _hsv(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    h6 = (h - torch.floor(h))[..., None] * 6 + torch.tensor([-3.0, -2.0, -4.0], dtype=h.dtype)
    hue = torch.stack([h6[..., 0].abs() - 1, 2 - h6[..., 1].abs(), 2 - h6[..., 2].abs()], -1).clamp(0, 1)
    return v[..., None] * (1 - s[..., None] + s[..., None] * hue)


def _palette(table: tuple[tuple[float, float, float], ...], index: torch.Tensor) -> torch.Tensor:
    return torch.tensor(table, dtype=torch.float64)[index.clamp(0, len(table) - 1)]


class _Draw:
    """Hands out successive uniform columns of ``[n, K]`` so each parameter has its own draw."""

    def __init__(self, u: torch.Tensor) -> None:
        self.u, self.i = u.to(torch.float64), 0

    def __call__(self, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        if self.i >= self.u.shape[1]:
            raise RuntimeError(f"appearance needs more than {self.u.shape[1]} uniforms")
        self.i += 1
        return lo + (hi - lo) * self.u[:, self.i - 1]

    def pick(self, weights: tuple[float, ...]) -> torch.Tensor:
        w = torch.tensor(weights, dtype=torch.float64)
        return torch.bucketize(self().contiguous(), torch.cumsum(w / w.sum(), 0)[:-1], right=True)


def _colour(d: _Draw, neutral_p: float) -> torch.Tensor:
    hue = _hsv(d(), d(0.3, 0.85), d(0.25, 0.92))
    neutral = _palette(NEUTRALS, (d() * len(NEUTRALS)).long())
    return torch.where((d() < neutral_p)[:, None], neutral, hue)


def _garment(d: _Draw, neutral_p: float, pattern_w: tuple[float, ...]) -> torch.Tensor:
    """One garment's row ``[n, GARMENT_K]``."""
    n = d.u.shape[0]
    c0 = _colour(d, neutral_p)
    other = _colour(d, 0.5)
    light = torch.where((c0.mean(-1) < 0.45)[:, None], torch.full_like(c0, 0.93), torch.full_like(c0, 0.1))
    scheme = d()
    c1 = torch.where((scheme < 0.4)[:, None], light,
                     torch.where((scheme < 0.7)[:, None], other, 0.55 * c0 + 0.45 * light))
    c2 = _colour(d, 0.4)
    kind = d.pick(pattern_w)
    period = torch.stack([d(0.03, 0.1), d(0.02, 0.08), d(0.04, 0.12), d(0.025, 0.07), d(0.06, 0.2)], -1)
    period = period.gather(1, kind[:, None])[:, 0]
    orient = d.pick((0.55, 0.3, 0.15))  # stripes across the part, along it, diagonal
    ang = torch.tensor([0.0, 1.5708, 0.7854], dtype=torch.float64)[orient]
    base = d(0.0, 6.2832)
    waves = []
    for j, scale in enumerate((1.0, 1.43, 1.9)):
        a = base + 2.09 * j
        waves += [torch.cos(a) * scale, torch.sin(a) * scale]
    t1 = d(-0.25, 0.15)
    row = torch.zeros(n, GARMENT_K, dtype=torch.float64)
    row[:, P_TYPE] = kind.to(torch.float64)
    row[:, C0:C0 + 3], row[:, C1:C1 + 3], row[:, C2:C2 + 3] = c0, c1, c2
    row[:, P_PERIOD], row[:, P_DUTY] = period, d(0.3, 0.6)
    row[:, P_COS], row[:, P_SIN] = torch.cos(ang), torch.sin(ang)
    row[:, P_PHASE_U], row[:, P_PHASE_V] = d(), d()
    row[:, P_WAVES:P_WAVES + 6] = torch.stack(waves, -1)
    row[:, P_T1] = t1
    row[:, P_T2] = torch.where(d() < 0.5, t1 + d(0.25, 0.45), torch.full_like(t1, 9.0))  # 2 or 3 colours
    return row


def appearance_from_uniforms(u: torch.Tensor, femininity: torch.Tensor, child: torch.Tensor) -> Appearance:
    """Identities from uniforms ``[n, NUM_APPEARANCE_UNIFORMS]`` and body traits ``[n]`` (0..1)."""
    d = _Draw(u)
    n = u.shape[0]
    fem, kid = femininity.to(torch.float64), child.to(torch.float64)
    zeros = torch.zeros(n, dtype=torch.float64)
    f64 = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    # Skin: a continuous position on a light-to-dark palette, with a small per-channel jitter.
    pos = d() * (len(SKIN_TONES) - 1)
    i0 = pos.floor().long()
    w = (pos - i0)[:, None]
    skin = _palette(SKIN_TONES, i0) * (1 - w) + _palette(SKIN_TONES, i0 + 1) * w
    skin = (skin * (1 + 0.04 * (torch.stack([d(), d(), d()], -1) - 0.5))).clamp(0, 1)
    hair_idx = d.pick(HAIR_WEIGHTS)
    hair = torch.where((d() < 0.04)[:, None], _hsv(d(), d(0.5, 0.9), d(0.35, 0.8)), _palette(HAIR_COLOURS, hair_idx))
    style_u = d()
    style = torch.where(fem > 0.5, torch.bucketize(style_u.contiguous(), f64(0.15, 0.6, 0.8, 0.98)),
                        torch.bucketize(style_u.contiguous(), f64(0.72, 0.8, 0.88, 0.92)))
    style = torch.where((kid > 0.5) & (style == 4), torch.zeros_like(style), style)
    hair_length = torch.where(style == 1, d(0.12, 0.3), torch.where(style == 2, d(0.04, 0.09), zeros))

    top = torch.where(fem > 0.5, d.pick((0.3, 0.22, 0.13, 0.2, 0.15)), d.pick((0.42, 0.3, 0.1, 0.0, 0.18)))
    bottom = torch.where(fem > 0.5, d.pick((0.45, 0.2, 0.35)), d.pick((0.72, 0.28, 0.0)))
    sleeve_by_top = torch.stack([d(0.3, 0.65), d(1.8, 2.0), zeros, torch.where(d() < 0.5, d(0.2, 0.5), zeros),
                                 d(1.9, 2.0)], -1)
    sleeve = sleeve_by_top.gather(1, top[:, None])[:, 0]
    leg_by_bottom = torch.stack([d(1.85, 2.0), d(0.25, 0.65), zeros], -1)
    leg_cover = torch.where(top == 3, zeros, leg_by_bottom.gather(1, bottom[:, None])[:, 0])
    skirt = torch.where(top == 3, d(0.45, 1.15), torch.where(bottom == 2, d(0.35, 1.1), zeros))
    skirt = torch.where(top == 4, torch.maximum(skirt, d(0.6, 1.05)), skirt)
    boots = (d() < 0.15) & (leg_cover < 1.8)

    patterns_top = (0.35, 0.2, 0.13, 0.12, 0.2)
    rest = torch.zeros(n, GARMENT_K - 10, dtype=torch.float64)
    garments = torch.stack([
        torch.cat([zeros[:, None], skin, skin, skin, rest], -1),  # solid skin
        torch.cat([zeros[:, None], hair, 0.8 * hair, hair, rest], -1),  # solid hair
        _garment(d, 0.35, patterns_top),
        _garment(d, 0.55, (0.6, 0.1, 0.1, 0.05, 0.15)),
        _garment(d, 0.75, (1.0, 0.0, 0.0, 0.0, 0.0)),
    ], 1)
    coat = top == 4  # coats are plain-ish and darker
    garments[:, TOP, P_TYPE] = torch.where(coat & (d() < 0.7), zeros, garments[:, TOP, P_TYPE])

    # Background: studio (light, plain) or coloured wall, optional floor, soft texture, vignette.
    studio = d() < 0.45
    grey = d(0.78, 0.97)
    tint = torch.stack([d(0.97, 1.0), d(0.97, 1.0), d(0.97, 1.0)], -1)
    wall_top = torch.where(studio[:, None], grey[:, None] * tint, _hsv(d(), d(0.05, 0.45), d(0.45, 0.95)))
    wall_bottom = (wall_top * d(0.75, 1.05)[:, None]).clamp(0, 1)
    floor = torch.where((d() < 0.5)[:, None], wall_bottom * d(0.75, 0.95)[:, None],
                        _hsv(d(), d(0.05, 0.4), d(0.25, 0.75)))
    has_floor = (d() < 0.65).to(torch.float64)
    amp = torch.where(studio, d(0.0, 0.015), d(0.005, 0.045))
    bg = torch.cat([wall_top, wall_bottom, floor, has_floor[:, None], amp[:, None],
                    torch.stack([d(-2.5, 2.5), d(-2.5, 2.5), d(-4, 4), d(-4, 4)], -1), d(0.0, 0.35)[:, None]], -1)
    return Appearance(garments, top, bottom, style, hair_length, sleeve, leg_cover, skirt,
                      waistline=d(0.0, 0.45), neckline=d(0.02, 0.09), boots=boots, background=bg)


# ----------------------------------------------------------------------------------- per-pixel (float32)
def wave(x: torch.Tensor) -> torch.Tensor:
    """A smooth cosine-like periodic function of period 1 (exact ops only): 1 at integers, -1 at halves."""
    t = x - torch.floor(x)
    tri = (4 * t - 2).abs() - 1
    return tri * (1.5 - 0.5 * tri * tri)


def _soft(x: torch.Tensor, width: float) -> torch.Tensor:
    return (x / width + 0.5).clamp(0, 1)


def _stripes(p: torch.Tensor, su: torch.Tensor, sv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One orientation per garment; a thin third-colour stripe when the garment has 3 colours."""
    f = su * p[:, P_COS] + sv * p[:, P_SIN]
    f = f - torch.floor(f)
    w1 = _soft(0.5 * p[:, P_DUTY] - (f - 0.5).abs(), 0.07)
    return w1, _soft(0.05 - torch.minimum(f, 1 - f), 0.05) * (p[:, P_T2] < 5)


def _checks(p: torch.Tensor, su: torch.Tensor, sv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gingham: one band = colour 1, both bands = colour 2."""
    half = 0.5 * p[:, P_DUTY]
    bu = _soft(half - (su - torch.floor(su) - 0.5).abs(), 0.06)
    bv = _soft(half - (sv - torch.floor(sv) - 0.5).abs(), 0.06)
    both = bu * bv
    return bu + bv - 2 * both, both


def _dots(p: torch.Tensor, su: torch.Tensor, sv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dots on a staggered lattice."""
    row = torch.floor(su)
    dv = sv + 0.5 * row
    du, dv = su - row - 0.5, dv - torch.floor(dv) - 0.5
    return _soft(0.3 * p[:, P_DUTY] - torch.sqrt(du * du + dv * dv), 0.06), torch.zeros_like(du)


def _print_pattern(p: torch.Tensor, su: torch.Tensor, sv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Three interfering waves thresholded into 2 or 3 colours (camouflage / abstract print)."""
    w = p[:, P_WAVES:P_WAVES + 6]
    noise = (wave(su * w[:, 0] + sv * w[:, 1]) + wave(su * w[:, 2] + sv * w[:, 3] + 0.37)
             + wave(su * w[:, 4] + sv * w[:, 5] + 0.71)) * (1 / 3)
    w2 = _soft(noise - p[:, P_T2], 0.05)
    return _soft(noise - p[:, P_T1], 0.05) - w2, w2


PATTERN_FNS = {1: _stripes, 2: _checks, 3: _dots, 4: _print_pattern}


def garment_colour(p: torch.Tensor, u: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
    """Pattern colour ``[M, 3]`` of garment rows ``p [M, GARMENT_K]`` at surface coordinates ``u, v [M]`` (metres).

    Each pattern is evaluated only on the pixels whose garment has it; ``v`` may be None if all are solid.
    """
    kind = p[:, P_TYPE]
    w1, w2 = torch.zeros_like(u), torch.zeros_like(u)
    for k, fn in PATTERN_FNS.items():
        pix = (kind == k).nonzero()[:, 0]
        if pix.numel() == 0:
            continue
        pk = p[pix]
        a1, a2 = fn(pk, u[pix] / pk[:, P_PERIOD] + pk[:, P_PHASE_U], v[pix] / pk[:, P_PERIOD] + pk[:, P_PHASE_V])
        w1[pix], w2[pix] = a1, a2
    w1 = w1 * (1 - w2)
    c0, c1, c2 = p[:, C0:C0 + 3], p[:, C1:C1 + 3], p[:, C2:C2 + 3]
    return c0 + w1[:, None] * (c1 - c0) + w2[:, None] * (c2 - c0)


def background(bg: torch.Tensor, floor_line: torch.Tensor, shadow: torch.Tensor, height: int,
               width: int) -> torch.Tensor:
    """Background ``[B, 3, H, W]`` in 0..1 from parameters ``[B, 16]``, the floor edge ``[B, 2, 2]`` (pixels) and
    the contact shadow ``[B, 5]`` (centre x, y, radii x, y in pixels, strength)."""
    f = bg.to(torch.float32)
    B = f.shape[0]
    ys = (torch.arange(height, dtype=torch.float32, device=f.device) + 0.5).view(1, height, 1)
    xs = (torch.arange(width, dtype=torch.float32, device=f.device) + 0.5).view(1, 1, width)
    yn, xn = ys / height, xs / width
    c = lambda k: f[:, k].view(B, 1, 1)  # noqa: E731
    rgb = lambda k: f[:, k:k + 3].view(B, 3, 1, 1)  # noqa: E731
    wall = rgb(0) + (rgb(3) - rgb(0)) * yn[:, None]  # [B, 3, H, 1] vertical gradient
    a, b = floor_line[:, 0].to(torch.float32), floor_line[:, 1].to(torch.float32)
    ex, ey = (b[:, 0] - a[:, 0]).view(B, 1, 1), (b[:, 1] - a[:, 1]).view(B, 1, 1)
    scale = -torch.sign(ex) / torch.sqrt(ex * ex + ey * ey).clamp_min(1e-3)
    dist = (xs - a[:, 0].view(B, 1, 1)) * (ey * scale) - (ys - a[:, 1].view(B, 1, 1)) * (ex * scale)  # > 0 below
    on_floor = _soft(dist, 2.0) * c(9)
    k_floor = on_floor * (1 - 0.25 * (dist * (1 / height)).clamp(0, 1))
    tex = 1 + c(10) * 0.5 * (wave(xn * c(11) + yn * c(12)) + wave(xn * c(13) + yn * c(14) + 0.3))
    light = tex * (1 - c(15) * ((xn - 0.5) * (xn - 0.5) + (yn - 0.5) * (yn - 0.5)))
    sh = shadow.to(torch.float32)
    s = lambda k: sh[:, k].view(B, 1, 1)  # noqa: E731
    sx, sy = (xs - s(0)) / s(2), (ys - s(1)) / s(3)
    light = light * (1 - s(4) * (1 - sx * sx - sy * sy).clamp(0, 1))
    out = (wall * (1 - on_floor)[:, None] + rgb(6) * k_floor[:, None]) * light[:, None]
    return out.clamp(0, 1)
