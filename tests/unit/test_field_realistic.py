"""The pose field on real human poses: the realistic world it is trained on, a body scale that survives
foreshortening, the new corruptions, the shipped field's verdicts on jittered, broken and real poses, and a
repair that moves confident joints and is checked against a bank of valid poses."""
from __future__ import annotations

import json

import pytest
import torch

from reposedm_core.data.synthetic.poses import REALISTIC_EXTRA, pose_angles_from_uniforms, realistic_family
from reposedm_core.data.synthetic.skeleton import NUM_DOFS, within_limits
from reposedm_core.eval.field import REAL_POSES
from reposedm_core.field import data as D
from reposedm_core.field import load_pose_field
from reposedm_core.field.corrupt import LEGS_SHIFT, WIDTH_FACTOR, head_in_chest, hip_swap, legs_shifted, torso_width
from reposedm_core.field.dataset import jitter
from reposedm_core.field.distance import aligned_distance
from reposedm_core.pose import JOINT_INDEX as J
from reposedm_core.pose import load_pose_keypoint
from reposedm_core.pose.normalize import root_and_body_scale, root_and_scale


def _upright(n: int = 200, seed: int = 5):
    gen = torch.Generator().manual_seed(seed)
    bodies = D.sample_bodies(gen, n, full_body=True, realistic=False)
    return bodies, D.project(bodies)


