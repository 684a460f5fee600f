"""The canonical OpenPose-18 body skeleton: joint order, limbs and the standard OpenPose colours.

Every pose tensor in this project is ``[..., 18, 3]`` = (x, y, confidence) in pixels of a stated
canvas, joints in the order of :data:`JOINT_NAMES`; confidence 0 means the joint is missing. Pixel
coordinates follow OpenPose/OpenCV: pixel (row i, column j) has its centre at x = j, y = i.
"""
from __future__ import annotations

NUM_JOINTS = 18

JOINT_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# The 19 limbs of the OpenPose body renderer (controlnet_aux draw_bodypose order), 0-based joint ids.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)

# The 18 standard OpenPose colours (RGB, 0..255); limb i is drawn in COLORS[i], joint j in COLORS[j].
COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)

# Left/right mirror: FLIP_PERMUTATION[i] is the joint that joint i becomes in a horizontally flipped image.
FLIP_PERMUTATION: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

# Body parts used for per-part weights (guidance, evaluation).
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "head": (0, 14, 15, 16, 17),
    "torso": (1, 2, 5, 8, 11),
    "right_arm": (2, 3, 4),
    "left_arm": (5, 6, 7),
    "right_leg": (8, 9, 10),
    "left_leg": (11, 12, 13),
}

# The standard OpenPose body renderer draws only the first 17 limbs (the two ear-shoulder limbs,
# LIMBS[17:], are never drawn; COLORS has 18 entries); limb i is blended in COLORS[i].
NUM_RENDERED_LIMBS = 17
