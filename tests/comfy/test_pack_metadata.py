"""What ComfyUI itself reads about the pack: the registry metadata through its own config reader, and the
type name it shows for the pack's own exceptions."""
from __future__ import annotations

import json
import subprocess
import sys

from harness.comfy_server import COMFY_DIR, PACK_NAME, REPO


def test_comfy_config_reader_sees_urls_and_icon(comfy):
    pack = comfy.home / "custom_nodes" / PACK_NAME      # the installed copy, as ComfyUI reads it
    code = ("import json, sys; from comfy_config import config_parser; "
            "c = config_parser.extract_node_configuration(sys.argv[1]); "
            "print(json.dumps({'urls': c.project.urls.model_dump(), 'icon': c.tool_comfy.icon}))")
    out = subprocess.run([sys.executable, "-c", code, str(pack)], cwd=COMFY_DIR, capture_output=True, text=True,
                         timeout=120, check=True)
    meta = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(meta["urls"][k].startswith("https://") for k in ("homepage", "issues", "repository", "documentation"))
    icon = meta["icon"]
    assert icon.startswith("https://") and icon.endswith(".png")
    assert (REPO / icon.split("/main/", 1)[1]).is_file(), "the icon URL names a file the repository lacks"


def test_pack_exception_shows_a_readable_type(comfy):
    broken = comfy.home / "models" / "reposedm" / "zz_broken.safetensors"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"not a safetensors file at all")
    prompt = {"1": {"class_type": "RePoseSyntheticPerson",
                    "inputs": {"seed": 1, "pose_seed": 1, "width": 64, "height": 96, "batch_size": 1}},
              "2": {"class_type": "LoadRePoseModel", "inputs": {"model_name": broken.name}},
              "3": {"class_type": "RecurrentPoseAlign",
                    "inputs": {"model": ["2", 0], "source_image": ["1", 0], "source_pose": ["1", 1],
                               "target_pose": ["1", 1], "iterations": 1, "person_index": 0, "warm_start": True}},
              "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 1]}}}
    result = comfy.run(prompt, timeout=120)
    assert result.status == "error"
    error = result.error()
    assert error["exception_type"] == "reposedm.CheckpointError", error["exception_type"]
    assert "zz_broken.safetensors" in error["exception_message"]


def test_search_aliases_name_our_nodes(comfy):
    aliases = {k: v for k, v in json.loads((REPO / "web" / "search_aliases.json").read_text()).items()
               if not k.startswith("_")}
    ours = {k for k, v in comfy.object_info().items() if v.get("python_module", "").endswith(PACK_NAME)}
    assert set(aliases) <= ours, sorted(set(aliases) - ours)
    assert all(isinstance(words, list) and words and all(w.strip() == w and w for w in words)
               for words in aliases.values())