def test_realistic_families_stay_inside_the_joint_limits_and_lie_down():
    u = torch.rand(4000, D.NUM_POSE_UNIFORMS, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    angles = pose_angles_from_uniforms(u, "realistic")
    assert angles.shape == (4000, NUM_DOFS) and within_limits(angles).all()
    families = set(realistic_family(u).tolist())
    assert set(REALISTIC_EXTRA) <= families                         # every new family is drawn
    bodies = D.sample_bodies(torch.Generator().manual_seed(1), 600)
    lying = bodies.orient > 0
    assert 0.05 < float(lying.float().mean()) < 0.25
    from reposedm_core.data.synthetic.skeleton import SJ

    j = bodies.joints()
    spine = j[:, SJ["neck_base"]] - j[:, SJ["pelvis"]]                 # the torso lies flat / stands up
    upright = spine[:, 1].abs() / spine.norm(dim=-1)
    assert (upright[lying] < 0.5).all() and float(upright[~lying].median()) > 0.8


def test_realistic_cameras_cover_high_low_rolled_and_side_crops():
    from reposedm_core.data.synthetic.camera import make_camera

    bodies = D.sample_bodies(torch.Generator().manual_seed(2), 2000)
    cam = make_camera(bodies.cam_u, bodies.joints(), 256, 176, realistic=True)
    pitch, roll = torch.rad2deg(cam.pitch), torch.rad2deg(cam.roll)
    assert pitch.min() < -45 and pitch.max() > 65 and roll.abs().max() > 170      # pictures turned by any angle
    small = roll.abs() <= 30
    assert 0.8 < float(small.float().mean()) < 0.92 and roll[small].abs().max() > 20   # most within +-30
    turned = roll[~small]
    assert (turned > 90).any() and (turned < -90).any()                             # both ways, upside down too
    plain = make_camera(bodies.cam_u, bodies.joints(), 256, 176)                   # the other worlds: unchanged
    assert torch.rad2deg(plain.roll).abs().max() <= 10
    kp = D.project(bodies)
    missing = kp[..., 2] == 0
    head_cut = missing[:, J["nose"]] & ~missing[:, J["r_ankle"]] & ~missing[:, J["l_ankle"]]
    assert head_cut.any()                                           # cut at the top, feet kept


def test_joints_behind_the_torso_go_missing():
    xy = torch.zeros(1, 18, 2)
    xy[0, J["r_shoulder"]], xy[0, J["l_shoulder"]] = torch.tensor([0.0, 0.0]), torch.tensor([10.0, 0.0])
    xy[0, J["l_hip"]], xy[0, J["r_hip"]] = torch.tensor([10.0, 20.0]), torch.tensor([0.0, 20.0])
    xy[0, J["r_wrist"]] = torch.tensor([5.0, 10.0])                 # inside the torso's outline
    xy[0, J["l_wrist"]] = torch.tensor([30.0, 10.0])                # outside it
    depth = torch.full((1, 18), 3.0)
    depth[0, J["r_wrist"]] = depth[0, J["l_wrist"]] = 3.3           # both behind the body
    hidden = D.behind_torso(xy, depth)
    assert hidden[0, J["r_wrist"]] and not hidden[0, J["l_wrist"]]
    depth[0, J["r_wrist"]] = 2.7                                    # in front of the body: seen
    assert not D.behind_torso(xy, depth)[0, J["r_wrist"]]


def test_body_scale_survives_a_torso_seen_end_on():
    _, kp = _upright()
    _, torso, _ = root_and_scale(kp)
    _, body, _ = root_and_body_scale(kp)
    assert float((body / torso - 1).abs().median()) < 0.12        # typical people: about the torso length
    bent = kp.clone()                                               # the torso seen end-on: neck onto the hips
    mid = (kp[:, J["r_hip"], :2] + kp[:, J["l_hip"], :2]) / 2
    bent[:, J["neck"], :2] = mid + 0.1 * (kp[:, J["neck"], :2] - mid)
    assert (root_and_scale(bent)[1] < 0.2 * torso).all()            # the torso scale collapses
    assert (root_and_body_scale(bent)[1] > 0.75 * body).float().mean() > 0.95


def test_new_corruptions_do_what_they_say():
    _, kp = _upright(50)
    xy, present = D.normalised(kp)
    gen = torch.Generator().manual_seed(0)
    swapped = hip_swap(xy, present, "medium", gen)
    assert (swapped[:, J["r_hip"], 0] - swapped[:, J["l_hip"], 0]).sign().ne(
        (xy[:, J["r_hip"], 0] - xy[:, J["l_hip"], 0]).sign()).all()
    sunk = head_in_chest(xy, present, "medium", gen)
    below_neck = sunk[:, J["nose"], 1] > xy[:, J["neck"], 1]        # y down: the nose is below the neck
    assert below_neck[present[:, J["nose"]]].all()
    wide = torso_width(xy, present, "medium", gen)

    def width(p, a, b):
        return (p[:, J[a]] - p[:, J[b]]).norm(dim=-1)

    shoulders = width(wide, "r_shoulder", "l_shoulder") / width(xy, "r_shoulder", "l_shoulder")
    hips = width(wide, "r_hip", "l_hip") / width(xy, "r_hip", "l_hip")
    assert torch.allclose(torch.where(shoulders > 1.01, shoulders, hips), torch.tensor(WIDTH_FACTOR["medium"]))
    assert ((shoulders > 1.01) ^ (hips > 1.01)).all()               # one girdle widened, the other left alone
    arm = (wide[:, J["r_wrist"]] - wide[:, J["r_shoulder"]]) - (xy[:, J["r_wrist"]] - xy[:, J["r_shoulder"]])
    assert arm.abs().max() < 1e-5                                   # the limbs carried along, not stretched
    lifted = legs_shifted(xy, present, "strong", gen)
    mid = lambda p: (p[:, J["r_hip"]] + p[:, J["l_hip"]]) / 2  # noqa: E731
    assert (mid(lifted)[:, 1] < xy[:, J["neck"], 1]).all()          # y down: strong lifts the hips over the neck
    axis = xy[:, J["neck"]] - mid(xy)
    up = ((mid(lifted) - mid(xy)) * axis).sum(-1) / axis.norm(dim=-1) ** 2
    assert torch.allclose(up, torch.tensor(LEGS_SHIFT["strong"]), atol=1e-4)
    shin = (lifted[:, J["r_ankle"]] - lifted[:, J["r_knee"]]) - (xy[:, J["r_ankle"]] - xy[:, J["r_knee"]])
    upper = [J[k] for k in ("neck", "nose", "r_shoulder", "l_wrist")]
    assert shin.abs().max() < 1e-5 and torch.equal(lifted[:, upper], xy[:, upper])   # a block; the top stays


def test_jittered_valid_poses_stay_valid_and_broken_ones_do_not():
    field = load_pose_field()
    bodies, kp = _upright(300, seed=9)
    noisy = jitter(kp, torch.Generator().manual_seed(1))
    d_valid = field.distance(noisy)
    assert (d_valid < field.valid_threshold).float().mean() > 0.85
    gen = torch.Generator().manual_seed(2)
    face = kp[:, J["nose"], 2] > 0
    # (legs_shifted is not here: the shipped field flags 59 % of strong ones; fields trained with that kind, not
    # shipped for their real pass rate, 90 %+ -- see the README's pose field section)
    for kind in ("hip_swap", "shoulder_swap", "head_in_chest", "torso_width"):
        bad = D.corrupt(bodies, kp, kind, "strong", gen)
        q, present = D.normalised(bad)
        moved = aligned_distance(q, D.normalised(kp)[0], present)
        # a head in the chest needs a visible head; a widened torso seen from the side barely changes: judged
        # where the corruption moved the pose by half a body unit or more
        rows = face if kind == "head_in_chest" else (moved >= 0.5 if kind == "torso_width" else slice(None))
        d_bad = field.distance(bad)[rows]
        assert (d_bad > field.valid_threshold).float().mean() > 0.85, kind     # torso_width: 0.94 measured


def test_mined_repairs_are_added_with_the_distance_where_repair_left_them():
    """``build(miner=...)``: the poses drawn otherwise are the same; a share of the corrupted poses comes again,
    repaired by the miner, labelled with the target distance measured after repair -- which catches what the
    miner's repair walked into a blind spot (it calls them valid; their target says otherwise). By default only
    repairs left 0.3 body units or more from every valid pose are kept."""
    from reposedm_core.field.dataset import build

    field = load_pose_field()
    plain = build(3, 600, 600)
    mined = build(3, 600, 600, miner=field, mine_share=0.5, mine_min_target=0.0)
    n = len(plain.bad_xy)
    assert torch.equal(mined.bad_xy[:n], plain.bad_xy[:n]) and torch.equal(mined.valid_xy, plain.valid_xy)
    extra = len(mined.bad_xy) - n
    assert 0.35 * n < extra < 0.65 * n
    fixed = mined.bad_kp[n:]
    assert torch.equal(fixed[..., 2], mined.source_kp[n:][..., 2])         # repair keeps the visibility
    expected = D.target_distance(fixed, mined.source_kp[n:], D.make_bank(torch.Generator().manual_seed(3), 600),
                                 None, fit_steps=0)
    assert (mined.target[n:] <= expected + 1e-5).all()                     # the fit only lowers it (less jitter)
    d = field.distance(fixed)
    assert (d < field.valid_threshold).float().mean() > 0.9
    assert (mined.target[n:] > 0.3).any()                                   # blind spots the old field missed
    far = build(3, 600, 600, miner=field, mine_share=0.5)                   # the default keeps those only
    assert torch.equal(far.target[n:], mined.target[n:][mined.target[n:] >= 0.3])


def test_build_draws_only_the_kinds_asked_for_and_names_unknown_ones():
    from reposedm_core.field.dataset import build

    some = ("hip_swap", "head_in_chest")
    data = build(4, 400, 200, kinds=some)
    drawn = {D.KINDS[int(k)] for k in data.kind.unique()}
    assert drawn == set(some)
    everything = build(4, 400, 200)
    assert len({int(k) for k in everything.kind.unique()}) == len(D.KINDS)
    strong = build(4, 400, 200, kinds=("hip_swap:strong", "head_in_chest"))
    hips = strong.kind == D.KINDS.index("hip_swap")
    assert set(strong.strength[hips].tolist()) == {2} and len(set(strong.strength[~hips].tolist())) == 3
    with pytest.raises(ValueError, match="legs_sideways.*choose kinds from"):
        build(4, 10, 10, kinds=("legs_sideways",))
    with pytest.raises(ValueError, match="hip_swap:huge.*strength"):
        build(4, 10, 10, kinds=("hip_swap:huge",))


def _real_pose_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "make_real_poses.py"
    spec = importlib.util.spec_from_file_location("make_real_poses", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_misread_real_poses_are_marked_with_their_variants():
    script = _real_pose_script()
    frames = json.loads(REAL_POSES.read_text())
    marked = [f for f in frames if f.get("reading") == "misread"]
    bases = [f["source"] for f in marked if "," not in f["source"]]
    assert len(bases) == len(script.MISREADS) and all(f["note"] for f in marked)
    for f in marked:                                                # every variant of a misreading goes with it
        assert f["source"].split(",")[0] in bases
    assert len(marked) >= 3 * len(bases)                            # base + two turned (+ cropped when it can)
    again = [dict(f) for f in frames]
    assert script.label_misreads(again) == len(marked) and again == frames        # relabelling is idempotent
    script.MISREADS[("skimage astronaut", 5)] = "no such reading"
    try:
        with pytest.raises(ValueError, match="does not have"):
            script.label_misreads(again)
    finally:
        del script.MISREADS[("skimage astronaut", 5)]


def test_most_real_poses_pass():
    field = load_pose_field()
    frames = json.loads(REAL_POSES.read_text())
    kp = torch.stack([load_pose_keypoint([f])[0].keypoints[0] for f in frames])
    assert len(frames) > 300
    passing = field.distance(kp) < field.valid_threshold
    correct = torch.tensor([f.get("reading") != "misread" for f in frames])
    assert passing[correct].float().mean() >= 0.95      # measured 0.962 (eval field); the goal is 95 %
    assert passing.float().mean() >= 0.95               # even counting BlazePose's misreadings (0.954)


def test_real_poses_broken_by_hand_are_flagged_and_repaired():
    """The breakages the issue tried by hand, on real readings: flagged, and repaired under the valid median
    (eval field's hand-made table; legs crossed at the hips and widened shoulders barely change the profile
    walkers that most of these readings are, so they are not asserted)."""
    from reposedm_core.eval.field import break_by_hand, whole_standing_real_poses

    field = load_pose_field()
    kp = whole_standing_real_poses(REAL_POSES)
    broken = break_by_hand(kp, torch.Generator().manual_seed(0))
    for name, flagged, repaired in (("forearm 3x too long", 0.9, 0.9), ("hips above the neck", 0.9, 0.9),
                                    ("head in the chest", 0.9, 0.5), ("heavy noise", 0.85, 0.85)):
        bad = broken[name]
        assert (field.distance(bad) >= field.valid_threshold).float().mean() >= flagged, name
        after = field.distance(field.repair(bad))
        assert (after < field.valid_median).float().mean() >= repaired, name


def test_repair_moves_a_fully_confident_broken_pose_toward_a_real_body():
    field = load_pose_field()
    bodies, kp = _upright(40, seed=4)
    bad = D.corrupt(bodies, kp, "detached_joint", "strong", torch.Generator().manual_seed(3))
    assert (bad[..., 2][bad[..., 2] > 0] == 1).all()                # every joint fully confident
    fixed = field.repair(bad, confidence_weight=1.0)
    assert not torch.equal(fixed, bad)
    report = field.repair_report(bad, fixed)
    assert report["field_after"].mean() < 0.5 * report["field_before"].mean()
    assert report["nearest_after"].mean() < report["nearest_before"].mean()      # nearer to a banked valid pose

    def to_source(poses):                                           # distance to the uncorrupted pose
        q, present = D.normalised(poses)
        return aligned_distance(q, D.normalised(torch.cat([kp[..., :2], poses[..., 2:]], -1))[0], present)

    assert to_source(fixed).mean() < 0.85 * to_source(bad).mean()   # measured 0.74x: see eval field's repair table
    assert torch.equal(fixed[..., 2], bad[..., 2])
    # poses that are already valid are left nearly where they are
    calm = field.repair(kp[:10])
    moved = (calm[..., :2] - kp[:10, :, :2]).norm(dim=-1) / root_and_scale(kp[:10])[1][:, None]
    assert float(moved[kp[:10, :, 2] > 0].median()) < 0.05
