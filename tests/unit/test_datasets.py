"""DeepFashion / Market-1501 standard layouts and the OpenPose folder: loading, frames, and errors with line numbers."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reposedm_core.data.anchors import AnchorPairs, person_mask
from reposedm_core.data.export import export
from reposedm_core.data.folder import FolderPairs
from reposedm_core.pose.convert import parse_deepfashion_keypoints


@pytest.fixture(scope="module")
def df_root(tmp_path_factory):
    return export(tmp_path_factory.mktemp("df"), train=4, test=3)


def _copy(root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(root, dst)
    return dst


def test_deepfashion_layout_loads_pairs_in_the_model_frame(df_root):
    full = AnchorPairs(df_root, "deepfashion", "test")
    assert len(full) == 3
    batch = full.pairs([0, 2])
    assert batch["source_image"].shape == (2, 3, 256, 176) and batch["target_keypoints"].shape == (2, 18, 3)
    a, b = full.names(0)
    assert torch.allclose(batch["target_keypoints"][0], full.poses[b])   # same frame: keypoints unchanged
    half = AnchorPairs(df_root, "deepfashion", "test", height=128, width=88).pairs([0])
    vis = batch["target_keypoints"][0, :, 2] > 0
    want = (batch["target_keypoints"][0, vis, :2] + 0.5) / 2 - 0.5
    assert torch.allclose(half["target_keypoints"][0, vis, :2], want, atol=1e-4)
    assert half["target_image"].shape == (1, 3, 128, 88)


def test_images_at_twice_the_frame_scale_the_keypoints(df_root, tmp_path):
    root = _copy(df_root, tmp_path)
    for p in (root / "test").iterdir():
        Image.open(p).resize((352, 512)).save(p)
    assert AnchorPairs(root, "deepfashion", "test").image_frame() == (512, 352)
    big = AnchorPairs(root, "deepfashion", "test", height=512, width=352).pairs([0])
    small = AnchorPairs(df_root, "deepfashion", "test").pairs([0])
    vis = small["source_keypoints"][0, :, 2] > 0
    assert torch.allclose(big["source_keypoints"][0, vis, :2], (small["source_keypoints"][0, vis, :2] + 0.5) * 2 - 0.5)


def _edit_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("edit, error, message", [
    (lambda r: (r / "fasion-resize-annotation-test.csv").unlink(), FileNotFoundError,
     "fasion-resize-annotation-test.csv not found"),
    (lambda r: _edit_line(r / "fasion-resize-annotation-test.csv", 1, "name,keypoints_y,keypoints_x"), ValueError,
     "line 1: header"),
    (lambda r: _edit_line(r / "fasion-resize-annotation-test.csv", 3, "a.png:[1, 2]"), ValueError,
     "fasion-resize-annotation-test.csv line 3: 2 field(s), expected 3"),
    (lambda r: _edit_line(r / "fasion-resize-annotation-test.csv", 2, "a.png:[1, 2]:[3, 4]"), ValueError,
     "line 2 (a.png): keypoints_y must list 18 integers"),
    (lambda r: _edit_line(r / "fasion-resize-annotation-test.csv", 2, "a.png:[oops]:[3]"), ValueError,
     "line 2 (a.png): keypoints_y is not a JSON list"),
    (lambda r: _edit_line(r / "fasion-resize-annotation-test.csv", 2, "a.png:" + str([300] + [-1] * 17) + ":" +
                          str([5] + [-1] * 17)), ValueError, "joint 0 at x=5, y=300 is outside the 176x256"),
    (lambda r: _edit_line(r / "fasion-resize-pairs-test.csv", 3, "nobody.png,nobody.png"), ValueError,
     "fasion-resize-pairs-test.csv line 3: 'nobody.png' has no row in fasion-resize-annotation-test.csv"),
    (lambda r: shutil.rmtree(r / "test"), FileNotFoundError, "the test image folder"),
])
def test_deepfashion_errors_name_the_file_and_line(df_root, tmp_path, edit, error, message):
    root = _copy(df_root, tmp_path)
    edit(root)
    with pytest.raises(error, match=None) as info:
        AnchorPairs(root, "deepfashion", "test")
    assert message in str(info.value), str(info.value)


def test_image_errors_say_which_image_and_the_expected_size(df_root, tmp_path):
    root = _copy(df_root, tmp_path)
    pairs = AnchorPairs(root, "deepfashion", "test")
    a, _ = pairs.names(0)
    Image.open(root / "test" / a).resize((100, 50)).save(root / "test" / a)
    with pytest.raises(ValueError, match=rf"{a} is 100x50, expected 176x256"):
        pairs.pairs([0])
    (root / "test" / a).unlink()
    with pytest.raises(FileNotFoundError, match=a):
        pairs.pairs([0])


def _market(root: Path) -> Path:
    (root / "bounding_box_test").mkdir(parents=True)
    names = ["0001_c1s1_001051_00.jpg", "0001_c2s1_000301_00.jpg"]
    rng = np.random.default_rng(0)
    for n in names:
        Image.fromarray(rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)).save(root / "bounding_box_test" / n)
    ys = [20, 30, 30, 50, 70, 30, 50, 70, 70, 95, 120, 70, 95, 120, 18, 18, 20, 20]
    xs = [32, 32, 22, 20, 18, 42, 44, 46, 26, 26, 26, 38, 38, 38, 30, 34, 28, 36]
    rows = ["name:keypoints_y:keypoints_x"] + [f"{n}:{ys}:{xs}" for n in names]
    (root / "market-annotation-test.csv").write_text("\n".join(rows) + "\n")
    (root / "market-pairs-test.csv").write_text(f"from,to\n{names[0]},{names[1]}\n{names[1]},{names[0]}\n")
    return root


def test_market_layout_and_the_person_mask(tmp_path):
    pairs = AnchorPairs(_market(tmp_path / "market"), "market", "test")
    batch = pairs.pairs([0, 1])
    assert batch["source_image"].shape == (2, 3, 128, 64)
    mask = person_mask(batch["target_keypoints"], 128, 64)
    assert mask.shape == (2, 1, 128, 64) and 0.3 < float(mask.mean()) < 1.0
    assert mask[0, 0, 60, 32] == 1 and mask[0, 0, 0, 0] == 0


@pytest.mark.parametrize("edit, error, message", [
    (lambda r: (r / "market-pairs-test.csv").unlink(), FileNotFoundError, "market-pairs-test.csv not found"),
    (lambda r: _edit_line(r / "market-annotation-test.csv", 3, "0001_c2s1_000301_00.jpg:" + str([130] + [-1] * 17)
                          + ":" + str([5] + [-1] * 17)), ValueError,
     "market-annotation-test.csv line 3 (0001_c2s1_000301_00.jpg): joint 0 at x=5, y=130 is outside the 64x128"),
    (lambda r: _edit_line(r / "market-pairs-test.csv", 2, "0001_c1s1_001051_00.jpg"), ValueError,
     "market-pairs-test.csv line 2: 1 field(s), expected 2"),
    (lambda r: _edit_line(r / "market-pairs-test.csv", 3, "0001_c1s1_001051_00.jpg,0002_c1s1_000001_00.jpg"),
     ValueError, "market-pairs-test.csv line 3: '0002_c1s1_000001_00.jpg' has no row in market-annotation-test.csv"),
    (lambda r: shutil.rmtree(r / "bounding_box_test"), FileNotFoundError, "bounding_box_test not found"),
])
def test_market_errors_name_the_file_and_line(tmp_path, edit, error, message):
    root = _market(tmp_path / "market")
    edit(root)
    with pytest.raises(error) as info:
        AnchorPairs(root, "market", "test")
    assert message in str(info.value), str(info.value)


def test_market_image_of_the_wrong_size(tmp_path):
    root = _market(tmp_path / "market")
    name = "0001_c2s1_000301_00.jpg"
    Image.new("RGB", (64, 64)).save(root / "bounding_box_test" / name)
    with pytest.raises(ValueError, match=rf"image {name} is 64x64, expected 64x128"):
        AnchorPairs(root, "market", "test").pairs([0])


def test_market_export_round_trips_through_the_reader(tmp_path):
    root = export(tmp_path / "m", train=2, test=2, layout="market")
    assert (root / "market-pairs-test.csv").is_file() and (root / "bounding_box_train").is_dir()
    batch = AnchorPairs(root, "market", "test").pairs([0, 1])
    assert batch["target_image"].shape == (2, 3, 128, 64)
    with pytest.raises(ValueError, match="market images must be 64x128 or an integer multiple of it, got 64x100"):
        export(tmp_path / "bad", train=1, test=1, height=100, width=64, layout="market")


def _folder(root: Path) -> Path:
    from reposedm_core.data.synthetic import render_people
    from reposedm_core.pose import frames_from_tensor, to_pose_keypoint
    from reposedm_core.utils.images import save_png

    people = render_people([3, 3, 3], [1, 2, 3], 200, 120)
    for k in range(3):
        person = root / "alice"
        person.mkdir(parents=True, exist_ok=True)
        save_png(people["image"][k], person / f"shot{k}.png")
        frame = to_pose_keypoint(frames_from_tensor(people["keypoints"][k:k + 1], 120, 200), normalized=True)[0]
        name = f"shot{k}_keypoints.json" if k == 2 else f"shot{k}.json"
        (person / name).write_text(json.dumps(frame))
    return root


def test_openpose_folder_pairs_within_a_person(tmp_path):
    pairs = FolderPairs(_folder(tmp_path / "f"), 96, 64)
    assert len(pairs) == 6                      # ordered pairs of 3 photos of one person
    batch = pairs.pairs([0])
    assert batch["source_image"].shape == (1, 3, 96, 64)
    assert (batch["source_keypoints"][0, :, 2] > 0).sum() >= 10


def test_openpose_folder_errors(tmp_path):
    root = _folder(tmp_path / "f")
    (root / "alice" / "shot1.json").unlink()
    with pytest.raises(ValueError, match=r"1 image\(s\) have no pose file.*alice/shot1.png"):
        FolderPairs(root, 96, 64)
    root = _folder(tmp_path / "g")
    (root / "pairs.csv").write_text("from,to\nalice/shot0.png,alice/shot1.png\nalice/shot0.png,bob/x.png\n")
    with pytest.raises(ValueError, match=r"pairs.csv line 3: 'bob/x.png' is not an image"):
        FolderPairs(root, 96, 64)
    (root / "pairs.csv").unlink()
    (root / "alice" / "shot0.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2]}]}')
    with pytest.raises(ValueError, match=r"alice/shot0.json: .*pose_keypoints_2d"):
        FolderPairs(root, 96, 64).pairs([0])


def test_training_reads_the_dataset_named_in_the_config(df_root):
    from reposedm_core.train.config import load_config
    from reposedm_core.train.data import make_source

    model_cfg, cfg = load_config("demo", ["train.data=deepfashion", f"train.data_root={df_root}"])
    source = make_source(cfg, model_cfg)
    batch = source.batch(0, 2, torch.device("cpu"))
    assert batch["source"].shape == (2, 3, model_cfg.height, model_cfg.width)
    assert batch["source"].min() >= -1 and batch["source"].max() <= 1
    assert batch["source_pose"].shape == (2, 18, 3)
    assert source.preview(2, torch.device("cpu"))["target"].shape[0] == 2
    # the same data named as KIND:ROOT or as a dict
    _, inline = load_config("demo", [f"train.data=deepfashion:{df_root}"])
    assert make_source(inline, model_cfg).indices(5, 3) == source.indices(5, 3)
    inline.data = {"kind": "deepfashion", "root": str(df_root)}
    assert make_source(inline, model_cfg).indices(5, 3) == source.indices(5, 3)
    _, bad = load_config("demo", ["train.data=deepfashion"])
    with pytest.raises(ValueError, match="needs the dataset folder: train.data=deepfashion:/data/deepfashion"):
        make_source(bad, model_cfg)
    bad.data = "imagenet:/x"
    with pytest.raises(ValueError, match=r"train.data='imagenet:/x'; expected one of .*deepfashion"):
        make_source(bad, model_cfg)


def test_dataset_sampling_is_seeded_by_epoch_and_shards_rows(df_root):
    from reposedm_core.train.data import PairSource

    pairs = AnchorPairs(df_root, "deepfashion", "train")
    n = len(pairs)
    source = PairSource(pairs, seed=3, epochs=True)
    walk = [i for step in range(n) for i in source.indices(step, 2)]      # two epochs, two pairs a step
    assert sorted(walk[:n]) == list(range(n)) and sorted(walk[n:]) == list(range(n))
    assert PairSource(pairs, seed=3, epochs=True).indices(1, 2) == source.indices(1, 2)     # resumable
    full = source.batch(1, 2, torch.device("cpu"))
    rank1 = source.batch(1, 2, torch.device("cpu"), rows=slice(1, 2))        # what process 1 of 2 trains on
    assert torch.equal(rank1["target"], full["target"][1:])


def test_annotation_parser_round_trip():
    kp = parse_deepfashion_keypoints(str([5] + [-1] * 17), str([7] + [-1] * 17))
    assert kp[0].tolist() == [7.0, 5.0, 1.0] and kp[1:, 2].sum() == 0
