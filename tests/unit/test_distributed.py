"""Distributed training on the CPU: two gloo processes follow the single-process loss curve (same global batch)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.tiny_models import TINY

REPO = Path(__file__).resolve().parents[2]


def _train(tmp_path: Path, name: str, procs: int, extra: list[str] = ()) -> list[dict]:
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"model": TINY.to_dict(), "train": {
        "steps": 4, "batch": 4, "sample_every": 100, "checkpoint_every": 100, "log_every": 1, "lr": 1e-3}}))
    out = tmp_path / name
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] \
        if procs > 1 else [sys.executable]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    subprocess.run([*launcher, "-m", "reposedm_core.train", "transfer", "--config", str(cfg), "--out", str(out),
                    "--device", "cpu", *extra], check=True, env=env, cwd=REPO, capture_output=True, timeout=600)
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_follow_the_single_process_loss_curve(tmp_path):
    single = _train(tmp_path, "one", 1)
    double = _train(tmp_path, "two", 2)
    accumulated = _train(tmp_path, "acc", 1, ["--set", "train.accumulate=2"])
    assert [r["step"] for r in single] == [0, 1, 2, 3] == [r["step"] for r in double]
    for a, b, c in zip(single, double, accumulated):
        for key in ("diffusion", "sequence", "visibility"):
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-5), (a["step"], key)
            assert c[key] == pytest.approx(a[key], rel=1e-3, abs=1e-5), (a["step"], key)
    assert single[-1]["total"] != single[0]["total"]  # it trained
