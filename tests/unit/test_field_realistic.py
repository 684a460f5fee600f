"""The pose field on real human poses: the realistic world it is trained on, a body scale that survives
foreshortening, the new corruptions, the shipped field's verdicts on jittered, broken and real poses, and a
repair that moves confident joints and is checked against a bank of valid poses."""
from __future__ import annotations

import json

import torch

from reposedm_core.data.synthetic.poses import REALISTIC_EXTRA, pose_angles_from_uniforms, realistic_family
from reposedm_core.data.synthetic.skeleton import NUM_DOFS, within_limits
from reposedm_core.eval.field import REAL_POSES
from reposedm_core.field import data as D
from reposedm_core.field import load_pose_field
from reposedm_core.field.corrupt import head_in_chest, hip_swap
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
    assert pitch.min() < -45 and pitch.max() > 65 and roll.abs().max() > 20 and roll.abs().max() <= 30
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


def test_jittered_valid_poses_stay_valid_and_broken_ones_do_not():
    field = load_pose_field()
    bodies, kp = _upright(300, seed=9)
    noisy = jitter(kp, torch.Generator().manual_seed(1))
    d_valid = field.distance(noisy)
    assert (d_valid < field.valid_threshold).float().mean() > 0.85
    gen = torch.Generator().manual_seed(2)
    face = kp[:, J["nose"], 2] > 0                                  # a head in the chest needs a visible head
    for kind, rows in (("hip_swap", slice(None)), ("shoulder_swap", slice(None)), ("head_in_chest", face)):
        d_bad = field.distance(D.corrupt(bodies, kp, kind, "strong", gen))[rows]
        assert (d_bad > field.valid_threshold).float().mean() > 0.85, kind


def test_most_real_poses_pass():
    field = load_pose_field()
    frames = json.loads(REAL_POSES.read_text())
    kp = torch.stack([load_pose_keypoint([f])[0].keypoints[0] for f in frames])
    assert len(frames) > 300
    assert (field.distance(kp) < field.valid_threshold).float().mean() > 0.9


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
