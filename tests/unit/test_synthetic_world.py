"""Synthetic world, images: shapes, determinism, keypoints on the body, occlusion, splits, pairs, sizes."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from reposedm_core.data.synthetic import SPLITS, SyntheticWorld, contact_sheet, render_people, split_of_seed
from reposedm_core.data.synthetic.parts import PART_NAMES
from reposedm_core.data.synthetic.skeleton import DOF
from reposedm_core.pose import JOINT_INDEX as J

FACE = [J[k] for k in ("nose", "r_eye", "l_eye")]
BODY = [J[k] for k in ("neck", "r_shoulder", "l_shoulder", "r_elbow", "l_elbow", "r_wrist", "l_wrist", "r_hip",
                       "l_hip", "r_knee", "l_knee", "r_ankle", "l_ankle")]


@pytest.fixture(scope="module")
def crowd():
    """48 people at 128 x 88 (standing pose prior, so views are the only big variable)."""
    return render_people(list(range(48)), list(range(1000, 1048)), 128, 88, prior="standing")


@pytest.fixture(scope="module")
def people():
    """24 people from the default (mixed) prior at the DeepFashion size."""
    return render_people(list(range(24)), list(range(500, 524)))


def test_shapes_and_ranges(people):
    out = people
    assert out["image"].shape == (24, 3, 256, 176) and out["image"].dtype == torch.float32
    assert out["mask"].shape == (24, 1, 256, 176) and out["labels"].shape == (24, 1, 256, 176)
    assert out["keypoints"].shape == (24, 18, 3) and out["visibility"].shape == (24, 18)
    assert 0 <= float(out["image"].min()) and float(out["image"].max()) <= 1
    assert 0 <= float(out["mask"].min()) and float(out["mask"].max()) <= 1
    assert set(out["visibility"].unique().tolist()) <= {0, 1, 2}
    assert int(out["labels"].max()) <= len(PART_NAMES) and int(out["labels"].min()) == 0
    cover = out["mask"].mean((1, 2, 3))
    assert bool((cover > 0.04).all() and (cover < 0.9).all())  # a person, not an empty or a full frame
    assert float(out["image"].std((2, 3)).mean()) > 0.05  # not flat colour
    kp = out["keypoints"]
    missing = kp[..., 2] == 0
    assert bool((kp[..., :2][missing] == 0).all())  # missing joints are (0, 0, 0)
    present = kp[~missing]
    assert bool((present[:, 0] >= 0).all() and (present[:, 0] < 176).all() and (present[:, 1] < 256).all())


def test_deterministic_and_independent_of_the_batch():
    a = render_people([5], [11], 96, 64)
    b = render_people([3, 5, 9, 12, 40, 41, 42, 43, 44], [7, 11, 13, 1, 2, 3, 4, 5, 6], 96, 64)
    c = render_people(torch.tensor([5]), torch.tensor([11]), 96, 64)
    for key in ("image", "mask", "keypoints", "visibility", "labels"):
        assert torch.equal(a[key][0], b[key][1]), key
        assert torch.equal(a[key], c[key]), key
    other_identity = render_people([6], [11], 96, 64)
    other_pose = render_people([5], [12], 96, 64)
    assert not torch.equal(a["image"], other_identity["image"])
    assert not torch.equal(a["keypoints"], other_pose["keypoints"])
    # the pose does not depend on the identity's clothes, only on its proportions
    assert torch.equal(a["angles"], render_people([77], [11], 96, 64)["angles"])


@pytest.mark.parametrize("size", [(128, 88), (64, 44), (200, 300)])
def test_other_sizes(size):
    h, w = size
    out = render_people([1, 2, 3], [4, 5, 6], h, w)
    assert out["image"].shape == (3, 3, h, w) and out["mask"].shape == (3, 1, h, w)
    kp = out["keypoints"]
    vis = kp[..., 2] > 0
    assert bool((kp[..., 0][vis] < w).all() and (kp[..., 1][vis] < h).all())
    assert float(out["mask"].mean()) > 0.03


def test_bad_arguments_teach():
    with pytest.raises(ValueError, match="as many"):
        render_people([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="ints"):
        render_people([1.5], [2])
    with pytest.raises(ValueError, match="split"):
        SyntheticWorld("holdout")


def test_visible_joints_land_on_the_person(people, crowd):
    for out, size in ((people, (256, 176)), (crowd, (128, 88))):
        kp, vis, mask = out["keypoints"], out["visibility"], out["mask"][:, 0]
        b, j = (vis == 2).nonzero(as_tuple=True)
        x = kp[b, j, 0].long().clamp(0, size[1] - 1)
        y = kp[b, j, 1].long().clamp(0, size[0] - 1)
        on_body = mask[b, y, x] > 0.5
        assert on_body.float().mean() > 0.9
        body = torch.isin(j, torch.tensor(BODY))
        assert on_body[body].float().mean() > 0.95


def test_occlusion_marking_follows_the_view(crowd):
    yaw, vis, conf = crowd["camera_yaw"], crowd["visibility"], crowd["keypoints"][..., 2]
    head_turn = (crowd["angles"][:, DOF["neck_rot"]] + crowd["angles"][:, DOF["spine_rot"]]).abs()
    back = ((yaw - math.pi).abs() < math.radians(25)) & (head_turn < math.radians(20))
    front = torch.minimum(yaw, 2 * math.pi - yaw) < math.radians(25)
    side = ((yaw - math.pi / 2).abs() < math.radians(25)) | ((yaw - 1.5 * math.pi).abs() < math.radians(25))
    assert back.sum() >= 2 and front.sum() >= 5 and side.sum() >= 2
    # seen from the back, the face is turned away: nose and eyes are never confident
    assert bool((conf[back][:, FACE] == 0).all())
    assert bool((vis[back][:, FACE] <= 1).all())
    # seen from the front, the face is there and the body joints are mostly unoccluded
    assert (conf[front][:, FACE] > 0).float().mean() > 0.9
    assert (vis[front][:, BODY] == 1).float().mean() < 0.1
    # from the side, the far shoulder or hip hides behind the body; occluded body joints keep confidence 1
    far = vis[side][:, [J["r_shoulder"], J["l_shoulder"], J["r_hip"], J["l_hip"]]]
    assert ((far == 1).any(-1)).float().mean() > 0.7
    occluded_body = (vis == 1) & torch.isin(torch.arange(18), torch.tensor(BODY))
    assert bool((conf[occluded_body] == 1).all())


def test_out_of_frame_joints_are_missing():
    out = render_people(list(range(60)), list(range(2000, 2060)), 128, 88)
    out_of_frame = out["visibility"] == 0
    assert out_of_frame.any(), "expected some cropped shots among 60 people"
    assert bool((out["keypoints"][out_of_frame] == 0).all())
    xy = out["joints2d"][out_of_frame]
    outside = (xy[:, 0] < 0) | (xy[:, 0] >= 88) | (xy[:, 1] < 0) | (xy[:, 1] >= 128)
    assert bool(outside.all())


def test_splits_are_disjoint_and_stable():
    seeds = {}
    for split in SPLITS:
        world = SyntheticWorld(split, 64, 44, seed=3)
        ids = {world.identity_seed(i) for i in range(300)}
        poses = {p for i in range(300) for p in world.pose_seeds(i)}
        assert len(ids) == 300 and len(poses) == 600
        assert {split_of_seed(s) for s in ids | poses} == {split}
        seeds[split] = (ids, poses)
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not seeds[a][0] & seeds[b][0] and not seeds[a][1] & seeds[b][1]
    w1, w2 = SyntheticWorld("train", seed=3), SyntheticWorld("train", seed=4)
    assert w1.identity_seed(7) == SyntheticWorld("train", seed=3).identity_seed(7) != w2.identity_seed(7)
    assert len(SyntheticWorld("train")) >= 100_000 and len(SyntheticWorld("test", size=10)) == 10
    with pytest.raises(IndexError):
        SyntheticWorld("test", size=10)[10]
    pooled = SyntheticWorld("train", identities=5)
    assert len({pooled.identity_seed(i) for i in range(100)}) <= 5


def _colour_hist(image: torch.Tensor, mask: torch.Tensor, bins: int = 4) -> torch.Tensor:
    q = (image.clamp(0, 0.999) * bins).long()
    idx = (q[0] * bins + q[1]) * bins + q[2]
    sel = mask[0] > 0.9
    h = torch.bincount(idx[sel], minlength=bins ** 3).float()
    return h / h.sum().clamp_min(1)


def test_pair_is_one_identity_in_two_poses():
    world = SyntheticWorld("val", 128, 88)
    batch = world.pairs(range(10))
    assert batch["source_image"].shape == (10, 3, 128, 88) and batch["target_keypoints"].shape == (10, 18, 3)
    assert bool((batch["source_pose_seed"] != batch["target_pose_seed"]).all())
    assert not torch.equal(batch["source_keypoints"], batch["target_keypoints"])
    hs = [_colour_hist(batch["source_image"][i], batch["source_mask"][i]) for i in range(10)]
    ht = [_colour_hist(batch["target_image"][i], batch["target_mask"][i]) for i in range(10)]
    d = torch.tensor([[float((hs[i] - ht[j]).abs().sum()) for j in range(10)] for i in range(10)])
    same, cross = d.diagonal(), d[~torch.eye(10, dtype=torch.bool)]
    assert float(same.mean()) < 0.6 * float(cross.mean())
    assert (same < d.masked_fill(torch.eye(10, dtype=torch.bool), 9).amin(1)).float().mean() >= 0.7
    # the unbatched item equals the batched one (torch Dataset protocol)
    item = world[3]
    assert torch.equal(item["target_image"], batch["target_image"][3])
    assert item["identity_seed"] == int(batch["identity_seed"][3])
    person = world.person(3)
    assert torch.equal(person["image"], batch["source_image"][3])


def test_dataloader_collates_pairs():
    loader = torch.utils.data.DataLoader(SyntheticWorld("test", 64, 44, size=4), batch_size=2)
    batch = next(iter(loader))
    assert batch["source_image"].shape == (2, 3, 64, 44) and batch["identity_seed"].shape == (2,)


def test_contact_sheet_writes_a_png(tmp_path, crowd):
    path = contact_sheet(crowd["image"][:8], tmp_path / "sheet.png", ncol=4, keypoints=crowd["keypoints"][:8])
    with Image.open(path) as im:
        assert im.size == (4 * (88 + 2) + 2, 2 * (128 + 2) + 2)


def test_projected_poses_match_the_renderer_without_rendering():
    from reposedm_core.data.synthetic import project_poses, sample_projected_poses, within_limits
    from reposedm_core.data.synthetic.camera import NUM_CAMERA_UNIFORMS
    from reposedm_core.data.synthetic.poses import NUM_POSE_UNIFORMS, pose_angles_from_uniforms
    from reposedm_core.data.synthetic.seeds import STREAM_CAMERA, STREAM_POSE, STREAM_SHAPE, seeded_uniforms
    from reposedm_core.data.synthetic.skeleton import NUM_SHAPE_UNIFORMS, body_shape_from_uniforms

    ids, poses = list(range(40)), list(range(3000, 3040))
    rendered = render_people(ids, poses, 128, 88)
    shape = body_shape_from_uniforms(seeded_uniforms(ids, STREAM_SHAPE, NUM_SHAPE_UNIFORMS))
    angles = pose_angles_from_uniforms(seeded_uniforms(poses, STREAM_POSE, NUM_POSE_UNIFORMS))
    projected = project_poses(shape, angles, seeded_uniforms(poses, STREAM_CAMERA, NUM_CAMERA_UNIFORMS), 128, 88)
    assert torch.equal(projected["joints2d"], rendered["joints2d"])
    face = [J["nose"], J["r_eye"], J["l_eye"]]
    same = (projected["keypoints"][:, face, 2] > 0) == (rendered["keypoints"][:, face, 2] > 0)
    assert same.float().mean() > 0.85  # the geometric face test agrees with the depth test

    bank = sample_projected_poses(torch.Generator().manual_seed(0), 5000)
    assert bank["keypoints"].shape == (5000, 18, 3) and bool(within_limits(bank["angles"]).all())
    present = bank["keypoints"][..., 2] > 0
    assert 0.8 < float(present.float().mean()) < 0.98
    back = (bank["camera_yaw"] - math.pi).abs() < 0.3
    assert float(present[back][:, J["nose"]].float().mean()) < 0.2
