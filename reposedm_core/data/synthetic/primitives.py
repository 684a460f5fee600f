"""The two drawing primitives: a screen-space ("2.5D") tapered capsule and a ray-cast ellipsoid (the head).

Each primitive has a *setup* (per sample, float64 -> float32 parameter matrices and a pixel bounding box),
a *coverage* stage evaluated on a pixel window ``[b, h, w]`` (alpha, plus what the surface stage needs), and a
*surface* stage evaluated only on the covered pixels ``[M]`` (depth, Lambert term, texture coordinates).

Capsule: the projected axis and radii give an exact sphere-swept-line silhouette under weak perspective;
depth bulges by the cross-section's depth radius; the across-axis coordinate gives a cylindrical normal;
u = metres along the axis, v = arc length (metres) around it in the part's own frame, so textures stay on
the body. Per-pixel code uses only + - * / sqrt floor abs clamp where (exact in torch's vector and scalar CPU
paths), so results do not depend on the batch.
"""
from __future__ import annotations

import math

import torch

from .appearance import C0, HAIR, SKIN, Appearance
from .camera import Camera
from .parts import Part
from .skeleton import matmul3, matvec3

EYE = (0.36, 0.12, 0.925)
# Hairline per style (short, long, medium, bun, bald): threshold, back weight, side weight, front line.
HAIRLINE = ((0.42, 1.0, 0.35, 0.45), (0.2, 1.6, 0.9, 0.38), (0.25, 1.4, 0.7, 0.4), (0.3, 1.2, 0.45, 0.42),
            (2.0, 0.0, 0.0, 1.0))


class Params:
    """Named per-sample float32 parameters stored as one matrix ``[n, K]`` (cheap to subset and gather)."""

    def __init__(self, names: dict[str, int], m: torch.Tensor) -> None:
        self.names, self.m = names, m

    @classmethod
    def of(cls, **cols: torch.Tensor) -> Params:
        return cls({k: i for i, k in enumerate(cols)}, torch.stack([v.to(torch.float32) for v in cols.values()], -1))

    def rows(self, idx: torch.Tensor) -> Params:
        return Params(self.names, self.m[idx])

    def to(self, device: torch.device) -> Params:
        return Params(self.names, self.m.to(device))

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.m[:, self.names[name]]

    def w(self, name: str) -> torch.Tensor:
        """Column as ``[n, 1, 1]`` for broadcasting over a pixel window ``[n, h, w]``."""
        i = self.names[name]
        return self.m[:, i:i + 1, None]


def atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """atan2 from exact ops only (polynomial atan on [0, 1], max error ~1e-5 rad)."""
    ax, ay = x.abs(), y.abs()
    a = torch.minimum(ax, ay) / torch.maximum(ax, ay).clamp_min(1e-12)
    s = a * a
    r = a * (0.9998660 + s * (-0.3302995 + s * (0.1801410 + s * (-0.0851330 + s * 0.0208351))))
    r = torch.where(ay > ax, math.pi / 2 - r, r)
    r = torch.where(x < 0, math.pi - r, r)
    return torch.where(y < 0, -r, r)


def wrap_lambert(ndotl: torch.Tensor, w: float = 0.35) -> torch.Tensor:
    """Wrap-around Lambert (a softer terminator, so joints between parts do not show dark seams)."""
    return ((ndotl + w) * (1 / (1 + w))).clamp_min(0)


def soft(x: torch.Tensor, width: float) -> torch.Tensor:
    return (x / width + 0.5).clamp(0, 1)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


