"""The ComfyUI web page in headless Chromium: our nodes are registered and searchable (also by their search
aliases), the template browser shows a thumbnail for every bundled workflow, and every bundled workflow loads
from the template route with no missing nodes, runs from the UI to an image, and leaves no node covering
another once its previews have arrived; Pose Field Score shows its scores on the node."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harness.comfy_server import PACK_NAME, REPO
from harness.page_runs import (CHROMIUM_ARGS, JS_RECTS, open_page, overlapping, prepare_home, reload_page,
                               run_in_page)

CHROMIUM = os.environ.get("REPOSE_CHROMIUM", "/usr/bin/chromium")
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
SHOTS = REPO / "outputs" / "browser"
OUR_NODES = ("RePoseLoadPoseJSON", "RePoseSavePoseJSON", "RePoseRenderPose", "RePoseSyntheticPerson",
             "RePosePoseFieldScore", "RePosePoseFieldRepair", "LoadRePoseModel", "RecurrentPoseAlign", "RePoseSampler",
             "PoseFieldGuidance", "RePoseDetectPose", "RePosePoseRetarget", "RePosePoseSequenceClean",
             "RePosePersonLayerWarp")
# What a user types in the node search -> display names that must be listed (aliases: web/search_aliases.json).
SEARCHES = {"Synthetic Person": ["Synthetic Person (RePose)"],
            "pose transfer": ["Pose Transfer Sampler (RePose)", "Recurrent Pose Align (RePose)",
                              "Load Model (RePose)"],
            "openpose": ["Render Pose (RePose)", "Detect Pose with BlazePose (RePose)"]}


@pytest.fixture(scope="module")
def page(comfy):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/setup_env.sh test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    prepare_home(comfy.home)  # stand-in SD files and the photo, before the page reads the model lists
    user_dir = tempfile.mkdtemp(prefix="reposedm-chromium-")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            user_dir, executable_path=CHROMIUM, headless=True, viewport={"width": 1400, "height": 900},
            args=CHROMIUM_ARGS)
        pg = open_page(ctx, comfy.base)
        pg.responses = []   # (url, status) of everything the page fetched: thumbnails, 404s
        pg.on("response", lambda r: pg.responses.append((r.url, r.status)))
        yield pg
        ctx.close()
    shutil.rmtree(user_dir, ignore_errors=True)


def test_nodes_registered_in_the_page(page):
    registered = page.evaluate(f"() => {json.dumps(OUR_NODES)}.filter(n => !!LiteGraph.registered_node_types[n])")
    assert sorted(registered) == sorted(OUR_NODES)


@pytest.mark.parametrize("query", list(SEARCHES))
def test_node_search_finds_our_nodes(page, query):
    reload_page(page)
    page.evaluate("() => { app.graph.clear(); app.canvas.setDirty(true, true); }")
    page.evaluate("async () => { await app.extensionManager.command.execute('Workspace.SearchBox.Toggle'); }")
    box = page.locator("input[id^=comfy-vue-node-search-box-input]").first
    box.wait_for(timeout=30_000)
    box.fill(query)
    texts: list[str] = []
    for _ in range(20):
        page.wait_for_timeout(250)
        texts = page.evaluate("""() => [...document.querySelectorAll(
            '.comfy-vue-node-search-container li, .p-autocomplete-option, [role=option]')]
            .map(e => e.innerText.replace(/\\s+/g, ' ').trim()).filter(Boolean)""")
        if all(any(name in t for t in texts) for name in SEARCHES[query]):
            break
    page.screenshot(path=str(SHOTS / f"node_search_{query.replace(' ', '_')}.png"))
    page.keyboard.press("Escape")
    for name in SEARCHES[query]:
        assert any(name in t for t in texts), (name, texts)


def test_display_names_follow_one_convention(comfy):
    names = {n: comfy.object_info(n)[n]["display_name"] for n in OUR_NODES}
    assert all(name.endswith(" (RePose)") for name in names.values()), names
    assert len(set(names.values())) == len(names)


def test_template_browser_shows_a_thumbnail_for_every_workflow(page):
    from urllib.parse import unquote

    reload_page(page)
    page.responses.clear()
    page.evaluate("async () => { await app.extensionManager.command.execute('Comfy.BrowseTemplates'); }")
    page.get_by_text(PACK_NAME).first.click(timeout=30_000)   # Templates -> Extensions -> the pack
    route = f"/workflow_templates/{PACK_NAME}/"
    wanted = {f"{p.stem}.jpg" for p in WORKFLOWS}
    fetched: dict[str, int] = {}
    for _ in range(120):
        page.wait_for_timeout(500)
        page.evaluate("""() => document.querySelectorAll('.p-dialog *').forEach(e => {   // cards load when seen
            if (e.scrollHeight > e.clientHeight + 10) e.scrollTop += 300; })""")
        fetched = {unquote(url.split(route, 1)[1]): status for url, status in page.responses if route in url}
        if wanted <= set(fetched):
            break
    page.wait_for_timeout(1000)
    page.screenshot(path=str(SHOTS / "template_browser.png"))
    page.keyboard.press("Escape")
    assert wanted <= set(fetched), sorted(wanted - set(fetched))
    assert all(fetched[name] == 200 for name in wanted), fetched
    assert not [url for url, status in page.responses if status == 404 and (route in url or PACK_NAME in url)]
    for path in WORKFLOWS:
        assert path.with_suffix(".jpg").stat().st_size < 60_000, f"{path.stem}.jpg is too big for a thumbnail"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_bundled_workflow_loads_and_runs_from_the_ui(page, comfy, workflow):
    reload_page(page)   # no previews left over from the previous workflow's nodes
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

    entry = run_in_page(page, comfy, workflow.stem, timeout=240)
    page.screenshot(path=str(SHOTS / f"workflow_{workflow.stem}.png"))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
    covered = overlapping(page.evaluate(JS_RECTS))
    assert not covered, f"after the run these nodes cover each other: {covered}"
    images = [im for out in entry["outputs"].values() for im in out.get("images", [])]
    assert images, f"{workflow.name} produced no image"
    assert comfy.view(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    scored = page.evaluate("""() => app.graph._nodes.filter(n => n.type === 'RePosePoseFieldScore')
        .map(n => (n.widgets || []).find(w => w.name === 'reposedm_text')?.value ?? null)""")
    assert all(t and t.startswith("frame 0 person 0: ") for t in scored), f"scores not shown on the node: {scored}"
    if workflow.stem == "Pose from a photo (BlazePose)":   # the photo's person was found, scored, repaired, saved
        saved = [t for out in entry["outputs"].values() for t in out.get("text", []) if t.endswith(".json")]
        frames = json.loads((comfy.home / "output" / saved[0]).read_text())
        assert len(frames[0]["people"]) == 1 and frames[0]["canvas_width"] == 512
    assert not page.errors, page.errors
