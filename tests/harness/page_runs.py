"""Run a bundled workflow in ComfyUI's web page as a user would; shared by the browser tests and by
``scripts/build_workflows.py`` (which lays a workflow out with the sizes its nodes have after a run and makes
its template thumbnail from the run's images).

Workflows made for a user's own files run here on stand-ins: tiny random SD weights under the real names
(``tiny_sd.py``) at a size the CPU does in seconds, and a real photo (scikit-image's astronaut, public domain)
instead of ComfyUI's drawn ``example.png``. The widget values are set in the page before queueing and put back
afterwards, so a saved workflow keeps its defaults.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHOTO = "astronaut.png"

# workflow stem -> {node type: {widget: value}} set in the page for a run (everything else as shipped).
RUN_OVERRIDES: dict[str, dict[str, dict]] = {
    "SD1.5 ControlNet OpenPose with pose field guidance": {"EmptyLatentImage": {"width": 64, "height": 64},
                                    "RePoseSyntheticPerson": {"width": 64, "height": 64},
                                    "KSampler": {"steps": 4}},
    "Photo pose transfer with SD1.5": {"ImageScale": {"width": 128, "height": 128}, "KSampler": {"steps": 2}},
}


def overrides_for(stem: str) -> dict[str, dict]:
    """The run overrides of a workflow (above); any Load Image node of any workflow gets the photo."""
    found = dict(RUN_OVERRIDES.get(stem, {}))
    found.setdefault("LoadImage", {"image": PHOTO})
    return found


def prepare_home(home: Path) -> None:
    """Stand-in SD files and the photo in a ComfyUI base directory (before the page reads the model lists)."""
    from PIL import Image

    from harness.photos import photos
    from harness.tiny_sd import write_tiny_sd

    write_tiny_sd(home / "models")
    (home / "input").mkdir(parents=True, exist_ok=True)
    Image.fromarray(photos()["astronaut"]).save(home / "input" / PHOTO)


_JS_READY = ("() => window.app && window.app.graph && window.LiteGraph && "
             "window.LiteGraph.registered_node_types['RePoseSyntheticPerson']")


def open_page(context, base: str):
    """The ComfyUI page, loaded, with the first-run dialog skipped and page errors collected in ``.errors``."""
    import requests

    requests.post(base + "/settings/Comfy.TutorialCompleted", data="true", timeout=10)
    page = context.pages[0] if getattr(context, "pages", None) else context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(base + "/")
    page.wait_for_function(_JS_READY, timeout=90_000)
    return page


def reload_page(page) -> None:
    """A fresh page: the previews of an earlier graph stay on nodes of the same id otherwise."""
    page.reload()
    page.wait_for_function(_JS_READY, timeout=90_000)


# Layered layout with the nodes' current sizes: a node's column is the longest path from a source to it;
# columns are as wide as their widest node; nodes are stacked with a gap below their title bar. Every node is
# first made wide enough for its whole title, and image nodes big enough to show their images at 100 %.
JS_LAYOUT = """(top) => {
  const nodes = app.graph._nodes.filter(n => n.type !== 'Note');
  const title = LiteGraph.NODE_TITLE_HEIGHT || 30;
  const ctx = app.canvas.ctx;
  ctx.save();
  ctx.font = app.canvas.title_text_font || ('' + (LiteGraph.NODE_TEXT_SIZE || 14) + 'px Arial');
  for (const n of nodes) {
    const name = (n.getTitle ? n.getTitle() : n.title) || n.type;
    let w = Math.max(n.size[0], ctx.measureText(name).width + 2 * title + 20), h = n.size[1];
    if (n.type === 'PreviewImage' || n.type === 'SaveImage') { w = Math.max(w, 300); h = Math.max(h, 330); }
    n.setSize ? n.setSize([w, h]) : (n.size = [w, h]);
  }
  ctx.restore();
  const depth = new Map();
  const col = (n) => {
    if (depth.has(n.id)) return depth.get(n.id);
    depth.set(n.id, 0);
    let d = 0;
    for (const input of (n.inputs || [])) {
      if (input.link == null) continue;
      const link = app.graph.links[input.link];
      if (link) d = Math.max(d, col(app.graph.getNodeById(link.origin_id)) + 1);
    }
    depth.set(n.id, d);
    return d;
  };
  const columns = [];
  for (const n of [...nodes].sort((a, b) => a.id - b.id)) (columns[col(n)] ||= []).push(n);
  let x = 40, bottom = top;
  for (const c of columns.filter(Boolean)) {
    let y = top + title;
    for (const n of c) { n.pos = [x, y]; y += n.size[1] + title + 40; }
    bottom = Math.max(bottom, y);
    x += Math.max(...c.map(n => n.size[0])) + 60;
  }
  app.canvas.setDirty(true, true);
  return [x, bottom];
}"""

# Every node's rectangle on the canvas, title bar included: [id, type, x, y, w, h].
JS_RECTS = """() => app.graph._nodes.map(n => {
  const r = n.boundingRect || [n.pos[0], n.pos[1] - (LiteGraph.NODE_TITLE_HEIGHT || 30), n.size[0],
                               n.size[1] + (LiteGraph.NODE_TITLE_HEIGHT || 30)];
  return [n.id, n.type, r[0], r[1], r[2], r[3]];
})"""

_JS_SET = """(values) => { const old = [];
  for (const n of app.graph._nodes) for (const w of (n.widgets || []))
    if (values[n.type] && w.name in values[n.type]) { old.push([n.id, w.name, w.value]); w.value = values[n.type][w.name]; }
  return old; }"""
_JS_RESTORE = """(old) => { for (const [id, name, value] of old) {
  const w = app.graph.getNodeById(id).widgets.find(w => w.name === name); w.value = value; } }"""
# The nodes (of those that received images) whose images are not loaded in the page yet: [id, type].
_JS_IMAGES_MISSING = """(ids) => ids.map(id => app.graph.getNodeById(Number(id))).filter(n => n &&
  !(n.imgs && n.imgs.length && n.imgs.every(im => im.complete && im.naturalWidth > 0))).map(n => [n.id, n.type])"""


# The page loads a node's images only once the node is drawn: show the whole graph while they arrive.
_JS_SHOW_ALL = """() => {
  const ns = app.graph._nodes;
  const x0 = Math.min(...ns.map(n => n.pos[0])), y0 = Math.min(...ns.map(n => n.pos[1] - 40));
  const x1 = Math.max(...ns.map(n => n.pos[0] + n.size[0])), y1 = Math.max(...ns.map(n => n.pos[1] + n.size[1]));
  const el = app.canvas.canvas;
  const scale = Math.min(1, 0.9 * el.clientWidth / (x1 - x0), 0.8 * el.clientHeight / (y1 - y0));
  app.canvas.ds.scale = scale;
  app.canvas.ds.offset = [-x0 + 20 / scale, -y0 + 80 / scale];
  app.canvas.setDirty(true, true);
}"""


# A node grows to its previews only when the canvas draws it at a readable zoom: visit every node at 100 %
# (as a user scrolling over the finished graph would), a few frames each, then put the view back.
_JS_VISIT_ALL = """async () => {
  const ds = app.canvas.ds, view = [ds.scale, [...ds.offset]];
  const frames = (k) => new Promise(r => { const f = () => (--k > 0 ? requestAnimationFrame(f) : r());
                                          requestAnimationFrame(f); });
  for (let pass = 0; pass < 2; pass++)
    for (const n of app.graph._nodes) {
      ds.scale = 1;
      ds.offset = [-n.pos[0] + 60, -n.pos[1] + 120];
      app.canvas.setDirty(true, true);
      await frames(3);
    }
  ds.scale = view[0]; ds.offset = view[1];
  app.canvas.setDirty(true, true);
  await frames(2);
}"""


def overlapping(rects: list) -> list[tuple]:
    """Pairs of node rectangles ``[id, type, x, y, w, h]`` that intersect (touching edges do not count)."""
    pairs = []
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            if a[2] < b[2] + b[4] and b[2] < a[2] + a[4] and a[3] < b[3] + b[5] and b[3] < a[3] + a[5]:
                pairs.append((f"{a[1]}#{a[0]}", f"{b[1]}#{b[0]}"))
    return pairs


def run_in_page(page, comfy, stem: str, timeout: float = 300.0) -> dict:
    """Queue the graph loaded in the page (with the run overrides of ``stem``), wait until it has finished and
    every preview shows its images; return the prompt's history entry (its ``status`` tells success)."""
    import requests

    old = page.evaluate(_JS_SET, overrides_for(stem))
    try:
        # Every node runs and shows its previews, whatever ran before (a cached node sends none).
        requests.post(comfy.base + "/free", json={"free_memory": True}, timeout=30).raise_for_status()
        page.wait_for_timeout(3000)   # the idle worker wakes on the flag and empties its cache
        before = set(comfy.get_json("/history"))
        page.evaluate("async () => { await app.queuePrompt(0, 1); }")
        entry = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and entry is None:
            page.wait_for_timeout(500)
            new = {k: v for k, v in comfy.get_json("/history").items() if k not in before}
            done = [v for v in new.values() if v.get("status", {}).get("completed") is not None]
            entry = done[0] if done else None
        if entry is None:
            raise TimeoutError(f"{stem} did not finish within {timeout:.0f} s")
        with_images = [k for k, out in entry.get("outputs", {}).items() if out.get("images")]
        view = page.evaluate("() => [app.canvas.ds.scale, [...app.canvas.ds.offset]]")
        missing = []
        for i in range(120 if entry["status"].get("status_str") == "success" else 0):
            if i % 10 == 0:  # again as the nodes grow
                page.evaluate(_JS_SHOW_ALL)
            missing = page.evaluate(_JS_IMAGES_MISSING, with_images)
            if not missing:
                break
            page.wait_for_timeout(500)
        if missing:
            log.warning("%s: the page shows no images on %s after 60 s", stem, missing)
        page.evaluate("([scale, offset]) => { app.canvas.ds.scale = scale; app.canvas.ds.offset = offset; }", view)
        page.evaluate(_JS_VISIT_ALL)   # the canvas resizes nodes to their previews as it draws them
        return entry
    finally:
        page.evaluate(_JS_RESTORE, old)
