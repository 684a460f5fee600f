"""Counter-based seeding: every random number of the world comes from a per-seed torch.Generator.

A sample's draws depend only on its own integer seed and a stream id, never on the global RNG state or
on which other samples share the batch. Per-sample values are drawn in float64 and every per-sample
computation stays in float64 (see ``render.py`` for why the per-pixel code is float32 and exact-op only).
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import torch

MASK64 = (1 << 64) - 1

# Stream ids: independent random sequences derived from one integer seed.
STREAM_SHAPE = 1
STREAM_APPEARANCE = 2
STREAM_POSE = 3
STREAM_CAMERA = 4
STREAM_WORLD = 5


def splitmix64(x: int) -> int:
    """One SplitMix64 step (Steele et al. 2014): a bijective, well-mixed 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def mix(*values: int) -> int:
    """Hash any number of Python ints (negative allowed) into one 64-bit int."""
    h = 0x2545F4914F6CDD1D
    for v in values:
        h = splitmix64(h ^ (int(v) & MASK64))
    return h


def as_seed_list(seeds: Sequence[int] | torch.Tensor | int) -> list[int]:
    """Seeds as a list of Python ints; accepts an int, a list/tuple or a 1-D integer tensor."""
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        return [int(seeds)]
    if isinstance(seeds, torch.Tensor):
        if seeds.dtype.is_floating_point or seeds.dim() > 1:
            raise ValueError(f"seeds must be a 1-D integer tensor, got dtype {seeds.dtype} shape {tuple(seeds.shape)}")
        return [int(s) for s in seeds.reshape(-1).tolist()]
    out = list(seeds)
    for s in out:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise ValueError(f"seeds must be integers (Python or numpy ints), got {type(s).__name__} ({s!r})")
    return [int(s) for s in out]


def seeded_uniforms(seeds: Iterable[int], stream: int, k: int) -> torch.Tensor:
    """``[n, k]`` float64 uniforms in (0, 1), row i drawn from a generator seeded by ``mix(seeds[i], stream)``."""
    rows = []
    for s in seeds:
        gen = torch.Generator().manual_seed(mix(s, stream))
        rows.append(torch.rand(k, generator=gen, dtype=torch.float64))
    if not rows:
        return torch.zeros(0, k, dtype=torch.float64)
    return torch.stack(rows).clamp(1e-9, 1 - 1e-9)


def normal_from_uniform(u: torch.Tensor) -> torch.Tensor:
    """Standard normal variates from uniforms in (0, 1) by the inverse CDF."""
    return torch.special.ndtri(u.clamp(1e-9, 1 - 1e-9))


def uniform_between(u: torch.Tensor, lo: float | torch.Tensor, hi: float | torch.Tensor) -> torch.Tensor:
    """Map uniforms in (0, 1) onto [lo, hi]."""
    return lo + (hi - lo) * u


def choice(u: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """Categorical index (long, same shape as ``u``) from uniforms, with the given unnormalised weights."""
    w = torch.tensor(weights, dtype=torch.float64)
    edges = torch.cumsum(w / w.sum(), 0)[:-1]
    return torch.bucketize(u.to(torch.float64).contiguous(), edges, right=True)
