"""``python -m reposedm_core.train field`` end to end at a tiny size: it writes a loadable field whose stored
calibration is what the loaded field measures on the run's own held-out data (the figures behind the shipped
field's thresholds come from this code)."""
from __future__ import annotations

import torch

from reposedm_core.field import load_pose_field
from reposedm_core.field.dataset import build


def test_train_field_writes_a_calibrated_loadable_field(tmp_path):
    from reposedm_core.train.__main__ import main

    out = tmp_path / "field.safetensors"
    main(["field", "--out", str(out), "--poses", "400", "--bank", "200", "--epochs", "3", "--batch", "64",
          "--dim", "16", "--layers", "1", "--heads", "2"])
    field = load_pose_field(out)
    assert field.model.config.dim == 16 and field.model.config.layers == 1
    cal = field.calibration
    assert cal["poses"] == 400 and cal["epochs"] == 3
    assert cal["valid_p50"] <= cal["valid_p95"] <= cal["valid_p99"]
    # the calibration is the loaded field's own 95th percentile on the run's held-out valid poses (seed + 1000003)
    held = build(1_000_003, 2000, 100)
    with torch.no_grad():
        d = field.model.forward_normalised(held.valid_xy, held.valid_present)
    assert abs(float(torch.quantile(d, 0.95)) - cal["valid_p95"]) < 1e-3
