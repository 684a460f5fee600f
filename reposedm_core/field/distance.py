"""Ground-truth distances between 2D poses, for training and evaluating the pose field.

The distance from a query pose q to a reference pose r is taken over the joints visible in q, after the best
similarity alignment (translation + uniform scale) of r onto q:

    d(q, r) = min_{s, t} sqrt( sum_j m_j |q_j - (s r_j + t)|^2 )                  (torso units)

so that it does not depend on where or how large the pose is, and |grad_q d| = 1 (the eikonal property the
field is trained to share). ``nearest_distance`` is its minimum over a large bank of valid poses, computed in
chunks with matrix products (Pose-NDF's nearest-neighbour target).
"""
from __future__ import annotations

import torch


def aligned_distance(q: torch.Tensor, r: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """d(q, r) of the module docstring. q, r: ``[N, 18, 2]`` normalised xy; mask ``[N, 18]`` -> ``[N]``."""
    m = mask.to(q.dtype).unsqueeze(-1)
    n = m.sum(1).clamp_min(1.0)
    qc = (q - (q * m).sum(1, keepdim=True) / n.unsqueeze(1)) * m
    rc = (r - (r * m).sum(1, keepdim=True) / n.unsqueeze(1)) * m
    qq = (qc * qc).sum((1, 2))
    qr = (qc * rc).sum((1, 2))
    rr = (rc * rc).sum((1, 2)).clamp_min(1e-9)
    scale = (qr / rr).clamp_min(0.0)  # a mirrored (negative-scale) fit is not the same pose
    residual = qc - scale.view(-1, 1, 1) * rc   # direct, not |q|^2 - 2 s <q, r> + s^2 |r|^2 (cancellation)
    return (residual * residual).sum((1, 2)).clamp_min(1e-12).sqrt() * (qq > 0)


@torch.no_grad()
def nearest_distance(q: torch.Tensor, mask: torch.Tensor, bank: torch.Tensor, query_chunk: int = 512) -> torch.Tensor:
    """min over bank poses b of d(q, b). q ``[N, 18, 2]``, mask ``[N, 18]``, bank ``[M, 18, 2]`` (all joints
    present) -> ``[N]``.

    Queries are grouped by visibility pattern m. With qc the masked, centred query, <qc, bc> = qc . b (the bank
    mean drops out) and |bc|^2 = sum_j m_j |b_j|^2 - n |mean_m b|^2, so a group costs one matrix product.
    """
    out = torch.empty(q.shape[0], dtype=q.dtype)
    flat = bank.reshape(len(bank), -1)                                   # [M, 36]
    sq = (bank * bank).sum(-1)                                           # [M, 18]
    by_joint = bank.permute(0, 2, 1)                                     # [M, 2, 18]
    patterns, group = torch.unique(mask, dim=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        rows = torch.nonzero(group == g).squeeze(1)
        m = pattern.to(q.dtype)
        n = m.sum().clamp_min(1.0)
        mean_b = by_joint @ m / n                                        # [M, 2]
        rr = (sq @ m - n * (mean_b * mean_b).sum(1)).clamp_min(1e-9)     # [M]
        qg = q[rows]
        qc = ((qg - (qg * m[:, None]).sum(1, keepdim=True) / n) * m[:, None]).reshape(len(rows), -1)
        qq = (qc * qc).sum(1)
        for i in range(0, len(rows), query_chunk):
            qr = qc[i:i + query_chunk] @ flat.T                          # [C, M]
            scale = (qr / rr).clamp_min(0.0)
            d2 = qq[i:i + query_chunk, None] - scale * (2 * qr - scale * rr)
            out[rows[i:i + query_chunk]] = d2.min(1).values.clamp_min(0.0).sqrt()
    return out