# ----------------------------------------------------------------------------------------------- capsule
def capsule_setup(parts: list[Part], cam: Camera) -> list[tuple[Params, Params, torch.Tensor]]:
    """Coverage and surface parameters and the pixel box ``[n, 4]`` (x0, x1, y0, y1) of each capsule part.

    All parts are set up at once (tensors ``[n, P, ...]``), which matters for small batches.
    """
    st = lambda k: torch.stack([getattr(p, k) for p in parts], 1)  # noqa: E731
    ones = torch.ones(len(parts), dtype=torch.float64)
    cap0, cap1 = ones.new_tensor([p.cap0 for p in parts]), ones.new_tensor([p.cap1 for p in parts])
    rx0, rz0, rx1, rz1 = st("rx0"), st("rz0"), st("rx1"), st("rz1")
    p0, p1 = cam.to_camera(st("p0")), cam.to_camera(st("p1"))  # [n, P, 3]
    seg = p1 - p0
    seg_len = seg.norm(dim=-1)
    axis = torch.where((seg_len > 1e-9)[..., None], seg / seg_len.clamp_min(1e-12)[..., None],
                       torch.tensor([0.0, -1.0, 0.0], dtype=seg.dtype))
    xref = cam.rotate(st("xref"))
    xl = _unit(xref - _dot(xref, axis)[..., None] * axis)
    zl = torch.linalg.cross(xl, axis, dim=-1)
    w = _unit(-(p0 + p1) * 0.5)  # towards the camera
    wx, wz = _dot(w, xl), _dot(w, zl)
    nrm = torch.sqrt(wx * wx + wz * wz)
    end_on = nrm < 1e-6
    nrm = nrm.clamp_min(1e-6)
    half, depth = [], []  # silhouette half-width and depth radius of the elliptical cross-section
    for rx, rz in ((rx0, rz0), (rx1, rz1)):
        half.append(torch.where(end_on, 0.5 * (rx + rz), torch.sqrt(rx * rx * wz * wz + rz * rz * wx * wx) / nrm))
        depth.append(torch.where(end_on, 0.5 * (rx + rz), torch.sqrt(rx * rx * wx * wx + rz * rz * wz * wz) / nrm))
    a2, b2 = cam.project(p0), cam.project(p1)
    f = cam.focal[:, None]
    r0, r1 = f * half[0] / p0[..., 2], f * half[1] / p1[..., 2]
    e = b2 - a2
    e = torch.where((e.norm(dim=-1) < 1e-3)[..., None], torch.tensor([1e-3, 0.0], dtype=e.dtype), e)
    ln = e.norm(dim=-1)
    ex, ey = e[..., 0] / ln, e[..., 1] / ln
    zero = torch.zeros_like(ex)
    p_hat, e_hat = torch.stack([ey, -ex, zero], -1), torch.stack([ex, ey, zero], -1)
    cosb = _dot(axis, w).abs()
    # Cap length along the screen axis in screen radii: the part's own cap ratio seen from the side, the
    # cross-section ellipse's extent along the screen axis seen end-on.
    ex3, ez3 = _dot(e_hat, xl), _dot(e_hat, zl)
    caps = []
    for cap, rx, rz, h in ((cap0, rx0, rz0, half[0]), (cap1, rx1, rz1, half[1])):
        supp = torch.sqrt(rx * rx * ex3 * ex3 + rz * rz * ez3 * ez3) / h.clamp_min(1e-9)
        caps.append((cap * (1 - cosb) + supp.clamp(0.05, 1) * cosb).clamp_min(0.05))
    light = cam.light[:, None]
    per_sample = lambda v: v[:, None].expand_as(ln)  # noqa: E731
    splits = [torch.stack([p.splits[k] for p in parts], 1) for k in (0, 1)]
    cover = Params.of(ax=a2[..., 0], ay=a2[..., 1], ex=e[..., 0], ey=e[..., 1], inv_l2=1 / (ln * ln), px=ey, py=-ex,
                      ln=ln, r0=r0, dr=r1 - r0, icap0=1 / caps[0], icap1=1 / caps[1])
    surface = Params.of(z0=p0[..., 2], dz=p1[..., 2] - p0[..., 2], rd0=depth[0], drd=depth[1] - depth[0],
                        Lp=_dot(light, p_hat), Le=_dot(light, e_hat), Lw=_dot(light, w),
                        tpx=_dot(p_hat, xl), tpz=_dot(p_hat, zl), twx=wx, twz=wz, length=seg_len,
                        rmean=0.25 * (rx0 + rz0 + rx1 + rz1), u0=st("u0"), s1=splits[0], s2=splits[1],
                        amb=per_sample(cam.ambient), dif=per_sample(cam.diffuse))
    rad = torch.maximum(r0, r1) + 2
    lo, hi = torch.minimum(a2, b2) - rad[..., None], torch.maximum(a2, b2) + rad[..., None]
    box = torch.stack([lo[..., 0], hi[..., 0], lo[..., 1], hi[..., 1]], -1)
    return [(Params(cover.names, cover.m[:, i]), Params(surface.names, surface.m[:, i]), box[:, i])
            for i in range(len(parts))]


