"""Resuming transfer training continues the interrupted run exactly: the resumed process starts at the saved step
(not at 0, not re-doing a step), with the optimiser's moments, the LR schedule and the EMA restored, so a run of 4
steps killed after its step-2 checkpoint and resumed ends with the same losses and weights as one run straight
through."""
from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors import safe_open

from reposedm_core.train.__main__ import main
from reposedm_core.train.state import Trainer

from harness.tiny_models import TINY


class Killed(Exception):
    pass


def _train(tmp_path, name: str, monkeypatch=None, kill_at_update: int | None = None):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"model": TINY.to_dict(),
                               "train": {"steps": 4, "batch": 2, "log_every": 1, "sample_every": 1000,
                                         "checkpoint_every": 2, "sample_steps": 1}}))
    out = tmp_path / name
    if kill_at_update is not None:  # the process dies inside an optimiser update, after the step-2 checkpoint
        calls, update = [], Trainer.update

        def dying_update(self):
            calls.append(1)
            if len(calls) == kill_at_update:
                raise Killed
            update(self)

        monkeypatch.setattr(Trainer, "update", dying_update)
        with pytest.raises(Killed):
            main(["transfer", "--config", str(cfg), "--out", str(out)])
        monkeypatch.setattr(Trainer, "update", update)
        assert _state(out)[1]["step"] == 2
    main(["transfer", "--config", str(cfg), "--out", str(out)])
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return out, lines


def _state(out):
    with safe_open(str(out / "state.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, json.loads(f.metadata()["meta"])


def test_resume_continues_at_the_saved_step_with_identical_results(tmp_path, caplog, monkeypatch):
    straight, straight_log = _train(tmp_path, "straight")
    with caplog.at_level(logging.INFO, logger="reposedm.train"):
        resumed, resumed_log = _train(tmp_path, "resumed", monkeypatch, kill_at_update=3)
    assert "at step 2" in caplog.text, caplog.text
    assert [r["step"] for r in resumed_log] == [0, 1, 2, 3]          # the resumed process logged steps 2 and 3 only
    assert [r["step"] for r in straight_log] == [0, 1, 2, 3]
    for a, b in zip(straight_log, resumed_log):
        assert a["lr"] == b["lr"], (a, b)                            # the LR schedule resumed where it stood
        assert abs(a["total"] - b["total"]) < 1e-6 * max(1.0, abs(a["total"])), (a, b)
    (t_a, m_a), (t_b, m_b) = _state(straight), _state(resumed)
    assert m_a["step"] == m_b["step"] == 4 and m_a["ema_step"] == m_b["ema_step"] == 4
    assert t_a.keys() == t_b.keys() and any(k.startswith("opt.") for k in t_a)
    for k in t_a:                                                    # weights, EMA and Adam moments
        assert torch.allclose(t_a[k].float(), t_b[k].float(), atol=1e-6, rtol=1e-5), k
