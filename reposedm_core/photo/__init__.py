"""The photo path: the person of a real photo moved into a target pose for the user's own SD to finish."""
from .person_layer import PersonLayer, fill_background, person_layer_warp, select_person_masks

__all__ = ["PersonLayer", "fill_background", "person_layer_warp", "select_person_masks"]
