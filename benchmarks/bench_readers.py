"""Which keypoint reader for which images: the shipped small network vs the BlazePose port, on synthetic people
(exact ground truth) and on real photos (MediaPipe's own reading as the reference, since no photo ground truth
may be used here). The figures behind Pose Field Guidance's default reader.

    python benchmarks/bench_readers.py                     # needs the test tier (scripts/setup_env.sh test)
    python benchmarks/bench_readers.py --people 200

Synthetic: PCK@0.1 (torso-normalised) of joints with visibility > 0 and the share reported, on held-out
test-split people at 96 x 64 (the demo model's frame), 128 x 88 and 256 x 176. Real: the 7 test photos; PCK@0.1
against MediaPipe's joints with visibility >= 0.5, torso from MediaPipe's reading.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from reposedm_core.estimator import load_blazepose, load_estimator  # noqa: E402
from reposedm_core.estimator.metrics import keypoint_scores  # noqa: E402
from reposedm_core.eval.estimator import test_people  # noqa: E402
from reposedm_core.eval.metrics import markdown_table  # noqa: E402
from reposedm_core.pose import mediapipe33_to_openpose18  # noqa: E402

log = logging.getLogger("bench_readers")


@torch.no_grad()
def read(reader, images: torch.Tensor, batch: int = 25) -> torch.Tensor:
    return torch.cat([reader(images[i:i + batch]) for i in range(0, len(images), batch)])


def synthetic(readers: dict, n: int) -> list[list]:
    rows = []
    for h, w in ((96, 64), (128, 88), (256, 176)):
        data = test_people(n, h, w)
        for name, reader in readers.items():
            s = keypoint_scores(read(reader, data["image"]), data["joints2d"], data["visibility"])["all"]
            rows.append([f"synthetic {h}x{w} ({n})", name, s["pck@0.1"], s["detected"]])
            log.info("%s", rows[-1])
    return rows


def real(readers: dict) -> list[list]:
    import mediapipe as mp

    from harness.photos import as_tensor, photos

    pck = {k: [] for k in readers}
    found = {k: [] for k in readers}
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as ctx:
        for name, im in photos().items():
            r = ctx.process(np.ascontiguousarray(im))
            if r.pose_landmarks is None:
                continue
            h, w = im.shape[:2]
            lm = torch.tensor([[p.x, p.y, p.visibility] for p in r.pose_landmarks.landmark])
            ref = mediapipe33_to_openpose18(lm, w, h, 0.5)
            torso = float(((ref[1, :2] - (ref[8, :2] + ref[11, :2]) / 2).norm()))
            seen = ref[:, 2] > 0
            for key, reader in readers.items():
                kp = read(reader, as_tensor(im))[0]
                ok = (kp[:, 2] > 0) & seen & ((kp[:, :2] - ref[:, :2]).norm(dim=-1) <= 0.1 * torso)
                pck[key].append(float(ok.sum() / seen.sum()))
                found[key].append(float(((kp[:, 2] > 0) & seen).sum() / seen.sum()))
    return [[f"real photos ({len(pck[k])}, MediaPipe as reference)", k, float(np.mean(pck[k])),
             float(np.mean(found[k]))] for k in readers]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=100)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    readers = {"small network (shipped)": load_estimator(), "BlazePose port": load_blazepose()}
    rows = synthetic(readers, args.people) + real(readers)
    log.info("\n%s", markdown_table(["images", "reader", "PCK@0.1", "joints reported"], rows))


if __name__ == "__main__":
    main()
