"""The pack's own exception classes share one base whose subclasses report a short, stable type name.

ComfyUI imports a custom node pack under a module name made of its file path, and shows an error's type as
``module + "." + qualname``: ``/home/me/ComfyUI/custom_nodes/ComfyUI-RePoseDM.reposedm_core.utils.checkpoint
.CheckpointError``. Every subclass of :class:`RePoseError` reports ``reposedm.<ClassName>`` instead, however
the pack was imported.
"""
from __future__ import annotations

READABLE_MODULE = "reposedm"


class RePoseError(Exception):
    """Base of the pack's exceptions; subclasses are shown as ``reposedm.<ClassName>``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__module__ = READABLE_MODULE


RePoseError.__module__ = READABLE_MODULE
