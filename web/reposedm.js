// RePoseDM front-end helpers for ComfyUI's page:
//  1. nodes that return text (Pose Field Score's scores, Save Pose JSON's file) show it on the node;
//  2. the node search also finds our nodes by the words in search_aliases.json ("pose transfer", "openpose"),
//     on front ends that do not read a node's search_aliases themselves.
import { app } from "../../scripts/app.js";

const TEXT_NODES = new Set(["RePosePoseFieldScore", "RePoseSavePoseJSON"]);
const TEXT_WIDGET = "reposedm_text";

function addTextWidget(node) {
  const el = document.createElement("textarea");
  el.readOnly = true;
  el.rows = 4;
  el.className = "comfy-multiline-input";
  el.placeholder = "shown here after a run";
  el.style.cssText = "font-family: monospace; font-size: 11px; white-space: pre-wrap; overflow: auto; opacity: 0.9;";
  const widget = node.addDOMWidget(TEXT_WIDGET, "reposedm_text", el, {
    serialize: false,            // not a value of the node: saved workflows keep their widget positions
    getValue: () => el.value,
    setValue: (v) => { el.value = v ?? ""; },
    getMinHeight: () => 72,
  });
  widget.serialize = false;
  return widget;
}

function showText(node, message) {
  const text = message?.text;
  if (!text) return;
  const widget = node.widgets?.find((w) => w.name === TEXT_WIDGET) ?? addTextWidget(node);
  widget.value = Array.isArray(text) ? text.join("\n") : String(text);
  node.setDirtyCanvas?.(true, true);
}

function piniaStore(id) {
  const vue = document.querySelector("#vue-app")?.__vue_app__;
  return vue?.config?.globalProperties?.$pinia?._s?.get(id);
}

async function patchSearch() {
  let aliases;
  try {
    aliases = await (await fetch(new URL("./search_aliases.json", import.meta.url))).json();
  } catch (e) {
    console.warn("RePoseDM: search aliases not loaded", e);
    return;
  }
  const store = piniaStore("nodeDef");
  const service = store?.nodeSearchService;
  const proto = service && Object.getPrototypeOf(service);
  if (!proto?.searchNode || proto.searchNode.__reposedm) return;
  const original = proto.searchNode;
  const words = Object.entries(aliases).filter(([id]) => !id.startsWith("_"))
    .map(([id, list]) => [id, list.map((w) => w.toLowerCase())]);
  const wrapped = function (query, filters = [], options, extra) {
    const found = original.call(this, query, filters, options, extra);
    const q = (query ?? "").trim().toLowerCase().replace(/\s+/g, " ");
    if (q.length < 3) return found;
    const defs = store.nodeDefsByName ?? {};
    const have = new Set(found.map((d) => d.name));
    const extraDefs = words
      .filter(([id, list]) => !have.has(id) && defs[id] && list.some((w) => w.includes(q) || q.includes(w)))
      .map(([id]) => defs[id])
      .filter((d) => filters.every((f) => f.filterDef.matches(d, f.value, { wildcard: "*" })));
    const all = [...extraDefs, ...found];
    return options?.limit ? all.slice(0, options.limit) : all;
  };
  wrapped.__reposedm = true;
  proto.searchNode = wrapped;
}

app.registerExtension({
  name: "RePoseDM.NodeText",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!TEXT_NODES.has(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      showText(this, message);
    };
  },
  async setup() {
    await patchSearch();
  },
});
