"""The pose-field evaluation CLI (``python -m reposedm_core.eval field``, the README's field table), its seeded
dataset (``field.dataset.build``, shared with training) and the sweep-figure writer (``eval.plot``): on a few
hundred poses, each reported number is recomputed here the way the report's text says it is computed."""
from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import torch

from reposedm_core.eval.field import REAL_POSES
from reposedm_core.eval.metrics import auroc
from reposedm_core.field import load_pose_field
from reposedm_core.field.corrupt import STRENGTHS
from reposedm_core.field.data import KINDS, normalised
from reposedm_core.field.dataset import MAX_TARGET, NO_OP, build
from reposedm_core.field.distance import aligned_distance

SEED, POSES, BANK, REPAIR = 424_242, 150, 500, 20


@pytest.fixture(scope="module")
def data():
    return build(SEED, POSES, BANK, valid_targets=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory, data) -> str:
    from reposedm_core.eval.__main__ import main

    out = tmp_path_factory.mktemp("eval") / "field.md"
    logging.getLogger("reposedm.eval.field").setLevel(logging.WARNING)
    main(["field", "--poses", str(POSES), "--bank", str(BANK), "--repair-poses", str(REPAIR), "--seed", str(SEED),
          "--out", str(out)])
    return out.read_text()


def _row(report: str, section: str, first: str) -> list[str]:
    body = report.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in section {section!r}:\n{body}")


def test_dataset_is_seeded_and_its_corruptions_are_real(data):
    again = build(7, 20, 200)
    assert torch.equal(again.bad_kp, build(7, 20, 200).bad_kp)                    # same seed, same poses
    oracle = build(7, 20, 200, valid_targets=True)                                # measuring valid poses too
    assert torch.equal(oracle.bad_kp, again.bad_kp) and torch.equal(oracle.valid_kp, again.valid_kp)
    assert again.valid_target is None and oracle.valid_target.shape == (len(again.valid_kp),)
    assert not torch.equal(again.valid_kp, build(8, 20, 200).valid_kp)
    assert len(data.valid_kp) == POSES and ((data.valid_kp[..., 2] > 0).sum(-1) >= 4).all()
    q, present = normalised(data.bad_kp)
    src, _ = normalised(torch.cat([data.source_kp[..., :2], data.bad_kp[..., 2:]], -1))
    assert (aligned_distance(q, src, present) >= NO_OP * 0.5).all()                # every corruption moved the pose
    assert ((data.target >= 0) & (data.target <= MAX_TARGET)).all()
    assert set(data.kind.tolist()) == set(range(len(KINDS))) and set(data.strength.tolist()) == {0, 1, 2}
    means = [float(data.target[data.strength == s].mean()) for s in range(len(STRENGTHS))]
    assert means[0] < means[2], means                                              # strong breaks more than weak


def test_report_counts_and_real_pose_pass_rate(report, data):
    assert f"{len(data.valid_kp)} valid and {len(data.bad_kp)} corrupted poses" in report
    field = load_pose_field()
    frames = json.loads(REAL_POSES.read_text())
    from reposedm_core.pose import load_pose_keypoint

    kp = torch.stack([load_pose_keypoint([f], require_person=True)[0].keypoints[0] for f in frames])
    passing = field.distance(kp) < field.valid_threshold
    row = _row(report, "Real human poses", "all readings")
    assert int(row[1]) == len(frames) and float(row[2]) == pytest.approx(float(passing.float().mean()), abs=1e-3)
    assert f"Rejected ({int((~passing).sum())})" in report
    misread = torch.tensor([f.get("reading") == "misread" for f in frames])
    assert 0 < int(misread.sum()) < len(frames) // 4                            # marked, and a minority
    row = _row(report, "Real human poses", "all correct readings")              # the pass rate leaves them out
    assert int(row[1]) == int((~misread).sum())
    assert float(row[2]) == pytest.approx(float(passing[~misread].float().mean()), abs=1e-3)
    rejected = float(re.search(r"Misreadings[^\n]*? (\d\.\d+) rejected", report).group(1))
    assert rejected == pytest.approx(float((~passing[misread]).float().mean()), abs=1e-3)


