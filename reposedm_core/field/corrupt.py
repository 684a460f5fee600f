"""Graded corruptions of valid 2D poses (in the normalised frame), the negatives of the pose field.

Each corruption takes normalised joints ``xy [N, 18, 2]``, presence ``[N, 18]`` bool, a strength in
{"weak", "medium", "strong"} and a generator, and returns corrupted ``xy``; missing joints stay missing.
The two corruptions that need the 3D skeleton (rotations past joint limits, impossible bends) live in
``field.data`` because they are made before projection.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..pose.skeleton import JOINT_INDEX as J

STRENGTHS = ("weak", "medium", "strong")

# Joint noise sigma, bone-length factor, detachment distance (torso units), per strength.
NOISE_SIGMA = {"weak": 0.05, "medium": 0.12, "strong": 0.25}
LENGTH_FACTOR = {"weak": 1.3, "medium": 1.7, "strong": 2.3}
DETACH_DISTANCE = {"weak": 0.3, "medium": 0.6, "strong": 1.0}

# Kinematic chains (parent -> children) used to move a subtree with its bone.
CHAINS: dict[str, tuple[int, ...]] = {
    "r_arm": (J["r_shoulder"], J["r_elbow"], J["r_wrist"]),
    "l_arm": (J["l_shoulder"], J["l_elbow"], J["l_wrist"]),
    "r_leg": (J["r_hip"], J["r_knee"], J["r_ankle"]),
    "l_leg": (J["l_hip"], J["l_knee"], J["l_ankle"]),
}
_ARMS = ((J["r_elbow"], J["l_elbow"]), (J["r_wrist"], J["l_wrist"]))
_LEGS = ((J["r_knee"], J["l_knee"]), (J["r_ankle"], J["l_ankle"]))
# Per strength, the options (each a set of left/right pairs exchanged together): one hand or foot, one whole
# forearm+hand or shin+foot pair, or both arms and both legs.
_SWAPS = {
    "weak": (((J["r_wrist"], J["l_wrist"]),), ((J["r_ankle"], J["l_ankle"]),)),
    "medium": (_ARMS, _LEGS),
    "strong": (_ARMS + _LEGS,),
}


def _choose(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=gen)


def joint_noise(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise on every present joint."""
    noise = torch.randn(xy.shape, generator=gen) * NOISE_SIGMA[strength]
    return xy + noise * present.unsqueeze(-1)


# (parent joint, child joint, joints that move with the child) for the 8 limb bones.
_BONES = [(chain[k], chain[k + 1], chain[k + 1:]) for chain in CHAINS.values() for k in range(2)]
_BONE_A = torch.tensor([a for a, _, _ in _BONES])
_BONE_B = torch.tensor([b for _, b, _ in _BONES])
_BONE_MOVES = torch.zeros(len(_BONES), 18, dtype=torch.bool)
for _k, (_, _, _moving) in enumerate(_BONES):
    _BONE_MOVES[_k, list(_moving)] = True


