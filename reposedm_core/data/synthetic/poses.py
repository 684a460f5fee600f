"""Pose priors: natural poses (standing, walking, arms raised/crossed/on hips, sitting, bending, ...) and
uniform-within-limits poses, as joint angles ``[n, NUM_DOFS]`` radians (see ``skeleton.DOF_NAMES``).

Everything is a vectorised function of uniforms ``[n, NUM_POSE_UNIFORMS]`` so a batch of per-sample seeded
draws gives the same poses as drawing them one by one.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .seeds import choice, normal_from_uniform
from .skeleton import DOF, DOF_NAMES, MIRROR_NEGATE, NUM_DOFS, clamp_to_limits, joint_limits

NUM_POSE_UNIFORMS = 2 + NUM_DOFS + 24  # category, mirror, per-DOF jitter, category parameters

Setter = Callable[[str, float, float, int], None]


def _standing_legs(set_: Setter) -> None:
    set_("r_hip_abd", 2, 9, 0); set_("l_hip_abd", 2, 9, 1)  # noqa: E702
    set_("r_hip_flex", -4, 8, 2); set_("l_hip_flex", -4, 8, 3)  # noqa: E702
    set_("r_knee", 0, 8, 4); set_("l_knee", 2, 22, 5)  # noqa: E702  (contrapposto: one knee soft)
    set_("r_hip_rot", -10, 15, 6); set_("l_hip_rot", -10, 15, 7)  # noqa: E702


def _hanging_arms(set_: Setter, sides: tuple[str, ...] = ("r", "l"), base: int = 8) -> None:
    for i, s in enumerate(sides):
        k = base + 4 * i
        set_(f"{s}_shoulder_elev", 4, 24, k); set_(f"{s}_shoulder_plane", -20, 60, k + 1)  # noqa: E702
        set_(f"{s}_elbow", 4, 35, k + 2); set_(f"{s}_shoulder_rot", 0, 45, k + 3)  # noqa: E702


def _standing(set_: Setter) -> None:
    _standing_legs(set_)
    _hanging_arms(set_)
    set_("neck_rot", -35, 35, 16); set_("neck_flex", -8, 15, 17); set_("root_roll", -4, 4, 18)  # noqa: E702


def _walking(set_: Setter) -> None:
    set_("r_hip_flex", 12, 32, 0); set_("r_knee", 5, 25, 1); set_("r_ankle", 0, 15, 2)  # noqa: E702 forward leg
    set_("l_hip_flex", -22, -6, 3); set_("l_knee", 10, 50, 4); set_("l_ankle", -30, 0, 5)  # noqa: E702 back leg
    set_("r_hip_abd", 0, 6, 6); set_("l_hip_abd", 0, 6, 7)  # noqa: E702
    set_("l_shoulder_plane", 80, 100, 8); set_("l_shoulder_elev", 8, 35, 9); set_("l_elbow", 15, 50, 10)  # noqa: E702
    set_("r_shoulder_plane", -95, -70, 11); set_("r_shoulder_elev", 8, 30, 12); set_("r_elbow", 5, 30, 13)  # noqa: E702
    set_("r_shoulder_rot", 0, 40, 14); set_("l_shoulder_rot", 0, 40, 15)  # noqa: E702
    set_("neck_rot", -30, 30, 16); set_("spine_rot", -10, 5, 17); set_("root_pitch", 0, 8, 18)  # noqa: E702


def _arms_raised(set_: Setter) -> None:
    _standing_legs(set_)
    set_("r_shoulder_elev", 120, 178, 8); set_("r_shoulder_plane", 0, 100, 9); set_("r_elbow", 0, 45, 10)  # noqa: E702
    set_("l_shoulder_elev", 100, 178, 11); set_("l_shoulder_plane", 0, 100, 12)  # noqa: E702
    set_("l_elbow", 0, 70, 13)
    set_("neck_flex", -30, 5, 16); set_("spine_lat", -10, 10, 17)  # noqa: E702


def _arms_crossed(set_: Setter) -> None:
    _standing_legs(set_)
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_shoulder_elev", 18, 38, 8 + i); set_(f"{s}_shoulder_plane", 95, 125, 10 + i)  # noqa: E702
        set_(f"{s}_shoulder_rot", 45, 80, 12 + i); set_(f"{s}_elbow", 105, 135, 14 + i)  # noqa: E702
    set_("neck_rot", -25, 25, 16); set_("neck_flex", -10, 10, 17)  # noqa: E702


def _hands_on_hips(set_: Setter) -> None:
    _standing_legs(set_)
    set_("r_hip_abd", 6, 14, 0); set_("l_hip_abd", 6, 14, 1)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_shoulder_elev", 35, 55, 8 + i); set_(f"{s}_shoulder_plane", -35, 5, 10 + i)  # noqa: E702
        set_(f"{s}_shoulder_rot", 45, 80, 12 + i); set_(f"{s}_elbow", 85, 115, 14 + i)  # noqa: E702
    set_("neck_rot", -30, 30, 16)


def _sitting(set_: Setter) -> None:
    set_("root_pitch", -12, 8, 18); set_("spine_flex", -5, 20, 19)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_hip_flex", 78, 100, i); set_(f"{s}_knee", 75, 105, 2 + i)  # noqa: E702
        set_(f"{s}_hip_abd", 0, 14, 4 + i); set_(f"{s}_ankle", -10, 10, 6 + i)  # noqa: E702
        set_(f"{s}_shoulder_elev", 10, 35, 8 + i); set_(f"{s}_shoulder_plane", 60, 95, 10 + i)  # noqa: E702
        set_(f"{s}_elbow", 35, 80, 12 + i); set_(f"{s}_shoulder_rot", 10, 45, 14 + i)  # noqa: E702
    set_("neck_rot", -30, 30, 16)


def _bending(set_: Setter) -> None:
    set_("root_pitch", 40, 85, 18); set_("spine_flex", 5, 30, 19)  # noqa: E702
    set_("neck_flex", -35, -5, 16)
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_knee", 0, 20, 2 + i); set_(f"{s}_hip_abd", 2, 10, 4 + i)  # noqa: E702
        set_(f"{s}_shoulder_plane", 80, 100, 10 + i); set_(f"{s}_elbow", 0, 30, 12 + i)  # noqa: E702


def _squat(set_: Setter) -> None:
    set_("root_pitch", 15, 45, 18); set_("spine_flex", 0, 20, 19); set_("neck_flex", -30, 0, 16)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_hip_flex", 95, 122, i); set_(f"{s}_knee", 105, 145, 2 + i)  # noqa: E702
        set_(f"{s}_hip_abd", 8, 30, 4 + i); set_(f"{s}_ankle", 5, 25, 6 + i)  # noqa: E702
        set_(f"{s}_shoulder_elev", 25, 85, 8 + i); set_(f"{s}_shoulder_plane", 60, 100, 10 + i)  # noqa: E702
        set_(f"{s}_elbow", 10, 70, 12 + i)


def _knee_up(set_: Setter) -> None:
    set_("r_hip_flex", 45, 95, 0); set_("r_knee", 60, 115, 1); set_("l_knee", 0, 10, 2)  # noqa: E702
    set_("l_hip_abd", 0, 8, 3); set_("r_ankle", -30, 5, 4)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_shoulder_elev", 30, 120, 8 + 3 * i); set_(f"{s}_shoulder_plane", -10, 90, 9 + 3 * i)  # noqa: E702
        set_(f"{s}_elbow", 20, 100, 10 + 3 * i)
    set_("spine_lat", -10, 10, 17)


def _waving(set_: Setter) -> None:
    _standing_legs(set_)
    _hanging_arms(set_, ("l",), base=12)
    set_("r_shoulder_elev", 70, 165, 8); set_("r_shoulder_plane", -5, 100, 9)  # noqa: E702
    set_("r_elbow", 0, 120, 10); set_("r_shoulder_rot", -60, 20, 11)  # noqa: E702
    set_("neck_rot", -40, 40, 16); set_("spine_lat", -12, 12, 17)  # noqa: E702


def _kneeling_both(set_: Setter) -> None:
    set_("root_pitch", -10, 25, 18); set_("spine_flex", -5, 20, 19)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_hip_flex", -10, 30, i); set_(f"{s}_knee", 95, 145, 2 + i)  # noqa: E702
        set_(f"{s}_hip_abd", 0, 15, 4 + i); set_(f"{s}_ankle", -40, 10, 6 + i)  # noqa: E702
    _hanging_arms(set_)
    set_("neck_rot", -30, 30, 16)


def _kneeling_one(set_: Setter) -> None:
    set_("r_hip_flex", -10, 25, 0); set_("r_knee", 90, 130, 1); set_("r_ankle", -40, 0, 2)  # noqa: E702 down
    set_("l_hip_flex", 70, 105, 3); set_("l_knee", 70, 110, 4); set_("l_ankle", -10, 20, 5)  # noqa: E702 up
    set_("spine_flex", -5, 25, 19)
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_shoulder_elev", 10, 70, 8 + i); set_(f"{s}_shoulder_plane", 40, 100, 10 + i)  # noqa: E702
        set_(f"{s}_elbow", 10, 110, 12 + i)
    set_("neck_rot", -30, 30, 16)


def _cross_legged(set_: Setter) -> None:
    set_("root_pitch", -15, 15, 18); set_("spine_flex", 0, 30, 19)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_hip_flex", 65, 100, i); set_(f"{s}_knee", 115, 150, 2 + i)  # noqa: E702
        set_(f"{s}_hip_abd", 30, 50, 4 + i); set_(f"{s}_hip_rot", 25, 45, 6 + i)  # noqa: E702
        set_(f"{s}_shoulder_elev", 10, 40, 8 + i); set_(f"{s}_shoulder_plane", 60, 100, 10 + i)  # noqa: E702
        set_(f"{s}_elbow", 20, 100, 12 + i)
    set_("neck_rot", -30, 30, 16); set_("neck_flex", -10, 25, 17)  # noqa: E702


def _floor_sitting(set_: Setter) -> None:
    set_("root_pitch", -25, 10, 18); set_("spine_flex", 0, 35, 19)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_hip_flex", 70, 110, i); set_(f"{s}_knee", 0, 100, 2 + i)  # noqa: E702
        set_(f"{s}_hip_abd", 0, 25, 4 + i)
        set_(f"{s}_shoulder_elev", 15, 50, 8 + i); set_(f"{s}_shoulder_plane", -60, 90, 10 + i)  # noqa: E702
        set_(f"{s}_elbow", 0, 90, 12 + i)
    set_("neck_rot", -35, 35, 16)


def _crouching(set_: Setter) -> None:
    set_("root_pitch", 20, 60, 18); set_("spine_flex", 10, 45, 19); set_("neck_flex", -40, 10, 16)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_hip_flex", 100, 125, i); set_(f"{s}_knee", 120, 150, 2 + i)  # noqa: E702
        set_(f"{s}_hip_abd", 5, 35, 4 + i); set_(f"{s}_ankle", 10, 25, 6 + i)  # noqa: E702
        set_(f"{s}_shoulder_elev", 20, 90, 8 + i); set_(f"{s}_shoulder_plane", 50, 110, 10 + i)  # noqa: E702
        set_(f"{s}_elbow", 20, 120, 12 + i)


def _jumping(set_: Setter) -> None:
    set_("root_pitch", -15, 30, 18); set_("spine_flex", -25, 25, 19)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_hip_flex", -20, 90, i); set_(f"{s}_knee", 10, 140, 2 + i)  # noqa: E702
        set_(f"{s}_hip_abd", 0, 40, 4 + i); set_(f"{s}_ankle", -45, 20, 6 + i)  # noqa: E702
        set_(f"{s}_shoulder_elev", 40, 178, 8 + i); set_(f"{s}_shoulder_plane", -30, 120, 10 + i)  # noqa: E702
        set_(f"{s}_elbow", 0, 110, 12 + i)
    set_("neck_flex", -40, 20, 16)


def _reaching(set_: Setter) -> None:
    _standing_legs(set_)
    set_("r_shoulder_elev", 60, 178, 8); set_("r_shoulder_plane", -30, 130, 9); set_("r_elbow", 0, 40, 10)  # noqa: E702
    set_("l_shoulder_elev", 0, 120, 11); set_("l_shoulder_plane", -40, 120, 12); set_("l_elbow", 0, 120, 13)  # noqa: E702
    set_("spine_lat", -30, 30, 17); set_("spine_rot", -40, 40, 19); set_("root_pitch", -10, 40, 18)  # noqa: E702
    set_("neck_flex", -50, 20, 16)


def _sport_extreme(set_: Setter) -> None:
    """Kicks, lunges, arabesques, splits, cartwheel arms: every DOF over a wide part of its range."""
    set_("r_hip_flex", -25, 125, 0); set_("l_hip_flex", -25, 60, 1)  # noqa: E702
    set_("r_hip_abd", -10, 50, 2); set_("l_hip_abd", -10, 50, 3)  # noqa: E702
    set_("r_knee", 0, 120, 4); set_("l_knee", 0, 100, 5)  # noqa: E702
    set_("root_pitch", -25, 80, 18); set_("root_roll", -25, 25, 6); set_("spine_flex", -30, 50, 19)  # noqa: E702
    set_("spine_lat", -35, 35, 7); set_("spine_rot", -45, 45, 20)  # noqa: E702
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_shoulder_elev", 0, 180, 8 + i); set_(f"{s}_shoulder_plane", -60, 135, 10 + i)  # noqa: E702
        set_(f"{s}_elbow", 0, 150, 12 + i); set_(f"{s}_shoulder_rot", -60, 90, 14 + i)  # noqa: E702
    set_("neck_flex", -50, 50, 16); set_("neck_rot", -70, 70, 17)  # noqa: E702


def _relaxed_lying(set_: Setter) -> None:
    """The limbs of a person lying down (the body orientation is set by the world, not by the angles)."""
    for i, s in enumerate(("r", "l")):
        set_(f"{s}_hip_flex", -5, 90, i); set_(f"{s}_knee", 0, 120, 2 + i)  # noqa: E702
        set_(f"{s}_hip_abd", 0, 30, 4 + i)
        set_(f"{s}_shoulder_elev", 0, 170, 8 + i); set_(f"{s}_shoulder_plane", -30, 130, 10 + i)  # noqa: E702
        set_(f"{s}_elbow", 0, 140, 12 + i)
    set_("neck_rot", -70, 70, 16); set_("spine_lat", -20, 20, 17); set_("spine_flex", -10, 40, 19)  # noqa: E702


# The realistic world (the pose field's): the natural families plus floor, sport and extreme ones. "lying"
# gives the limbs; ``data.synthetic.orient`` lays the body down (back, front, side).
REALISTIC_EXTRA: dict[str, tuple[float, Callable[[Setter], None]]] = {
    "kneeling_both": (0.05, _kneeling_both), "kneeling_one": (0.05, _kneeling_one),
    "cross_legged": (0.05, _cross_legged), "floor_sitting": (0.05, _floor_sitting), "crouching": (0.05, _crouching),
    "jumping": (0.06, _jumping), "reaching": (0.06, _reaching), "sport_extreme": (0.08, _sport_extreme),
    "lying": (0.12, _relaxed_lying),
}
REALISTIC_NATURAL_WEIGHT = 0.43


PRIORS: dict[str, tuple[float, Callable[[Setter], None]]] = {
    "standing": (0.20, _standing), "walking": (0.18, _walking), "arms_raised": (0.09, _arms_raised),
    "arms_crossed": (0.08, _arms_crossed), "hands_on_hips": (0.08, _hands_on_hips), "sitting": (0.08, _sitting),
    "bending": (0.06, _bending), "squat": (0.05, _squat), "knee_up": (0.06, _knee_up), "waving": (0.12, _waving),
}
PRIOR_NAMES: tuple[str, ...] = (*PRIORS, *REALISTIC_EXTRA, "natural", "uniform", "mixed", "realistic")
ALL_FAMILIES = {**PRIORS, **REALISTIC_EXTRA}
UNIFORM_FRACTION_IN_MIXED = 0.12
# Jitter added to natural poses (degrees, 1 sigma) before clamping to the limits.
JITTER_DEG = {"root_pitch": 2, "root_roll": 2, "spine_flex": 4, "spine_lat": 3, "spine_rot": 6, "neck_flex": 5,
              "neck_lat": 5, "neck_rot": 6}


def _category(u: torch.Tensor, fn: Callable[[Setter], None]) -> torch.Tensor:
    """Angles (degrees) ``[n, NUM_DOFS]`` of one natural category from its parameter uniforms ``[n, 24]``."""
    out = torch.zeros(u.shape[0], NUM_DOFS, dtype=torch.float64)

    def set_(name: str, lo: float, hi: float, col: int) -> None:
        out[:, DOF[name]] = lo + (hi - lo) * u[:, col]

    fn(set_)
    if fn is _bending:  # the legs stay vertical and the arms hang with gravity
        for s in ("r", "l"):
            out[:, DOF[f"{s}_hip_flex"]] = out[:, DOF["root_pitch"]] - 10 * u[:, 20]
            lean = out[:, DOF["root_pitch"]] + out[:, DOF["spine_flex"]]
            out[:, DOF[f"{s}_shoulder_elev"]] = lean - 20 + 30 * u[:, 21]
    return out


def _mirror(angles: torch.Tensor) -> torch.Tensor:
    """Swap the person's left and right (per-side DOFs swap, lateral/twist DOFs change sign)."""
    idx = [DOF["l" + n[1:]] if n.startswith("r_") else DOF["r" + n[1:]] if n.startswith("l_") else i
           for i, n in enumerate(DOF_NAMES)]
    out = angles[:, idx].clone()
    for n in MIRROR_NEGATE:
        out[:, DOF[n]] = -out[:, DOF[n]]
    return out