def test_report_auroc_and_repair_rows_are_what_they_say(report, data):
    field = load_pose_field()
    f_valid, f_bad = field.distance(data.valid_kp), field.distance(data.bad_kp)
    row = _row(report, "Valid vs corrupted (AUROC)", "all kinds")
    for s in range(len(STRENGTHS)):                                    # "AUROC all" of every strength
        assert float(row[1 + 3 * s]) == pytest.approx(auroc(f_valid, f_bad[data.strength == s]), abs=1e-3), s
    k = KINDS.index("joint_noise")
    strong = (data.kind == k) & (data.strength == STRENGTHS.index("strong"))
    assert float(_row(report, "Valid vs corrupted (AUROC)", "joint_noise")[7]) == pytest.approx(
        auroc(f_valid, f_bad[strong]), abs=1e-3)
    medium = torch.nonzero(data.strength == STRENGTHS.index("medium")).squeeze(1)[:REPAIR]
    bad = data.bad_kp[medium]
    after = field.distance(field.repair(bad))
    row = _row(report, "Repair", "all")
    assert int(row[1]) == len(medium)
    assert float(row[3]) == pytest.approx(float((after < field.valid_median).float().mean()), abs=1e-3)
    assert float(row[4]) == pytest.approx(float(field.distance(bad).mean()), abs=1e-3)
    assert float(row[5]) == pytest.approx(float(after.mean()), abs=1e-3)
    alone = field.distance(field.repair(bad, propose=False))                 # the comparison rows below it
    row = _row(report, "Repair", "field steps alone (propose=False)")
    assert float(row[2]) == pytest.approx(float((alone < field.valid_median).float().mean()), abs=1e-3)
    src = data.source_kp[medium]
    exact = torch.cat([src[..., :2], bad[..., 2:]], -1) * (bad[..., 2:] > 0)
    ceiling = float(_row(report, "Repair", "ceiling: the uncorrupted pose, fresh annotation jitter, then repaired")[1])
    assert float(_row(report, "Repair", "all")[8]) == ceiling                # the by-kind column's overall figure
    kinds = [_row(report, "Repair", kind) for kind in KINDS if (data.kind[medium] == KINDS.index(kind)).any()]
    assert sum(int(r[1]) * float(r[8]) for r in kinds) == pytest.approx(ceiling * len(medium), abs=0.03)
    row = _row(report, "Repair", "ceiling: the uncorrupted pose, no jitter")
    assert float(row[1]) == pytest.approx(float((field.distance(exact) < field.valid_median).float().mean()),
                                          abs=1e-3) and float(row[3]) == 0.0
    section = "The field vs an oracle that knows each pose's body (medium corruptions)"
    row = _row(report, section, "all kinds")
    medium_all = data.strength == STRENGTHS.index("medium")
    assert float(row[2]) == pytest.approx(auroc(f_valid, f_bad[medium_all]), abs=1e-3)
    assert float(row[3]) == pytest.approx(auroc(data.valid_target, data.target[medium_all]), abs=1e-3)
    change = float(re.search(r"mean \|change\| = ([\d.e+-]+)", report).group(1))
    assert change < 1e-4                                               # the field is shift and scale invariant


def test_gate_rows_agree_with_the_repairs_they_name(report):
    from reposedm_core.field.proposer import GATE

    field = load_pose_field()
    default = _row(report, "Repair gate", f"gate {GATE:g} (the default)")
    assert default[1] == _row(report, "Repair", "the default repair (proposal, then field steps)")[1]
    alone = _row(report, "Repair gate", "field steps alone (no proposal)")
    assert alone[1] == _row(report, "Repair", "field steps alone (propose=False)")[1] and float(alone[2]) == 0
    assert default[4] == _row(report, "Hand-made broken poses", "legs crossed at the hips")[7]
    low = _row(report, "Repair gate", "gate 0")
    assert float(low[2]) >= float(_row(report, "Repair gate", "gate 0.5")[2]) >= float(default[2]) > 0
    # gate 0: every real reading the field scores at or above its valid median takes the proposal
    frames = json.loads(REAL_POSES.read_text())
    from reposedm_core.pose import load_pose_keypoint

    real = torch.stack([load_pose_keypoint([f], require_person=True)[0].keypoints[0] for f in frames])
    offered = float((field.distance(real) >= field.valid_median).float().mean())
    assert float(low[2]) == pytest.approx(offered, abs=2e-3)
    moved = field.repair(real, gate=0.0)[..., :2] - real[..., :2]
    assert moved.abs().amax() > 0
    with pytest.raises(ValueError, match="gate must be in"):
        field.repair(real[:1], gate=1.5)


