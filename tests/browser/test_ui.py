"""The ComfyUI web page in headless Chromium: our nodes are registered and searchable, and every bundled
workflow loads from the template route with no missing nodes and runs from the UI to an image."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from harness.comfy_server import PACK_NAME, REPO

CHROMIUM = os.environ.get("REPOSE_CHROMIUM", "/usr/bin/chromium")
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
SHOTS = REPO / "outputs" / "browser"
OUR_NODES = ("RePoseLoadPoseJSON", "RePoseSavePoseJSON", "RePoseRenderPose", "RePoseSyntheticPerson",
             "RePosePoseFieldScore", "RePosePoseFieldRepair", "LoadRePoseModel", "RecurrentPoseAlign", "RePoseSampler",
             "PoseFieldGuidance", "RePoseDetectPose", "RePosePoseRetarget", "RePosePoseSequenceClean",
             "RePosePersonLayerWarp")
# Workflows made for real SD weights run here on tiny random stand-ins (tests/harness/tiny_sd.py) at a size
# the CPU does in seconds: widget values set in the page before queueing, as a user would.
SMALL_RUN = {"sd_controlnet_pose_guidance": {"EmptyLatentImage": {"width": 64, "height": 64},
                                             "RePoseSyntheticPerson": {"width": 64, "height": 64},
                                             "KSampler": {"steps": 4}},
             # a real photo (scikit-image's astronaut, public domain) instead of ComfyUI's drawn example.png
             "pose_from_photo": {"LoadImage": {"image": "astronaut.png"}},
             "pose_retarget": {"LoadImage": {"image": "astronaut.png"}},
             "photo_pose_transfer_sd15": {"LoadImage": {"image": "astronaut.png"},
                                          "ImageScale": {"width": 128, "height": 128}, "KSampler": {"steps": 2}}}


@pytest.fixture(scope="module")
def page(comfy):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/setup_env.sh test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    import requests

    from harness.tiny_sd import write_tiny_sd

    write_tiny_sd(comfy.home / "models")  # before the page reads the model lists
    from PIL import Image

    from harness.photos import photos

    (comfy.home / "input").mkdir(parents=True, exist_ok=True)
    Image.fromarray(photos()["astronaut"]).save(comfy.home / "input" / "astronaut.png")
    requests.post(comfy.base + "/settings/Comfy.TutorialCompleted", data="true", timeout=10)
    user_dir = tempfile.mkdtemp(prefix="reposedm-chromium-")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            user_dir, executable_path=CHROMIUM, headless=True, viewport={"width": 1400, "height": 900},
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        pg = ctx.pages[0] if ctx.pages else ctx.new_page()
        pg.errors = []
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        pg.goto(comfy.base + "/")
        pg.wait_for_function("() => window.app && window.app.graph && window.LiteGraph && "
                             "window.LiteGraph.registered_node_types['SaveImage']", timeout=90_000)
        yield pg
        ctx.close()
    shutil.rmtree(user_dir, ignore_errors=True)


def test_nodes_registered_in_the_page(page):
    registered = page.evaluate(f"() => {json.dumps(OUR_NODES)}.filter(n => !!LiteGraph.registered_node_types[n])")
    assert sorted(registered) == sorted(OUR_NODES)


def test_node_search_finds_our_nodes(page):
    page.keyboard.press("Escape")
    page.evaluate("() => { app.graph.clear(); app.canvas.setDirty(true, true); }")
    page.mouse.dblclick(700, 450)
    page.wait_for_timeout(500)
    page.keyboard.type("Synthetic Person", delay=20)
    texts: list[str] = []
    for _ in range(20):
        page.wait_for_timeout(250)
        texts = page.evaluate("""() => [...document.querySelectorAll(
            '.comfy-vue-node-search-container li, .p-autocomplete-option, [role=option]')]
            .map(e => e.innerText.replace(/\\s+/g, ' ').trim()).filter(Boolean)""")
        if any("Synthetic Person" in t for t in texts):
            break
    page.screenshot(path=str(SHOTS / "node_search.png"))
    page.keyboard.press("Escape")
    assert any("Synthetic Person (RePose)" in t for t in texts), texts


def test_workflow_templates_route_lists_bundled_workflows(comfy):
    listed = comfy.get_json("/workflow_templates")
    assert sorted(listed.get(PACK_NAME, [])) == sorted(p.stem for p in WORKFLOWS)
    assert any(p.name == "pose_basics.json" for p in WORKFLOWS)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_bundled_workflow_loads_and_runs_from_the_ui(page, comfy, workflow):
    url = f"{comfy.base}/api/workflow_templates/{PACK_NAME}/{workflow.name}"
    graph = page.evaluate("async (url) => await (await fetch(url)).json()", url)
    assert graph == json.loads(workflow.read_text()), "template route does not serve the bundled file"
    page.evaluate("() => document.querySelectorAll('.p-toast-message').forEach(e => e.remove())")
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }", graph)
    page.wait_for_timeout(500)
    toasts = page.evaluate("() => [...document.querySelectorAll('.p-toast-message')].map(e => e.innerText)")
    assert not toasts, f"loading {workflow.name} raised: {toasts}"  # e.g. 'Invalid workflow against zod schema'
    missing = page.evaluate("() => app.graph._nodes.filter(n => !LiteGraph.registered_node_types[n.type])"
                            ".map(n => n.type)")
    assert missing == [], f"missing node types: {missing}"
    node_count = page.evaluate("() => app.graph._nodes.length")
    assert node_count == len(graph["nodes"])

    if workflow.stem in SMALL_RUN:
        page.evaluate("""(small) => { for (const n of app.graph._nodes) for (const w of (n.widgets || []))
                           if (small[n.type] && w.name in small[n.type]) w.value = small[n.type][w.name]; }""",
                      SMALL_RUN[workflow.stem])
    before = set(comfy.get_json("/history"))
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    entry = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        new = {k: v for k, v in comfy.get_json("/history").items() if k not in before}
        done = [v for v in new.values() if v.get("status", {}).get("completed") is not None]
        if done:
            entry = done[0]
            break
    page.screenshot(path=str(SHOTS / f"workflow_{workflow.stem}.png"))
    assert entry is not None, "the queued workflow did not finish"
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
    images = [im for out in entry["outputs"].values() for im in out.get("images", [])]
    assert images, f"{workflow.name} produced no image"
    assert comfy.view(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    if workflow.stem == "pose_from_photo":          # the photo's person was found, scored, repaired and saved
        saved = [t for out in entry["outputs"].values() for t in out.get("text", []) if t.endswith(".json")]
        frames = json.loads((comfy.home / "output" / saved[0]).read_text())
        assert len(frames[0]["people"]) == 1 and frames[0]["canvas_width"] == 512
    assert not page.errors, page.errors