def pose_angles_from_uniforms(u: torch.Tensor, prior: str = "mixed") -> torch.Tensor:
    """Joint angles ``[n, NUM_DOFS]`` radians, inside the limits, from uniforms ``[n, NUM_POSE_UNIFORMS]``.

    prior: a category of :data:`PRIORS`, ``"natural"`` (their mixture), ``"uniform"`` (every DOF uniform within
    its limits, then projected onto the coupled shoulder limit) or ``"mixed"`` (natural, with
    :data:`UNIFORM_FRACTION_IN_MIXED` uniform poses).
    """
    if prior not in PRIOR_NAMES:
        raise ValueError(f"unknown pose prior {prior!r}; expected one of {PRIOR_NAMES}")
    if u.dim() != 2 or u.shape[1] != NUM_POSE_UNIFORMS:
        raise ValueError(f"expected uniforms [n, {NUM_POSE_UNIFORMS}], got {tuple(u.shape)}")
    u = u.to(torch.float64)
    n = u.shape[0]
    params, jitter_u = u[:, 2 + NUM_DOFS:], u[:, 2:2 + NUM_DOFS]
    names = list(ALL_FAMILIES)
    if prior in ALL_FAMILIES:
        cat = torch.full((n,), names.index(prior), dtype=torch.long)
    elif prior == "realistic":
        weights = [REALISTIC_NATURAL_WEIGHT * PRIORS[k][0] if k in PRIORS else REALISTIC_EXTRA[k][0] for k in names]
        cat = choice(u[:, 0], weights)
    else:
        cat = choice(u[:, 0], [PRIORS[k][0] for k in PRIORS])
    deg = torch.zeros(n, NUM_DOFS, dtype=torch.float64)
    for i, k in enumerate(names):
        if (cat == i).any():
            deg = torch.where((cat == i)[:, None], _category(params, ALL_FAMILIES[k][1]), deg)
    sigma = torch.tensor([JITTER_DEG.get(nm, 3.0) for nm in DOF_NAMES], dtype=torch.float64)
    deg = deg + sigma * normal_from_uniform(jitter_u).clamp(-2.5, 2.5)
    natural = torch.where((u[:, 1] < 0.5)[:, None], _mirror(deg), deg) * (math.pi / 180)
    lim = joint_limits()
    uniform = lim[:, 0] + (lim[:, 1] - lim[:, 0]) * jitter_u
    if prior == "uniform":
        chosen = uniform
    elif prior == "mixed":
        # A separate uniform decides natural vs uniform so the category choice stays independent.
        use_uniform = (params[:, 23] < UNIFORM_FRACTION_IN_MIXED)[:, None]
        chosen = torch.where(use_uniform, uniform, natural)
    else:
        chosen = natural
    return clamp_to_limits(chosen)


def realistic_family(u: torch.Tensor) -> list[str]:
    """The family name of each pose the ``"realistic"`` prior draws from uniforms ``[n, NUM_POSE_UNIFORMS]``
    (the same choice :func:`pose_angles_from_uniforms` makes), as a numpy-like array of names."""
    import numpy as np

    names = list(ALL_FAMILIES)
    weights = [REALISTIC_NATURAL_WEIGHT * PRIORS[k][0] if k in PRIORS else REALISTIC_EXTRA[k][0] for k in names]
    return np.array(names)[choice(u[:, 0].to(torch.float64), weights).numpy()]


def sample_pose_angles(gen: torch.Generator, n: int, prior: str = "mixed") -> torch.Tensor:
    """``n`` poses ``[n, NUM_DOFS]`` radians from a torch.Generator (see :func:`pose_angles_from_uniforms`)."""
    u = torch.rand(n, NUM_POSE_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)
    return pose_angles_from_uniforms(u, prior)