def test_proposer_option_chooses_what_the_repair_starts_with(report, tmp_path):
    """``--proposer none`` repairs by field steps alone: its default row is the shipped report's steps-alone row
    (same data, same seed), and the comparison rows that need a proposer are left out."""
    from reposedm_core.eval.__main__ import main

    out = tmp_path / "none.md"
    main(["field", "--poses", str(POSES), "--bank", str(BANK), "--repair-poses", str(REPAIR), "--seed", str(SEED),
          "--proposer", "none", "--out", str(out)])
    text = out.read_text()
    assert "repair proposer: none" in text and "repair proposer: shipped" in report
    default = _row(text, "Repair", "the default repair (field steps; no proposer)")
    assert default[1:] == _row(report, "Repair", "field steps alone (propose=False)")[1:]
    assert "field steps alone (propose=False)" not in text and "the proposal alone" not in text
    with pytest.raises(Exception, match="missing.safetensors"):
        main(["field", "--poses", "20", "--bank", "50", "--proposer", str(tmp_path / "missing.safetensors"),
              "--out", str(tmp_path / "x.md")])


def test_hand_made_breakages_of_real_poses_are_reported_as_computed(report):
    from reposedm_core.eval.field import break_by_hand, whole_standing_real_poses

    field = load_pose_field()
    kp = whole_standing_real_poses(REAL_POSES)
    frames = json.loads(REAL_POSES.read_text())                    # what it selects, counted independently
    assert len(kp) == sum(f["type"] == "standing" and f.get("reading") != "misread" and "," not in f["source"]
                          and all(c > 0 for c in f["people"][0]["pose_keypoints_2d"][2::3]) for f in frames)
    broken = break_by_hand(kp, torch.Generator().manual_seed(SEED))
    assert len(broken) == 6 and all(torch.equal(b[..., 2], kp[..., 2]) for b in broken.values())
    bad = broken["forearm 3x too long"]
    fixed = field.repair(bad)
    row = _row(report, "Hand-made broken poses", "forearm 3x too long")
    assert int(row[1]) == len(kp) > 10
    flagged = (field.distance(bad) >= field.valid_threshold).float().mean()
    assert float(row[2]) == pytest.approx(float(flagged), abs=1e-3)
    below = (field.distance(fixed) < field.valid_median).float().mean()
    assert float(row[5]) == pytest.approx(float(below), abs=1e-3)


def test_sweep_figure_draws_each_series_where_its_values_are(tmp_path):
    from PIL import Image

    from reposedm_core.eval.plot import COLOURS, line_panels

    path = line_panels(tmp_path / "sweep.png", [0, 1, 2, 4],
                       {"SSIM": {"full": [0.1, 0.2, 0.3, 0.9], "ablation": [0.5, float("nan"), 0.5, 0.5]},
                        "LPIPS": {"full": [0.9, 0.5, 0.3, 0.2]}}, "guidance scale", title="sweep")
    img = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).long()
    assert img.shape == (28 + 260, 2 * 360, 3)
    for panel, rising in ((0, True), (1, False)):
        part = img[:, panel * 360:(panel + 1) * 360]
        ys, xs = torch.nonzero((part == torch.tensor(COLOURS[0])).all(-1), as_tuple=True)
        left, right = ys[xs == xs.min()].float().mean(), ys[xs == xs.max()].float().mean()
        assert (left > right) == rising, (panel, left, right)        # image rows grow downwards
    assert (img[:, :360] == torch.tensor(COLOURS[1])).all(-1).any()  # the second series (NaN skipped) is drawn
    with pytest.raises(ValueError, match="nothing to plot"):
        line_panels(tmp_path / "empty.png", [], {}, "x")
