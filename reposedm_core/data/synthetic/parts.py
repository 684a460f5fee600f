"""Body parts as 3D primitives, with the garment that covers each stretch of each part.

Every part but the head is a tapered capsule with an elliptical cross-section (semi-axes ``rx`` along the
part's local x, ``rz`` along its local z) and ends whose caps can be flattened (``cap`` < 1, used for the torso
and hems). The head is an ellipsoid. Garments are assigned along the part's axis: garment ``ga`` up to ``s1``
metres from ``p0``, ``gb`` up to ``s2``, ``gc`` beyond, so sleeves, hems and trouser legs end where they should.
All tensors are float64 per sample, in the world (body) frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .appearance import BOTTOM, HAIR, SHOES, SKIN, TOP, Appearance
from .skeleton import SHAPE, SJ, head_axes, matvec3

FAR = 1e3  # a split beyond any part


@dataclass
class Part:
    """One body part for a batch of ``n`` people."""

    name: str
    p0: torch.Tensor  # [n, 3] start of the axis (metres, body frame)
    p1: torch.Tensor  # [n, 3] end of the axis
    xref: torch.Tensor  # [n, 3] direction for the cross-section's local x (orthogonalised against the axis)
    rx0: torch.Tensor  # [n] cross-section semi-axes at p0 and p1 (metres)
    rz0: torch.Tensor
    rx1: torch.Tensor
    rz1: torch.Tensor
    cap0: float = 1.0  # cap length / radius at p0 (1 = hemisphere, small = flat)
    cap1: float = 1.0
    garments: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # [n] long each
    splits: tuple[torch.Tensor, torch.Tensor] | None = None  # [n] metres along the axis
    u0: torch.Tensor | None = None  # [n] offset of the texture u coordinate (metres)
    enabled: torch.Tensor | None = None  # [n] bool
    frame: torch.Tensor | None = None  # [n, 3, 3] full local frame (the head ellipsoid only)


PART_NAMES: tuple[str, ...] = (
    "pelvis", "abdomen", "chest", "shoulders", "neck", "head", "hair_long", "hair_bun",
    "r_upper_arm", "r_forearm", "r_hand", "l_upper_arm", "l_forearm", "l_hand",
    "r_thigh", "r_shin", "r_foot", "l_thigh", "l_shin", "l_foot", "skirt",
)
PART_ID = {name: i + 1 for i, name in enumerate(PART_NAMES)}  # 0 = background in label maps


def _const(n: int, g: int) -> torch.Tensor:
    return torch.full((n,), g, dtype=torch.long)


def _cover(n: int, ga, gb=None, gc=None, s1=None, s2=None) -> dict:
    ga = _const(n, ga) if isinstance(ga, int) else ga
    gb = ga if gb is None else (_const(n, gb) if isinstance(gb, int) else gb)
    gc = gb if gc is None else (_const(n, gc) if isinstance(gc, int) else gc)
    far = torch.full((n,), FAR, dtype=torch.float64)
    return dict(garments=(ga, gb, gc), splits=(far if s1 is None else s1, far if s2 is None else s2))


def body_radii(shape: torch.Tensor) -> dict[str, torch.Tensor]:
    """Characteristic radii (metres, ``[n]``) used by the parts and by the occlusion test."""
    H, g, fem = shape[:, SHAPE["height"]], shape[:, SHAPE["girth"]], shape[:, SHAPE["femininity"]]
    return {
        "upper_arm": 0.028 * H * g, "elbow": 0.022 * H * g, "forearm": 0.021 * H * g, "wrist": 0.016 * H * g.sqrt(),
        "thigh": 0.054 * H * g * (1 + 0.08 * fem), "knee": 0.034 * H * g, "shin": 0.033 * H * g,
        "ankle": 0.021 * H * g.sqrt(), "neck": 0.031 * H * g.pow(0.3),
        "pelvis_depth": 0.075 * H * g, "chest_depth": (0.07 + 0.012 * fem) * H * g,
    }


def build_parts(joints: torch.Tensor, frames: torch.Tensor, shape: torch.Tensor, app: Appearance) -> list[Part]:
    """Parts of ``n`` people from joints ``[n, J, 3]``, frames ``[n, J, 3, 3]``, shapes and appearances."""
    n = joints.shape[0]
    P = lambda k: joints[:, SJ[k]]  # noqa: E731
    F = lambda k, axis: frames[:, SJ[k], :, axis]  # noqa: E731
    S = lambda k: shape[:, SHAPE[k]]  # noqa: E731
    H, g, fem = S("height"), S("girth"), S("femininity")
    rad = body_radii(shape)
    length = lambda a, b: (b - a).norm(dim=-1)  # noqa: E731
    parts: list[Part] = []
    pick = lambda cond, a, b: torch.where(cond, _const(n, a), _const(n, b))  # noqa: E731
    dress, tank = app.top == 3, (app.top == 2) | ((app.top == 3) & (app.sleeve == 0))

    # Torso: pelvis, abdomen, chest (elliptical, flattened caps), a shoulder bar, the neck.
    hip_w = S("hip_half") + 0.95 * rad["thigh"]  # the pelvis contains the tops of the thighs
    pelvis0 = P("pelvis") - 0.015 * H[:, None] * F("pelvis", 1)
    chest_w0, chest_w1 = S("shoulder_half") * (0.93 - 0.08 * fem) * g.sqrt(), S("shoulder_half") * 0.8
    waist_w = hip_w * (0.86 - 0.08 * fem)
    pd, cd = rad["pelvis_depth"], rad["chest_depth"]
    torso = [("pelvis", pelvis0, P("waist"), hip_w, pd, waist_w, 0.9 * pd, 0.3, 0.5),
             ("abdomen", P("waist"), P("chest"), waist_w, 0.9 * pd, 0.97 * chest_w0, 0.95 * cd, 0.5, 0.5),
             ("chest", P("chest"), P("neck_base"), chest_w0, cd, chest_w1, 0.75 * cd, 0.5, 0.3)]
    u0 = torch.zeros(n, dtype=torch.float64)
    for name, a, b, rx0, rz0, rx1, rz1, c0, c1 in torso:
        frame_joint = {"pelvis": "pelvis", "abdomen": "waist", "chest": "chest"}[name]
        if name == "pelvis":
            cover = _cover(n, pick(dress, TOP, BOTTOM))
        elif name == "abdomen":
            cover = _cover(n, pick(dress, TOP, BOTTOM), TOP, s1=app.waistline * length(a, b))
        else:
            cover = _cover(n, TOP)
        parts.append(Part(name, a, b, F(frame_joint, 0), rx0, rz0, rx1, rz1, c0, c1, u0=u0.clone(), **cover))
        u0 = u0 + length(a, b)
    sh_len = length(P("r_shoulder"), P("l_shoulder"))
    r_sh = 0.95 * rad["upper_arm"]
    cover = _cover(n, pick(tank, SKIN, TOP), TOP, pick(tank, SKIN, TOP), s1=0.3 * sh_len, s2=0.7 * sh_len)
    parts.append(Part("shoulders", P("r_shoulder"), P("l_shoulder"), F("chest", 1), r_sh, r_sh, r_sh, r_sh,
                      u0=u0.clone(), **cover))
    nb = P("neck_base") - 0.03 * H[:, None] * F("neck_base", 1)
    parts.append(Part("neck", nb, P("head") + 0.04 * S("head")[:, None] * F("head", 1), F("neck_base", 0),
                      rad["neck"], rad["neck"], 0.95 * rad["neck"], 0.95 * rad["neck"], **_cover(n, SKIN)))

    # Head (an ellipsoid: p0 = centre; the renderer ray-casts it) and hair volumes.
    ax = head_axes(shape)
    parts.append(Part("head", P("head_center"), P("head_top"), F("head", 0), ax[:, 0], ax[:, 2], ax[:, 0], ax[:, 2],
                      frame=frames[:, SJ["head"]], **_cover(n, SKIN)))
    hh = S("head")
    hair0 = P("head_center") + matvec3(frames[:, SJ["head"]], torch.stack([0 * hh, 0.12 * hh, -0.2 * hh], -1))
    drop = torch.stack([0 * hh, -(app.hair_length + 0.3 * hh), 0 * hh], -1)
    hair1 = hair0 + drop - 0.035 * H[:, None] * F("chest", 2)
    parts.append(Part("hair_long", hair0, hair1, F("head", 0), 0.95 * ax[:, 0], 0.8 * ax[:, 2], 1.02 * ax[:, 0],
                      0.35 * ax[:, 0], 1.0, 0.5, enabled=app.hair_length > 0, **_cover(n, HAIR)))
    bun = P("head_center") + matvec3(frames[:, SJ["head"]], torch.stack([0 * hh, 0.33 * hh, -0.42 * hh], -1))
    r_bun = 0.19 * hh
    parts.append(Part("hair_bun", bun, bun, F("head", 0), r_bun, r_bun, r_bun, r_bun, enabled=app.hair_style == 3,
                      **_cover(n, HAIR)))

    # Arms: sleeves end at app.sleeve (0 none .. 1 elbow .. 2 wrist).
    for side in ("r", "l"):
        sh, el, wr, hand = P(f"{side}_shoulder"), P(f"{side}_elbow"), P(f"{side}_wrist"), P(f"{side}_hand")
        ua_len, fa_len = length(sh, el), length(el, wr)
        sleeveless = app.sleeve <= 0
        cover = _cover(n, pick(sleeveless, SKIN, TOP), SKIN, s1=torch.where(app.sleeve >= 1, FAR, app.sleeve * ua_len))
        parts.append(Part(f"{side}_upper_arm", sh, el, F(f"{side}_shoulder", 0), rad["upper_arm"], rad["upper_arm"],
                          rad["elbow"], rad["elbow"], u0=torch.zeros(n, dtype=torch.float64), **cover))
        cover = _cover(n, pick(app.sleeve > 1, TOP, SKIN), SKIN, s1=(app.sleeve - 1) * fa_len)
        parts.append(Part(f"{side}_forearm", el, wr, F(f"{side}_elbow", 0), rad["forearm"], rad["forearm"],
                          rad["wrist"], rad["wrist"], u0=ua_len, **cover))
        hx, hz = 0.011 * H, 0.02 * H
        parts.append(Part(f"{side}_hand", wr + 0.1 * (hand - wr), wr + 0.72 * (hand - wr), F(f"{side}_wrist", 0),
                          hx, hz, 0.85 * hx, 0.8 * hz, **_cover(n, SKIN)))

    # Legs: the bottom garment ends at app.leg_cover (0 none .. 1 knee .. 2 ankle); boots cover the lower shin.
    for side in ("r", "l"):
        hip, knee, ankle = P(f"{side}_hip"), P(f"{side}_knee"), P(f"{side}_ankle")
        th_len, sn_len = length(hip, knee), length(knee, ankle)
        bare = app.leg_cover <= 0
        cover = _cover(n, pick(bare, SKIN, BOTTOM), SKIN,
                       s1=torch.where(app.leg_cover >= 1, FAR, app.leg_cover * th_len))
        parts.append(Part(f"{side}_thigh", hip, knee, F(f"{side}_hip", 0), rad["thigh"], rad["thigh"], rad["knee"],
                          rad["knee"], u0=torch.zeros(n, dtype=torch.float64), **cover))
        cover = _cover(n, pick(app.leg_cover > 1, BOTTOM, SKIN), SKIN, pick(app.boots, SHOES, SKIN),
                       s1=(app.leg_cover - 1) * sn_len, s2=torch.where(app.boots, 0.45 * sn_len, FAR))
        parts.append(Part(f"{side}_shin", knee, ankle, F(f"{side}_knee", 0), rad["shin"], rad["shin"], rad["ankle"],
                          rad["ankle"], u0=th_len, **cover))
        up = F(f"{side}_ankle", 1)
        heel = P(f"{side}_heel") + 0.022 * H[:, None] * up
        toe = P(f"{side}_toe") + 0.013 * H[:, None] * up - 0.02 * H[:, None] * F(f"{side}_ankle", 2)
        parts.append(Part(f"{side}_foot", heel, toe, F(f"{side}_ankle", 0), 0.026 * H, 0.022 * H, 0.028 * H, 0.014 * H,
                          **_cover(n, SHOES)))

    # Skirt / dress / coat tail: a flared, flat-hemmed cone from the waist towards the knees.
    frac = app.skirt[:, None]
    legs = {}
    for side in ("r", "l"):
        hip, knee, ankle = P(f"{side}_hip"), P(f"{side}_knee"), P(f"{side}_ankle")
        legs[side] = torch.where(frac <= 1, hip + frac * (knee - hip), knee + (frac - 1) * (ankle - knee))
    top0 = 0.5 * (P("pelvis") + P("waist"))
    bottom_mid = 0.5 * (legs["r"] + legs["l"])
    axis = bottom_mid - top0
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    xl = F("pelvis", 0) - (F("pelvis", 0) * axis).sum(-1, keepdim=True) * axis
    xl = xl / xl.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    zl = torch.linalg.cross(xl, axis, dim=-1)
    sep = legs["r"] - legs["l"]
    leg_r = rad["thigh"] + (rad["knee"] - rad["thigh"]) * app.skirt.clamp(max=1) + 0.006 * H
    hanging = (-axis[:, 1]).clamp(0, 1)  # 1 when the skirt hangs straight down; small when seated
    flare = (0.02 + 0.05 * app.skirt.clamp(max=1)) * H * hanging * hanging
    rx1 = torch.maximum(0.5 * (sep * xl).sum(-1).abs() + leg_r + flare, 1.05 * hip_w)
    # Front-to-back the hem only spans the legs (capped, so a raised knee does not balloon the skirt); seated,
    # the fabric lies on the thighs instead of keeping the hip depth.
    depth_floor = 1.05 * rad["pelvis_depth"] * hanging + leg_r * (1 - hanging)
    rz1 = torch.maximum((0.5 * (sep * zl).sum(-1).abs()).clamp(max=0.05 * H) + leg_r + 0.7 * flare, depth_floor)
    skirt_garment = pick((app.top == 3) | (app.top == 4), TOP, BOTTOM)
    parts.append(Part("skirt", top0, bottom_mid, F("pelvis", 0), 1.06 * hip_w, 1.05 * rad["pelvis_depth"], rx1, rz1,
                      0.4, 0.12, enabled=app.skirt > 0, **_cover(n, skirt_garment)))
    for p in parts:
        if p.enabled is None:
            p.enabled = torch.ones(n, dtype=torch.bool)
        if p.u0 is None:
            p.u0 = torch.zeros(n, dtype=torch.float64)
    assert [p.name for p in parts] == sorted((p.name for p in parts), key=PART_NAMES.index)
    return parts
