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


CORRUPTIONS_2D: dict[str, Callable[..., torch.Tensor]] = {
    "joint_noise": joint_noise,
    "bone_length": bone_length,
    "swap_sides": swap_sides,
    "detached_joint": detach_joint,
}
