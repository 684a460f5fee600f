"""RePoseDM core library: pose layer, synthetic person world, models, sampling, training and evaluation.

Framework-free (never imports ComfyUI). Submodules are imported lazily so that ``import reposedm_core`` is
cheap; see ``reposedm_core.pose`` and ``reposedm_core.data.synthetic``.
"""
__version__ = "0.1.0"


def load_model(path=None, device=None):
    """Load a RePoseDM model (``path=None``: the shipped demo model); see ``reposedm_core.models``."""
    from .models import load_model as _load

    return _load(path, device)
