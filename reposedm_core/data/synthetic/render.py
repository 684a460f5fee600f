"""Rasteriser: body parts -> image, person mask, part labels and a depth buffer, with depth-ordered occlusion.

For each part (a loop over ~21 parts), samples are grouped by the size of their pixel window around the
part; the coverage of the primitive is evaluated on each group's windows ``[b, h * w]``, the covered pixels
are compacted to a flat list ``[M]``, and depth, shading, garment colour and compositing run only there.
Fragments are merged into a two-layer buffer (front fragment + everything under it, z-tested), so the soft
1-pixel edges blend with whatever lies beneath, whatever the drawing order.

Per-sample geometry is float64; per-pixel code is float32 with exact ops only, so a sample renders
bit-identically in any batch.
"""
from __future__ import annotations

import torch

from .appearance import C0, P_TYPE, Appearance, garment_colour
from .camera import Camera
from .parts import PART_ID, Part
from .primitives import (Params, capsule_coverage, capsule_setup, capsule_surface, head_coverage, head_setup,
                         head_surface)

FAR_Z = 1e9
GROUP = 8  # samples per window group (sorted by window area, so little work is wasted on padding)
CHANNELS = 12  # front rgb, alpha, z, label; under rgb, alpha, z, label


def composite(buf: torch.Tensor, flat: torch.Tensor, rgb: torch.Tensor, alpha: torch.Tensor, z: torch.Tensor,
              label: float) -> None:
    """Merge fragments (``rgb [3, M]``, ``alpha, z [M]``) into the buffer ``[12, B * H * W]`` at ``flat [M]``.

    A fragment in front of the front layer becomes the front and the old front is blended into the under
    layer; a fragment between the two layers is blended into the under layer; anything else is hidden.
    """
    g = buf.index_select(1, flat)
    fa, fz, ua, uz = g[3], g[4], g[9], g[10]
    front, behind = z < fz, (z >= fz) & (z < uz)
    lab = torch.full_like(z, label)
    keep = fa >= 0.5
    pushed = torch.stack([g[0] * fa + g[6] * (1 - fa), g[1] * fa + g[7] * (1 - fa), g[2] * fa + g[8] * (1 - fa),
                          fa + (1 - fa) * ua, torch.where(keep, fz, uz), torch.where(keep, g[5], g[11])])
    solid = alpha >= 0.5
    under = torch.stack([rgb[0] * alpha + g[6] * (1 - alpha), rgb[1] * alpha + g[7] * (1 - alpha),
                         rgb[2] * alpha + g[8] * (1 - alpha), alpha + (1 - alpha) * ua,
                         torch.where(solid, z, uz), torch.where(solid, lab, g[11])])
    out = torch.cat([torch.where(front, torch.cat([rgb, alpha[None], z[None], lab[None]]), g[0:6]),
                     torch.where(front, pushed, torch.where(behind, under, g[6:12]))])
    buf.index_copy_(1, flat, out)


def _groups(box: torch.Tensor, on: torch.Tensor, height: int, width: int):
    """Yield (sample indices, x0, y0, h, w) for groups of samples with similar window sizes."""
    x0 = box[:, 0].floor().clamp(0, width).long()
    x1 = box[:, 1].ceil().clamp(0, width).long()
    y0 = box[:, 2].floor().clamp(0, height).long()
    y1 = box[:, 3].ceil().clamp(0, height).long()
    hs, ws = (y1 - y0) * on, (x1 - x0) * on
    area = hs * ws
    order = torch.argsort(area, stable=True)
    order = order[area[order] > 0]
    for i in range(0, order.numel(), GROUP):
        sel = order[i:i + GROUP]
        hk, wk = int(hs[sel].max()), int(ws[sel].max())
        yield sel, x0[sel].clamp(max=width - wk), y0[sel].clamp(max=height - hk), hk, wk


