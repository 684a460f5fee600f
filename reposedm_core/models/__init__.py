"""RePoseDM models: recurrent pose alignment, the conditional denoiser, and the bundle with its API."""
from .io import load_model, save_model
from .repose import PHOTO_ITERATIONS, PoseAlignment, RePoseConfig, RePoseModel

__all__ = ["load_model", "save_model", "RePoseModel", "RePoseConfig", "PoseAlignment", "PHOTO_ITERATIONS"]
