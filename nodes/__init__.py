"""The pack's ComfyUI extension: collects the node families, each in its own module.

One family that fails to import (a missing optional dependency, say) disables its own nodes and logs
why; the rest of the pack still loads.
"""
from __future__ import annotations

import importlib
import logging

from comfy_api.latest import ComfyExtension, io

log = logging.getLogger("reposedm")

# Node family modules, in the order they appear in the menu. Each exposes NODES: list[type[io.ComfyNode]].
_FAMILIES = ("pose_nodes", "detect_nodes", "field_nodes", "retarget_nodes", "transfer_nodes", "guidance_nodes",
             "photo_nodes")


def _load_families() -> list[type[io.ComfyNode]]:
    nodes: list[type[io.ComfyNode]] = []
    for name in _FAMILIES:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except Exception:  # one broken family must not take the pack down
            log.exception("RePoseDM: the node family %r failed to import; its nodes are disabled", name)
            continue
        nodes.extend(module.NODES)
    return nodes


class RePoseExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return _load_families()


async def comfy_entrypoint() -> RePoseExtension:
    return RePoseExtension()