def rasterize(parts: list[Part], cam: Camera, app: Appearance, bg: torch.Tensor) -> dict[str, torch.Tensor]:
    """Draw ``parts`` over backgrounds ``bg [B, 3, H, W]`` (0..1).

    Returns image ``[B, 3, H, W]`` 0..1, mask ``[B, 1, H, W]`` 0..1, labels ``[B, 1, H, W]`` long (0 = background,
    else ``PART_ID``) and depth ``[B, H, W]`` (camera z in metres of the dominant surface, ``FAR_Z`` if none).
    """
    B, _, H, W = bg.shape
    dev = bg.device
    buf = torch.empty(CHANNELS, B * H * W, device=dev)
    buf[0:4].zero_()
    buf[4].fill_(FAR_Z)
    buf[5].zero_()
    buf[6:9] = bg.transpose(0, 1).reshape(3, B * H * W)
    buf[9].zero_()
    buf[10].fill_(FAR_Z)
    buf[11].zero_()
    table = app.garments.to(dev, torch.float32)  # [B, G, K]
    neckline = app.neckline.to(dev, torch.float32)
    capsules = [p for p in parts if p.name != "head"]
    setups = dict(zip((p.name for p in capsules), capsule_setup(capsules, cam)))
    for part in parts:
        is_head = part.name == "head"
        cover, surf, box = head_setup(part, cam, app) if is_head else setups[part.name]
        cover, surf = cover.to(dev), surf.to(dev)
        garments = torch.stack(part.garments, -1).to(dev)  # [B, 3]
        for sel, x0, y0, hk, wk in _groups(box, part.enabled, H, W):
            sel_d, x0, y0 = sel.to(dev), x0.to(dev), y0.to(dev)
            qx = (x0[:, None, None] + torch.arange(wk, device=dev)[None, None, :]).to(torch.float32) + 0.5  # [b, 1, w]
            qy = (y0[:, None, None] + torch.arange(hk, device=dev)[None, :, None]).to(torch.float32) + 0.5  # [b, h, 1]
            c = cover.rows(sel_d)
            alpha, geo = head_coverage(c, qx, qy) if is_head else capsule_coverage(c, qx, qy)
            live = (alpha > 0).reshape(-1).nonzero()[:, 0]
            if live.numel() == 0:
                continue
            local, pix = live // (hk * wk), live % (hk * wk)
            sample = sel_d[local]
            flat = sample * (H * W) + (y0[local] + pix // wk) * W + (x0[local] + pix % wk)
            geo = {k: v.reshape(-1)[live] for k, v in geo.items()}
            s = Params(surf.names, surf.m[sample])
            if is_head:
                frag, col = head_surface(s, geo)
            else:
                gar = garments[sample]  # [M, 3]
                patterned = bool((table[sel_d, :, P_TYPE].gather(1, garments[sel_d]) > 0).any())
                frag = capsule_surface(s, geo, need_v=patterned)
                u = frag["u"]
                gid = torch.where(u < s["s1"], gar[:, 0], torch.where(u < s["s2"], gar[:, 1], gar[:, 2]))
                if part.name == "chest":  # neckline: skin near the top, at the front
                    depth = neckline[sample] * ((frag["front"] - 0.3) / 0.7).clamp(0, 1)
                    gid = torch.where(s["length"] - u < depth, torch.zeros_like(gid), gid)
                rows = table[sample, gid]  # [M, GARMENT_K]
                col = garment_colour(rows, u + s["u0"], frag["v"]) if patterned else rows[:, C0:C0 + 3]
            rgb = col.t() * (s["amb"] + s["dif"] * frag["lam"])
            composite(buf, flat, rgb, alpha.reshape(-1)[live], frag["z"], float(PART_ID[part.name]))
    buf = buf.view(CHANNELS, B, 1, H, W)
    fa, ua = buf[3], buf[9]
    image = (buf[0:3] * fa + buf[6:9] * (1 - fa)).transpose(0, 1).reshape(B, 3, H, W)
    mask = fa + (1 - fa) * ua
    labels = torch.where(fa >= 0.5, buf[5], torch.where(ua >= 0.5, buf[11], torch.zeros_like(fa)))
    depth = torch.where(fa >= 0.5, buf[4], torch.where(ua >= 0.5, buf[10], torch.full_like(fa, FAR_Z)))
    return {"image": image.clamp(0, 1), "mask": mask.clamp(0, 1), "labels": labels.long(), "depth": depth[:, 0]}