def capsule_coverage(c: Params, qx: torch.Tensor, qy: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Alpha ``[b, h, w]`` at pixel centres ``qx [b, 1, w]``, ``qy [b, h, 1]``, and the across/along
    coordinates the surface stage needs."""
    dx, dy = qx - c.w("ax"), qy - c.w("ay")
    t = (dx * c.w("ex") + dy * c.w("ey")) * c.w("inv_l2")
    tc = t.clamp(0, 1)
    r = (c.w("r0") + c.w("dr") * tc).clamp_min(1e-3)
    inv_r = 1 / r
    sig = (dx * c.w("px") + dy * c.w("py")) * inv_r
    eps = (t - tc) * c.w("ln") * torch.where(t < 0, c.w("icap0"), c.w("icap1")) * inv_r
    rho2 = sig * sig + eps * eps
    alpha = (r * (1 - torch.sqrt(rho2)) + 0.5).clamp(0, 1)
    return alpha, {"t": t, "tc": tc, "sig": sig, "eps": eps, "rho2": rho2}


def capsule_surface(s: Params, g: dict[str, torch.Tensor], need_v: bool) -> dict[str, torch.Tensor]:
    """Depth (camera z, metres), Lambert term, u, v (metres) and front-facing-ness on covered pixels ``[M]``."""
    sig, eps, tc = g["sig"], g["eps"], g["tc"]
    nv = torch.sqrt((1 - g["rho2"]).clamp(0, 1))
    z = s["z0"] + s["dz"] * tc - (s["rd0"] + s["drd"] * tc) * nv
    lam = wrap_lambert(s["Lp"] * sig + s["Le"] * eps + s["Lw"] * nv)
    cz = sig * s["tpz"] + nv * s["twz"]
    v = atan2(cz, sig * s["tpx"] + nv * s["twx"]) * s["rmean"] if need_v else None
    u = tc * s["length"] + eps * s["rmean"]  # over the caps: arc length on the cap, not the stretched screen t
    return {"z": z, "lam": lam, "u": u, "v": v, "front": cz}


# ----------------------------------------------------------------------------------------------- head
def head_setup(part: Part, cam: Camera, app: Appearance) -> tuple[Params, Params, torch.Tensor]:
    """Ray-casting parameters of the head ellipsoid (centre ``p0``, top ``p1``, ``frame``) and its pixel box."""
    c = cam.to_camera(part.p0[:, None])[:, 0]
    rot = matmul3(cam.rotation, part.frame)  # head axes in camera coordinates (columns)
    axes = torch.stack([part.rx0, (part.p1 - part.p0).norm(dim=-1), part.rz0], -1)
    m = rot.transpose(-1, -2) / axes[:, :, None]  # camera direction -> scaled head coordinates
    o = -matvec3(m, c)
    light = matvec3(rot.transpose(-1, -2), cam.light)  # L . R (N / axes) = (R^T L) . (N / axes)
    style = torch.tensor(HAIRLINE, dtype=torch.float64)[app.hair_style]
    dist = c.norm(dim=-1)
    cols = {f"m{i}{j}": m[:, i, j] for i in range(3) for j in range(3)}
    cover = Params.of(**cols, ox=o[:, 0], oy=o[:, 1], oz=o[:, 2], c=_dot(o, o) - 1, inv_f=1 / cam.focal,
                      cx=cam.cx, cy=cam.cy, rpx=cam.focal * axes.mean(-1) / dist)
    skin, hair = app.garments[:, SKIN, C0:C0 + 3], app.garments[:, HAIR, C0:C0 + 3]
    surface = Params.of(ox=o[:, 0], oy=o[:, 1], oz=o[:, 2], c=_dot(o, o) - 1, ia0=1 / axes[:, 0], ia1=1 / axes[:, 1],
                        ia2=1 / axes[:, 2], l0=light[:, 0], l1=light[:, 1], l2=light[:, 2], thr=style[:, 0],
                        kb=style[:, 1], ks=style[:, 2], fl=style[:, 3], amb=cam.ambient, dif=cam.diffuse,
                        **{f"skin{i}": skin[:, i] for i in range(3)}, **{f"hair{i}": hair[:, i] for i in range(3)})
    centre = cam.project(c[:, None])[:, 0]
    rad = cam.focal * axes.amax(-1) / (dist - axes.amax(-1)).clamp_min(1e-3) * 1.1 + 2
    box = torch.stack([centre[:, 0] - rad, centre[:, 0] + rad, centre[:, 1] - rad, centre[:, 1] + rad], -1)
    return cover, surface, box


def head_coverage(c: Params, qx: torch.Tensor, qy: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Alpha ``[b, h, w]`` of the ray-cast ellipsoid at pixel centres ``qx [b, 1, w]``, ``qy [b, h, 1]``, and the
    ray (in scaled head coordinates) per pixel."""
    X, Y = (qx - c.w("cx")) * c.w("inv_f"), (qy - c.w("cy")) * c.w("inv_f")
    d0 = c.w("m00") * X + c.w("m01") * Y + c.w("m02")
    d1 = c.w("m10") * X + c.w("m11") * Y + c.w("m12")
    d2 = c.w("m20") * X + c.w("m21") * Y + c.w("m22")
    a = d0 * d0 + d1 * d1 + d2 * d2
    b = c.w("ox") * d0 + c.w("oy") * d1 + c.w("oz") * d2
    miss2 = (c.w("c") + 1 - b * b / a).clamp_min(0)  # squared closest approach of the ray to the centre
    alpha = ((1 - torch.sqrt(miss2)) * c.w("rpx") + 0.5).clamp(0, 1)
    return alpha, {"d0": d0, "d1": d1, "d2": d2, "a": a, "b": b}


def head_surface(s: Params, g: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Depth, Lambert term and unshaded colour ``[M, 3]`` (skin, eyes, brows, mouth, hair) on covered pixels."""
    d0, d1, d2, a, b = g["d0"], g["d1"], g["d2"], g["a"], g["b"]
    t = (-b - torch.sqrt((b * b - a * s["c"]).clamp_min(0))) / a
    n0, n1, n2 = s["ox"] + t * d0, s["oy"] + t * d1, s["oz"] + t * d2
    inv = 1 / torch.sqrt(n0 * n0 + n1 * n1 + n2 * n2).clamp_min(1e-6)
    n0, n1, n2 = n0 * inv, n1 * inv, n2 * inv  # point on the unit head sphere (+x left, +y up, +z face)
    k0, k1, k2 = n0 * s["ia0"], n1 * s["ia1"], n2 * s["ia2"]
    lam = wrap_lambert((s["l0"] * k0 + s["l1"] * k1 + s["l2"] * k2) / torch.sqrt(k0 * k0 + k1 * k1 + k2 * k2))
    eye = torch.zeros_like(n0)
    brow = torch.zeros_like(n0)
    for sx in (-1.0, 1.0):
        ddx, ddy, ddz = n0 - sx * EYE[0], n1 - EYE[1], n2 - EYE[2]
        eye = torch.maximum(eye, soft(0.14 - torch.sqrt(ddx * ddx + ddy * ddy + ddz * ddz), 0.04))
        brow = torch.maximum(brow, soft(0.035 - (n1 - 0.3).abs(), 0.03) * soft(0.15 - ddx.abs(), 0.04))
    mouth = soft(0.04 - (n1 + 0.45).abs(), 0.03) * soft(0.19 - n0.abs(), 0.05)
    facing = soft(n2 - 0.55, 0.1)
    face_zone = soft(n2 - 0.45, 0.1) * soft(s["fl"] - n1, 0.05)
    hair_w = soft(n1 + s["kb"] * (-n2).clamp_min(0) + s["ks"] * n0 * n0 - s["thr"], 0.06) * (1 - face_zone)
    skin = torch.stack([s["skin0"], s["skin1"], s["skin2"]], -1)
    hair = torch.stack([s["hair0"], s["hair1"], s["hair2"]], -1)
    lips = skin * torch.tensor([0.78, 0.52, 0.5], device=skin.device)
    dark = torch.tensor([0.1, 0.07, 0.06], device=skin.device)
    col = skin + (lips - skin) * (mouth * facing)[:, None]
    col = col + (hair - col) * (brow * facing)[:, None]
    col = col + (dark - col) * (eye * facing)[:, None]
    col = col + (hair - col) * hair_w[:, None]
    return {"z": t, "lam": lam}, col