def bone_length(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """One limb bone (upper or lower arm/leg) made longer; the joints below it move along.

    Only longer: a shorter bone in 2D is what foreshortening makes of a valid bone, so it is no corruption.
    """
    n = len(xy)
    bone = _choose(n, len(_BONES), gen)
    factor = torch.full((n,), LENGTH_FACTOR[strength])
    rows = torch.arange(n)
    delta = (xy[rows, _BONE_B[bone]] - xy[rows, _BONE_A[bone]]) * (factor - 1).unsqueeze(-1)   # [N, 2]
    moves = _BONE_MOVES[bone] & present                                                      # [N, 18]
    return xy + moves.unsqueeze(-1) * delta.unsqueeze(1)


def swap_sides(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """Left/right joints exchanged: a hand or foot (weak), a forearm+hand or shin+foot (medium), both (strong).

    A pair is only exchanged when both of its joints are present (otherwise nothing visible changes).
    """
    n = len(xy)
    options = _SWAPS[strength]
    choice = _choose(n, len(options), gen)
    perm = torch.arange(18).repeat(n, 1)
    for o, pairs in enumerate(options):
        for a, b in pairs:
            swap = (choice == o) & present[:, a] & present[:, b]
            perm[swap, a], perm[swap, b] = b, a
    return torch.gather(xy, 1, perm.unsqueeze(-1).expand(-1, -1, 2))


def detach_joint(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """One present joint moved away from its body by a fixed distance, its neighbours left in place."""
    scores = torch.rand(present.shape, generator=gen) * present
    joint = scores.argmax(1)
    angle = torch.rand(len(xy), generator=gen) * 2 * torch.pi
    step = torch.stack([angle.cos(), angle.sin()], -1) * DETACH_DISTANCE[strength]
    out = xy.clone()
    out[torch.arange(len(xy)), joint] += step
    return out


def _swap_pair(xy: torch.Tensor, present: torch.Tensor, a: int, b: int) -> torch.Tensor:
    out = xy.clone()
    both = present[:, a] & present[:, b]
    out[both, a], out[both, b] = xy[both, b], xy[both, a]
    return out


# Fraction of the hip width by which the swapped hips also cross (weak: exactly exchanged).
_CROSS = {"weak": 0.0, "medium": 0.3, "strong": 0.7}


def _cross_pair(xy: torch.Tensor, present: torch.Tensor, a: int, b: int, strength: str) -> torch.Tensor:
    """Joints a and b exchanged, then pushed past each other by _CROSS[strength] of their distance."""
    out = _swap_pair(xy, present, a, b)
    d = (out[:, a] - out[:, b]) * _CROSS[strength]
    out[:, a] += d * present[:, a, None]
    out[:, b] -= d * present[:, b, None]
    return out


def hip_swap(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """The two hips exchanged (legs crossed at the hips), pushed past each other at higher strengths."""
    return _cross_pair(xy, present, J["r_hip"], J["l_hip"], strength)


def shoulder_swap(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """The two shoulders exchanged (the arms stay: they now cross the chest), crossed further when stronger."""
    return _cross_pair(xy, present, J["r_shoulder"], J["l_shoulder"], strength)


_FACE = (J["nose"], J["r_eye"], J["l_eye"], J["r_ear"], J["l_ear"])
HEAD_DROP = {"weak": 0.35, "medium": 0.6, "strong": 0.9}   # of the neck -> mid-hip vector


def head_in_chest(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """The head (nose, eyes, ears) pushed down past the neck into the chest."""
    mid = (xy[:, J["r_hip"]] + xy[:, J["l_hip"]]) / 2
    down = (mid - xy[:, J["neck"]]) * (present[:, J["neck"]] & present[:, J["r_hip"]] & present[:, J["l_hip"]])[:, None]
    face = torch.tensor(_FACE)
    head = (xy[:, face] * present[:, face, None]).sum(1) / present[:, face].sum(1).clamp_min(1)[:, None]
    shift = xy[:, J["neck"]] - head + down * HEAD_DROP[strength]           # head centre to below the neck
    out = xy.clone()
    out[:, face] += shift[:, None] * present[:, face, None]
    return out


_MIRROR = {"weak": ((J["r_wrist"],), (J["l_wrist"],)),
           "medium": ((J["r_elbow"], J["r_wrist"]), (J["l_elbow"], J["l_wrist"]),
                      (J["r_knee"], J["r_ankle"]), (J["l_knee"], J["l_ankle"])),
           "strong": ((J["r_knee"], J["r_ankle"], J["l_knee"], J["l_ankle"]),)}


def mirrored_limb(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """A limb (hand, arm, leg, or both legs) reflected across the body's axis (neck -> mid-hip line)."""
    options = _MIRROR[strength]
    choice = _choose(len(xy), len(options), gen)
    mid = (xy[:, J["r_hip"]] + xy[:, J["l_hip"]]) / 2
    axis = mid - xy[:, J["neck"]]
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    out = xy.clone()
    for o, joints in enumerate(options):
        rows = choice == o
        for j in joints:
            v = xy[:, j] - mid
            refl = 2 * (v * axis).sum(-1, keepdim=True) * axis - v + mid
            use = (rows & present[:, j])[:, None]
            out[:, j] = torch.where(use, refl, out[:, j])
    return out


WIDTH_FACTOR = {"weak": 1.6, "medium": 2.2, "strong": 3.0}
_GIRDLES = ((J["r_shoulder"], J["l_shoulder"], CHAINS["r_arm"], CHAINS["l_arm"]),
            (J["r_hip"], J["l_hip"], CHAINS["r_leg"], CHAINS["l_leg"]))


def torso_width(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """The shoulders or the hips pushed apart (WIDTH_FACTOR times their width), each carrying its limb.

    Only wider: narrower is what a turn makes of a valid torso, so it is no corruption.
    """
    choice = _choose(len(xy), len(_GIRDLES), gen)
    out = xy.clone()
    for g, (a, b, chain_a, chain_b) in enumerate(_GIRDLES):
        rows = (choice == g) & present[:, a] & present[:, b]
        mid = (xy[:, a] + xy[:, b]) / 2
        for end, chain in ((a, chain_a), (b, chain_b)):
            push = (xy[:, end] - mid) * (WIDTH_FACTOR[strength] - 1)
            for j in chain:
                out[:, j] += push * (rows & present[:, j])[:, None]
    return out


LEGS_SHIFT = {"weak": 0.8, "medium": 1.2, "strong": 1.6}   # of the mid-hip -> neck vector
_LOWER = CHAINS["r_leg"] + CHAINS["l_leg"]


def legs_shifted(xy: torch.Tensor, present: torch.Tensor, strength: str, gen: torch.Generator) -> torch.Tensor:
    """The lower body (hips, knees, ankles) carried up the torso as a block, LEGS_SHIFT torso lengths towards
    and past the neck, with up to 0.3 of it sideways: legs read from another person, hips over the neck."""
    rows = present[:, J["neck"]] & present[:, J["r_hip"]] & present[:, J["l_hip"]]
    mid = (xy[:, J["r_hip"]] + xy[:, J["l_hip"]]) / 2
    up = xy[:, J["neck"]] - mid
    side = torch.stack([-up[:, 1], up[:, 0]], -1) * (torch.rand(len(xy), 1, generator=gen) * 0.6 - 0.3)
    shift = (up * LEGS_SHIFT[strength] + side) * rows[:, None]
    out = xy.clone()
    for j in _LOWER:
        out[:, j] += shift * present[:, j, None]
    return out


CORRUPTIONS_2D: dict[str, Callable[..., torch.Tensor]] = {
    "joint_noise": joint_noise,
    "bone_length": bone_length,
    "swap_sides": swap_sides,
    "detached_joint": detach_joint,
    "hip_swap": hip_swap,
    "shoulder_swap": shoulder_swap,
    "head_in_chest": head_in_chest,
    "mirrored_limb": mirrored_limb,
    "torso_width": torso_width,
    "legs_shifted": legs_shifted,
}
