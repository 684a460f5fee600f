"""The pose interaction field: a learned distance from a 2D pose to the manifold of valid human poses.

``load_pose_field(path=None)`` returns a :class:`PoseField` with ``.distance(kp)`` and ``.repair(kp)``.
"""
from .api import PoseField, load_pose_field, save_pose_field
from .model import FieldConfig, PoseInteractionField

__all__ = ["PoseField", "load_pose_field", "save_pose_field", "FieldConfig", "PoseInteractionField"]
