"""ComfyUI-RePoseDM — ComfyUI entry point (V3 ``comfy_entrypoint``); nothing heavy happens at import.

The node modules are imported when ComfyUI calls the entry point, so importing this package outside ComfyUI
(pytest collects it as the root package) needs nothing from ComfyUI.
"""


async def comfy_entrypoint():
    from .nodes import comfy_entrypoint as entrypoint

    return await entrypoint()


# Front-end helpers (scores shown on the node, search aliases): ComfyUI serves this folder to the page.
WEB_DIRECTORY = "./web"
