"""Pose-field gradient guidance for our sampler (and the pieces the ComfyUI model patch reuses)."""
from .pose_guidance import MODES, PoseFieldGuidance, guidance_loss, joint_weights, pose_loss

__all__ = ["PoseFieldGuidance", "pose_loss", "guidance_loss", "joint_weights", "MODES"]
